"""Do the hot queries stay index-bound at scale? 1,000,000 messages and 3,000,000 deliveries.

    .venv/bin/python bench/scale.py [--messages 1000000] [--database-url URL] [--json]

Fills a database with a realistic spread (200 agencies, a year of traffic, most deliveries
settled, some waiting in inboxes, some due for push, a few failed), then times the inbox,
claim, trace and search queries exactly as the store runs them (median of 20 runs) and
saves their EXPLAIN (ANALYZE, BUFFERS) plans to bench/results/scale-plans.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.common import database
from exchange.store import audit as audit_store
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store.messages import DocumentQuery
from exchange.store.migrate import apply_migrations

RESULTS = Path(__file__).resolve().parent / "results"
AGENCIES = [f"000.{a:02d}.{b:02d}.H26" for a in range(0, 10) for b in range(0, 20)]

FILL = [
    (
        "agencies",
        """
INSERT INTO agencies (organ_id, name, delivery_mode, push_endpoint)
SELECT organ_id, 'Đơn vị ' || organ_id, CASE WHEN n % 4 = 0 THEN 'push' ELSE 'pull' END::delivery_mode,
       CASE WHEN n % 4 = 0 THEN 'http://127.0.0.1:9/edoc' END
FROM unnest($1::text[]) WITH ORDINALITY AS t (organ_id, n)
WHERE $2::int > 0""",
    ),
    (
        "system",
        """
INSERT INTO systems (name, role, api_key_hash) VALUES ('scale', 'system', sha256('scale'::bytea))""",
    ),
    (
        "messages",
        """
INSERT INTO messages (id, kind, sender, sender_system_id, document_id, business_type, code, subject, urgency,
                      sha256, size_bytes, signature, received_at)
SELECT md5('m' || n)::uuid, 'edoc', ($1::text[])[1 + n % 200], (SELECT id FROM systems WHERE name = 'scale'),
       ($1::text[])[1 + n % 200] || ',2026/01/01,' || n || '/SCALE', 0, n || '/SCALE', 'Văn bản số ' || n,
       (n % 50 = 0)::int,
       sha256(n::text::bytea), 20480, '{"verdict": "valid"}', now() - (n % 525600) * interval '1 minute'
FROM generate_series(1, $2) AS n""",
    ),
    (
        "deliveries",
        """
INSERT INTO deliveries (id, message_id, recipient, mode, state, urgency, attempts, next_attempt_at,
                        created_at, delivered_at, acked_at)
SELECT md5('d' || n || '-' || k)::uuid, md5('m' || n)::uuid, ($1::text[])[1 + (n * 7 + k * 13) % 200],
       CASE WHEN (n * 7 + k * 13) % 4 = 3 THEN 'push' ELSE 'pull' END::delivery_mode,
       CASE WHEN n % 100 < 90 THEN 'acked' WHEN n % 100 < 95 THEN 'delivered' WHEN n % 100 < 98 THEN 'queued'
            WHEN n % 100 < 99 THEN 'retry_wait' ELSE 'failed' END::delivery_state,
       0, 1, now() - (n % 100) * interval '1 second', now() - (n % 525600) * interval '1 minute',
       CASE WHEN n % 100 < 95 THEN now() END, CASE WHEN n % 100 < 90 THEN now() END
FROM generate_series(1, $2) AS n, generate_series(1, 3) AS k""",
    ),
    (
        "audit",
        """
INSERT INTO audit_log (actor, action, message_id, details, at)
SELECT 'scale', (ARRAY['message.accepted', 'delivery.pushed'])[k], md5('m' || n)::uuid, '{}', now()
FROM generate_series(1, $1) AS n, generate_series(1, 2) AS k""",
    ),
]


async def timed(work: Callable[[], Awaitable[Any]], runs: int = 20) -> float:
    await work()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


async def bench(url: str, count: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    figures: dict[str, Any] = {"messages": count}
    try:
        await apply_migrations(conn)
        for name, statement in FILL:
            started = time.perf_counter()
            # Each statement takes the agency list as $1 and the count as $2, or only the count as $1.
            args = [AGENCIES, count] if "$2" in statement else [count] if "$1" in statement else []
            await conn.execute(statement, *args)
            figures[f"fill_{name}_s"] = round(time.perf_counter() - started, 1)
        await conn.execute("ANALYZE")
        figures["deliveries"] = await conn.fetchval("SELECT count(*) FROM deliveries")
        busiest = await conn.fetchval(
            "SELECT recipient FROM deliveries GROUP BY recipient ORDER BY count(*) DESC LIMIT 1"
        )
        message_id = await conn.fetchval(
            "SELECT id FROM messages ORDER BY received_at DESC LIMIT 1 OFFSET 1000"
        )
        document_id = await conn.fetchval("SELECT document_id FROM messages WHERE id = $1", message_id)

        async def claim() -> None:
            tx = conn.transaction()
            await tx.start()
            await delivery_store.claim_due(conn, 50, 60, "scale")
            await tx.rollback()

        figures["inbox_ms"] = await timed(lambda: delivery_store.inbox(conn, [busiest], None, 100))
        figures["claim_ms"] = await timed(claim)
        figures["trace_ms"] = await timed(lambda: _trace(conn, message_id))
        figures["search_by_document_ms"] = await timed(
            lambda: message_store.search_documents(conn, DocumentQuery(document_id=document_id))
        )
        figures["search_by_sender_ms"] = await timed(
            lambda: message_store.search_documents(conn, DocumentQuery(sender=AGENCIES[5], limit=50))
        )
        await _plans(conn, busiest, message_id, document_id)
    finally:
        await conn.close()
    return figures


async def _trace(conn: asyncpg.Connection, message_id: Any) -> None:
    await delivery_store.deliveries_of(conn, message_id)
    await audit_store.entries_for_message(conn, message_id)


async def _plans(conn: asyncpg.Connection, busiest: str, message_id: Any, document_id: str) -> None:
    queries = [
        ("inbox", delivery_store._INBOX, [[busiest], None, 100]),
        ("claim", delivery_store._CLAIM, [50, 60, "scale"]),
        ("deliveries of a message", delivery_store._OF_MESSAGE, [message_id]),
        ("audit entries of a message", audit_store._FOR_MESSAGE, [message_id]),
        (
            "search by document id",
            message_store._SEARCH,
            [document_id, None, None, None, None, None, None, None, None, 50, None],
        ),
    ]
    RESULTS.mkdir(exist_ok=True)
    # EXPLAIN ANALYZE runs the statement: the claim's update is rolled back with the rest.
    tx = conn.transaction()
    await tx.start()
    try:
        with (RESULTS / "scale-plans.txt").open("w") as out:
            for name, sql, args in queries:
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
                out.write(f"== {name}\n" + "\n".join(row[0] for row in plan) + "\n\n")
    finally:
        await tx.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with database(args.database_url) as url:
        figures = asyncio.run(bench(url, args.messages))
    print(json.dumps(figures) if args.json else "\n".join(f"{k:>24}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
