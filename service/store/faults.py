"""Which failures are the database's: a fault is answered 503 with Retry-After (the client's
work was not stored and may be sent again), never 500. A passing fault (a lost connection,
a lock or pool timeout) says nothing about the work itself, so retrying parts of it is no use.
"""

from __future__ import annotations

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

DATABASE_FAULTS: tuple[type[Exception], ...] = (
    DBAPIError,
    DisconnectionError,
    PoolTimeout,
    OSError,
)
PASSING_FAULTS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    OSError,
)


def fault_name(exc: BaseException) -> str:
    """What a log line may say of a fault: its kind and SQLSTATE, never its message, which
    can quote the statement's parameters (personal data, secrets)."""
    cause = getattr(exc, "orig", None) or exc
    code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
    return f"{type(exc).__name__} ({type(cause).__name__}{', ' + code if code else ''})"


def connection_lost(exc: BaseException) -> bool:
    """The connection was lost (SQLAlchemy has invalidated it and the pool's older ones), so
    the same work on a new connection may well succeed."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
