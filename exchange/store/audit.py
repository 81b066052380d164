"""The audit log: one append per state change, in the same statement or transaction as the change."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from exchange.store.db import Connection, Record


def insert_entries(first: int, when: str = "true") -> str:
    """The statement that appends entries in order, its parameters numbered from ``first``: the actor,
    then parallel arrays of actions, message ids, delivery ids and details (JSON); see ``columns``.
    ``when``: a condition (SQL) for writing them at all, for a statement that audits what it changed."""
    actor, actions, message_ids, delivery_ids, details = (f"${n}" for n in range(first, first + 5))
    return f"""
INSERT INTO audit_log (actor, action, message_id, delivery_id, details)
SELECT {actor}, e.action, e.message_id, e.delivery_id, e.details::jsonb
FROM unnest({actions}::text[], {message_ids}::uuid[], {delivery_ids}::uuid[], {details}::text[])
    WITH ORDINALITY AS e (action, message_id, delivery_id, details, n)
WHERE {when}
ORDER BY e.n
"""


_APPEND = insert_entries(1)

# Every entry about a message, its deliveries, and the messages that report on it, in order: $1 message id.
_FOR_MESSAGE = """
SELECT a.id, a.at, a.actor, a.action, a.message_id, a.delivery_id, a.details, a.seq, a.prev_hash, a.hash,
       a.sealed_at
FROM audit_log a
WHERE a.id IN (
    -- One index lookup per kind of link, rather than one OR that forces a scan of the whole log.
    SELECT e.id FROM audit_log e
    WHERE e.message_id = ANY(ARRAY(
        SELECT $1::uuid UNION ALL SELECT m.id FROM messages m WHERE m.related_message_id = $1
    ))
    UNION
    SELECT e.id FROM audit_log e
    WHERE e.delivery_id = ANY(ARRAY(SELECT d.id FROM deliveries d WHERE d.message_id = $1))
)
ORDER BY a.at, a.id
"""


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry; the seal columns are set once the chain sealer has linked it."""

    id: int
    at: datetime
    actor: str
    action: str
    message_id: UUID | None
    delivery_id: UUID | None
    details: dict[str, Any]
    seq: int | None = None
    prev_hash: bytes | None = None
    hash: bytes | None = None
    sealed_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "message_id": None if self.message_id is None else str(self.message_id),
            "delivery_id": None if self.delivery_id is None else str(self.delivery_id),
            "details": self.details,
            "seq": self.seq,
            "prev_hash": None if self.prev_hash is None else self.prev_hash.hex(),
            "hash": None if self.hash is None else self.hash.hex(),
            "sealed_at": iso(self.sealed_at),
        }


def entry_from_row(row: Record) -> AuditEntry:
    values = dict(row)
    values["details"] = json.loads(values["details"])
    return AuditEntry(**values)


ENTRY_COLUMNS = "id, at, actor, action, message_id, delivery_id, details, seq, prev_hash, hash, sealed_at"


@dataclass(frozen=True)
class Event:
    """An audit entry to write."""

    action: str
    message_id: UUID | None = None
    delivery_id: UUID | None = None
    details: Mapping[str, Any] | None = None


async def append(conn: Connection, actor: str, events: Sequence[Event]) -> None:
    if events:
        await conn.execute(_APPEND, actor, *columns(events))


def columns(events: Sequence[Event]) -> tuple[list[str], list[UUID | None], list[UUID | None], list[str]]:
    """The entries as parallel arrays (action, message id, delivery id, details as JSON), in order."""
    return (
        [e.action for e in events],
        [e.message_id for e in events],
        [e.delivery_id for e in events],
        [json.dumps(e.details or {}, ensure_ascii=False, default=str) for e in events],
    )


async def entries_for_message(conn: Connection, message_id: UUID) -> list[AuditEntry]:
    return [entry_from_row(row) for row in await conn.fetch(_FOR_MESSAGE, message_id)]
