"""Delivery: claiming due push deliveries, pushing them, and deciding what comes next.

Workers of every server process share the work through PostgreSQL: a claim takes due
deliveries ``FOR UPDATE SKIP LOCKED`` and leases them; the push happens outside any
transaction; the outcome is recorded only if this worker still holds the lease. A
worker killed mid-push loses nothing: its lease runs out and another claims it again
(the recipient sees the same delivery id, a documented retry). A NOTIFY at commit
wakes the workers; a periodic sweep is the safety net.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from adapters.http_push import HttpPush, PushResult
from exchange.logs import get_logger
from exchange.outgoing import PackageStream, load_package
from exchange.settings import DeliverySettings
from exchange.store import audit
from exchange.store import deliveries as delivery_store
from exchange.store.audit import Event
from exchange.store.db import Pool
from exchange.store.deliveries import Claimed, Outcome
from exchange.store.messages import MessageRow

log = get_logger(__name__)


@dataclass(frozen=True)
class Retry:
    at: datetime


@dataclass(frozen=True)
class GiveUp:
    state: str  # "failed" (too many attempts) or "expired" (too old)
    reason: str


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed delivery again, or that it is time to give up. Pure."""

    max_attempts: int
    max_age: timedelta
    base_delay_s: float
    max_delay_s: float

    @classmethod
    def for_agency(
        cls, settings: DeliverySettings, max_attempts: int | None, max_age_s: int | None
    ) -> RetryPolicy:
        return cls(
            max_attempts or settings.max_attempts,
            timedelta(seconds=max_age_s or settings.max_age_s),
            settings.base_delay_s,
            settings.max_delay_s,
        )

    def after_failure(
        self, attempts: int, created_at: datetime, now: datetime, rng: random.Random
    ) -> Retry | GiveUp:
        if attempts >= self.max_attempts:
            return GiveUp("failed", f"gave up after {attempts} attempts")
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempts - 1))
        at = now + timedelta(seconds=delay * rng.uniform(0.5, 1.0))
        if at - created_at > self.max_age:
            return GiveUp("expired", f"not delivered within {self.max_age}")
        return Retry(at)


class Forwarder(Protocol):
    """Hands a package to another axis (see exchange.upstream)."""

    async def forward(self, claim: Claimed, message: MessageRow, package: PackageStream) -> PushResult: ...


# An outcome waiting to be written, and the future its attempt awaits.
_Pending = tuple[Claimed, PushResult, "asyncio.Future[bool]"]


def _one_per_delivery(pending: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
    """The first outcome of each delivery, and the others (in the order they came) for later."""
    first: list[_Pending] = []
    later: list[_Pending] = []
    seen: set[UUID] = set()
    for item in pending:
        (later if item[0].id in seen else first).append(item)
        seen.add(item[0].id)
    return first, later


class DeliveryWorker:
    """Claims and pushes due deliveries for one server process."""

    def __init__(
        self,
        pool: Pool,
        settings: DeliverySettings,
        pusher: HttpPush,
        name: str,
        on_outcome: Callable[[str, Claimed], None] | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        self._forwarder = forwarder
        self._on_outcome = on_outcome or (lambda outcome, claim: None)
        self._pool = pool
        self._settings = settings
        self._pusher = pusher
        self.name = name
        self._wake = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 (retry jitter, not security)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_endpoint: Counter[str] = Counter()  # deliveries in flight to each endpoint
        self._pending: list[_Pending] = []
        self._writing: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Claim nothing more; ``serve`` returns once the pushes in flight are recorded."""
        self._stopping = True
        self._wake.set()

    async def serve(self) -> None:
        """Deliver whenever woken (NOTIFY, sweep, a finished push) until stopped.

        Claims only as many deliveries as there are free push slots, and at most
        ``per_endpoint_concurrency`` in flight to one endpoint, so one slow or hanging endpoint
        holds its own share of the slots and never stops the others from being served.
        """
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._fill()
            except (TimeoutError, OSError) as exc:  # the database is away; the sweep retries
                log.warning("delivery.round_failed", worker=self.name, error=str(exc))
            except Exception:
                log.exception("delivery.round_failed", worker=self.name)
        if self._in_flight:
            await asyncio.wait(self._in_flight)

    async def _fill(self) -> None:
        while not self._stopping and (free := self._settings.concurrency - len(self._in_flight)) > 0:
            full_before = self._full_endpoints()
            claimed = await self._claim(min(free, self._settings.batch_size))
            for claim in claimed:
                self._per_endpoint[claim.endpoint] += 1
                task = asyncio.create_task(self._deliver(claim))
                self._in_flight.add(task)
                task.add_done_callback(functools.partial(self._finished, claim.endpoint))
            if len(claimed) < min(free, self._settings.batch_size) and self._full_endpoints() <= full_before:
                # Nothing more is due now for an endpoint with room. (When this claim filled an
                # endpoint, claim again: the next one passes over it and reaches the others.)
                return

    def _full_endpoints(self) -> set[str]:
        cap = self._settings.per_endpoint_concurrency
        return {endpoint for endpoint, n in self._per_endpoint.items() if n >= cap}

    def _finished(self, endpoint: str, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._per_endpoint[endpoint] -= 1
        if self._per_endpoint[endpoint] <= 0:
            del self._per_endpoint[endpoint]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery.push_crashed", worker=self.name, error=repr(task.exception()))
        self._wake.set()  # a slot is free: claim more if any are due

    async def run_until_idle(self) -> int:
        """Deliver everything due now, batch by batch, and return how many were handled."""
        total = 0
        while claimed := await self._claim(self._settings.batch_size):
            await asyncio.gather(*(self._deliver(claim) for claim in claimed))
            total += len(claimed)
        return total

    async def _claim(self, limit: int) -> list[Claimed]:
        async with self._pool.acquire() as conn:
            return await delivery_store.claim_due(
                conn,
                limit,
                self._settings.lease_s,
                self.name,
                per_endpoint=self._settings.per_endpoint_concurrency,
                in_flight=self._per_endpoint,
            )

    async def _deliver(self, claim: Claimed) -> None:
        # The whole attempt, reading the package included, ends within push_timeout_s of the
        # claim, before its lease (longer by LEASE_MARGIN_S at least) runs out: no other worker
        # can claim it and push it again while this one still waits for the answer.
        timeout_s = self._settings.push_timeout_s
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                result = await self._attempt(claim)
        except TimeoutError as exc:
            if deadline.expired():
                detail = f"the attempt took longer than {timeout_s:g} s (push_timeout_s); stopped"
            else:  # something inside timed out first (a database connection, say)
                detail = f"timed out: {exc!r}"
            result = PushResult(False, detail)
        await self._record(claim, result)

    async def _attempt(self, claim: Claimed) -> PushResult:
        async with self._pool.acquire() as conn:
            stored = await load_package(conn, claim.message_id, self._settings.trace_organ_id)
        # Read from the database as it is sent, never held whole.
        package = stored.stream(self._pool)
        if claim.mode == "upstream":
            result = (
                await self._forwarder.forward(claim, stored.message, package)
                if self._forwarder is not None
                else PushResult(False, f"no upstream axis is configured for {claim.recipient}")
            )
        elif claim.endpoint:
            result = await self._pusher.push(claim.endpoint, claim.id, claim.message_id, package)
        else:
            result = PushResult(False, f"agency {claim.recipient} has no push endpoint")
        return result

    async def _record(self, claim: Claimed, result: PushResult) -> None:
        """Hand the outcome to the writer; several outcomes share one statement (group commit)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((claim, result, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_outcomes())
        if not await asyncio.shield(done):
            log.warning("delivery.lease_lost", delivery_id=str(claim.id), worker=self.name)

    async def _write_outcomes(self) -> None:
        # Whatever arrived while the previous batch was being written goes in the next one: no
        # waiting when idle, one statement for many outcomes when busy. One outcome per delivery
        # in a statement (a late one and its successor's, in the order they came): an UPDATE
        # applies only one of two rows for the same delivery, and the audit must say which.
        while self._pending:
            batch, self._pending = _one_per_delivery(self._pending)
            try:
                changed = await self._write_batch([(claim, result) for claim, result, _ in batch])
            except Exception as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for claim, _, done in batch:
                if not done.done():
                    done.set_result(claim.id in changed)

    async def _write_batch(self, batch: list[tuple[Claimed, PushResult]]) -> set[UUID]:
        now = datetime.now(UTC)
        outcomes, events = [], {}
        for claim, result in batch:
            outcome, event = self._decide(claim, result, now)
            outcomes.append(outcome)
            events[claim.id] = (claim, event)
        async with self._pool.acquire() as conn:
            changed = await delivery_store.record_outcomes(
                conn, self.name, outcomes, [event for _, event in events.values()]
            )
        for delivery_id in changed:
            claim, event = events[delivery_id]
            self._on_outcome(event.action.removeprefix("delivery."), claim)
            log.info(
                event.action,
                delivery_id=str(claim.id),
                message_id=str(claim.message_id),
                organ_id=claim.recipient,
                attempt=claim.attempts,
            )
        return changed

    def _decide(self, claim: Claimed, result: PushResult, now: datetime) -> tuple[Outcome, Event]:
        """The delivery's next state after this attempt, and its audit entry."""
        if result.ok:
            event = Event(
                "delivery.forwarded" if claim.mode == "upstream" else "delivery.pushed",
                claim.message_id,
                claim.id,
                {
                    "attempt": claim.attempts,
                    "recipient": claim.recipient,
                    "result": result.detail,
                    **({"remote_id": result.remote_id} if result.remote_id else {}),
                },
            )
            return Outcome(claim.id, claim.lease_id, "delivered", remote_id=result.remote_id), event
        policy = RetryPolicy.for_agency(self._settings, claim.max_attempts, claim.max_age_s)
        decision = policy.after_failure(claim.attempts, claim.created_at, now, self._rng)
        details = {"attempt": claim.attempts, "recipient": claim.recipient, "error": result.detail}
        if isinstance(decision, Retry):
            event = Event(
                "delivery.retry_scheduled",
                claim.message_id,
                claim.id,
                {**details, "next_attempt_at": decision.at.isoformat()},
            )
            return Outcome(
                claim.id, claim.lease_id, "retry_wait", result.detail, next_attempt_at=decision.at
            ), event
        event = Event(
            f"delivery.{decision.state}", claim.message_id, claim.id, {**details, "reason": decision.reason}
        )
        return Outcome(claim.id, claim.lease_id, decision.state, f"{result.detail}; {decision.reason}"), event


PULL_EXPIRY_BATCH = 500


async def expire_pull_deliveries(
    pool: Pool, settings: DeliverySettings, on_outcome: Callable[[str, Claimed], None] | None = None
) -> int:
    """Expire pull deliveries nobody downloaded within their max age, as push ones expire; audited."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            reason = "not downloaded within its max age"
            rows = await delivery_store.expire_pull(conn, settings.max_age_s, PULL_EXPIRY_BATCH, reason)
            await audit.append(
                conn,
                "axis",
                [
                    Event(
                        "delivery.expired",
                        row["message_id"],
                        row["id"],
                        {"recipient": row["recipient"], "mode": "pull", "reason": reason},
                    )
                    for row in rows
                ],
            )
        for row in rows:
            log.info("delivery.expired", delivery_id=str(row["id"]), organ_id=row["recipient"], mode="pull")
            if on_outcome is not None:
                claim = Claimed(
                    row["id"], row["message_id"], row["recipient"], "pull", "", row["attempts"],
                    row["created_at"], None, None,
                )  # fmt: skip
                on_outcome("expired", claim)
        total += len(rows)
        if len(rows) < PULL_EXPIRY_BATCH:
            return total
