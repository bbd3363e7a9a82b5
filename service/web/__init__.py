"""The managers' dashboard and embeddable widgets, rendered on the server."""
