"""A document's timeline, as the caller may see it, for the trace API, the auditor pages and the CLI.

What each caller sees is decided by ``exchange.visibility``; this module only assembles it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from exchange import visibility
from exchange.attachment_check import api_view, official_view
from exchange.clock import today_in_vietnam
from exchange.edxml.codes import StatusCode
from exchange.errors import NotFound
from exchange.model import System
from exchange.store import attachment_reports, audit
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store import statuses as status_store
from exchange.store.db import Connection
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow


async def visible_message(
    conn: Connection, caller: System | None, message_id: UUID
) -> tuple[MessageRow, list[DeliveryRow]]:
    """The message and all its deliveries, or NotFound (also when the caller may not see it).

    The deliveries are every one of them, for the visibility rules to judge: show only
    ``visibility.visible_deliveries`` of them.
    """
    message = await message_store.message_by_id(conn, message_id)
    deliveries = [] if message is None else await delivery_store.deliveries_of(conn, message_id)
    if message is None or not visibility.may_see(caller, message, deliveries):
        raise NotFound(f"no message {message_id}")
    return message, deliveries


def _label(code: str | None) -> str | None:
    return None if code is None else StatusCode(code).label


async def message_view(conn: Connection, caller: System | None, message_id: UUID) -> dict[str, Any]:
    message, deliveries = await visible_message(conn, caller, message_id)
    return await _view(conn, caller, message, deliveries)


async def _view(
    conn: Connection, caller: System | None, message: MessageRow, deliveries: list[DeliveryRow]
) -> dict[str, Any]:
    shown = visibility.visible_deliveries(caller, message, deliveries)
    everyone = len(shown) == len(deliveries)
    overdue = await message_store.is_overdue(
        conn, message.id, today_in_vietnam(), None if everyone else [d.recipient for d in shown]
    )
    return {
        **message.as_dict(),
        "overdue": overdue,
        **_attachments(await attachment_reports.report_of(conn, message.id)),
        "deliveries": [{**d.as_dict(), "business_status_label": _label(d.business_status)} for d in shown],
    }


def _attachments(report: dict[str, Any] | None) -> dict[str, Any]:
    return {"attachments": api_view(report), "official_document": official_view(report)}


async def trace(conn: Connection, caller: System | None, message_id: UUID) -> dict[str, Any]:
    """Every event the caller may see in time order, and the status history of each delivery shown."""
    message, deliveries = await visible_message(conn, caller, message_id)
    view = await _view(conn, caller, message, deliveries)
    shows = visibility.event_filter(caller, message, deliveries)
    for delivery in view["deliveries"]:
        delivery["statuses"] = [
            {**row.as_dict(), "label": _label(row.code)}
            for row in await status_store.history(conn, UUID(delivery["delivery_id"]))
        ]
    view["events"] = [
        entry.as_dict() for entry in await audit.entries_for_message(conn, message_id) if shows.shows(entry)
    ]
    return view
