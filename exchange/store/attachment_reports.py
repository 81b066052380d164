"""Queries on ``message_attachment_reports``: how a message's attachments were judged at receipt."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from exchange.store.db import Connection

# Keeps the report of one message: $1 message id, $2 official, $3 the report (JSON).
_INSERT = "INSERT INTO message_attachment_reports (message_id, official, report) VALUES ($1, $2, $3::jsonb)"
# The report of one message: $1 message id.
_BY_MESSAGE = "SELECT report FROM message_attachment_reports WHERE message_id = $1"


async def insert_report(conn: Connection, message_id: UUID, official: bool, report: dict[str, Any]) -> None:
    await conn.execute(_INSERT, message_id, official, json.dumps(report, ensure_ascii=False))


async def report_of(conn: Connection, message_id: UUID) -> dict[str, Any] | None:
    text = await conn.fetchval(_BY_MESSAGE, message_id)
    return None if text is None else dict(json.loads(text))
