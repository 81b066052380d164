"""The native exchange API: submit packages, pull the inbox, download, acknowledge."""

from __future__ import annotations

import tempfile
from typing import Any

from aiohttp import web

from exchange import bounds, pull, timeline
from exchange.api.auth import allow
from exchange.api.bodies import file_chunks, receive_package, send_stream
from exchange.api.common import path_uuid, query_int, read_json
from exchange.api.keys import CALLER, INTAKE, METRICS, POOL, SEALER_WAITER, SETTINGS, SIGNER
from exchange.errors import BadRequest, ExchangeError, InvalidInput, NotFound
from exchange.evidence import write_bundle
from exchange.model import Role
from exchange.store import deliveries as delivery_store

MAX_INBOX = 500


@allow(Role.SYSTEM)
async def submit_package(request: web.Request) -> web.Response:
    """Accept an edoc or status package: 201 when new, 200 when the identical one was accepted before."""
    metrics = request.app[METRICS]
    intake = request.app[INTAKE]
    try:
        with await receive_package(request, intake.limits) as body:
            if body.root is None:
                raise BadRequest("the body must be an edXML package")
            accepted = await intake.submit(request[CALLER], body)
    except ExchangeError as error:
        metrics.rejected.labels(error.code).inc()
        raise
    if accepted.created:
        metrics.accepted.labels(accepted.message.kind).inc()
        metrics.verdicts.labels(accepted.message.signature["verdict"]).inc()
        if accepted.attachments is not None and accepted.attachments.checked:
            for verdict, count in accepted.attachments.verdict_counts().items():
                metrics.attachment_verdicts.labels(verdict).inc(count)
            metrics.official_documents.labels(str(accepted.attachments.official).lower()).inc()
    return web.json_response(accepted.as_dict(), status=201 if accepted.created else 200)


@allow(Role.SYSTEM)
async def inbox(request: web.Request) -> web.Response:
    caller = request[CALLER]
    recipients = list(caller.organ_ids)
    if wanted := request.query.get("recipient"):
        if wanted not in recipients:
            raise NotFound(f"no inbox {wanted} for {caller.name}")
        recipients = [wanted]
    kind = request.query.get("kind")
    if kind not in (None, "edoc", "status"):
        raise InvalidInput("kind must be edoc or status")
    limit = query_int(request, "limit", default=100, most=MAX_INBOX)
    async with request.app[POOL].acquire() as conn:
        items = await delivery_store.inbox(conn, recipients, kind, limit)
    return web.json_response({"items": [_inbox_item(item) for item in items]})


@allow(Role.SYSTEM)
async def download(request: web.Request) -> web.StreamResponse:
    """The package as this recipient receives it: the original bytes plus the axis's TraceHeader."""
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        delivery, message, package = await pull.fetch(
            conn,
            request[CALLER],
            path_uuid(request, "delivery_id", "delivery"),
            request.app[SETTINGS].delivery.trace_organ_id,
        )
    return await send_stream(
        request,
        package.stream(pool).chunks(),
        package.size,
        "application/xml",
        headers={"X-Exchange-Delivery-Id": str(delivery.id), "X-Exchange-Message-Id": str(message.id)},
    )


@allow(Role.SYSTEM)
async def acknowledge(request: web.Request) -> web.Response:
    """done: out of the inbox; fail: back in it for another try, with the reason recorded."""
    body = await read_json(request)
    result = body.get("result") if isinstance(body, dict) else None
    if result not in ("done", "fail"):
        raise InvalidInput('the body must be {"result": "done" | "fail", "reason": "..."}')
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput("reason must be a string")
    bounds.check_text("reason", reason, bounds.REASON)
    async with request.app[POOL].acquire() as conn:
        updated = await pull.acknowledge(
            conn, request[CALLER], path_uuid(request, "delivery_id", "delivery"), result == "done", reason
        )
    return web.json_response(updated.as_dict())


def _inbox_item(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": str(item["delivery_id"]),
        "message_id": str(item["message_id"]),
        "kind": item["kind"],
        "sender": item["sender"],
        "recipient": item["recipient"],
        "document_id": item["document_id"],
        "subject": item["subject"],
        "status_code": item["status_code"],
        "received_at": item["received_at"].isoformat(),
        "attempts": item["attempts"],
        "downloaded": item["state"] == "delivered",
    }


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def get_message(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        view = await timeline.message_view(conn, request[CALLER], path_uuid(request, "message_id", "message"))
    return web.json_response(view)


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def get_trace(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        view = await timeline.trace(conn, request[CALLER], path_uuid(request, "message_id", "message"))
    return web.json_response(view)


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def get_evidence(request: web.Request) -> web.StreamResponse:
    return await evidence_download(request)


async def evidence_download(request: web.Request) -> web.StreamResponse:
    """A zip an auditor can verify offline: package, receipt, trace, chain proof, axis certificate.

    Served here and by the auditor pages, each route with its own roles.
    """
    message_id = path_uuid(request, "message_id", "message")
    # Made in a temporary file and sent from it: the package inside may be large.
    with tempfile.TemporaryFile() as bundle:
        async with request.app[POOL].acquire() as conn:
            await write_bundle(
                conn, request[CALLER], message_id, request.app[SIGNER], bundle, request.app[SEALER_WAITER]
            )
        size = bundle.tell()
        bundle.seek(0)
        return await send_stream(
            request,
            file_chunks(bundle),
            size,
            "application/zip",
            headers={"Content-Disposition": f'attachment; filename="evidence-{message_id}.zip"'},
        )
