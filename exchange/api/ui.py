"""The auditor web page under /ui/: server-rendered, usable without JavaScript.

An auditor (or admin) logs in with their API key; the key is kept in an HttpOnly,
SameSite=Strict cookie scoped to /ui/ and checked on every request like a bearer key.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from exchange import registry, timeline
from exchange.api.auth import UI_COOKIE, allow, public
from exchange.api.common import path_uuid
from exchange.api.exchange import evidence_download
from exchange.api.keys import CALLER, POOL, SETTINGS
from exchange.charts import bar_chart
from exchange.clock import VIETNAM, today_in_vietnam
from exchange.edxml.codes import BUSINESS_LABELS, STATUS_LABELS
from exchange.model import Role
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store import reports
from exchange.store.messages import DocumentQuery

REPORT_DAYS = 14
_BUSINESS = {int(kind): label for kind, label in BUSINESS_LABELS.items()}
_STATUS_CHOICES = [
    *((code.value, f"{code.value} {label}") for code, label in STATUS_LABELS.items()),
    *((state, f"chuyển: {state}") for state in delivery_store.STATES),
]


@public
@aiohttp_jinja2.template("ui/login.html")
async def login_form(request: web.Request) -> dict[str, Any]:
    return {"message": None, "caller": None}


@public
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    key = str(form.get("key", "")).strip()
    async with request.app[POOL].acquire() as conn:
        caller = await registry.authenticate(conn, key) if key else None
    if caller is None or caller.role not in (Role.AUDITOR, Role.ADMIN):
        message = "Khóa không hợp lệ." if caller is None else "Khóa này không phải của kiểm toán viên."
        return aiohttp_jinja2.render_template(
            "ui/login.html",
            request,
            {"message": message, "caller": None},
            status=401 if caller is None else 403,
        )
    response = web.HTTPSeeOther("/ui/")
    response.set_cookie(
        UI_COOKIE, key, httponly=True, samesite="Strict", path="/ui", secure=request.app[SETTINGS].server.tls
    )
    raise response


@allow(Role.AUDITOR, Role.ADMIN)
async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/ui/login")
    response.del_cookie(UI_COOKIE, path="/ui")
    raise response


@allow(Role.AUDITOR, Role.ADMIN)
@aiohttp_jinja2.template("ui/search.html")
async def search(request: web.Request) -> dict[str, Any]:
    q = request.query
    error = None
    try:
        since = _day(q.get("since"))
        until = _day(q.get("until"), end=True)
    except ValueError:
        since = until = None
        error = "Ngày không hợp lệ."
    query = DocumentQuery(
        document_id=q.get("document_id") or None,
        sender=q.get("sender") or None,
        recipient=q.get("recipient") or None,
        status=q.get("status") or None,
        since=since,
        until=until,
        overdue_on=today_in_vietnam() if q.get("overdue") == "true" else None,
        limit=200,
    )
    async with request.app[POOL].acquire() as conn:
        messages = await message_store.search_documents(conn, query)
    return {
        "caller": request[CALLER],
        "query": query,
        "messages": messages,
        "statuses": _STATUS_CHOICES,
        "since": q.get("since", ""),
        "until": q.get("until", ""),
        "overdue": q.get("overdue") == "true",
        "business_labels": _BUSINESS,
        "vietnam": VIETNAM,
        "error": error,
    }


@allow(Role.AUDITOR, Role.ADMIN)
@aiohttp_jinja2.template("ui/document.html")
async def document(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL].acquire() as conn:
        trace = await timeline.trace(conn, request[CALLER], path_uuid(request, "message_id", "message"))
    return {"caller": request[CALLER], "trace": trace, "business_labels": _BUSINESS}


@allow(Role.AUDITOR, Role.ADMIN)
async def evidence(request: web.Request) -> web.StreamResponse:
    return await evidence_download(request)


@allow(Role.AUDITOR, Role.ADMIN)
@aiohttp_jinja2.template("ui/operations.html")
async def operations(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL].acquire() as conn:
        per_day = await reports.documents_per_day(conn, REPORT_DAYS)
        latency = await reports.latency_percentiles(conn, REPORT_DAYS)
        trouble = await reports.trouble_by_agency(conn, REPORT_DAYS)
    return {
        "caller": request[CALLER],
        "days": REPORT_DAYS,
        "trouble_rows": trouble,
        "per_day": bar_chart(
            "Văn bản mỗi ngày", [f"{d:%d/%m}" for d, _ in per_day], [("văn bản", [n for _, n in per_day])]
        ),
        "latency": bar_chart(
            "Thời gian chuyển",
            [f"{d:%d/%m}" for d, *_ in latency],
            [
                ("p50", [round(r[1], 2) for r in latency]),
                ("p95", [round(r[2], 2) for r in latency]),
                ("p99", [round(r[3], 2) for r in latency]),
            ],
            unit=" s",
        ),
        "trouble": bar_chart(
            "Gửi lại / thất bại",
            [organ for organ, *_ in trouble],
            [("gửi lại", [r for _, r, _ in trouble]), ("thất bại", [f for *_, f in trouble])],
        ),
    }


def _day(raw: str | None, end: bool = False) -> datetime | None:
    """A date picked in the form, as the start (or the end) of that Vietnamese day."""
    if not raw:
        return None
    day = datetime.strptime(raw, "%Y-%m-%d").date()
    moment = datetime.combine(day, time.max if end else time.min, tzinfo=VIETNAM)
    return moment
