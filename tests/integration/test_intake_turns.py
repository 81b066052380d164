"""A server process checks a few packages at once; the others wait their turn (limits.intake_concurrency),
so that a flood of submissions cannot take every turn of the event loop from delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from exchange.axis_identity import load_axis_signer
from exchange.edxml.builder import build_edoc
from exchange.intake import Intake
from exchange.settings import Settings
from exchange.store import systems as system_store
from exchange.store.db import create_pool
from tests.edxml_factories import small_edoc
from tests.integration.conftest import DEPT, FINANCE, World, count


async def test_packages_beyond_the_turns_wait_and_are_then_all_accepted(
    settings: Settings, database_url: str, world: World, conn: asyncpg.Connection
) -> None:
    turns = 2
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"intake_concurrency": turns})}
    )
    pool = await create_pool(database_url, settings.database)
    try:
        intake = Intake(pool, settings, load_axis_signer(settings))
        dept = await system_store.system_by_name(conn, f"dms-{DEPT}")
        checking, peak = 0, 0
        all_turns_taken, gate = asyncio.Event(), asyncio.Event()
        check = intake._check_and_store

        async def held(*args: Any) -> Any:
            nonlocal checking, peak
            checking += 1
            peak = max(peak, checking)
            if checking == turns:
                all_turns_taken.set()
            try:
                await gate.wait()
                return await check(*args)
            finally:
                checking -= 1

        intake._check_and_store = held  # type: ignore[method-assign]
        packages = [
            build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=f"{DEPT},2026/11/30,{n}/T"))
            for n in range(5)
        ]
        submissions = [asyncio.create_task(intake.submit(dept, package)) for package in packages]
        await all_turns_taken.wait()
        # Every submission has started by now (tasks run in the order they were made): the ones
        # past the turns wait for one, and none of their work has begun.
        assert (checking, peak) == (turns, turns)
        assert not any(task.done() for task in submissions)
        gate.set()
        accepted = await asyncio.gather(*submissions)
        assert all(a.created for a in accepted)
        assert peak == turns
        assert await count(conn, "messages") == 5
    finally:
        await pool.close()
