"""Searching documents, and the operators' view of deliveries."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

from aiohttp import web

from exchange.api.auth import allow
from exchange.api.common import query_int, query_text, read_json
from exchange.api.keys import CALLER, POOL
from exchange.clock import today_in_vietnam
from exchange.errors import InvalidInput
from exchange.model import Role
from exchange.operations import requeue_deliveries
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store.messages import DocumentQuery

MAX_PAGE = 500
FIRST_YEAR, LAST_YEAR = 1900, 9998
_STATES = set(delivery_store.STATES)


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def search_documents(request: web.Request) -> web.Response:
    """Documents by id, sender, recipient, status and date; a system searches its own traffic only."""
    caller = request[CALLER]
    query = DocumentQuery(
        document_id=query_text(request, "document_id"),
        sender=query_text(request, "sender"),
        recipient=query_text(request, "recipient"),
        status=_status(query_text(request, "status")),
        since=_moment(query_text(request, "since"), "since"),
        until=_moment(query_text(request, "until"), "until"),
        visible_to=list(caller.serving) if caller.role is Role.SYSTEM else None,
        after=decode_cursor(query_text(request, "cursor")),
        overdue_on=today_in_vietnam() if request.query.get("overdue") in ("1", "true") else None,
        limit=query_int(request, "limit", default=50, most=MAX_PAGE),
    )
    async with request.app[POOL].acquire() as conn:
        found = await message_store.search_documents(conn, query)
    last = found[-1] if len(found) == query.limit else None
    return web.json_response(
        {
            "items": [message.as_dict() for message in found],
            "next_cursor": None if last is None else encode_cursor(last.received_at, last.id),
        }
    )


@allow(Role.ADMIN)
async def list_deliveries(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in _STATES:
        raise InvalidInput(f"state must be one of {', '.join(sorted(_STATES))}")
    async with request.app[POOL].acquire() as conn:
        rows = await delivery_store.list_deliveries(
            conn, state, query_int(request, "limit", default=100, most=MAX_PAGE)
        )
    return web.json_response({"items": [row.as_dict() for row in rows]})


@allow(Role.ADMIN)
async def requeue(request: web.Request) -> web.Response:
    """Put failed or expired deliveries back in the queue: {"delivery_ids": [...]}."""
    body = await read_json(request)
    raw = body.get("delivery_ids") if isinstance(body, dict) else None
    if not isinstance(raw, list) or not raw:
        raise InvalidInput('the body must be {"delivery_ids": ["<uuid>", ...]}')
    try:
        ids = [UUID(str(item)) for item in raw]
    except ValueError:
        raise InvalidInput("delivery_ids must be UUIDs") from None
    async with request.app[POOL].acquire() as conn:
        requeued = await requeue_deliveries(conn, request[CALLER].name, ids)
    return web.json_response(
        {"requeued": [str(i) for i in requeued], "not_requeued": [str(i) for i in ids if i not in requeued]}
    )


def _status(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw in _STATES or (len(raw) == 2 and raw.isdigit()):
        return raw
    raise InvalidInput("status must be a delivery state or a two-digit business status code")


def _moment(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date or time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} must carry a time zone (e.g. 2026-11-20T00:00:00+07:00)")
    return _in_range(moment, name)


def _in_range(moment: datetime, name: str) -> datetime:
    """Years 1900 to 9998: nothing the axis holds is older, and the edges overflow once in UTC."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InvalidInput(f"{name} must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return moment


def encode_cursor(at: datetime, message_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{message_id}".encode()).decode()


def decode_cursor(raw: str | None) -> tuple[datetime, UUID] | None:
    if not raw:
        return None
    try:
        at, _, message_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return _in_range(moment, "cursor"), UUID(message_id)
    except (ValueError, InvalidInput):
        raise InvalidInput("cursor is not one this server gave out") from None
