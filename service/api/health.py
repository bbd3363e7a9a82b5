"""Liveness and readiness, for orchestrators and load balancers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from service.readiness import Readiness
from service.store.db import ping
from service.store.migrations import schema_is_current

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up; says nothing of its dependencies."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready: `checks` says what failed"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: database reachable, schema at the code's head, and every part the
    process runs beside the API (the scheduler, where this replica runs it) alive."""
    engine: AsyncEngine = request.app.state.engine
    readiness: Readiness = request.app.state.readiness
    checks: dict[str, Any] = {}
    try:
        await ping(engine)
        checks["database"] = "ok"
        checks["schema"] = "ok" if await schema_is_current(engine) else "behind"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks.update(readiness.checks())
    ready = all(v == "ok" for v in checks.values())
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    # A problem (RFC 9457): its `status` is the HTTP status code, the checks say what failed.
    return JSONResponse(
        {
            "type": "/problems/not-ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "Not ready; see checks.",
            "checks": checks,
        },
        status_code=503,
        media_type="application/problem+json",
    )
