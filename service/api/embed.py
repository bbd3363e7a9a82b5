"""Embed tokens: signed, expiring, read-only grants to show widgets without an API key.

A token is `cce1.<payload>.<signature>`: base64url JSON naming the org, the team it is
limited to (or none) and its expiry, signed with HMAC-SHA256. Nothing is stored, so a token
cannot be revoked one by one; it expires, or every token ends when the secret changes.
The dashboard's session cookie is signed the same way, under a different purpose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Admin, ClockDep
from service.api.text import Text
from service.settings import Settings

router = APIRouter(prefix="/v1/embed-tokens", tags=["dashboard"])
log = logging.getLogger("caseclock.embed")

EMBED_PREFIX = "cce1"
WIDGETS = ("summary", "overdue", "workers", "timeliness")
MAX_TTL_SECONDS = 366 * 86400


def signing_secret(app: FastAPI) -> bytes:
    """CASECLOCK_EMBED_SECRET, or a random secret that lives as long as this process.

    Without the setting, tokens and dashboard sessions end at a restart and are not
    accepted by other worker processes or replicas, so production sets it.
    """
    settings: Settings = app.state.settings
    if settings.embed_secret is not None:
        return settings.embed_secret.get_secret_value().encode()
    secret: bytes | None = getattr(app.state, "embed_secret", None)
    if secret is None:
        secret = app.state.embed_secret = secrets.token_bytes(32)
        log.warning(
            "CASECLOCK_EMBED_SECRET is not set: embed tokens and dashboard sessions use a "
            "random secret that ends with this process and is not shared with other workers"
        )
    return secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, message: str) -> str:
    # One key per purpose, so a session cookie can never pass as an embed token or back.
    key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    return _b64(hmac.new(key, message.encode(), hashlib.sha256).digest())


def sign(secret: bytes, prefix: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    message = f"{prefix}.{body}"
    return f"{message}.{_mac(secret, prefix, message)}"


def unsign(secret: bytes, prefix: str, token: str, now: datetime) -> dict[str, Any] | None:
    """The payload of an untampered, unexpired token; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        return None
    message = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _mac(secret, prefix, message)):
        return None
    try:
        payload = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    expires = payload.get("exp")
    if not isinstance(expires, int) or expires <= now.timestamp():
        return None
    return {str(k): v for k, v in payload.items()}


def keyed_digest(secret: bytes, purpose: str, message: str) -> str:
    """A short MAC of `message`, e.g. the CSRF token bound to a session."""
    return _mac(secret, purpose, message)


@dataclass(frozen=True, slots=True)
class EmbedGrant:
    org_id: str
    team_id: str | None
    expires_at: datetime


def issue_embed_token(
    secret: bytes, *, org_id: str, team_id: str | None, expires_at: datetime
) -> str:
    payload = {"org": org_id, "team": team_id, "exp": int(expires_at.timestamp())}
    return sign(secret, EMBED_PREFIX, payload)


def read_embed_token(secret: bytes, token: str, now: datetime) -> EmbedGrant | None:
    payload = unsign(secret, EMBED_PREFIX, token, now)
    if payload is None or not isinstance(payload.get("org"), str):
        return None
    team = payload.get("team")
    if team is not None and not isinstance(team, str):
        return None
    return EmbedGrant(payload["org"], team, datetime.fromtimestamp(payload["exp"], UTC))


class EmbedTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: Text | None = Field(
        default=None, min_length=1, max_length=200, description="Limit the widgets to one team."
    )
    ttl_seconds: int = Field(ge=60, le=MAX_TTL_SECONDS, description="How long the token works.")


class EmbedTokenOut(BaseModel):
    token: str
    expires_at: datetime
    team_id: str | None
    widgets: dict[str, str]


@router.post("", status_code=201, response_model=EmbedTokenOut)
async def create_embed_token(
    body: EmbedTokenIn, principal: Admin, clock: ClockDep, request: Request
) -> EmbedTokenOut:
    """A read-only token for the widgets at `/widgets/{summary|overdue|workers|timeliness}`.

    Anyone holding it sees those widgets (for its team, if given) until it expires.
    """
    # Whole seconds, so expires_at says exactly what the token holds.
    now = clock().replace(microsecond=0)
    expires_at = now + timedelta(seconds=body.ttl_seconds)
    token = issue_embed_token(
        signing_secret(request.app),
        org_id=principal.org_id,
        team_id=body.team_id,
        expires_at=expires_at,
    )
    return EmbedTokenOut(
        token=token,
        expires_at=expires_at,
        team_id=body.team_id,
        widgets={name: f"/widgets/{name}?token={token}" for name in WIDGETS},
    )
