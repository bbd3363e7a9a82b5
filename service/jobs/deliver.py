"""Webhook delivery: fan new alerts out to subscriptions, send what is due, record every attempt.

A run keeps `concurrency` workers sending from a queue of claimed deliveries, which it tops
up as they drain it (never more than HELD_ROUNDS attempts per worker, which bounds how long a
claim waits and so its lease). New alerts are fanned out to subscriptions beside it, and
results are written in batches by one recorder. Everything that must survive the process is
in the database: a replica killed mid-POST leaves leased deliveries that fall due again when
the lease ends, and another replica sends them with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport

from service.metrics import ALERT_TO_DELIVERY, DELIVERIES, DELIVERY_LATENCY
from service.settings import Settings, parse_interval
from service.store.db import SessionFactory, transaction
from service.store.deliveries import fail_pending
from service.store.outbox import (
    Claim,
    Decided,
    PushSettings,
    Recorded,
    claim_due,
    fan_out,
    record_attempts,
    release_claims,
)
from service.store.subscriptions import update_health
from service.webhooks.signing import headers
from service.webhooks.targets import is_public_address

log = logging.getLogger("caseclock.jobs.deliver")
Clock = Callable[[], datetime]

CONCURRENCY = 64
HELD_ROUNDS = 4  # claims a run holds, in attempts per worker: keeps the workers fed
RUN_BUDGET_SECONDS = 60.0
FAN_OUT_BATCH = 500
MAX_FAN_OUTS = 100_000  # a bound on a run's fan-out loop; the run's budget ends it first
FLUSH_SIZE = 256
FLUSH_EVERY_SECONDS = 0.05
IDLE_PAUSE_SECONDS = 0.1
RESPONSE_READ_LIMIT = 64 * 1024
ERROR_EXCERPT = 200
USER_AGENT = "caseclock-webhooks/0.1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again after a failed attempt: the schedule with jitter, or later if the
    receiver asked for it with Retry-After (capped, so a receiver cannot park a delivery)."""

    schedule: tuple[timedelta, ...]
    jitter: float = 0.2
    max_retry_after: timedelta = timedelta(hours=24)

    def next_attempt_at(
        self,
        round_attempt: int,
        now: datetime,
        retry_after: timedelta | None,
        rng: random.Random,
    ) -> datetime | None:
        """After attempt `round_attempt` (from 1) failed: when to retry, or None to give up."""
        if round_attempt > len(self.schedule):
            return None
        delay = self.schedule[round_attempt - 1] * rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return now + delay


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """What a delivery run takes from the settings."""

    policy: RetryPolicy
    disable_after: timedelta
    timeout_seconds: float
    allow_private: bool
    settle: timedelta = timedelta(0)  # the first attempt's wait for alerts raised by events
    concurrency: int = CONCURRENCY
    push: PushSettings = field(default_factory=PushSettings)

    @property
    def lease(self) -> timedelta:
        """How long a claim holds a delivery: a run holds at most HELD_ROUNDS attempts per
        worker, so a claim is sent and answered within that many timeouts; 5 s more to
        record the result."""
        return timedelta(seconds=HELD_ROUNDS * self.timeout_seconds + 5)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        schedule = tuple(parse_interval(p) for p in settings.webhook_retry_schedule.split(","))
        return cls(
            policy=RetryPolicy(schedule),
            disable_after=parse_interval(settings.webhook_disable_after),
            timeout_seconds=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private_networks,
            settle=timedelta(seconds=settings.alert_settle_seconds),
            push=PushSettings(
                repost_every=timedelta(seconds=settings.alertmanager_repost_seconds),
                public_url=settings.public_url,
            ),
        )


class PublicOnlyResolver(AbstractResolver):
    """Resolves names and keeps only public addresses, so a name that resolves to an internal
    address when the alert is sent (DNS rebinding, a changed record) is never connected to."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [result for result in found if is_public_address(result["host"])]
        if not public:
            raise OSError(
                errno.EACCES,
                f"{host} resolves to no public address; private, loopback, link-local and "
                "metadata addresses are refused",
            )
        return public

    async def close(self) -> None:
        await self._inner.close()


@lru_cache(maxsize=4096)
def _target(url: str, allow_private: bool) -> httpx.URL | str:
    """The parsed URL (parsed once per subscription URL), or why it may not be sent to.

    IP literals are checked here, since no resolver sees them; names by the resolver.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"invalid URL: {exc}"
    if allow_private:
        return parsed
    try:
        address = ipaddress.ip_address(parsed.host)
    except ValueError:
        return parsed
    if is_public_address(address):
        return parsed
    return f"refused: {parsed.host} is not a public address"


MAX_DELAY_SECONDS_DIGITS = 9  # more digits than this is over 31 years: read as "very long"


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header as a delay, or None where it is not one (RFC 9110 section 10.2.3:
    delay-seconds, ASCII digits only, or an HTTP date). Total by design: whatever a receiver
    sends, this returns, so a hostile header can never stop an attempt being recorded. Very
    long delays are kept long here and capped by the retry policy."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        if len(value) > MAX_DELAY_SECONDS_DIGITS:
            return timedelta(seconds=10**MAX_DELAY_SECONDS_DIGITS)
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(when - now, timedelta(0))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class Sent:
    """What one POST came to."""

    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoCookies(httpx.Cookies):
    """Receivers' cookies are neither kept nor sent back: every delivery stands alone.

    (Parsing them was also a tenth of the cost of a delivery.)
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _WebhookClient(httpx.AsyncClient):
    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, _cookies: object) -> None:
        return None


class WebhookSender:
    """The one HTTP client every delivery of this process shares.

    httpx's API over aiohttp's transport (several times the throughput of httpx's own pool),
    no redirects followed, no cookies kept, no proxies from the environment, connect and read
    timeouts, and the whole attempt bounded by `timeout_seconds`. Requests are built once,
    complete, and sent as they are: merging client defaults into each cost more than sending.
    """

    def __init__(self, *, timeout_seconds: float, allow_private: bool, concurrency: int) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private

        def session() -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(
                limit=concurrency,
                keepalive_timeout=30,
                resolver=None if allow_private else PublicOnlyResolver(),
            )
            return aiohttp.ClientSession(connector=connector, trust_env=False)

        self.client = _WebhookClient(
            transport=AiohttpTransport(client=session),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
        )

    async def send(self, url: str, msg_id: str, secrets: tuple[str, ...], body: bytes) -> Sent:
        """POST one signed attempt. The signature timestamp is wall-clock time by nature:
        receivers compare it with their own clocks."""
        started = time.perf_counter()
        target = _target(url, self.allow_private)
        if isinstance(target, str):
            return Sent(None, 0, target)
        signed = headers(secrets, msg_id, int(time.time()), body)
        signed["user-agent"] = USER_AGENT
        request = httpx.Request("POST", target, content=body, headers=signed)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self.client.send(request, stream=True)
                try:
                    excerpt = await _read_some(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return Sent(None, _ms(started), f"timed out after {self.timeout_seconds:g}s")
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            # httpx-aiohttp maps aiohttp's errors loosely (a refused connection becomes a
            # "ConnectTimeout"): report the original.
            cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            return Sent(None, _ms(started), f"{type(cause).__name__}: {cause}"[:ERROR_EXCERPT])
        except Exception as exc:  # a receiver must not be able to stop a worker
            log.exception("unexpected error delivering %s", msg_id)
            return Sent(None, _ms(started), f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT])
        latency = _ms(started)
        DELIVERY_LATENCY.observe(latency / 1000)
        code = response.status_code
        if 200 <= code < 300:
            return Sent(code, latency, None)
        text = excerpt.decode("utf-8", errors="replace").strip()
        error = f"receiver answered {code}" + (f": {text}" if text else "")
        retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return Sent(code, latency, error[:ERROR_EXCERPT], retry_after)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _read_some(response: httpx.Response) -> bytes:
    """Read the response body up to a limit: enough to log, never a memory hazard."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_READ_LIMIT:
            break
    return b"".join(chunks)[:RESPONSE_READ_LIMIT]


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def decide(
    claim: Claim, sent: Sent, attempted_at: datetime, policy: RetryPolicy, rng: random.Random
) -> Decided:
    """What an attempt means for its delivery: done, retry when, or give up (and why).

    A firing Alertmanager alert is never given up while it fires: it is posted again
    `repost_after` a success, and retried no later than that after a failure.
    """
    disable_reason = None
    next_at = None
    outcome: Literal["succeeded", "retrying", "failed"] = "failed"
    repost_at = attempted_at + claim.repost_after if claim.repost_after is not None else None
    if sent.succeeded:
        outcome = "succeeded"
        next_at = repost_at
    elif sent.status_code == 410:
        disable_reason = "the receiver answered 410 Gone"
    else:
        next_at = policy.next_attempt_at(claim.round_attempt, attempted_at, sent.retry_after, rng)
        if repost_at is not None:
            next_at = min(next_at or repost_at, repost_at)
        if next_at is not None:
            outcome = "retrying"
    return Decided(
        claim=claim,
        attempted_at=attempted_at,
        status_code=sent.status_code,
        latency_ms=sent.latency_ms,
        error=sent.error,
        outcome=outcome,
        next_attempt_at=next_at,
        disable_reason=disable_reason,
    )


@dataclass(slots=True)
class DeliveryRun:
    """What one run did, for logs and tests."""

    fanned_out: int = 0
    attempts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    disabled: dict[str, str] = field(default_factory=dict)


class _Recorder:
    """Writes attempt results in batches, one transaction at a time, off the sending path."""

    def __init__(
        self, factory: SessionFactory, config: DeliveryConfig, clock: Clock, run: DeliveryRun
    ) -> None:
        self.factory = factory
        self.config = config
        self.clock = clock
        self.run = run
        self.waiting: list[Decided] = []
        self.wakeup = asyncio.Event()
        self.closing = False
        self.task = asyncio.create_task(self._loop())

    def add(self, decided: Decided) -> None:
        self.waiting.append(decided)
        if len(self.waiting) >= FLUSH_SIZE:
            self.wakeup.set()

    async def close(self) -> None:
        self.closing = True
        self.wakeup.set()
        await self.task

    async def _loop(self) -> None:
        while not (self.closing and not self.waiting):
            if not self.closing:
                try:
                    async with asyncio.timeout(FLUSH_EVERY_SECONDS):
                        await self.wakeup.wait()
                except TimeoutError:
                    pass
            self.wakeup.clear()
            batch, self.waiting = self.waiting, []
            if batch:
                await self._flush(batch)

    async def _flush(self, batch: list[Decided]) -> None:
        """Record a batch; if that fails, its deliveries stay leased and are sent again later
        (at least once), so the error is logged and the run goes on."""
        try:
            async with transaction(self.factory) as session:
                recorded = await record_attempts(session, batch)
        except Exception:
            log.exception("could not record %d delivery attempts; they will be retried", len(batch))
            return
        try:
            disabled = await self._health(recorded)
        except Exception:  # the next failure or success will try again
            log.exception("could not update the health of webhook subscriptions")
            disabled = {}
        now = self.clock()
        for item, outcome in recorded.outcomes:
            DELIVERIES.labels(outcome).inc()
            self.run.outcomes[outcome] = self.run.outcomes.get(outcome, 0) + 1
            if outcome == "succeeded" and not item.claim.posted_before:
                ALERT_TO_DELIVERY.observe(
                    max(0.0, (now - item.claim.alert_created_at).total_seconds())
                )
        self.run.disabled.update(disabled)

    async def _health(self, recorded: Recorded) -> dict[str, str]:
        if not (
            recorded.succeeded_subscriptions
            or recorded.failing_subscriptions
            or recorded.gone_subscriptions
        ):
            return {}
        now = self.clock()
        async with transaction(self.factory) as session:
            disabled = await update_health(
                session, recorded, now=now, disable_after=self.config.disable_after
            )
        for sub_id, reason in disabled.items():
            log.warning("disabled webhook subscription %s: %s", sub_id, reason)
            async with transaction(self.factory) as session:
                await fail_pending(session, [sub_id], f"subscription disabled: {reason}", now)
        return disabled


async def _release_unsent(
    factory: SessionFactory, queue: asyncio.Queue[Claim | None], now: datetime
) -> None:
    """At shutdown, hand back the claims not sent yet, so another replica need not wait for
    their leases to end."""
    unsent = []
    while not queue.empty():
        claim = queue.get_nowait()
        if claim is not None:
            unsent.append(claim)
    if unsent:
        async with transaction(factory) as session:
            await release_claims(session, unsent, now)


async def deliver_due(
    factory: SessionFactory,
    sender: WebhookSender,
    *,
    config: DeliveryConfig,
    clock: Clock,
    budget_seconds: float = RUN_BUDGET_SECONDS,
    rng: random.Random | None = None,
    stop: asyncio.Event | None = None,
) -> DeliveryRun:
    """Deliver until nothing is due, the budget is spent or `stop` is set; then let the
    attempts under way finish and record every result.

    `concurrency` workers send; this coroutine keeps them fed, claiming the next deliveries
    while the current ones are in flight (at most HELD_ROUNDS x `concurrency` held at once,
    which bounds how long a claim can wait to be sent, and so its lease).
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    run = DeliveryRun()
    recorder = _Recorder(factory, config, clock, run)
    queue: asyncio.Queue[Claim | None] = asyncio.Queue()
    held = 0  # claimed and not yet sent and decided
    hungry = asyncio.Event()  # set when the workers could take more
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    limit = HELD_ROUNDS * config.concurrency
    refill_at = limit // 2

    async def attempt(claim: Claim) -> Decided:
        """Send one claim and decide what it came to. Never raises: whatever goes wrong, the
        attempt is recorded and retried on the schedule, so no delivery is re-sent at every
        lease expiry without an attempt or a backoff."""
        attempted_at = clock()
        try:
            if claim.enabled:
                sent = await sender.send(claim.url, claim.delivery_id, claim.secrets, claim.body)
            else:
                sent = Sent(None, 0, "subscription disabled")
            return decide(claim, sent, attempted_at, config.policy, rng)
        except Exception as exc:
            log.error(
                "delivery %s failed inside caseclock: %s", claim.delivery_id, type(exc).__name__
            )
            failed = Sent(None, 0, f"internal error: {type(exc).__name__}")
            return decide(claim, failed, attempted_at, config.policy, rng)

    async def worker() -> None:
        nonlocal held
        while (claim := await queue.get()) is not None:
            recorder.add(await attempt(claim))
            held -= 1
            if held <= refill_at:
                hungry.set()

    fanned_all = False  # the latest fan-out found no new alert
    claiming = True

    async def fan_out_while_running() -> None:
        """New alerts become deliveries beside the claiming, batch after batch."""
        nonlocal fanned_all
        for _ in range(MAX_FAN_OUTS):
            if not claiming:
                return
            async with transaction(factory) as session:
                fanned = await fan_out(session, clock(), FAN_OUT_BATCH, config.settle)
            run.fanned_out += fanned.alerts
            fanned_all = fanned.alerts == 0
            if fanned.deliveries:
                hungry.set()
            if fanned.alerts < FAN_OUT_BATCH:
                await asyncio.sleep(IDLE_PAUSE_SECONDS)

    fanning = asyncio.create_task(fan_out_while_running())
    workers = [asyncio.create_task(worker()) for _ in range(config.concurrency)]
    try:
        while loop.time() < deadline and not (stop is not None and stop.is_set()):
            now = clock()
            wanted = limit - held
            async with transaction(factory) as session:
                claims = await claim_due(session, now, wanted, now + config.lease, config.push)
            for claim in claims:
                queue.put_nowait(claim)
            held += len(claims)
            run.attempts += len(claims)
            if not held and fanned_all:
                break  # nothing due, nothing in hand, no new alert
            hungry.clear()
            if held > refill_at:
                await hungry.wait()  # claim more when the workers can take them
            else:  # nothing more is due now: look again shortly, or when alerts fan out
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_PAUSE_SECONDS):
                        await hungry.wait()
    finally:
        claiming = False
        if stop is not None and stop.is_set():
            await _release_unsent(factory, queue, clock())
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.wait([*workers, fanning])  # attempts are bounded by the sender's timeout
        await recorder.close()
    if run.attempts:
        log.info(
            "delivery run: %d alerts fanned out, %d attempts, outcomes %s",
            run.fanned_out,
            run.attempts,
            run.outcomes,
        )
    return run
