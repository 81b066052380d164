"""A document's complete timeline across all recipients, for the trace API and the CLI."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from exchange.attachment_check import api_view, official_view
from exchange.clock import today_in_vietnam
from exchange.edxml.codes import StatusCode
from exchange.errors import NotFound
from exchange.model import Role, System
from exchange.store import attachment_reports, audit
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store import statuses as status_store
from exchange.store.db import Connection
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow


def may_see(caller: System | None, message: MessageRow, deliveries: list[DeliveryRow]) -> bool:
    """Auditors and admins see everything; a system sees what it sent or received."""
    if caller is None or caller.role in (Role.AUDITOR, Role.ADMIN):
        return True
    mine = set(caller.organ_ids)
    return message.sender in mine or any(d.recipient in mine for d in deliveries)


async def visible_message(
    conn: Connection, caller: System | None, message_id: UUID
) -> tuple[MessageRow, list[DeliveryRow]]:
    """The message and its deliveries, or NotFound (also when the caller may not see it)."""
    message = await message_store.message_by_id(conn, message_id)
    deliveries = [] if message is None else await delivery_store.deliveries_of(conn, message_id)
    if message is None or not may_see(caller, message, deliveries):
        raise NotFound(f"no message {message_id}")
    return message, deliveries


def _label(code: str | None) -> str | None:
    return None if code is None else StatusCode(code).label


async def message_view(conn: Connection, caller: System | None, message_id: UUID) -> dict[str, Any]:
    message, deliveries = await visible_message(conn, caller, message_id)
    return {
        **message.as_dict(),
        "overdue": await message_store.is_overdue(conn, message_id, today_in_vietnam()),
        **_attachments(await attachment_reports.report_of(conn, message_id)),
        "deliveries": [
            {**d.as_dict(), "business_status_label": _label(d.business_status)} for d in deliveries
        ],
    }


def _attachments(report: dict[str, Any] | None) -> dict[str, Any]:
    return {"attachments": api_view(report), "official_document": official_view(report)}


async def trace(conn: Connection, caller: System | None, message_id: UUID) -> dict[str, Any]:
    """Every event in time order, and each recipient's status history."""
    view = await message_view(conn, caller, message_id)
    for delivery in view["deliveries"]:
        delivery["statuses"] = [
            {**row.as_dict(), "label": _label(row.code)}
            for row in await status_store.history(conn, UUID(delivery["delivery_id"]))
        ]
    view["events"] = [entry.as_dict() for entry in await audit.entries_for_message(conn, message_id)]
    return view
