"""Queries on ``business_statuses``: what each recipient reported about a document."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from exchange.store.db import Connection

# A delivery's current business status, for queries that name the delivery ``d``: the latest status
# that followed from the ones before. Flagged ones (late, out of order, after a final 02 or 06) are
# history only, so the current status never moves backwards. Every reader of "the current status"
# (messages, search, VXP getSentEdocList, overdue) uses this one definition.
CURRENT_STATUS = """(SELECT b.code FROM business_statuses b
    WHERE b.delivery_id = d.id AND b.flag IS NULL ORDER BY b.id DESC LIMIT 1)"""
# The same, among the recipient's progress statuses (01-06) only: what deadlines are judged on.
CURRENT_PROGRESS = """(SELECT b.code FROM business_statuses b
    WHERE b.delivery_id = d.id AND b.flag IS NULL AND b.code IN ('01', '02', '03', '04', '05', '06')
    ORDER BY b.id DESC LIMIT 1)"""

# Records one reported status: $1 delivery id, $2 status message id, $3 code, $4 description, $5 staff,
# $6 reported at, $7 flag.
_INSERT = """
INSERT INTO business_statuses (delivery_id, status_message_id, code, description, staff, reported_at, flag)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
# The status history of one delivery, oldest first: $1 delivery id.
_HISTORY = """
SELECT id, delivery_id, status_message_id, code, description, staff, reported_at, received_at, flag
FROM business_statuses WHERE delivery_id = $1 ORDER BY id
"""


@dataclass(frozen=True)
class StatusRow:
    id: int
    delivery_id: UUID
    status_message_id: UUID
    code: str
    description: str | None
    staff: str | None
    reported_at: datetime | None
    received_at: datetime
    flag: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "description": self.description,
            "staff": self.staff,
            "reported_at": None if self.reported_at is None else self.reported_at.isoformat(),
            "received_at": self.received_at.isoformat(),
            "status_message_id": str(self.status_message_id),
            "flag": self.flag,
            # Kept in the history but never the current status (see CURRENT_STATUS).
            "out_of_order": self.flag is not None,
        }


async def record(
    conn: Connection,
    delivery_id: UUID,
    status_message_id: UUID,
    code: str,
    description: str | None,
    staff: str | None,
    reported_at: datetime | None,
    flag: str | None,
) -> None:
    await conn.execute(_INSERT, delivery_id, status_message_id, code, description, staff, reported_at, flag)


async def history(conn: Connection, delivery_id: UUID) -> list[StatusRow]:
    return [StatusRow(**dict(row)) for row in await conn.fetch(_HISTORY, delivery_id)]
