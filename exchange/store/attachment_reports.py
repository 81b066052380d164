"""Queries on ``message_attachment_reports``: how a message's attachments were judged at receipt."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from exchange.store.db import Connection

# The report of one message: $1 message id.
_BY_MESSAGE = "SELECT report FROM message_attachment_reports WHERE message_id = $1"


async def report_of(conn: Connection, message_id: UUID) -> dict[str, Any] | None:
    text = await conn.fetchval(_BY_MESSAGE, message_id)
    return None if text is None else dict(json.loads(text))
