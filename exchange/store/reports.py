"""Aggregates for the operations page: volumes, delivery latency, trouble by agency."""

from __future__ import annotations

from datetime import date

from exchange.store.db import Connection

# Documents accepted per day (Vietnamese calendar days) over the last $1 days.
_PER_DAY = """
SELECT (received_at AT TIME ZONE INTERVAL '+07:00')::date AS day, count(*) AS n
FROM messages WHERE kind = 'edoc' AND received_at > now() - make_interval(days => $1)
GROUP BY day ORDER BY day
"""
# Seconds from acceptance to delivery, 50th/95th/99th percentile per day, over the last $1 days.
_LATENCY = """
SELECT (d.created_at AT TIME ZONE INTERVAL '+07:00')::date AS day,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM coalesce(d.delivered_at, d.downloaded_at) - d.created_at)) AS p
FROM deliveries d
WHERE coalesce(d.delivered_at, d.downloaded_at) IS NOT NULL
  AND d.created_at > now() - make_interval(days => $1)
GROUP BY day ORDER BY day
"""
# Retried and given-up push attempts per recipient agency over the last $1 days, worst first.
_TROUBLE = """
SELECT details->>'recipient' AS organ_id,
       count(*) FILTER (WHERE action = 'delivery.retry_scheduled') AS retries,
       count(*) FILTER (WHERE action IN ('delivery.failed', 'delivery.expired')) AS failures
FROM audit_log
WHERE action IN ('delivery.retry_scheduled', 'delivery.failed', 'delivery.expired')
  AND at > now() - make_interval(days => $1)
GROUP BY organ_id ORDER BY failures DESC, retries DESC LIMIT 20
"""


async def documents_per_day(conn: Connection, days: int) -> list[tuple[date, int]]:
    return [(row["day"], row["n"]) for row in await conn.fetch(_PER_DAY, days)]


async def latency_percentiles(conn: Connection, days: int) -> list[tuple[date, float, float, float]]:
    return [(row["day"], *row["p"]) for row in await conn.fetch(_LATENCY, days)]


async def trouble_by_agency(conn: Connection, days: int) -> list[tuple[str, int, int]]:
    return [(row["organ_id"], row["retries"], row["failures"]) for row in await conn.fetch(_TROUBLE, days)]
