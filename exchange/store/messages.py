"""Queries on ``messages`` and their bodies (``message_bodies``, ``message_body_chunks``): the accepted
packages."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from exchange.store import audit
from exchange.store.agencies import RegistryChanged
from exchange.store.audit import Event
from exchange.store.db import Connection, Record
from exchange.store.deliveries import CHANNEL, DeliveryRow, NewDelivery, any_pushed, delivery_from_row
from exchange.store.deliveries import COLUMNS as DELIVERY_COLUMNS
from exchange.store.statuses import CURRENT_PROGRESS, CURRENT_STATUS


@dataclass(frozen=True)
class MessageRow:
    """An accepted package: what is stored of it, when it was received, and the receipt given for it."""

    id: UUID
    kind: str
    sender: str
    sender_system_id: int
    document_id: str
    business_type: int
    status_code: str | None
    code: str | None
    subject: str | None
    urgency: int
    due_date: date | None
    sha256: bytes
    size_bytes: int
    signature: dict[str, Any]
    related_message_id: UUID | None
    received_at: datetime
    receipt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": str(self.id),
            "kind": self.kind,
            "sender": self.sender,
            "document_id": self.document_id,
            "business_type": self.business_type,
            "status_code": self.status_code,
            "code": self.code,
            "subject": self.subject,
            "urgency": self.urgency,
            "due_date": None if self.due_date is None else self.due_date.isoformat(),
            "sha256": self.sha256.hex(),
            "size_bytes": self.size_bytes,
            "signature": self.signature,
            "related_message_id": None if self.related_message_id is None else str(self.related_message_id),
            "received_at": self.received_at.isoformat(),
        }


_COLUMNS = """id, kind, sender, sender_system_id, document_id, business_type, status_code, code, subject,
    urgency, due_date, sha256, size_bytes, signature, related_message_id, received_at, receipt"""

# Stores an accepted package in one statement (atomic on its own): the message ($1..$17 the MessageRow
# fields in order), the first chunk of its original bytes ($18), the report on its attachments ($19
# official, $20 the report as JSON; NULL: none), its deliveries (parallel arrays $21 ids, $22
# recipients, $23 modes; urgency the message's), its audit entries ($24 actor, parallel arrays $25
# actions, $26 message ids, $27 delivery ids, $28 details as JSON, written in that order), and wakes
# the delivery workers at COMMIT when $29. Only while the registry's version is $30 (NULL: whatever
# it is): otherwise nothing is written. Returns the deliveries as stored, by recipient.
_INSERT_ACCEPTED = f"""
WITH m AS (
    INSERT INTO messages (id, kind, sender, sender_system_id, document_id, business_type, status_code,
                          code, subject, urgency, due_date, sha256, size_bytes, signature,
                          related_message_id, received_at, receipt)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17
    WHERE $30::bigint IS NULL OR $30 = (SELECT version FROM registry_version)
    RETURNING id
), body AS (
    INSERT INTO message_bodies (message_id, chunks) SELECT id, 1 FROM m
), first_chunk AS (
    INSERT INTO message_body_chunks (message_id, seq, data) SELECT id, 0, $18 FROM m
), report AS (
    INSERT INTO message_attachment_reports (message_id, official, report)
    SELECT id, $19, $20::jsonb FROM m WHERE $20::text IS NOT NULL
), entries AS ({audit.insert_entries(24, when="EXISTS (SELECT FROM m)")}), d AS (
    INSERT INTO deliveries (id, message_id, recipient, mode, state, urgency, next_attempt_at)
    SELECT t.id, m.id, t.recipient, t.mode, 'queued', $10,
           CASE WHEN t.mode IN ('push', 'upstream') THEN now() END
    FROM m, unnest($21::uuid[], $22::text[], $23::delivery_mode[]) AS t (id, recipient, mode)
    RETURNING *
), wake AS (
    SELECT pg_notify('{CHANNEL}', '') FROM m WHERE $29
)
-- A SELECT in WITH runs only where it is referenced: the condition below is always true.
SELECT {DELIVERY_COLUMNS} FROM d WHERE (SELECT count(*) FROM wake) >= 0 ORDER BY d.recipient
"""
# One chunk of the original bytes after the first: $1 message id, $2 its place (1, 2, ...), $3 the bytes.
_INSERT_CHUNK = "INSERT INTO message_body_chunks (message_id, seq, data) VALUES ($1, $2, $3)"
# How many chunks the body has, once they are all written: $1 message id, $2 count.
_SET_CHUNKS = "UPDATE message_bodies SET chunks = $2 WHERE message_id = $1"
# One message: $1 id.
_BY_ID = f"SELECT {_COLUMNS} FROM messages WHERE id = $1"
# The edoc a sender already sent under a DocumentId and business type: $1 sender, $2 DocumentId, $3 type.
_EDOC_BY_IDENTITY = f"""
SELECT {_COLUMNS} FROM messages
WHERE kind = 'edoc' AND sender = $1 AND document_id = $2 AND business_type = $3
"""
# A status package already received with identical bytes: $1 sender, $2 sha256.
_STATUS_BY_HASH = f"SELECT {_COLUMNS} FROM messages WHERE kind = 'status' AND sender = $1 AND sha256 = $2"
# The newest edoc carrying a DocumentId from a sender (any business type): $1 sender, $2 DocumentId.
_EDOC_BY_DOCUMENT = f"""
SELECT {_COLUMNS} FROM messages WHERE kind = 'edoc' AND sender = $1 AND document_id = $2
ORDER BY business_type, received_at LIMIT 1
"""
# The edocs carrying a DocumentId that an agency holds a delivery of, originals first, oldest first:
# $1 DocumentId, $2 the recipient, $3 the sender (NULL: any).
_EDOCS_RECEIVED_BY = f"""
SELECT {_COLUMNS} FROM messages m
WHERE m.kind = 'edoc' AND m.document_id = $1 AND ($3::text IS NULL OR m.sender = $3)
  AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient = $2)
ORDER BY m.business_type, m.received_at
"""
# Keeps the receipt given for a message: $1 message id, $2 receipt.
_SET_RECEIPT = "UPDATE messages SET receipt = $2 WHERE id = $1"
# How many chunks the original bytes have (no row: removed by retention): $1 message id.
_BODY_CHUNKS = "SELECT chunks FROM message_bodies WHERE message_id = $1"
# A message with how many chunks its original bytes have and the first of them, for sending it (no row:
# the message or its bytes are gone, removed by retention): $1 message id.
_WITH_HEAD = f"""
SELECT {_COLUMNS}, b.chunks AS chunk_count, c.data AS head
FROM messages m JOIN message_bodies b ON b.message_id = m.id
    JOIN message_body_chunks c ON c.message_id = m.id AND c.seq = 0
WHERE m.id = $1
"""
# One chunk of the original bytes: $1 message id, $2 its place.
_BODY_CHUNK = "SELECT data FROM message_body_chunks WHERE message_id = $1 AND seq = $2"


def _message(row: Record | dict[str, Any]) -> MessageRow:
    values = dict(row)
    values["signature"] = json.loads(values["signature"])
    return MessageRow(**values)


async def insert_accepted(
    conn: Connection,
    message: MessageRow,
    body: Iterable[bytes],
    deliveries: Sequence[NewDelivery],
    actor: str,
    events: Sequence[Event],
    report: tuple[bool, dict[str, Any]] | None = None,
    registry_version: int | None = None,
) -> list[DeliveryRow]:
    """Store an accepted package with its receipt, deliveries, attachment report and audit entries;
    the deliveries as stored, by recipient. A package in one chunk (most) is one statement, atomic
    without a transaction; the chunks after the first (so a large package never travels to the
    database in one piece) follow one at a time, so a package of several must be stored inside the
    caller's transaction.

    ``registry_version``: the version of the registry the package was checked under. When the
    registry has moved on since, nothing is written and RegistryChanged is raised."""
    if registry_version is not None and not deliveries:
        raise ValueError("a package stored on condition has deliveries (their rows say it was written)")
    chunks = iter(body)
    first, second = next(chunks, b""), next(chunks, None)
    if second is not None and not conn.is_in_transaction():
        raise RuntimeError("a package of several chunks is stored inside a transaction")
    actions, message_ids, delivery_ids, details = audit.columns(events)
    rows = await conn.fetch(
        _INSERT_ACCEPTED,
        message.id,
        message.kind,
        message.sender,
        message.sender_system_id,
        message.document_id,
        message.business_type,
        message.status_code,
        message.code,
        message.subject,
        message.urgency,
        message.due_date,
        message.sha256,
        message.size_bytes,
        json.dumps(message.signature, ensure_ascii=False),
        message.related_message_id,
        message.received_at,
        message.receipt,
        first,
        None if report is None else report[0],
        None if report is None else json.dumps(report[1], ensure_ascii=False),
        [d.id for d in deliveries],
        [d.recipient for d in deliveries],
        [d.mode for d in deliveries],
        actor,
        actions,
        message_ids,
        delivery_ids,
        details,
        any_pushed(deliveries),
        registry_version,
    )
    if not rows and registry_version is not None:
        raise RegistryChanged(registry_version)
    count = 1
    for chunk in itertools.chain([second] if second is not None else [], chunks):
        await conn.execute(_INSERT_CHUNK, message.id, count, chunk)
        count += 1
    if count != 1:
        await conn.execute(_SET_CHUNKS, message.id, count)
    return [delivery_from_row(row) for row in rows]


async def set_receipt(conn: Connection, message_id: UUID, receipt: str) -> None:
    await conn.execute(_SET_RECEIPT, message_id, receipt)


async def message_by_id(conn: Connection, message_id: UUID) -> MessageRow | None:
    row = await conn.fetchrow(_BY_ID, message_id)
    return None if row is None else _message(row)


async def edoc_by_identity(
    conn: Connection, sender: str, document_id: str, business_type: int
) -> MessageRow | None:
    row = await conn.fetchrow(_EDOC_BY_IDENTITY, sender, document_id, business_type)
    return None if row is None else _message(row)


async def status_by_hash(conn: Connection, sender: str, sha256: bytes) -> MessageRow | None:
    row = await conn.fetchrow(_STATUS_BY_HASH, sender, sha256)
    return None if row is None else _message(row)


async def edoc_by_document(conn: Connection, sender: str, document_id: str) -> MessageRow | None:
    row = await conn.fetchrow(_EDOC_BY_DOCUMENT, sender, document_id)
    return None if row is None else _message(row)


async def edocs_received_by(
    conn: Connection, document_id: str, recipient: str, sender: str | None
) -> list[MessageRow]:
    rows = await conn.fetch(_EDOCS_RECEIVED_BY, document_id, recipient, sender)
    return [_message(row) for row in rows]


async def message_with_head(conn: Connection, message_id: UUID) -> tuple[MessageRow, int, bytes] | None:
    """The message, how many chunks its original bytes have and the first one; None: gone."""
    row = await conn.fetchrow(_WITH_HEAD, message_id)
    if row is None:
        return None
    values = dict(row)
    count, head = values.pop("chunk_count"), values.pop("head")
    return _message(values), count, head


async def body_chunks(conn: Connection, message_id: UUID) -> int | None:
    """How many chunks the original bytes have; None when retention removed them."""
    count: int | None = await conn.fetchval(_BODY_CHUNKS, message_id)
    return count


async def body_chunk(conn: Connection, message_id: UUID, seq: int) -> bytes | None:
    data: bytes | None = await conn.fetchval(_BODY_CHUNK, message_id, seq)
    return data


async def body(conn: Connection, message_id: UUID) -> bytes | None:
    """The original bytes whole: for small packages and tests; large ones are read chunk by chunk."""
    count = await body_chunks(conn, message_id)
    if count is None:
        return None
    parts = [await body_chunk(conn, message_id, seq) for seq in range(count)]
    return b"".join(part or b"" for part in parts)


@dataclass(frozen=True)
class DocumentQuery:
    """A search over accepted documents (edoc packages); None means "any"."""

    document_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    status: str | None = None  # a delivery state (queued, acked...) or a business status code (01..16)
    since: datetime | None = None
    until: datetime | None = None
    visible_to: list[str] | None = None  # OrganIds of a system; None for auditors and admins
    after: tuple[datetime, UUID] | None = None  # the cursor: the last (received_at, id) seen
    overdue_on: date | None = None  # only documents overdue on this day
    limit: int = 50


# A recipient of document m that has neither completed (06) nor refused (02) it, and still holds it
# (shared with the overdue alerts).
UNFINISHED_DELIVERY = f"""
SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state <> 'withdrawn'
  AND coalesce({CURRENT_PROGRESS}, '') NOT IN ('06', '02')
"""
# How many documents are overdue on a day: $1 the day.
_OVERDUE_COUNT = f"""
SELECT count(*) FROM messages m
WHERE m.kind = 'edoc' AND m.business_type = 0 AND m.due_date < $1 AND EXISTS ({UNFINISHED_DELIVERY})
"""
# Whether a document is overdue: $1 message id, $2 today, $3 the recipients that count (NULL: all).
_IS_OVERDUE = f"""
SELECT EXISTS (SELECT 1 FROM messages m WHERE m.id = $1 AND m.kind = 'edoc' AND m.due_date < $2
               AND EXISTS ({UNFINISHED_DELIVERY} AND ($3::text[] IS NULL OR d.recipient = ANY($3))))
"""
# Searches documents: $1 DocumentId, $2 sender, $3 recipient, $4 state or status code, $5 since, $6 until,
# $7 OrganIds the caller acts for (NULL: everything), $8/$9 the cursor (received_at, id), $10 limit,
# $11 today for overdue documents (NULL: all). A caller that is only a recipient matches the recipient,
# status and overdue filters on its own deliveries, never on another recipient's.
_SEARCH = f"""
SELECT {_COLUMNS} FROM messages m
WHERE m.kind = 'edoc'
  AND ($1::text IS NULL OR m.document_id = $1)
  AND ($2::text IS NULL OR m.sender = $2)
  AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient = $3
        AND ($7::text[] IS NULL OR m.sender = ANY($7) OR d.recipient = ANY($7))))
  AND ($4::text IS NULL OR EXISTS (
        SELECT 1 FROM deliveries d WHERE d.message_id = m.id
          AND ($7::text[] IS NULL OR m.sender = ANY($7) OR d.recipient = ANY($7))
          AND (d.state::text = $4 OR $4 = {CURRENT_STATUS})))
  AND ($5::timestamptz IS NULL OR m.received_at >= $5)
  AND ($6::timestamptz IS NULL OR m.received_at < $6)
  AND ($7::text[] IS NULL OR m.sender = ANY($7) OR EXISTS (
        SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient = ANY($7)))
  AND ($8::timestamptz IS NULL OR (m.received_at, m.id) > ($8, $9::uuid))
  AND ($11::date IS NULL OR (m.due_date < $11 AND EXISTS ({UNFINISHED_DELIVERY}
        AND ($7::text[] IS NULL OR m.sender = ANY($7) OR d.recipient = ANY($7)))))
ORDER BY m.received_at, m.id
LIMIT $10
"""


async def is_overdue(
    conn: Connection, message_id: UUID, today: date, recipients: Sequence[str] | None = None
) -> bool:
    """Past its DueDate with a recipient (among ``recipients``, or any) neither done nor refusing."""
    chosen = None if recipients is None else list(recipients)
    return bool(await conn.fetchval(_IS_OVERDUE, message_id, today, chosen))


async def overdue_count(conn: Connection, today: date) -> int:
    return int(await conn.fetchval(_OVERDUE_COUNT, today))


async def search_documents(conn: Connection, query: DocumentQuery) -> list[MessageRow]:
    arguments = _search_arguments(query, query.after, query.limit)
    return [_message(row) for row in await conn.fetch(_SEARCH, *arguments)]


def _search_arguments(
    query: DocumentQuery, after: tuple[datetime, UUID] | None, limit: int | None
) -> tuple[Any, ...]:
    """The parameters of _SEARCH (and of _COUNT, which has neither cursor nor limit)."""
    after_at, after_id = after if after is not None else (None, None)
    return (
        query.document_id,
        query.sender,
        query.recipient,
        query.status,
        query.since,
        query.until,
        query.visible_to,
        after_at,
        after_id,
        limit,
        query.overdue_on,
    )


# How many documents a search matches (the same filters, no cursor, no limit): as _SEARCH.
_COUNT = f"SELECT count(*) FROM ({_SEARCH}) AS found"
# Which of some documents are overdue on a day: $1 message ids, $2 the day.
_OVERDUE_AMONG = f"""
SELECT m.id FROM messages m
WHERE m.id = ANY($1::uuid[]) AND m.kind = 'edoc' AND m.due_date < $2 AND EXISTS ({UNFINISHED_DELIVERY})
"""


async def count_documents(conn: Connection, query: DocumentQuery) -> int:
    """How many documents match ``query`` in all (its cursor and limit are ignored)."""
    return int(await conn.fetchval(_COUNT, *_search_arguments(query, None, None)))


async def overdue_among(conn: Connection, message_ids: list[UUID], today: date) -> set[UUID]:
    return {row["id"] for row in await conn.fetch(_OVERDUE_AMONG, message_ids, today)}


async def count_edocs(conn: Connection) -> int:
    """How many documents the axis holds (the demo sends its traffic to an empty axis only)."""
    return int(await conn.fetchval("SELECT count(*) FROM messages WHERE kind = 'edoc'"))
