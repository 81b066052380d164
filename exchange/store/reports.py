"""Aggregates for the operations page and the agency reports: volumes, latency, trouble, figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

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


# The figures of the agency report (docs/reports.md defines each one). A document counts in the period
# in which the axis accepted it ($1 <= received_at < $2); only new documents (business type 0) count,
# revocations, updates and replacements act on documents already counted. A recipient's copy is:
#   completed on time / late: its first 06 came on or before / after the DueDate (Vietnamese calendar day),
#   rejected: 02 and never 06; overdue: neither, and the DueDate is before $3 (today in Vietnam);
#   pending: the rest. Withdrawn copies are not counted as received.
# $4: one OrganId, or NULL for every agency (active ones, and inactive ones with traffic).
_AGENCY_FIGURES = """
WITH docs AS (
    SELECT m.id, m.sender, m.due_date FROM messages m
    WHERE m.kind = 'edoc' AND m.business_type = 0 AND m.received_at >= $1 AND m.received_at < $2
), copies AS (
    SELECT d.recipient, d.state, d.created_at, docs.due_date,
           (SELECT min(b.received_at) FROM business_statuses b
            WHERE b.delivery_id = d.id AND b.code = '06') AS done_at,
           EXISTS (SELECT 1 FROM business_statuses b WHERE b.delivery_id = d.id AND b.code = '02') AS refused
    FROM docs JOIN deliveries d ON d.message_id = docs.id
    WHERE d.state <> 'withdrawn'
), outcomes AS (
    SELECT recipient, state, created_at, done_at,
           CASE WHEN done_at IS NOT NULL THEN
                    CASE WHEN due_date IS NULL OR (done_at AT TIME ZONE INTERVAL '+07:00')::date <= due_date
                         THEN 'on_time' ELSE 'late' END
                WHEN refused THEN 'rejected'
                WHEN due_date < $3 THEN 'overdue'
                ELSE 'pending' END AS outcome
    FROM copies
), received AS (
    SELECT recipient AS organ_id, count(*) AS received,
           count(*) FILTER (WHERE outcome = 'on_time') AS processed_on_time,
           count(*) FILTER (WHERE outcome = 'late') AS late,
           count(*) FILTER (WHERE outcome = 'overdue') AS overdue,
           count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
           count(*) FILTER (WHERE outcome = 'pending') AS pending,
           count(*) FILTER (WHERE state IN ('failed', 'expired')) AS failed_deliveries,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - created_at) / 3600)
               FILTER (WHERE done_at IS NOT NULL) AS median_hours_to_complete,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - created_at) / 3600)
               FILTER (WHERE done_at IS NOT NULL) AS p90_hours_to_complete
    FROM outcomes GROUP BY recipient
), sent AS (
    SELECT sender AS organ_id, count(*) AS sent FROM docs GROUP BY sender
)
SELECT a.organ_id, a.name, coalesce(s.sent, 0) AS sent, coalesce(r.received, 0) AS received,
       coalesce(r.processed_on_time, 0) AS processed_on_time, coalesce(r.late, 0) AS late,
       coalesce(r.overdue, 0) AS overdue, coalesce(r.rejected, 0) AS rejected,
       coalesce(r.pending, 0) AS pending,
       coalesce(r.failed_deliveries, 0) AS failed_deliveries,
       r.median_hours_to_complete, r.p90_hours_to_complete
FROM agencies a
LEFT JOIN sent s ON s.organ_id = a.organ_id
LEFT JOIN received r ON r.organ_id = a.organ_id
WHERE ($4::text IS NULL OR a.organ_id = $4)
  AND (a.active OR s.sent IS NOT NULL OR r.received IS NOT NULL)
ORDER BY a.name, a.organ_id
"""
# Documents sent and copies received by one agency per Vietnamese day: $1 start, $2 end, $3 OrganId.
_AGENCY_PER_DAY = """
SELECT day, sum(sent)::int AS sent, sum(received)::int AS received FROM (
    SELECT (m.received_at AT TIME ZONE INTERVAL '+07:00')::date AS day, 1 AS sent, 0 AS received
    FROM messages m
    WHERE m.kind = 'edoc' AND m.business_type = 0 AND m.sender = $3
      AND m.received_at >= $1 AND m.received_at < $2
    UNION ALL
    SELECT (m.received_at AT TIME ZONE INTERVAL '+07:00')::date, 0, 1
    FROM deliveries d JOIN messages m ON m.id = d.message_id
    WHERE m.kind = 'edoc' AND m.business_type = 0 AND d.recipient = $3 AND d.state <> 'withdrawn'
      AND m.received_at >= $1 AND m.received_at < $2
) t GROUP BY day ORDER BY day
"""
# Copies to one agency that the axis gave up on, newest first: $1 start, $2 end, $3 OrganId, $4 limit.
_FAILED_TO_AGENCY = """
SELECT m.id AS message_id, m.document_id, m.sender, d.state::text AS state, d.attempts, d.last_error,
       d.updated_at
FROM deliveries d JOIN messages m ON m.id = d.message_id
WHERE d.recipient = $3 AND d.state IN ('failed', 'expired') AND m.received_at >= $1 AND m.received_at < $2
ORDER BY d.updated_at DESC LIMIT $4
"""
# Copies not yet in their recipient's hands, per recipient, the longest waiting first: $1 limit.
_BACKLOG = """
SELECT d.recipient AS organ_id, count(*) AS waiting,
       count(*) FILTER (WHERE d.state = 'retry_wait') AS retrying, min(d.created_at) AS oldest
FROM deliveries d WHERE d.state IN ('queued', 'sending', 'retry_wait')
GROUP BY d.recipient ORDER BY oldest LIMIT $1
"""


# The counts of a report line (the rest are its agency and two durations): totals add these up.
COUNTS = (
    "sent",
    "received",
    "processed_on_time",
    "late",
    "overdue",
    "rejected",
    "pending",
    "failed_deliveries",
)


@dataclass(frozen=True)
class AgencyFigures:
    """One agency's line of the report (see docs/reports.md for each figure)."""

    organ_id: str
    name: str
    sent: int
    received: int
    processed_on_time: int
    late: int
    overdue: int
    rejected: int
    pending: int
    failed_deliveries: int
    median_hours_to_complete: float | None
    p90_hours_to_complete: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Backlog:
    organ_id: str
    waiting: int
    retrying: int
    oldest: datetime


async def agency_figures(
    conn: Connection, start: datetime, end: datetime, today: date, organ_id: str | None = None
) -> list[AgencyFigures]:
    """Per-agency figures for documents accepted in [start, end), judged on ``today``."""
    rows = await conn.fetch(_AGENCY_FIGURES, start, end, today, organ_id)
    return [
        AgencyFigures(
            **{
                **dict(row),
                "median_hours_to_complete": _hours(row["median_hours_to_complete"]),
                "p90_hours_to_complete": _hours(row["p90_hours_to_complete"]),
            }
        )
        for row in rows
    ]


def _hours(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


async def agency_per_day(
    conn: Connection, start: datetime, end: datetime, organ_id: str
) -> list[tuple[date, int, int]]:
    return [
        (row["day"], row["sent"], row["received"])
        for row in await conn.fetch(_AGENCY_PER_DAY, start, end, organ_id)
    ]


async def failed_to_agency(
    conn: Connection, start: datetime, end: datetime, organ_id: str, limit: int
) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(_FAILED_TO_AGENCY, start, end, organ_id, limit)]


async def backlog(conn: Connection, limit: int) -> list[Backlog]:
    return [Backlog(**dict(row)) for row in await conn.fetch(_BACKLOG, limit)]
