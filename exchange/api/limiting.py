"""Back-pressure per caller: requests in flight and per second by system, bytes held by intake.

Every authenticated request (native API and VXP facade alike, after authentication so
the system is known) passes ``limits_middleware``:

- a system with ``max_in_flight`` requests in progress, or whose token bucket
  (``rate_per_s``, bursts of ``burst``) is empty, is answered 429 ``too_many_requests``
  with ``Retry-After`` at once, before its body is read;
- a request with a body of more than ``SMALL_BODY`` bytes reserves its size (its
  Content-Length, or the largest body allowed when it sends none) from the bytes intake
  may hold (``ByteBudget``): it waits, up to ``intake_wait_s``, for its system's pace of
  bytes a second, its system's share of the bytes held and room in the total; then 429
  if its own system's pace or share kept it out, 503 ``busy`` (the axis is full, through
  nobody's fault in particular) if the total did. Waiting rather than refusing at once
  lets honest large packages through a busy moment and costs a flooder's requests nothing
  to hold (their bodies stay in the kernel); refusing at once would invite it to retry
  in a loop.

Limits come from ``[limits.system]``, and ``[limits.systems.NAME]`` for one system. They
hold per server process: behind a load balancer each process grants its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler

from exchange.api.auth import is_vxp
from exchange.api.connections import drop_unread_body
from exchange.api.keys import CALLER, METRICS, SETTINGS
from exchange.errors import Busy, TooManyRequests
from exchange.settings import LimitsSettings, SystemLimits
from exchange.vxp.protocol import VxpFailure

# Bodies up to this size (acks, JSON, small packages) skip the byte budget: never queued.
SMALL_BODY = 64 * 1024


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class SystemLimiter:
    """Requests in flight and a token bucket, per system name."""

    limits: LimitsSettings
    in_flight: Counter[str] = field(default_factory=Counter)
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def enter(self, system: str, now: float) -> None:
        """Count a request in, or raise TooManyRequests (then nothing is counted)."""
        own = self.limits.for_system(system)
        if self.in_flight[system] >= own.max_in_flight:
            raise TooManyRequests(
                f"system {system!r} already has {own.max_in_flight} requests in progress", retry_after=1
            )
        bucket = self.buckets.setdefault(system, _Bucket(float(own.burst), now))
        bucket.tokens = min(float(own.burst), bucket.tokens + (now - bucket.at) * own.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1:
            raise TooManyRequests(
                f"system {system!r} may make {own.rate_per_s:g} requests a second",
                retry_after=(1 - bucket.tokens) / own.rate_per_s,
            )
        bucket.tokens -= 1
        self.in_flight[system] += 1

    def leave(self, system: str) -> None:
        self.in_flight[system] -= 1
        if self.in_flight[system] <= 0:
            del self.in_flight[system]


@dataclass
class ByteBudget:
    """Bytes held at once, in total and per owner, and bytes per second per owner.

    A request first waits its owner's pace (a token bucket of ``per_owner_rate`` bytes a
    second, holding one second of them, never more than ``per_owner``: an owner that sends
    everything at once is let in at its pace, so the work of receiving and parsing its
    bodies never arrives in one lump), then waits in one FIFO line for room in its
    owner's share and in the total. Waiting costs nothing but a socket: the body stays
    in the kernel until the request is let in. Past ``wait_s``: 429 when the owner's own
    pace or share kept it out, 503 when the total did.
    """

    total: int
    per_owner: int
    per_owner_rate: float = float("inf")
    held: int = 0
    by_owner: Counter[str] = field(default_factory=Counter)
    line: deque[tuple[asyncio.Future[None], str, int]] = field(default_factory=deque)
    paces: dict[str, _Bucket] = field(default_factory=dict)

    async def acquire(self, owner: str, size: int, wait_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        delay = self._pace(owner, size, loop.time(), wait_s)
        if delay > 0:
            await asyncio.sleep(delay)  # pacing this owner's bytes, by design
        if not self.line and self._fits(owner, size):
            self._take(owner, size)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        entry = (waiter, owner, size)
        self.line.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), max(0.0, deadline - loop.time()))
        except TimeoutError:
            if waiter.done():  # room was given just as the wait ended: keep it
                return
            self.line.remove(entry)
            waiter.cancel()
            raise self._refusal(owner, size) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(owner, size)
            elif entry in self.line:
                self.line.remove(entry)
                waiter.cancel()
            raise

    def release(self, owner: str, size: int) -> None:
        self.held -= size
        self.by_owner[owner] -= size
        if self.by_owner[owner] <= 0:
            del self.by_owner[owner]
        # In order; one kept out only by its own share does not hold up the others.
        for entry in list(self.line):
            waiter, waiting_owner, wanted = entry
            if waiter.done():
                self.line.remove(entry)
            elif self._fits(waiting_owner, wanted):
                self.line.remove(entry)
                self._take(waiting_owner, wanted)
                waiter.set_result(None)
            elif not self._total_fits(wanted):
                break  # the head of the line for the total keeps its place

    def _pace(self, owner: str, size: int, now: float, wait_s: float) -> float:
        """Seconds this owner must wait before sending ``size`` more bytes (tokens reserved)."""
        if self.per_owner_rate == float("inf"):
            return 0.0
        burst = min(float(self.per_owner), self.per_owner_rate)
        bucket = self.paces.setdefault(owner, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * self.per_owner_rate)
        bucket.at = now
        # A body larger than the bucket needs it full, no more, to start; its whole size is then
        # owed (the bucket goes below zero), so the next body waits until it is paid for.
        delay = max(0.0, (min(float(size), burst) - bucket.tokens) / self.per_owner_rate)
        if delay > wait_s:
            raise TooManyRequests(
                f"{owner!r} may send {self.per_owner_rate:.0f} bytes a second", retry_after=delay
            )
        bucket.tokens -= size
        return delay

    def _refusal(self, owner: str, size: int) -> TooManyRequests:
        if not self._share_fits(owner, size):
            return TooManyRequests(
                f"{owner!r} already has {self.by_owner[owner]} bytes being received; its share is"
                f" {self.per_owner}",
                retry_after=2,
            )
        return Busy("the axis is receiving as many bytes as it may hold; try again shortly", retry_after=5)

    def _fits(self, owner: str, size: int) -> bool:
        return self._share_fits(owner, size) and self._total_fits(size)

    def _share_fits(self, owner: str, size: int) -> bool:
        # A body larger than a bound still gets in, alone.
        return self.by_owner[owner] == 0 or self.by_owner[owner] + size <= self.per_owner

    def _total_fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.total

    def _take(self, owner: str, size: int) -> None:
        self.held += size
        self.by_owner[owner] += size


@dataclass
class Limiter:
    systems: SystemLimiter
    budget: ByteBudget

    @classmethod
    def from_settings(cls, limits: LimitsSettings) -> Limiter:
        budget = ByteBudget(
            limits.intake_max_bytes,
            limits.intake_max_bytes_per_system,
            float(limits.intake_bytes_per_s_per_system),
        )
        return cls(SystemLimiter(limits), budget)


LIMITER = web.AppKey("limiter", Limiter)


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    caller = request.get(CALLER)
    if caller is None:  # public routes (health): nothing to account to
        return await handler(request)
    limiter = request.app[LIMITER]
    try:
        limiter.systems.enter(caller.name, time.monotonic())
    except TooManyRequests as refusal:
        return _refused(request, refusal)
    try:
        size = _body_size(request)
        if size <= SMALL_BODY:
            return await handler(request)
        try:
            await limiter.budget.acquire(caller.name, size, request.app[SETTINGS].limits.intake_wait_s)
        except TooManyRequests as refusal:
            return _refused(request, refusal)
        try:
            return await handler(request)
        finally:
            limiter.budget.release(caller.name, size)
    finally:
        limiter.systems.leave(caller.name)


def _body_size(request: web.Request) -> int:
    if request.content_length is not None:
        return request.content_length
    # Chunked: it may be as large as any body allowed.
    return request.app[SETTINGS].limits.max_package_bytes if request.body_exists else 0


def _refused(request: web.Request, refusal: TooManyRequests) -> web.Response:
    """The structured error, in the shape of the protocol the caller speaks."""
    request.app[METRICS].limited.labels(refusal.code).inc()
    drop_unread_body(request)
    if is_vxp(request.match_info.route.handler):
        failure = VxpFailure(refusal.status, str(refusal.status), f"{refusal.code}: {refusal.message}")
        return web.json_response(
            failure.body(with_doc_id=request.path.endswith("/sendEdoc")),
            status=failure.http_status,
            headers=refusal.headers(),
        )
    return web.json_response(refusal.as_dict(), status=refusal.status, headers=refusal.headers())


__all__ = ["LIMITER", "ByteBudget", "Limiter", "SystemLimiter", "SystemLimits", "limits_middleware"]
