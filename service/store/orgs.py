"""Organisations, their API keys and their active ruleset."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.domain.rules import BUILTIN_RULESETS, Ruleset, builtin_ruleset, load_ruleset
from service.store.tables import ApiKey, Org, orgs

SCOPES = ("events:write", "read", "webhooks:manage", "admin")
KEY_PREFIX = "cc_"


def hash_key(plaintext: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is a safe, fast lookup hash."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the org every query is confined to, and what the key may do."""

    org_id: str
    key_id: str
    scopes: frozenset[str]
    ruleset_id: str
    ruleset_text: str | None
    ruleset_format: str

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


@lru_cache(maxsize=256)
def _parse(ruleset_id: str, text: str | None, fmt: str) -> Ruleset:
    if text is None:
        return builtin_ruleset(ruleset_id)
    return load_ruleset(text, format="json" if fmt == "json" else "toml", default_id=ruleset_id)


def ruleset_of(org: Org | Principal) -> Ruleset:
    """The org's active ruleset, parsed once per distinct text."""
    return _parse(org.ruleset_id, org.ruleset_text, org.ruleset_format)


_LOCK_RULESET = (
    select(orgs.c.ruleset_id, orgs.c.ruleset_text, orgs.c.ruleset_format)
    .where(orgs.c.id == bindparam("org_id"))
    .with_for_update(read=True)
)


async def lock_ruleset(session: AsyncSession, org_id: str) -> Ruleset:
    """The org's active ruleset, read under a share lock on the org row.

    Every write that derives obligations reads its ruleset this way, inside its own
    transaction, and `PUT /v1/rules` updates that row first: so a rules change waits for
    writes in flight, and writes after it derive with the new rules, on every replica.
    """
    row = (await session.execute(_LOCK_RULESET, {"org_id": org_id})).one()
    return _parse(row.ruleset_id, row.ruleset_text, row.ruleset_format)


async def rulesets_of(session: AsyncSession, org_ids: Iterable[str]) -> Mapping[str, Ruleset]:
    """The active ruleset of each organisation."""
    found = (
        await session.execute(select(Org).where(orgs.c.id.in_(sorted(set(org_ids)))))
    ).scalars()
    return {org.id: ruleset_of(org) for org in found}


async def count_orgs(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Org))).scalar_one())


async def org_by_id(session: AsyncSession, org_id: str) -> Org | None:
    return await session.get(Org, org_id)


async def org_by_name(session: AsyncSession, name: str) -> Org | None:
    return (await session.execute(select(Org).where(col(Org.name) == name))).scalar_one_or_none()


async def list_orgs(session: AsyncSession) -> list[Org]:
    return list((await session.execute(select(Org).order_by(Org.name))).scalars())


async def create_org(session: AsyncSession, *, name: str, ruleset_id: str, now: datetime) -> Org:
    if ruleset_id not in BUILTIN_RULESETS:
        raise ValueError(f"unknown ruleset {ruleset_id!r}; built-ins are {BUILTIN_RULESETS}")
    org = Org(id=uuid.uuid4().hex, name=name, ruleset_id=ruleset_id, created_at=now)
    session.add(org)
    await session.flush()
    return org


async def create_api_key(
    session: AsyncSession,
    *,
    org_id: str,
    scopes: frozenset[str],
    name: str,
    now: datetime,
    plaintext: str | None = None,
) -> tuple[ApiKey, str]:
    """Store a key's hash and return the plaintext, which is never stored or shown again."""
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}")
    plaintext = plaintext or new_key()
    key = ApiKey(
        id=uuid.uuid4().hex,
        org_id=org_id,
        name=name,
        key_hash=hash_key(plaintext),
        prefix=plaintext[:10],
        scopes=" ".join(sorted(scopes)),
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return key, plaintext


async def api_keys(session: AsyncSession, org_id: str) -> list[ApiKey]:
    """The organisation's keys, oldest first, revoked ones included."""
    return list(
        (
            await session.execute(
                select(ApiKey)
                .where(col(ApiKey.org_id) == org_id)
                .order_by(col(ApiKey.created_at), col(ApiKey.id))
            )
        ).scalars()
    )


# How long a running server may still accept a key after it is revoked: its request
# validation keeps the keys it has seen this long (api/deps.py, KeyCache).
KEY_CACHE_SECONDS = 5.0


async def revoke_api_key(
    session: AsyncSession, org_id: str, prefix: str, now: datetime
) -> list[ApiKey]:
    """Revoke the organisation's live key whose shown prefix is `prefix`.

    Returns the live keys that matched: revoked when exactly one did, untouched otherwise.
    """
    live = (
        await session.execute(
            select(ApiKey).where(
                col(ApiKey.org_id) == org_id,
                col(ApiKey.prefix) == prefix,
                col(ApiKey.revoked_at).is_(None),
            )
        )
    ).scalars()
    matched = list(live)
    if len(matched) == 1:
        matched[0].revoked_at = now
        await session.flush()
    return matched


async def live_key_scopes(session: AsyncSession, org_id: str, key_id: str) -> frozenset[str] | None:
    """What the organisation's key may do, or None once it is revoked: a dashboard session
    opened with a key lasts as long as the key, and may do what the key may."""
    scopes = (
        await session.execute(
            select(col(ApiKey.scopes)).where(
                col(ApiKey.id) == key_id,
                col(ApiKey.org_id) == org_id,
                col(ApiKey.revoked_at).is_(None),
            )
        )
    ).scalar_one_or_none()
    return None if scopes is None else frozenset(scopes.split())


async def authenticate(session: AsyncSession, plaintext: str) -> Principal | None:
    row = (
        await session.execute(
            select(
                col(ApiKey.id),
                col(ApiKey.org_id),
                col(ApiKey.scopes),
                col(Org.ruleset_id),
                col(Org.ruleset_text),
                col(Org.ruleset_format),
            )
            .join(Org, col(Org.id) == col(ApiKey.org_id))
            .where(col(ApiKey.key_hash) == hash_key(plaintext), col(ApiKey.revoked_at).is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    return Principal(
        org_id=row.org_id,
        key_id=row.id,
        scopes=frozenset(row.scopes.split()),
        ruleset_id=row.ruleset_id,
        ruleset_text=row.ruleset_text,
        ruleset_format=row.ruleset_format,
    )


async def set_ruleset(
    session: AsyncSession,
    *,
    org_id: str,
    ruleset_id: str,
    text: str | None,
    fmt: Literal["toml", "json"],
) -> Ruleset:
    """Make a ruleset the org's active one; the ruleset it replaces."""
    org = await session.get(Org, org_id, with_for_update=True)
    if org is None:
        raise LookupError(org_id)
    previous = ruleset_of(org)
    org.ruleset_id, org.ruleset_text, org.ruleset_format = ruleset_id, text, fmt
    await session.flush()
    return previous
