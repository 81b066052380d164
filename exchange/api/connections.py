"""Connection accounting: no client keeps more of the server's connections or time than its share.

aiohttp has no read timeouts and no per-address bounds, so its request handler (the
asyncio protocol of one connection) is extended here:

- at most ``max_connections`` open connections (beyond: closed at once, before any read),
  and ``max_connections_per_address`` from one address (beyond: the connection is marked,
  and ``connection_middleware`` answers it 429 and closes it, except for /healthz and
  /readyz, so a monitor behind a busy address still gets an answer);
- complete request headers within ``header_timeout_s`` of their first byte (of the
  connection opening, for its first request); a kept-alive connection may wait
  ``idle_timeout_s`` for its next request (aiohttp's own keep-alive timer, set to the same,
  closes most of those first);
- while a handler waits for a body: the next bytes within ``body_timeout_s``, and after
  that long at least ``min_body_rate_bytes_per_s`` on average (slowloris bodies).

One sweep a second looks at every connection; a connection past a bound is closed. The
sweep judges a body only while the handler is waiting for the client (nothing unread is
buffered), so a request parked by the server itself (waiting for intake room) is never
blamed for its own slowness.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_server import Server

from exchange.errors import TooManyConnections
from exchange.logs import get_logger
from exchange.settings import LimitsSettings

log = get_logger(__name__)
SWEEP_INTERVAL_S = 1.0
# Connections closed between two turns of the event loop.
SWEEP_BATCH = 100
# Routes a connection over its address's cap is still served, so health checks keep answering.
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass
class _State:
    """What the sweep knows about one connection."""

    address: str
    opened: float
    over_cap: bool = False
    received: int = 0
    last_data: float = 0.0
    idle_since: float = 0.0  # when it last started waiting for request headers
    first_byte: float | None = None  # of the request being sent, while its headers arrive
    served: int = 0  # requests answered on this connection
    busy: bool = False  # a request is being handled
    body_since: float = 0.0  # when the current request's handling started
    body_from: int = 0  # bytes received before it


@dataclass
class ConnectionGuard:
    """Open connections by address, and the sweep that closes the ones past a bound."""

    limits: LimitsSettings
    on_close: Any = None  # called with the reason of each closing (metrics)
    states: dict[RequestHandler, _State] = field(default_factory=dict)
    by_address: Counter[str] = field(default_factory=Counter)

    def opened(self, handler: RequestHandler, transport: asyncio.BaseTransport, now: float) -> bool:
        """Register a new connection; False when it must be closed at once."""
        if len(self.states) >= self.limits.max_connections:
            self._closing("max_connections")
            return False
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        state = _State(address, opened=now, last_data=now, idle_since=now)
        state.over_cap = self.by_address[address] >= self.limits.max_connections_per_address
        self.by_address[address] += 1
        self.states[handler] = state
        return True

    def closed(self, handler: RequestHandler) -> None:
        state = self.states.pop(handler, None)
        if state is not None:
            self.by_address[state.address] -= 1
            if self.by_address[state.address] <= 0:
                del self.by_address[state.address]

    def received(self, handler: RequestHandler, size: int, now: float) -> None:
        state = self.states.get(handler)
        if state is not None:
            state.received += size
            state.last_data = now
            if not state.busy and state.first_byte is None:
                state.first_byte = now

    def request_started(self, handler: RequestHandler, now: float) -> None:
        state = self.states.get(handler)
        if state is not None:
            state.busy, state.body_since, state.body_from = True, now, state.received
            state.first_byte = None

    def request_ended(self, handler: RequestHandler, now: float) -> None:
        state = self.states.get(handler)
        if state is not None:
            state.busy, state.idle_since = False, now  # waiting for the next request's headers
            state.served += 1
            state.first_byte = None

    def over_cap(self, handler: object) -> bool:
        state = self.states.get(handler)  # type: ignore[call-overload]
        return state is not None and state.over_cap

    def sweep(self, now: float) -> None:
        for handler in self.overdue(now):
            self.close_if_overdue(handler, now)

    def overdue(self, now: float) -> list[RequestHandler]:
        """The connections past their time at ``now``."""
        return [handler for handler, state in self.states.items() if self._judge(handler, state, now)]

    def close_if_overdue(self, handler: RequestHandler, now: float) -> None:
        """Close ``handler``'s connection if it is still past its time (judged again: a connection
        found idle may have begun a request since)."""
        state = self.states.get(handler)
        reason = None if state is None else self._judge(handler, state, now)
        if state is None or reason is None:
            return
        self._closing(reason)
        log.debug("connection.closed", reason=reason, address=state.address)
        if handler.transport is not None:
            handler.transport.close()
        self.closed(handler)

    def _judge(self, handler: RequestHandler, state: _State, now: float) -> str | None:
        limits = self.limits
        if not state.busy:
            if state.first_byte is not None:  # headers on their way: they have header_timeout_s
                return "header_timeout" if now - state.first_byte > limits.header_timeout_s else None
            if state.served == 0:  # a new connection that says nothing is not a client at work
                return "header_timeout" if now - state.idle_since > limits.header_timeout_s else None
            return "idle_timeout" if now - state.idle_since > limits.idle_timeout_s else None
        request = handler._current_request  # aiohttp keeps no public handle on it
        if request is None:
            return None
        payload = request.content
        if payload.is_eof() or _unread(payload) > 0:
            return None  # the body is in, or the server has not read what it has: not the client's fault
        if now - state.last_data > limits.body_timeout_s:
            return "body_timeout"
        elapsed = now - state.body_since
        if elapsed > limits.body_timeout_s and (
            (state.received - state.body_from) / elapsed < limits.min_body_rate_bytes_per_s
        ):
            return "body_too_slow"
        return None

    def _closing(self, reason: str) -> None:
        if self.on_close is not None:
            self.on_close(reason)


def _unread(payload: Any) -> int:
    # Bytes received but not yet read by the handler (aiohttp keeps the count privately).
    return int(getattr(payload, "_size", 0))


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol, reporting to the guard."""

    def __init__(self, manager: Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.guard.opened(self, transport, self._loop.time()):
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.guard.received(self, len(data), self._loop.time())
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.closed(self)
        super().connection_lost(exc)

    async def _handle_request(
        self,
        request: BaseRequest,
        start_time: float | None,
        request_handler: Callable[[BaseRequest], Awaitable[StreamResponse]],
    ) -> tuple[StreamResponse, bool]:
        # The exact bounds of each request: the header timeout counts from the last answer.
        self.guard.request_started(self, self._loop.time())
        try:
            return await super()._handle_request(request, start_time, request_handler)
        finally:
            self.guard.request_ended(self, self._loop.time())

    def skip_lingering(self) -> None:
        """After this request's answer, close instead of reading and discarding the rest of its body."""
        self._lingering_time = 0.0

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        """A request aiohttp could not parse: one line at info, not a traceback at error."""
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        log.info(
            "http.malformed",
            status=status,
            address=request.remote,
            reason=str(exc.message or exc)[:200],
        )
        self.malformed = True  # the access log leaves it out: this line is the one
        self._quiet = True
        try:
            return super().handle_error(request, status, exc, message)
        finally:
            self._quiet = False

    def log_exception(self, *args: Any, **kw: Any) -> None:
        if not getattr(self, "_quiet", False):
            super().log_exception(*args, **kw)


class GuardedServer(Server):
    """aiohttp's protocol factory, making guarded handlers."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, self.guard, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose connections are accounted for and swept."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # Rebuild aiohttp's factory as ours, with exactly the arguments it was given.
        return GuardedServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            guard=self.guard,
            **server._kwargs,
        )


@contextlib.asynccontextmanager
async def sweeping(guard: ConnectionGuard) -> AsyncIterator[None]:
    """Run the guard's sweep for as long as the server listens."""
    loop = asyncio.get_running_loop()

    async def run() -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            overdue = guard.overdue(loop.time())
            # Thousands may fall due at once (a crowd of idle connections opened together): closed
            # all in one go, they would hold up the health checks and requests waiting meanwhile.
            for start in range(0, len(overdue), SWEEP_BATCH):
                now = loop.time()
                for handler in overdue[start : start + SWEEP_BATCH]:
                    guard.close_if_overdue(handler, now)
                await asyncio.sleep(0)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def raise_descriptor_limit(wanted: int) -> int:
    """Lift the soft limit on open files towards ``wanted`` (within the hard limit); the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


CONNECTION_GUARD = web.AppKey("connection_guard", ConnectionGuard)


@web.middleware
async def connection_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A connection over its address's cap gets health answers only; anything else 429 and closed."""
    guard = request.app.get(CONNECTION_GUARD)
    if guard is None or request.path in HEALTH_PATHS or not guard.over_cap(request.protocol):
        return await handler(request)
    guard._closing("max_connections_per_address")
    refusal = TooManyConnections(
        f"this address has more than {guard.limits.max_connections_per_address} open connections;"
        " close some and try again",
        retry_after=1,
    )
    response = web.json_response(refusal.as_dict(), status=refusal.status, headers=refusal.headers())
    response.force_close()  # the answer ends this connection, freeing the address's slot
    drop_unread_body(request)
    return response


def drop_unread_body(request: web.BaseRequest) -> None:
    """A refused request's body is not read: the answer is sent, then the connection closed.

    aiohttp otherwise reads and discards the rest (for up to its lingering time), which is
    what a client refused for sending too much would like the server to spend. HTTP clients
    read the answer before they notice the closed connection.
    """
    if not request.content.is_eof() and isinstance(request.protocol, GuardedRequestHandler):
        request.protocol.skip_lingering()
