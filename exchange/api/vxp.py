"""The VXP facade: the national axis's client protocol on top of the same exchange.

A DMS built on the SDK connects by changing only its endpoint, systemid and secret.
Documents and statuses go through the same intake, deliveries and statuses as the
native API, so either side can send to the other. docIds are delivery ids for what a
system receives and message ids for what it sends. Every answer carries status,
ErrorCode and ErrorDesc, never a JSON null, and sendEdoc answers are ASCII with DocId.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from exchange import bounds, pull, registry_control
from exchange.api.auth import vxp
from exchange.api.bodies import base64_json, base64_size, receive_package, send_stream
from exchange.api.errors import vxp_failure
from exchange.api.keys import CALLER, INTAKE, POOL, SETTINGS, VXP_PARAMS
from exchange.clock import VIETNAM
from exchange.edxml.codes import STATUS_LABELS, StatusCode
from exchange.errors import ExchangeError
from exchange.intake import Scope
from exchange.store import agencies as agency_store
from exchange.store import deliveries as delivery_store
from exchange.vxp.protocol import Operation, Use, VxpFailure, check_digest, ok, parse_to_header

MAX_LIST = 500
# What the SDK writes after the package in sendEdoc.
SDK_TRAILER = b"\r\n"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    # ensure_ascii: the SDK reads sendEdoc answers as US-ASCII; \\u escapes keep every answer safe.
    return web.json_response(body, status=status, dumps=lambda data: json.dumps(data, ensure_ascii=True))


def refusal(error: ExchangeError, *, with_doc_id: bool = False) -> web.Response:
    """A native refusal said in VXP terms."""
    failure = vxp_failure(error)
    return _answer(failure.body(with_doc_id=with_doc_id), failure.http_status)


def send_edoc_refusal(error: ExchangeError) -> web.Response:
    return refusal(error, with_doc_id=True)


def operation(name: str, use: Use = Use.READ, *, reads_body: bool = False) -> Callable[[Handler], Handler]:
    """A VXP operation: HMAC-authenticated and bound to ``name``; every native refusal said in VXP terms."""

    def wrap(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ExchangeError as error:
                return refusal(error, with_doc_id=handler.__name__ == "send_edoc")

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return vxp(Operation(name, use, reads_body))(run)

    return wrap


def _param(request: web.Request, name: str) -> str | None:
    value = request[VXP_PARAMS].get(name)
    bounds.check_chars(f"XroadVnpt-{name}", value)  # a NUL would reach the database
    return value.strip() if value is not None else None


def _required(request: web.Request, name: str) -> str:
    value = _param(request, name)
    if not value:
        raise VxpFailure(400, "400", f"XroadVnpt-{name} is required")
    return value


def _doc_id(request: web.Request) -> UUID:
    raw = _required(request, "docid")  # names are matched without regard to case: docId, docid
    try:
        return UUID(raw)
    except ValueError:
        raise VxpFailure(404, "404", f"no document {raw}") from None


def _message_type(request: web.Request) -> str:
    kind = (_param(request, "messagetype") or "edoc").lower()
    if kind not in ("edoc", "status"):
        raise VxpFailure(400, "400", "XroadVnpt-messagetype must be edoc or status")
    return kind


def _time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S")


@operation("sendEdoc", Use.SEND, reads_body=True)
async def send_edoc(request: web.Request) -> web.StreamResponse:
    """POST /sendEdoc: the raw edXML (the SDK adds a CRLF), checked against the signed hash-file."""
    caller = request[CALLER]
    sender = _required(request, "from")
    if sender not in caller.organ_ids:
        raise VxpFailure(403, "403", f"Don vi gui {sender} khong dung voi ma da dang ky cho {caller.name}")
    intake = request.app[INTAKE]
    with await receive_package(request, intake.limits, trailer=SDK_TRAILER) as body:
        check_digest(_param(request, "hash-file"), body.sha256)  # required by the signature check
        scope = Scope(only=parse_to_header(_param(request, "to")))
        accepted = await intake.submit(
            caller,
            body,
            expected_sender=sender,
            expected_kind=_message_type(request),
            scope=scope,
        )
    return _answer(ok(DocId=str(accepted.message.id)))


@operation("getReceivedEdocList")
async def get_received_edoc_list(request: web.Request) -> web.StreamResponse:
    caller = request[CALLER]
    async with request.app[POOL].acquire() as conn:
        items = await delivery_store.inbox(conn, caller.organ_ids, _message_type(request), MAX_LIST)
    return _answer(
        ok(
            data=[
                {
                    "docId": str(item["delivery_id"]),
                    "serviceType": "eDoc",
                    "messageType": item["kind"],
                    "created_time": _time(item["received_at"]),
                    "updated_time": _time(item["received_at"]),
                    "from": item["sender"],
                    "to": item["recipient"],
                    "status": item["state"],
                    "status_desc": "da tai" if item["state"] == "delivered" else "chua tai",
                }
                for item in items
            ]
        )
    )


@operation("getEdoc")
async def get_edoc(request: web.Request) -> web.StreamResponse:
    """POST /getEdoc: the package, base64; the client's filePath is ignored."""
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        _, _, package = await pull.fetch(
            conn, request[CALLER], _doc_id(request), request.app[SETTINGS].delivery.trace_organ_id
        )
    # The answer _answer(ok(data=<base64>)) would give, written as the package streams.
    head, tail = json.dumps(ok(data=""), ensure_ascii=True).encode("ascii").rsplit(b'""', 1)
    return await send_stream(
        request,
        base64_json(head + b'"', package.stream(pool).chunks(), b'"' + tail),
        len(head) + 2 + base64_size(package.size) + len(tail),
        "application/json",
        charset="utf-8",
    )


@operation("downloadEdoc")
async def download_edoc(request: web.Request) -> web.StreamResponse:
    """GET /downloadEdoc: the package bytes themselves."""
    doc_id = _doc_id(request)
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        _, _, package = await pull.fetch(
            conn, request[CALLER], doc_id, request.app[SETTINGS].delivery.trace_organ_id
        )
    return await send_stream(
        request,
        package.stream(pool).chunks(),
        package.size,
        "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{doc_id}.edxml"'},
    )


@operation("updateStatus", Use.CHANGE)
async def update_status(request: web.Request) -> web.StreamResponse:
    """POST /updateStatus: done and fail acknowledge the delivery; processing is recorded."""
    status = (_required(request, "status")).lower()
    if status not in ("done", "fail", "processing"):
        raise VxpFailure(400, "400", "XroadVnpt-status must be done, fail or processing")
    note = _param(request, "description")
    bounds.check_text("XroadVnpt-description", note, bounds.REASON)
    async with request.app[POOL].acquire() as conn:
        if status == "processing":
            await pull.processing(conn, request[CALLER], _doc_id(request), note)
        else:
            await pull.acknowledge(conn, request[CALLER], _doc_id(request), status == "done", note)
    return _answer(ok())


@operation("getSentEdocList")
async def get_sent_edoc_list(request: web.Request) -> web.StreamResponse:
    raw = _param(request, "docid")
    try:
        message_id = UUID(raw) if raw else None
    except ValueError:
        return _answer(ok(data=[]))
    async with request.app[POOL].acquire() as conn:
        rows = await delivery_store.sent(
            conn, request[CALLER].serving, _message_type(request), message_id, MAX_LIST
        )
    return _answer(ok(data=[_sent_item(row) for row in rows]))


def _sent_item(row: dict[str, Any]) -> dict[str, Any]:
    status = row["status"]
    return {
        "serviceType": "eDoc",
        "senderDocId": str(row["message_id"]),
        "receiverDocId": str(row["delivery_id"]),
        "fromCode": row["sender"],
        "toCode": row["recipient"],
        "title": row["subject"] or "",
        "notation": row["code"] or "",
        "messageType": row["kind"],
        "sentTime": _time(row["received_at"]),
        "receivedTime": _time(row["received"]),
        "sendStatus": row["state"],
        "sendStatusDesc": row["state"],
        "receiveStatus": status or "",
        "receiveStatusDesc": STATUS_LABELS[StatusCode(status)] if status else "",
    }


async def _count(request: web.Request, kind: str) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        count = await delivery_store.inbox_count(conn, request[CALLER].organ_ids, kind)
    return _answer(ok(count=count))


@operation("countReceiveEdoc")
async def count_receive_edoc(request: web.Request) -> web.StreamResponse:
    return await _count(request, "edoc")


@operation("countReceiveStatus")
async def count_receive_status(request: web.Request) -> web.StreamResponse:
    return await _count(request, "status")


@operation("getAgenciesList")
async def get_agencies_list(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        agencies = await agency_store.list_agencies(conn)
    return _answer(
        ok(
            data=[
                {
                    "id": a.organ_id,
                    "pid": a.parent or "",
                    "code": a.organ_id,
                    "name": a.name,
                    "mail": "",
                    "oldCode": a.organ_id,
                }
                for a in agencies
                if a.in_service
            ]
        )
    )


@operation("getAgenciesListQD20")
async def get_agencies_list_qd20(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        agencies = await agency_store.list_agencies(conn)
    return _answer(
        ok(
            data=[
                {"id": a.organ_id, "code": a.organ_id, "name": a.name, "mail": "", "code102": a.organ_id}
                for a in agencies
                if a.in_service
            ]
        )
    )


@operation("getSynchronizeUnit")
async def get_synchronize_unit(request: web.Request) -> web.StreamResponse:
    """The registry with a version per entry (its last change), deleted ones included, for sync."""
    async with request.app[POOL].acquire() as conn:
        rows = await agency_store.for_sync(conn)
    return _answer(
        ok(
            data=[
                {
                    "id": row["organ_id"],
                    "pid": row["parent_organ_id"] or "",
                    "code": row["organ_id"],
                    "name": row["name"],
                    "mail": "",
                    "version": int(row["updated_at"].timestamp()),
                    "centerCode": "",
                    "deleted": not row["in_service"],
                    "modifyDate": _time(row["updated_at"]),
                    "isAgency": True,
                }
                for row in rows
            ]
        )
    )


@operation("registerAgency", Use.CHANGE, reads_body=True)
async def register_agency(request: web.Request) -> web.StreamResponse:
    """POST /registerAgency: a unit directly under one of the caller's agencies, pending approval."""
    try:
        body = json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VxpFailure(400, "400", "the body must be JSON {code, pcode, name, mail}") from None
    if not isinstance(body, dict):
        raise VxpFailure(400, "400", "the body must be a JSON object")
    values = {"organ_id": body.get("code"), "name": body.get("name"), "parent": body.get("pcode")}
    async with request.app[POOL].acquire() as conn:
        await registry_control.register_child(conn, request[CALLER], values, request.app[SETTINGS])
    return _answer(ok())


@operation("deleteAgency", Use.CHANGE)
async def delete_agency(request: web.Request) -> web.StreamResponse:
    """POST /deleteAgency: take a unit the caller registered under one of its agencies out of service."""
    code = _required(request, "agencycode")
    async with request.app[POOL].acquire() as conn:
        await registry_control.delete_child(conn, request[CALLER], code, request.app[SETTINGS])
    return _answer(ok())


# name on the wire -> handler; served at the root (as the SDK calls them) and under /vxp/.
OPERATIONS: dict[str, Handler] = {
    "sendEdoc": send_edoc,
    "getReceivedEdocList": get_received_edoc_list,
    "getSentEdocList": get_sent_edoc_list,
    "getEdoc": get_edoc,
    "updateStatus": update_status,
    "countReceiveEdoc": count_receive_edoc,
    "countReceiveStatus": count_receive_status,
    "getAgenciesList": get_agencies_list,
    "getAgenciesListQD20": get_agencies_list_qd20,
    "getSynchronizeUnit": get_synchronize_unit,
    "registerAgency": register_agency,
    "deleteAgency": delete_agency,
}
