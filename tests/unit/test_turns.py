"""Turns at checking packages: bounded in all, bounded per system, and never waited for without end."""

from __future__ import annotations

import asyncio

import pytest

from exchange.errors import Busy
from exchange.turns import Turns


async def test_one_system_holds_at_most_half_the_turns_and_the_rest_serve_the_others() -> None:
    turns = Turns(total=4, wait_s=60)
    all_taken, release = asyncio.Event(), asyncio.Event()
    holding: list[str] = []

    async def check(system: str) -> None:
        async with turns.take(system):
            holding.append(system)
            if len(holding) == 4:
                all_taken.set()
            await release.wait()

    # The flooder asks first and most, yet the third of its checks waits for one of its own two
    # turns while the two other systems take the free ones.
    flood = [asyncio.create_task(check("flooder")) for _ in range(5)]
    others = [asyncio.create_task(check("dms-a")), asyncio.create_task(check("dms-b"))]
    await all_taken.wait()
    assert sorted(holding) == ["dms-a", "dms-b", "flooder", "flooder"]
    release.set()
    await asyncio.gather(*flood, *others)
    assert holding.count("flooder") == 5


async def test_a_package_waits_a_bounded_time_for_a_turn_then_is_refused_busy() -> None:
    turns = Turns(total=2, wait_s=0.01)
    async with turns.take("a"), turns.take("b"):
        with pytest.raises(Busy) as refused:
            async with turns.take("c"):
                pytest.fail("no turn was free")
        assert refused.value.status == 503
        assert refused.value.headers() == {"Retry-After": "1"}
    async with turns.take("c"), turns.take("d"):
        pass  # nothing was left held by the refusal
