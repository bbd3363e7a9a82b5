"""Webhook subscriptions and their deliveries (scope `webhooks:manage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)

from service.api.deps import ClockDep, SessionDep, SettingsDep, require
from service.api.pagination import Cursor, Limit, Page, decode_instant_cursor, encode_cursor
from service.api.problems import Problem
from service.api.text import Text
from service.domain.alertmanager import API_PATH, PUSHED_TYPES
from service.domain.digests import DigestSchedule
from service.store.db import SessionFactory, transaction
from service.store.deliveries import (
    DeliveryLog,
    enqueue_ping,
    get_delivery,
    list_deliveries,
    redeliver,
)
from service.store.orgs import Principal
from service.store.subscriptions import (
    create_subscription,
    delete_subscription,
    disable_subscription,
    filters_of,
    get_subscription,
    list_subscriptions,
    rotate_secret,
    set_digest_schedule,
)
from service.store.tables import Subscription
from service.webhooks.targets import UnsafeTarget, check_target

router = APIRouter(prefix="/v1", tags=["webhooks"])
Manager = Annotated[Principal, Depends(require("webhooks:manage"))]

AlertTypeName = Literal[
    "obligation.due_soon",
    "obligation.overdue",
    "obligation.escalated",
    "obligation.at_risk",
    "obligation.met_late",
    "backfill.completed",
    "import.completed",
]
Reference = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
Url = Annotated[Text, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Description = Annotated[Text, StringConstraints(max_length=1000)]
Level = Annotated[StrictInt, Field(ge=0, le=100)]
Kind = Literal["webhook", "alertmanager"]
FILTER_DOC = "Only alerts matching one of these; omit (or null) for all."
LEVELS_DOC = (
    "Only alerts at these escalation levels (`obligation.escalated` at level n); 0 is every "
    "alert that is not an escalation. Omit (or null) for all."
)
WORKERS_DOC = "Only alerts about cases allocated to these workers; omit (or null) for all."
KIND_DOC = (
    "`webhook` (default): signed JSON POSTs to `url`. `alertmanager`: `url` is a Prometheus "
    "Alertmanager's address; alerts are posted to its `/api/v2/alerts` and resolved there "
    "(docs/alertmanager.md)."
)
DIGEST_DOC = (
    "Makes this a digest subscription: instead of each alert, one signed `digest.daily` or "
    "`digest.weekly` per period (and per team in `team_ids`), in the organisation's timezone, "
    "on its working days."
)


class DigestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: Annotated[Text, StringConstraints(max_length=40)] = Field(
        description='"daily HH:MM" or "weekly mon HH:MM" (local time; a weekly digest whose '
        "day is not a working day goes on the next working day of its week).",
        examples=["daily 08:00", "weekly mon 08:00"],
    )

    @field_validator("schedule")
    @classmethod
    def _is_schedule(cls, value: str) -> str:
        return str(DigestSchedule.parse(value))


class DigestOut(BaseModel):
    schedule: str


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="http(s) URL that receives signed POSTs.")
    description: Description | None = None
    event_types: list[AlertTypeName] | None = Field(
        default=None, min_length=1, description=FILTER_DOC
    )
    team_ids: list[Reference] | None = Field(
        default=None, min_length=1, max_length=1000, description=FILTER_DOC
    )
    rule_ids: list[Reference] | None = Field(
        default=None, min_length=1, max_length=1000, description=FILTER_DOC
    )
    worker_ids: list[Reference] | None = Field(
        default=None, min_length=1, max_length=1000, description=WORKERS_DOC
    )
    escalation_levels: list[Level] | None = Field(
        default=None, min_length=1, max_length=100, description=LEVELS_DOC
    )
    kind: Kind = Field(default="webhook", description=KIND_DOC)
    digest: DigestIn | None = Field(default=None, description=DIGEST_DOC)


class SubscriptionPatch(BaseModel):
    """Fields to change; a filter set to null means "all" again."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    description: Description | None = None
    event_types: list[AlertTypeName] | None = Field(default=None, min_length=1)
    team_ids: list[Reference] | None = Field(default=None, min_length=1, max_length=1000)
    rule_ids: list[Reference] | None = Field(default=None, min_length=1, max_length=1000)
    worker_ids: list[Reference] | None = Field(default=None, min_length=1, max_length=1000)
    escalation_levels: list[Level] | None = Field(default=None, min_length=1, max_length=100)
    digest: DigestIn | None = Field(
        default=None, description="A digest schedule, or null for every alert again."
    )
    enabled: StrictBool | None = Field(
        default=None,
        description="false stops deliveries (pending ones fail, redeliverable); "
        "true re-enables a disabled subscription.",
    )


class SubscriptionOut(BaseModel):
    id: str
    kind: Kind
    url: str
    description: str | None
    event_types: list[str] | None
    team_ids: list[str] | None
    rule_ids: list[str] | None
    worker_ids: list[str] | None
    escalation_levels: list[int] | None
    digest: DigestOut | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Shown once: keep it to verify signatures.")


class SecretOut(BaseModel):
    secret: str = Field(description="The new secret, shown once.")
    previous_secret_expires_at: datetime = Field(
        description="Until then the previous secret signs too, beside the new one."
    )


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str = Field(
        description="succeeded, retrying, failed, superseded, or withdrawn (never sent: "
        "`error` says why)"
    )


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header of every attempt.")
    subscription_id: str
    alert_id: str
    type: str
    obligation_id: str | None
    escalation_level: int
    status: Literal["pending", "succeeded", "failed", "withdrawn"]
    next_attempt_at: datetime | None
    succeeded_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    payload: dict[str, Any]
    attempts: list[AttemptOut]


_STORED_FIELDS = [name for name in SubscriptionOut.model_fields if name != "digest"]


def _out(subscription: Subscription) -> SubscriptionOut:
    schedule = subscription.digest_schedule
    fields = {name: getattr(subscription, name) for name in _STORED_FIELDS}
    digest = DigestOut(schedule=schedule) if schedule is not None else None
    return SubscriptionOut.model_validate({**fields, "digest": digest})


def _refuse(errors: list[dict[str, str]]) -> None:
    if errors:
        raise Problem(
            422, "The subscription is not valid; see errors.", slug="validation", errors=errors
        )


def _check_shape(subscription: Subscription) -> None:
    """What a kind of subscription can do: a digest summarises teams (its only filter is
    `team_ids`) and goes to a webhook; an Alertmanager takes the alerts it can route."""
    errors = []
    if subscription.digest_schedule is not None:
        if subscription.kind != "webhook":
            errors.append(
                {"pointer": "/digest", "detail": "digests are delivered to webhooks only"}
            )
        for name in ("event_types", "rule_ids", "worker_ids", "escalation_levels"):
            if getattr(subscription, name) is not None:
                errors.append(
                    {
                        "pointer": f"/{name}",
                        "detail": "a digest covers its teams whole: filter it by team_ids only",
                    }
                )
    if subscription.kind == "alertmanager":
        refused = sorted(set(subscription.event_types or ()) - PUSHED_TYPES)
        if refused:
            errors.append(
                {
                    "pointer": "/event_types",
                    "detail": f"an Alertmanager is sent states to route, not {', '.join(refused)}",
                }
            )
        if subscription.url.rstrip("/").endswith(API_PATH):
            errors.append(
                {
                    "pointer": "/url",
                    "detail": f"give the Alertmanager's address, without {API_PATH}",
                }
            )
    _refuse(errors)


def _delivery_out(log: DeliveryLog) -> DeliveryOut:
    return DeliveryOut(
        id=log.id,
        subscription_id=log.subscription_id,
        alert_id=log.alert_id,
        type=log.type,
        obligation_id=log.obligation_id,
        escalation_level=log.level,
        status=log.status,
        next_attempt_at=log.next_attempt_at,
        succeeded_at=log.succeeded_at,
        last_status_code=log.last_status_code,
        last_error=log.last_error,
        created_at=log.created_at,
        payload=log.payload,
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in log.attempt_log],
    )


async def _checked_url(url: str, allow_private: bool) -> str:
    """Refuse URLs that resolve to internal addresses; this classifies, it never connects."""
    try:
        await check_target(url, allow_private=allow_private)
    except UnsafeTarget as exc:
        raise Problem(
            422,
            "The webhook URL is not allowed; see errors.",
            slug="validation",
            errors=[{"pointer": "/url", "detail": exc.detail}],
        ) from exc
    return url


async def _found(session: SessionDep, principal: Principal, subscription_id: str) -> Subscription:
    subscription = await get_subscription(session, principal.org_id, subscription_id)
    if subscription is None:
        raise Problem(
            404, f"No webhook {subscription_id!r} in this organisation.", slug="not-found"
        )
    return subscription


def _wake_delivery(request: Request) -> None:
    """Send now rather than at the next tick, when this replica runs the scheduler."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.wake_delivery()


@router.post("/webhooks", status_code=201, response_model=SubscriptionCreated)
async def create_webhook(
    body: SubscriptionIn,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SubscriptionCreated:
    """Subscribe a URL to alerts; the response carries the signing secret, shown once."""
    url = await _checked_url(body.url, settings.webhook_allow_private_networks)
    subscription = await create_subscription(
        session,
        org_id=principal.org_id,
        url=url,
        description=body.description,
        event_types=filters_of(body.event_types),
        team_ids=filters_of(body.team_ids),
        rule_ids=filters_of(body.rule_ids),
        worker_ids=filters_of(body.worker_ids),
        escalation_levels=filters_of(body.escalation_levels),
        kind=body.kind,
        digest_schedule=body.digest.schedule if body.digest is not None else None,
        now=clock(),
    )
    _check_shape(subscription)
    return SubscriptionCreated(**_out(subscription).model_dump(), secret=subscription.secret)


@router.get("/webhooks", response_model=Page[SubscriptionOut])
async def list_webhooks(
    principal: Manager, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Page[SubscriptionOut]:
    """The organisation's subscriptions, oldest first (secrets are never listed)."""
    after = decode_instant_cursor(cursor) if cursor is not None else None
    rows = await list_subscriptions(session, principal.org_id, limit=limit, after=after)
    items = [_out(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(items[-1].created_at.isoformat(), items[-1].id)
    return Page[SubscriptionOut](items=items, next_cursor=next_cursor)


@router.get("/webhooks/{subscription_id}", response_model=SubscriptionOut)
async def get_webhook(
    subscription_id: str, principal: Manager, session: SessionDep
) -> SubscriptionOut:
    return _out(await _found(session, principal, subscription_id))


@router.patch("/webhooks/{subscription_id}", response_model=SubscriptionOut)
async def patch_webhook(
    subscription_id: str,
    body: SubscriptionPatch,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SubscriptionOut:
    """Change the URL, description or filters, or disable and re-enable the subscription."""
    subscription = await _found(session, principal, subscription_id)
    given = body.model_fields_set
    now = clock()
    if "url" in given:
        if body.url is None:
            raise Problem(
                422,
                "The request is not valid; see errors.",
                slug="validation",
                errors=[{"pointer": "/url", "detail": "a subscription needs a URL"}],
            )
        subscription.url = await _checked_url(body.url, settings.webhook_allow_private_networks)
    if "description" in given:
        subscription.description = body.description
    if "event_types" in given:
        subscription.event_types = filters_of(body.event_types)
    if "team_ids" in given:
        subscription.team_ids = filters_of(body.team_ids)
    if "rule_ids" in given:
        subscription.rule_ids = filters_of(body.rule_ids)
    if "worker_ids" in given:
        subscription.worker_ids = filters_of(body.worker_ids)
    if "escalation_levels" in given:
        subscription.escalation_levels = filters_of(body.escalation_levels)
    if "digest" in given:
        schedule = body.digest.schedule if body.digest is not None else None
        set_digest_schedule(subscription, schedule, now)
    _check_shape(subscription)
    if body.enabled is True and not subscription.enabled:
        subscription.enabled = True
        subscription.disabled_reason = None
        subscription.failing_since = None
    elif body.enabled is False and subscription.enabled:
        await disable_subscription(session, subscription, "disabled through the API", now)
    subscription.updated_at = now
    await session.flush()
    return _out(subscription)


@router.delete("/webhooks/{subscription_id}", status_code=204)
async def delete_webhook(subscription_id: str, principal: Manager, session: SessionDep) -> Response:
    """Delete the subscription, its deliveries and their attempts."""
    await delete_subscription(session, await _found(session, principal, subscription_id))
    return Response(status_code=204)


@router.post(
    "/webhooks/{subscription_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses={409: {"description": "The webhook is disabled"}},
)
async def test_webhook(
    subscription_id: str, principal: Manager, clock: ClockDep, request: Request
) -> DeliveryOut:
    """Queue a signed `webhook.test` alert to this subscription; follow it in its deliveries."""
    factory: SessionFactory = request.app.state.session_factory
    async with transaction(factory) as session:
        subscription = await _found(session, principal, subscription_id)
        if not subscription.enabled:
            raise Problem(409, "The webhook is disabled; enable it first.", slug="disabled")
        delivery_id = await enqueue_ping(session, subscription, clock())
        log = await get_delivery(session, principal.org_id, delivery_id)
    _wake_delivery(request)
    assert log is not None  # noqa: S101 - inserted in this very transaction
    return _delivery_out(log)


@router.post("/webhooks/{subscription_id}/rotate-secret", response_model=SecretOut)
async def rotate_webhook_secret(
    subscription_id: str, principal: Manager, session: SessionDep, clock: ClockDep
) -> SecretOut:
    """A new secret; the previous one keeps signing beside it for 24 hours."""
    subscription = await _found(session, principal, subscription_id)
    await rotate_secret(session, subscription, clock())
    assert subscription.previous_secret_expires_at is not None  # noqa: S101 - just set
    return SecretOut(
        secret=subscription.secret,
        previous_secret_expires_at=subscription.previous_secret_expires_at,
    )


@router.get("/webhooks/{subscription_id}/deliveries", response_model=Page[DeliveryOut])
async def list_webhook_deliveries(
    subscription_id: str,
    principal: Manager,
    session: SessionDep,
    status: Literal["pending", "succeeded", "failed", "withdrawn"] | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """The deliveries log, newest first, each delivery with every attempt."""
    await _found(session, principal, subscription_id)
    before = decode_instant_cursor(cursor) if cursor is not None else None
    logs = await list_deliveries(
        session, principal.org_id, subscription_id, status=status, limit=limit, before=before
    )
    items = [_delivery_out(log) for log in logs[:limit]]
    next_cursor = None
    if len(logs) > limit:
        next_cursor = encode_cursor(items[-1].created_at.isoformat(), items[-1].id)
    return Page[DeliveryOut](items=items, next_cursor=next_cursor)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
async def get_webhook_delivery(
    delivery_id: str, principal: Manager, session: SessionDep
) -> DeliveryOut:
    log = await get_delivery(session, principal.org_id, delivery_id)
    if log is None:
        raise Problem(404, f"No delivery {delivery_id!r} in this organisation.", slug="not-found")
    return _delivery_out(log)


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    responses={
        409: {"description": "The webhook is disabled, or the delivery is pending or withdrawn"}
    },
)
async def redeliver_webhook(
    delivery_id: str, principal: Manager, clock: ClockDep, request: Request
) -> DeliveryOut:
    """Send a delivery again with the same `webhook-id` and a fresh retry schedule."""
    factory: SessionFactory = request.app.state.session_factory
    async with transaction(factory) as session:
        found = await get_delivery(session, principal.org_id, delivery_id)
        if found is None:
            raise Problem(
                404, f"No delivery {delivery_id!r} in this organisation.", slug="not-found"
            )
        subscription = await get_subscription(session, principal.org_id, found.subscription_id)
        if subscription is None or not subscription.enabled:
            raise Problem(409, "The webhook is disabled; enable it first.", slug="disabled")
        if not await redeliver(session, principal.org_id, delivery_id, clock()):
            if found.status == "withdrawn":
                raise Problem(
                    409,
                    "The delivery was withdrawn: the event log no longer supports its alert.",
                    slug="withdrawn",
                )
            raise Problem(409, "The delivery is pending already.", slug="pending")
        log = await get_delivery(session, principal.org_id, delivery_id)
    _wake_delivery(request)
    assert log is not None  # noqa: S101 - read in this very transaction
    return _delivery_out(log)
