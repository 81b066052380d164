"""The rules behind the limits, without a server: log repeats, token buckets, the byte budget."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

from exchange.api.connections import ConnectionGuard
from exchange.api.limiting import ByteBudget, SystemLimiter
from exchange.errors import Busy, TooManyRequests
from exchange.logs import RepeatFilter
from exchange.settings import LimitsSettings, SystemLimits


def record(event: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("exchange.x", level, __file__, 1, {"event": event}, None, None)


def test_repeated_warnings_are_rate_limited_and_the_drop_is_counted() -> None:
    now = [0.0]
    repeats = RepeatFilter(burst=3, window_s=60, clock=lambda: now[0])
    passed = [repeats.filter(record("db.away")) for _ in range(10)]
    assert passed == [True] * 3 + [False] * 7
    assert repeats.filter(record("other.warning"))  # another kind has its own allowance
    assert all(repeats.filter(record("http.request", logging.INFO)) for _ in range(10))  # info is not
    assert not repeats.filter(record("db.away"))
    now[0] = 61.0
    first = record("db.away")
    assert repeats.filter(first)
    assert isinstance(first.msg, dict)
    assert first.msg["repeats_suppressed"] == 8


def test_malformed_requests_are_rate_limited_even_at_info() -> None:
    repeats = RepeatFilter(burst=2)
    assert [repeats.filter(record("http.malformed", logging.INFO)) for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]


def test_a_system_gets_its_burst_then_429_with_when_to_come_back() -> None:
    limits = LimitsSettings(systems={"busy": SystemLimits(max_in_flight=10, rate_per_s=2.0, burst=3)})
    limiter = SystemLimiter(limits)
    for _ in range(3):
        limiter.enter("busy", now=100.0)
        limiter.leave("busy")
    with pytest.raises(TooManyRequests) as refused:
        limiter.enter("busy", now=100.0)
    assert refused.value.status == 429
    assert refused.value.headers() == {"Retry-After": "1"}  # half a second, rounded up
    limiter.enter("busy", now=100.5)  # a token came back
    limiter.enter("other", now=100.5)  # others use the defaults, untouched


def test_a_system_past_its_requests_in_flight_is_refused_until_one_ends() -> None:
    limiter = SystemLimiter(LimitsSettings(system=SystemLimits(max_in_flight=2)))
    limiter.enter("dms", now=0.0)
    limiter.enter("dms", now=0.0)
    with pytest.raises(TooManyRequests, match="2 requests in progress"):
        limiter.enter("dms", now=0.0)
    limiter.leave("dms")
    limiter.enter("dms", now=0.0)


async def test_the_byte_budget_queues_in_order_and_gives_up_with_busy() -> None:
    budget = ByteBudget(total=100, per_owner=80)
    await budget.acquire("a", 70, wait_s=1)
    with pytest.raises(TooManyRequests) as own_share:  # past a's own share: a's fault, 429
        await budget.acquire("a", 20, wait_s=0.05)
    assert own_share.value.status == 429
    with pytest.raises(Busy) as busy:
        await budget.acquire("b", 50, wait_s=0.05)
    assert busy.value.status == 503
    assert budget.line == type(budget.line)()  # the one that gave up left the line
    waiting = asyncio.create_task(budget.acquire("b", 50, wait_s=5))
    small = asyncio.create_task(budget.acquire("c", 10, wait_s=5))  # behind b, though it fits
    await asyncio.sleep(0)
    assert not waiting.done()
    assert not small.done()
    budget.release("a", 70)
    await asyncio.wait_for(asyncio.gather(waiting, small), 1)
    assert (budget.held, dict(budget.by_owner)) == (60, {"b": 50, "c": 10})


async def test_one_kept_out_by_its_own_share_does_not_hold_up_the_line() -> None:
    budget = ByteBudget(total=100, per_owner=40)
    await budget.acquire("flood", 40, wait_s=1)
    await budget.acquire("other", 30, wait_s=1)
    flood = asyncio.create_task(budget.acquire("flood", 40, wait_s=5))  # waits for its share
    honest = asyncio.create_task(budget.acquire("honest", 40, wait_s=5))  # waits for the total
    await asyncio.sleep(0)
    budget.release("other", 30)
    await asyncio.wait_for(honest, 1)
    assert not flood.done()
    budget.release("flood", 40)
    await asyncio.wait_for(flood, 1)
    assert dict(budget.by_owner) == {"flood": 40, "honest": 40}


async def test_a_system_is_paced_to_its_bytes_a_second() -> None:
    budget = ByteBudget(total=10_000, per_owner=1_000, per_owner_rate=1_000.0)
    await budget.acquire("dms", 1_000, wait_s=0)  # a full bucket: at once
    budget.release("dms", 1_000)
    with pytest.raises(TooManyRequests) as paced:  # the next 1,000 bytes are a second away
        await budget.acquire("dms", 1_000, wait_s=0.1)
    assert paced.value.headers() == {"Retry-After": "1"}
    await budget.acquire("other", 1_000, wait_s=0)  # another system has its own pace


async def test_a_system_bursts_one_second_of_its_pace_however_large_its_share() -> None:
    """Eight bodies sent at once by one system are let in at its pace, not all together: the work of
    parsing them cannot land on the server in one lump, whatever its share of bytes held."""
    budget = ByteBudget(total=100_000, per_owner=10_000, per_owner_rate=1_000.0)
    await budget.acquire("flood", 600, wait_s=0)
    await budget.acquire("flood", 400, wait_s=0)  # one second's worth, at once
    with pytest.raises(TooManyRequests):
        await budget.acquire("flood", 600, wait_s=0.1)  # the rest waits its pace
    assert budget.by_owner["flood"] == 1_000
    # A body larger than one second's worth still gets in, once the bucket is full again; the next
    # one waits until the whole of it is paid for, so large bodies keep the pace too.
    big = ByteBudget(total=100_000, per_owner=10_000, per_owner_rate=1_000.0)
    await big.acquire("scanner", 5_000, wait_s=0)
    assert big.by_owner["scanner"] == 5_000
    big.release("scanner", 5_000)
    with pytest.raises(TooManyRequests) as paced:
        await big.acquire("scanner", 5_000, wait_s=4)  # 5 s of debt and a second's worth to go
    assert int(paced.value.headers()["Retry-After"]) >= 5


async def test_a_body_larger_than_the_budget_gets_in_alone() -> None:
    budget = ByteBudget(total=100, per_owner=50)
    await budget.acquire("big", 500, wait_s=0.05)
    with pytest.raises(Busy):
        await budget.acquire("other", 1, wait_s=0.05)
    budget.release("big", 500)
    assert budget.held == 0


class _Transport:
    def __init__(self, address: str) -> None:
        self.address, self.closed = address, False

    def get_extra_info(self, name: str) -> object:
        return (self.address, 40000) if name == "peername" else None

    def close(self) -> None:
        self.closed = True


class _Connection:
    """What the guard reads of aiohttp's connection protocol."""

    def __init__(self, transport: _Transport) -> None:
        self.transport, self._current_request = transport, None


def test_a_kept_alive_connection_waits_the_idle_timeout_and_headers_the_header_timeout() -> None:
    guard = ConnectionGuard(LimitsSettings(header_timeout_s=10, idle_timeout_s=30))
    transport = _Transport("127.0.0.9")
    connection = cast(Any, _Connection(transport))
    assert guard.opened(connection, cast(Any, transport), now=0)
    guard.received(connection, 10, now=1)
    guard.request_started(connection, now=5)
    guard.sweep(now=12)  # busy: never a header timeout
    guard.request_ended(connection, now=14)
    guard.sweep(now=40)  # idle 26 s of 30, though open for 40
    assert not transport.closed
    guard.received(connection, 5, now=41)  # the next request's headers begin...
    guard.sweep(now=50)
    assert not transport.closed
    guard.sweep(now=52)  # ...and are not complete 11 s later
    assert transport.closed
    assert guard.states == {}


def test_a_new_connection_that_says_nothing_is_closed_at_the_header_timeout() -> None:
    guard = ConnectionGuard(LimitsSettings(header_timeout_s=10, idle_timeout_s=30))
    transport = _Transport("127.0.0.9")
    assert guard.opened(cast(Any, _Connection(transport)), cast(Any, transport), now=0)
    guard.sweep(now=9)
    assert not transport.closed
    guard.sweep(now=11)
    assert transport.closed


def test_a_connection_found_overdue_that_begins_a_request_before_its_turn_is_kept() -> None:
    """The sweep closes overdue connections a batch at a time, letting requests in between: one
    that began a request meanwhile is judged again and kept; the others are closed."""
    guard = ConnectionGuard(LimitsSettings(header_timeout_s=10, idle_timeout_s=30))
    transports = [_Transport("127.0.0.9") for _ in range(3)]
    connections = [cast(Any, _Connection(t)) for t in transports]
    for connection, transport in zip(connections, transports, strict=True):
        assert guard.opened(connection, cast(Any, transport), now=0)
    overdue = guard.overdue(now=11)
    assert overdue == connections
    guard.request_started(connections[1], now=11)  # its headers arrived before the sweep got to it
    for connection in overdue:
        guard.close_if_overdue(connection, now=11)
    assert [t.closed for t in transports] == [True, False, True]
    assert list(guard.states) == [connections[1]]


def test_connections_past_the_address_cap_are_marked_and_past_the_total_refused() -> None:
    guard = ConnectionGuard(LimitsSettings(max_connections_per_address=2, max_connections=4))
    opened = []
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"):
        transport = _Transport(address)
        connection = cast(Any, _Connection(transport))
        assert guard.opened(connection, cast(Any, transport), now=0)
        opened.append(connection)
    assert [guard.over_cap(c) for c in opened] == [False, False, True, False]
    late = _Transport("10.0.0.3")
    assert not guard.opened(cast(Any, _Connection(late)), cast(Any, late), now=0)
    guard.closed(opened[0])
    assert guard.by_address["10.0.0.1"] == 2
