"""The parts of a process that `/readyz` reports on without knowing what they are.

The health router and the parts it reports on (the scheduler) both depend on this module and
not on each other: the app factory adds each running part under a name, and the router asks
every part it was given.
"""

from __future__ import annotations

from typing import Protocol


class Probe(Protocol):
    def readiness(self) -> str:
        """'ok', or what is wrong in a few words."""
        ...


class Readiness:
    """The probes of one process, by the name `/readyz` shows each under."""

    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}

    def add(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe

    def checks(self) -> dict[str, str]:
        return {name: probe.readiness() for name, probe in self._probes.items()}
