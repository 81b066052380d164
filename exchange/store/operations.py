"""Queries for background duties: retention of package bodies, and what alerts look at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from exchange.store.db import Connection
from exchange.store.messages import UNFINISHED_DELIVERY

# Removes the bodies of messages received before $1 whose deliveries are all settled, at most $2 of them.
# Returns the messages concerned with their SHA-256 (kept in messages, so evidence stays verifiable).
_REMOVE_BODIES = """
WITH old AS (
    SELECT b.message_id FROM message_bodies b JOIN messages m ON m.id = b.message_id
    WHERE m.received_at < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id
                      AND (d.state IN ('queued', 'sending', 'retry_wait')
                           OR (d.mode = 'pull' AND d.state = 'delivered')))
    ORDER BY m.received_at LIMIT $2
    FOR UPDATE OF b SKIP LOCKED
)
DELETE FROM message_bodies b USING old, messages m
WHERE b.message_id = old.message_id AND m.id = old.message_id
RETURNING b.message_id, m.sha256
"""
# Remembers an alert; returns the key only the first time: $1 key.
_MARK_SENT = "INSERT INTO alerts_sent (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING key"
# Overdue documents (see messages._UNFINISHED for the rule), oldest deadline first: $1 the day, $2 limit.
_OVERDUE = f"""
SELECT m.id, m.document_id, m.sender, m.due_date FROM messages m
WHERE m.kind = 'edoc' AND m.business_type = 0 AND m.due_date < $1 AND EXISTS ({UNFINISHED_DELIVERY})
ORDER BY m.due_date LIMIT $2
"""
# Agencies with at least $2 deliveries given up (failed or expired) since $1.
_FAILING = """
SELECT recipient, count(*) AS n FROM deliveries
WHERE state IN ('failed', 'expired') AND updated_at >= $1
GROUP BY recipient HAVING count(*) >= $2 ORDER BY n DESC
"""
# Registered certificates (not revoked) expiring before $1.
_EXPIRING = """
SELECT fingerprint, subject, role::text, organ_id, not_after FROM certificates
WHERE revoked_at IS NULL AND not_after < $1 ORDER BY not_after
"""


@dataclass(frozen=True)
class OverdueDocument:
    id: UUID
    document_id: str
    sender: str
    due_date: date


async def remove_old_bodies(conn: Connection, before: datetime, limit: int) -> list[tuple[UUID, bytes]]:
    return [(row["message_id"], row["sha256"]) for row in await conn.fetch(_REMOVE_BODIES, before, limit)]


async def mark_alert_sent(conn: Connection, key: str) -> bool:
    return await conn.fetchval(_MARK_SENT, key) is not None


async def overdue_documents(conn: Connection, today: date, limit: int) -> list[OverdueDocument]:
    return [OverdueDocument(**dict(row)) for row in await conn.fetch(_OVERDUE, today, limit)]


async def failing_agencies(conn: Connection, since: datetime, threshold: int) -> list[tuple[str, int]]:
    return [(row["recipient"], row["n"]) for row in await conn.fetch(_FAILING, since, threshold)]


@dataclass(frozen=True)
class ExpiringCertificate:
    fingerprint: bytes
    subject: str
    role: str
    organ_id: str | None
    not_after: datetime


async def expiring_certificates(conn: Connection, before: datetime) -> list[ExpiringCertificate]:
    return [ExpiringCertificate(**dict(row)) for row in await conn.fetch(_EXPIRING, before)]
