"""Request dependencies: the session, the caller and the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.problems import Problem
from service.settings import Settings
from service.store.db import SessionFactory
from service.store.orgs import KEY_CACHE_SECONDS, Principal, authenticate, hash_key

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed on success, rolled back on any error. A GET
    only reads, so it never waits for the write lock on SQLite (store/db.py)."""
    state = request.app.state
    reads = request.method in ("GET", "HEAD")
    factory: SessionFactory = state.read_session_factory if reads else state.session_factory
    async with factory() as session, session.begin():
        yield session


# scope="function": the transaction ends when the path operation returns, before the response
# is sent, so a 2xx always means committed and a failed commit is answered as the fault it is
# (503). With the default scope the commit would run after the response had gone.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_UNAUTHORISED = {"WWW-Authenticate": "Bearer"}


class KeyCache:
    """Keys seen in the last few seconds, so a busy client costs no query per request.

    Only request validation reads the cached ruleset; writes re-read it in their own
    transaction (`store.orgs.lock_ruleset`). So a revoked key or a rules change reaches
    every worker's validation within KEY_CACHE_SECONDS and never affects what is derived.
    """

    def __init__(self, ttl: float = KEY_CACHE_SECONDS, size: int = 10_000) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lookups: dict[str, asyncio.Task[Principal | None]] = {}

    async def resolve(
        self, token: str, look_up: Callable[[str], Awaitable[Principal | None]]
    ) -> Principal | None:
        """The key's principal, cached or looked up; requests that miss together share one
        lookup, so a burst after start or expiry costs one query and one connection, not one
        each. Unknown keys are not cached: a key created a moment ago works at once."""
        digest = hash_key(token)
        principal = self._fresh(digest)
        if principal is not None:
            return principal
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = self._lookups[digest] = asyncio.create_task(
                self._look_up_and_remember(digest, token, look_up)
            )
            lookup.add_done_callback(lambda _: self._lookups.pop(digest, None))
        # Shielded: a caller that gives up must not cancel the lookup the others await.
        return await asyncio.shield(lookup)

    async def _look_up_and_remember(
        self, digest: str, token: str, look_up: Callable[[str], Awaitable[Principal | None]]
    ) -> Principal | None:
        principal = await look_up(token)
        if principal is not None:
            self._remember(digest, principal)
        return principal

    def _fresh(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _remember(self, digest: str, principal: Principal) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self._ttl, principal)

    def forget_org(self, org_id: str) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[1].org_id != org_id}


async def _principal(request: Request) -> Principal:
    """The caller, looked up in a session of its own so no connection is held meanwhile."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Problem(
            401,
            "Send an API key as 'Authorization: Bearer <key>'.",
            slug="unauthorised",
            headers=_UNAUTHORISED,
        )
    keys: KeyCache = request.app.state.key_cache
    factory: SessionFactory = request.app.state.read_session_factory

    async def look_up(plaintext: str) -> Principal | None:
        async with factory() as session:
            return await authenticate(session, plaintext)

    principal = await keys.resolve(token, look_up)
    if principal is None:
        raise Problem(
            401, "The API key is unknown or revoked.", slug="unauthorised", headers=_UNAUTHORISED
        )
    return principal


_SCOPE_CHECKS: dict[Callable[..., object], str] = {}


def require(scope: str) -> Callable[..., object]:
    """A dependency that admits keys holding `scope` (admin holds every scope)."""

    # The caller is looked up here rather than as a dependency of its own: each level of
    # dependencies costs every request its resolution.
    async def check(request: Request) -> Principal:
        principal = await _principal(request)
        if not principal.allows(scope):
            raise Problem(403, f"This API key lacks the '{scope}' scope.", slug="forbidden")
        return principal

    _SCOPE_CHECKS[check] = scope
    return check


def scope_required_by(dependency: Callable[..., object]) -> str | None:
    """The scope a dependency made by `require` admits, so the OpenAPI document can say it."""
    return _SCOPE_CHECKS.get(dependency)


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("events:write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
