"""How many statements the hot path sends to PostgreSQL: each one is a round trip that a busy
machine pays twice (a wake-up on each side), so the counts are part of the design."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from exchange import pull
from exchange.axis_identity import load_axis_signer
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.intake import Intake
from exchange.settings import Settings
from exchange.store import systems as system_store
from exchange.store.db import create_pool
from tests.edxml_factories import small_edoc, small_status
from tests.integration.conftest import DEPT, FINANCE, World, count
from tests.integration.test_registry_cache import CountingConnection


class CountingPool:
    """A pool whose connections count the statements sent through them and the transactions opened."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.queries = self.transactions = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn:
            counting = _Counting(conn, self)
            try:
                yield counting
            finally:
                self.queries += counting.queries

    def reset(self) -> None:
        self.queries = self.transactions = 0


class _Counting(CountingConnection):
    def __init__(self, conn: asyncpg.Connection, pool: CountingPool) -> None:
        super().__init__(conn)
        self._counting_pool = pool

    def transaction(self) -> Any:
        self._counting_pool.transactions += 1
        return self._conn.transaction()


async def test_a_new_document_is_stored_by_one_statement_and_taken_by_three_and_two(
    settings: Settings, database_url: str, world: World, conn: asyncpg.Connection
) -> None:
    pool = await create_pool(database_url, settings.database)
    try:
        counting = CountingPool(pool)
        intake = Intake(counting, settings, load_axis_signer(settings))  # type: ignore[arg-type]
        dept = await system_store.system_by_name(conn, f"dms-{DEPT}")
        finance = await system_store.system_by_name(conn, f"dms-{FINANCE}")

        def document(number: int) -> bytes:
            document_id = f"{DEPT},2026/11/30,{number}/RT"
            return build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=document_id))

        await intake.submit(dept, document(1))  # reads the sender's and recipient's registry facts once
        counting.reset()
        accepted = await intake.submit(dept, document(2))

        # The caller brings the registry's version from its authentication; what intake read under it
        # is kept; the package is stored by one statement (if the version is still the registry's).
        assert (counting.queries, counting.transactions) == (1, 0)
        assert accepted.created
        message_id = accepted.message.id
        stored = await conn.fetchrow(
            """SELECT (SELECT receipt FROM messages WHERE id = $1) AS receipt,
                      (SELECT chunks FROM message_bodies WHERE message_id = $1) AS chunks,
                      (SELECT count(*) FROM message_body_chunks WHERE message_id = $1) AS chunk_rows,
                      (SELECT count(*) FROM deliveries WHERE message_id = $1) AS deliveries,
                      (SELECT array_agg(action ORDER BY id) FROM audit_log WHERE message_id = $1)
                          AS actions""",
            message_id,
        )
        assert stored["receipt"] == accepted.receipt
        assert (stored["chunks"], stored["chunk_rows"], stored["deliveries"]) == (1, 1, 1)
        assert stored["actions"] == [
            "message.accepted",
            "signature.checked",
            "attachments.checked",
            "delivery.created",
        ]

        # The recipient downloads (its delivery, the message with its first chunk, the download with its
        # audit entry) and acknowledges (its delivery, the acknowledgement with its audit entry).
        [delivery] = accepted.deliveries
        async with pool.acquire() as raw:
            taking = CountingConnection(raw)
            await pull.fetch(taking, finance, delivery.id, settings.delivery.trace_organ_id)  # type: ignore[arg-type]
            downloaded, taking.queries = taking.queries, 0
            acked = await pull.acknowledge(taking, finance, delivery.id, True, None)  # type: ignore[arg-type]
        assert (downloaded, taking.queries) == (3, 2)
        assert acked.state == "acked"
        assert await _actions_of(conn, delivery.id) == ["delivery.downloaded", "delivery.ack_done"]

        # A status has effects on earlier messages: it is stored in a transaction.
        counting.reset()
        status = small_status(
            sender=FINANCE,
            original_sender=DEPT,
            document_id=f"{DEPT},2026/11/30,2/RT",
            code=StatusCode.ARRIVED,
        )
        before = await count(conn, "business_statuses")
        await intake.submit(finance, build_status(status))
        assert counting.transactions == 1
        assert await count(conn, "business_statuses") == before + 1
    finally:
        await pool.close()


async def _actions_of(conn: asyncpg.Connection, delivery_id: UUID) -> list[str]:
    rows = await conn.fetch("SELECT action FROM audit_log WHERE delivery_id = $1 ORDER BY id", delivery_id)
    return [row["action"] for row in rows if row["action"] != "delivery.created"]
