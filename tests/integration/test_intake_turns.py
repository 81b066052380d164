"""A server process checks a few packages at once, at most half of them one system's; the others
wait their turn (limits.intake_concurrency, exchange.turns)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest

from exchange.axis_identity import load_axis_signer
from exchange.edxml.builder import build_edoc
from exchange.errors import Busy
from exchange.intake import Intake
from exchange.model import System
from exchange.settings import Settings
from exchange.store import systems as system_store
from exchange.store.db import create_pool
from tests.edxml_factories import small_edoc
from tests.integration.conftest import CENTRAL, DEPT, FINANCE, World, count


async def test_packages_beyond_the_turns_wait_and_are_then_all_accepted(
    settings: Settings, database_url: str, world: World, conn: asyncpg.Connection
) -> None:
    turns = 4
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"intake_concurrency": turns})}
    )
    pool = await create_pool(database_url, settings.database)
    try:
        intake = Intake(pool, settings, load_axis_signer(settings))
        checking: Counter[str] = Counter()
        peak: Counter[str] = Counter()
        all_turns_taken, gate = asyncio.Event(), asyncio.Event()
        check = intake._check_and_store

        async def held(caller: System, *args: Any) -> Any:
            checking[caller.name] += 1
            peak[caller.name] = max(peak[caller.name], checking[caller.name])
            if checking.total() == turns:
                all_turns_taken.set()
            try:
                await gate.wait()
                return await check(caller, *args)
            finally:
                checking[caller.name] -= 1

        intake._check_and_store = held  # type: ignore[method-assign]

        dept = await system_store.system_by_name(conn, f"dms-{DEPT}")
        central = await system_store.system_by_name(conn, f"dms-{CENTRAL}")

        async def send(caller: System, organ: str, number: int) -> Any:
            document_id = f"{organ},2026/11/30,{number}/T"
            package = build_edoc(small_edoc(sender=organ, recipients=(FINANCE,), document_id=document_id))
            return await intake.submit(caller, package)

        flood = [asyncio.create_task(send(dept, DEPT, n)) for n in range(5)]
        others = [asyncio.create_task(send(central, CENTRAL, n)) for n in range(2)]
        await all_turns_taken.wait()
        # The first sender asked first and most, yet holds half the turns; the other holds the rest.
        assert checking == {dept.name: 2, central.name: 2}
        assert not any(task.done() for task in flood + others)
        gate.set()
        accepted = await asyncio.gather(*flood, *others)
        assert all(a.created for a in accepted)
        assert peak == {dept.name: 2, central.name: 2}
        assert await count(conn, "messages") == 7
    finally:
        await pool.close()


async def test_a_package_that_waited_too_long_for_a_turn_is_refused_busy_and_nothing_is_stored(
    settings: Settings, database_url: str, world: World, conn: asyncpg.Connection
) -> None:
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"intake_concurrency": 2, "intake_wait_s": 0.01})}
    )
    pool = await create_pool(database_url, settings.database)
    try:
        intake = Intake(pool, settings, load_axis_signer(settings))
        dept = await system_store.system_by_name(conn, f"dms-{DEPT}")
        checking, gate = asyncio.Event(), asyncio.Event()
        check = intake._check_and_store

        async def held(*args: Any) -> Any:
            checking.set()
            await gate.wait()
            return await check(*args)

        intake._check_and_store = held  # type: ignore[method-assign]

        def package(number: int) -> bytes:
            document_id = f"{DEPT},2026/11/30,{number}/B"
            return build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=document_id))

        first = asyncio.create_task(intake.submit(dept, package(1)))
        await checking.wait()  # DEPT holds its one turn (half of two)
        with pytest.raises(Busy) as refused:
            await intake.submit(dept, package(2))
        assert (refused.value.status, refused.value.headers()) == (503, {"Retry-After": "1"})
        gate.set()
        assert (await first).created
        stored = await conn.fetch("SELECT document_id FROM messages")
        assert [row["document_id"] for row in stored] == [f"{DEPT},2026/11/30,1/B"]
        assert await count(conn, "deliveries") == 1
    finally:
        await pool.close()
