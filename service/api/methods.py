"""HEAD and OPTIONS on every resource, and an `Allow` that names all of a resource's methods.

FastAPI registers one route per method and path: Starlette's 405 then names only the methods
of the first route whose path matched, and HEAD reaches no route at all. RFC 9110 wants HEAD
wherever GET is served (section 9.3.2) and `Allow` to list every method the resource
supports (section 10.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods served at the scope's path, HEAD and OPTIONS included; empty for no route.

    A path written out in full names its resource even where a template also matches it:
    `GET /v1/imports/annex-a` reaches `/v1/imports/{import_id}` only to find no such import.
    """
    by_path: dict[str, set[str]] = {}
    for route in iter_route_contexts(routes):  # the routes of included routers too
        if route.methods and route.matches(scope)[0] is not Match.NONE:
            by_path.setdefault(str(route.path_format), set()).update(route.methods)
    literal = by_path.get(scope["path"])
    methods = literal if literal is not None else set().union(*by_path.values())
    if not methods:
        return []
    methods.add("OPTIONS")
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class HttpMethods:
    """Answer OPTIONS with the resource's methods, and HEAD as GET without the body."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        allowed = allowed_methods(self.routes, scope)
        if scope["method"] == "OPTIONS" and allowed:
            await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(
                scope, receive, send
            )
        elif scope["method"] == "HEAD" and "GET" in allowed:

            async def headers_only(message: Message) -> None:
                if message["type"] == "http.response.body":
                    message = {**message, "body": b""}
                await send(message)

            await self.app({**scope, "method": "GET"}, receive, headers_only)
        else:  # no such resource (404), or one without GET (405 naming what it allows)
            await self.app(scope, receive, send)
