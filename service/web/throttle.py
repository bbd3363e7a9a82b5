"""Failed dashboard sign-ins, counted per client address and per organisation, so that keys
cannot be guessed at speed: past the limit, sign-in is refused with 429 and Retry-After until
the oldest failure leaves the window. Counted in each process (each replica and worker keeps
its own count), in memory: a restart forgets them, which only ever errs towards letting in.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

FAILURES_ALLOWED = 10
WINDOW = timedelta(minutes=5)
MAX_TRACKED = 10_000  # clients and organisations remembered at once: a bound on memory


class FailedSignIns:
    def __init__(self, allowed: int = FAILURES_ALLOWED, window: timedelta = WINDOW) -> None:
        self._allowed = allowed
        self._window = window
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, who: str, now: datetime) -> int | None:
        """Seconds until `who` may try again, or None if it may now."""
        recent = self._recent(who, now)
        if len(recent) < self._allowed:
            return None
        return max(1, math.ceil((recent[0] + self._window - now).total_seconds()))

    def failed(self, who: str, now: datetime) -> None:
        if who not in self._failures and len(self._failures) >= MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))
        self._recent(who, now).append(now)

    def _recent(self, who: str, now: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(who, deque())
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        return recent
