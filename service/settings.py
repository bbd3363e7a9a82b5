"""One Settings object, read from CASECLOCK_* environment variables."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"
# An admin key chosen by hand must be hard to guess, and far longer than the 10 characters
# `api-key list` shows of every key.
BOOTSTRAP_KEY_MIN = 32
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# An origin for CSP frame-ancestors; anything else could smuggle in another directive.
_ORIGIN = re.compile(r"https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def embed_origins(text: str) -> list[str]:
    """The comma-separated origins allowed to frame widgets."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_interval(text: str) -> timedelta:
    """Parse '5s', '30m', '2h' or '5d'."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        raise ValueError(f"{text!r} is not an interval such as 5s, 30m, 2h or 5d")
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASECLOCK_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./caseclock.db"
    bootstrap_admin_key: SecretStr | None = None
    default_ruleset: Literal["england-children", "england-adults"] = "england-children"
    sweep_interval_seconds: float = Field(default=30, gt=0)
    delivery_interval_seconds: float = Field(default=2, gt=0)
    webhook_retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_disable_after: str = "5d"
    webhook_allow_private_networks: bool = False
    # How long an alert raised by an event write waits before its first attempt, so that the
    # rest of a history posted in quick requests can withdraw it (docs/webhooks.md).
    alert_settle_seconds: float = Field(default=5, ge=0)
    # How often a firing alert is posted again to an Alertmanager: well inside its
    # resolve_timeout (5 minutes by default), which resolves alerts no longer posted.
    alertmanager_repost_seconds: float = Field(default=60, gt=0)
    # Where people reach this service (https://caseclock.example.org): links in digests and
    # Alertmanager annotations start with it; unset, they are paths.
    public_url: str = ""
    # Finished deliveries, their attempts and alert payloads older than this are pruned
    # (docs/operations.md, Retention); an open obligation's history is always kept.
    retention_days: int = Field(default=400, ge=1)
    run_scheduler: bool = True
    log_format: Literal["json", "console"] = "json"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    embed_secret: SecretStr | None = Field(default=None, min_length=32)
    embed_allowed_origins: str = ""

    @field_validator("bootstrap_admin_key", mode="before")
    @classmethod
    def _bootstrap_key_is_long(cls, value: object) -> object:
        if value == "":
            return None  # set but empty, as compose files do: no bootstrap, as when unset
        if isinstance(value, str) and len(value) < BOOTSTRAP_KEY_MIN:
            raise ValueError(
                f"too short: an admin key needs at least {BOOTSTRAP_KEY_MIN} characters "
                "(a long random string)"
            )
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_is_intervals(cls, value: str) -> str:
        for part in value.split(","):
            parse_interval(part)
        return value

    @field_validator("webhook_disable_after")
    @classmethod
    def _disable_after_is_interval(cls, value: str) -> str:
        parse_interval(value)
        return value

    @field_validator("embed_allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for origin in embed_origins(value):
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://intranet.example")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s?#]+", value):
            raise ValueError(f"{value!r} is not an address such as https://caseclock.example.org")
        return value.rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    return Settings()
