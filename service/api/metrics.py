"""GET /metrics: this process's counters in the Prometheus text format.

Unauthenticated, like /healthz: it carries no tenant data, only totals of this process.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from service.metrics import OUTBOX_BACKLOG, REGISTRY
from service.store.db import SessionFactory
from service.store.outbox import backlog

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics; the outbox backlog is read from the database at each scrape."""
    factory: SessionFactory = request.app.state.session_factory
    async with factory() as session:
        for kind, count in (await backlog(session)).items():
            OUTBOX_BACKLOG.labels(kind).set(count)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), media_type=content_type)
