"""The auditor web page under /ui/: server-rendered, usable without JavaScript.

An auditor (or admin) logs in with their API key once; the browser then holds only a random
session id (HttpOnly, SameSite=Strict cookie scoped to /ui, Secure behind TLS) that the axis
checks on every request and revokes at logout, at expiry and when the key is rotated
(exchange.ui_sessions). Failed logins are throttled per client address. Every answer carries
headers that forbid framing, scripts and referrers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from exchange import registry, reporting, ui_sessions, ui_views
from exchange.api.auth import UI_COOKIE, allow, public
from exchange.api.common import path_uuid
from exchange.api.documents import decode_cursor, encode_cursor
from exchange.api.exchange import evidence_download
from exchange.api.keys import CALLER, LOGIN_THROTTLE, POOL, SETTINGS
from exchange.api.reports import export_response
from exchange.charts import bar_chart
from exchange.errors import InvalidInput, NotFound
from exchange.model import Role
from exchange.store import reports
from exchange.store.reports import AgencyFigures
from exchange.vocabulary import DEADLINE_STATES, REPORT_COLUMNS, parse_vn_date

REPORT_DAYS = 14
MAX_KEY_CHARS = 256  # API keys are ~50 characters; longer input is cut, not hashed whole
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200


@public
@aiohttp_jinja2.template("ui/login.html")
async def login_form(request: web.Request) -> dict[str, Any]:
    return {"message": None, "caller": None}


@public
async def login(request: web.Request) -> web.StreamResponse:
    throttle, address = request.app[LOGIN_THROTTLE], request.remote or "unknown"
    if (wait := throttle.retry_after(address)) is not None:
        refused = aiohttp_jinja2.render_template(
            "ui/login.html",
            request,
            {"message": f"Quá nhiều lần đăng nhập sai. Thử lại sau {wait} giây.", "caller": None},
            status=429,
        )
        refused.headers["Retry-After"] = str(wait)
        return refused
    form = await request.post()
    key = str(form.get("key", "")).strip()[:MAX_KEY_CHARS]
    async with request.app[POOL].acquire() as conn:
        caller = await registry.authenticate(conn, key) if key else None
        allowed = caller is not None and caller.role in (Role.AUDITOR, Role.ADMIN)
        session = (
            await ui_sessions.open_session(conn, caller, request.app[SETTINGS].ui)
            if caller is not None and allowed
            else None
        )
    if caller is None or session is None:
        throttle.failed(address)
        message = "Khóa không hợp lệ." if caller is None else "Khóa này không phải của kiểm toán viên."
        return aiohttp_jinja2.render_template(
            "ui/login.html",
            request,
            {"message": message, "caller": None},
            status=401 if caller is None else 403,
        )
    throttle.succeeded(address)
    settings = request.app[SETTINGS]
    response = web.HTTPSeeOther("/ui/")
    response.set_cookie(
        UI_COOKIE,
        session,
        httponly=True,
        samesite="Strict",
        path="/ui",
        secure=settings.server.tls or settings.ui.secure_cookie,
        max_age=int(settings.ui.session_lifetime_s),
    )
    raise response


@allow(Role.AUDITOR, Role.ADMIN)
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session on the server (the cookie alone would keep working if copied), then forget it."""
    async with request.app[POOL].acquire() as conn:
        await ui_sessions.close_session(conn, request.cookies.get(UI_COOKIE, ""))
    response = web.HTTPSeeOther("/ui/login")
    response.del_cookie(UI_COOKIE, path="/ui")
    raise response


# Nothing on the pages runs scripts, loads from elsewhere, or may be framed; the inline <style> of the
# templates is the only exception to "self".
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer (pages and API alike): no framing, no scripts, no referrer, no sniffing."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/ui/"):
        response.headers.setdefault("Cache-Control", "no-store")


@allow(Role.AUDITOR, Role.ADMIN)
@aiohttp_jinja2.template("ui/search.html")
async def search(request: web.Request) -> dict[str, Any]:
    q = request.query
    form = ui_views.SearchForm(
        document_id=q.get("document_id", ""),
        sender=q.get("sender", ""),
        recipient=q.get("recipient", ""),
        status=q.get("status", ""),
        since=q.get("since", ""),
        until=q.get("until", ""),
        overdue=q.get("overdue") == "true",
    )
    size = _page_size(q.get("size"))
    async with request.app[POOL].acquire() as conn:
        agencies = await ui_views.agency_names(conn)
        result = await ui_views.search(conn, form, agencies, decode_cursor(q.get("after")), size)
    kept = {key: value for key, value in q.items() if key not in ("after",) and value}
    return {
        "caller": request[CALLER],
        "form": form,
        "result": result,
        "agencies": agencies,
        "statuses": ui_views.STATUS_CHOICES,
        "next_page": None
        if result.next_after is None
        else "/ui/?" + urlencode({**kept, "after": encode_cursor(*result.next_after)}),
        "first_page": "/ui/?" + urlencode(kept) if "after" in q else None,
        "size": size,
    }


def _page_size(raw: str | None) -> int:
    try:
        return min(max(int(raw), 1), MAX_PAGE_SIZE) if raw else PAGE_SIZE
    except ValueError:
        return PAGE_SIZE


@allow(Role.AUDITOR, Role.ADMIN)
@aiohttp_jinja2.template("ui/document.html")
async def document(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL].acquire() as conn:
        page = await ui_views.document_page(
            conn, request[CALLER], path_uuid(request, "message_id", "message")
        )
    return {"caller": request[CALLER], "deadline_labels": DEADLINE_STATES, **page}


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
        backlog = await reports.backlog(conn, 50)
        agencies = await ui_views.agency_names(conn)
    return {
        "caller": request[CALLER],
        "days": REPORT_DAYS,
        "trouble_rows": trouble,
        "backlog": backlog,
        "agencies": agencies,
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
            unit=" giây",
        ),
        "backlog_chart": bar_chart(
            "Bản gửi đang chờ theo đơn vị nhận",
            [b.organ_id for b in backlog[:8]],
            [("đang chờ", [b.waiting for b in backlog[:8]])],
            empty="Không có bản gửi nào đang chờ.",
        ),
        "trouble": bar_chart(
            "Gửi lại / thất bại",
            [organ for organ, *_ in trouble[:8]],
            [("gửi lại", [r for _, r, _ in trouble[:8]]), ("thất bại", [f for *_, f in trouble[:8]])],
            empty="Không có lần gửi lại hay thất bại nào.",
        ),
    }


def _period(request: web.Request) -> reporting.Period:
    """The period asked for: ?period=2026-11 or 2026-Q4, or ?from=&to= as dd/mm/yyyy; else this month."""
    q = request.query
    if q.get("period"):
        return reporting.named_period(q["period"])
    if q.get("from") or q.get("to"):
        try:
            first = parse_vn_date(q.get("from", ""))
            last = parse_vn_date(q.get("to", ""))
        except ValueError:
            raise InvalidInput("Từ ngày / đến ngày phải là ngày dạng dd/mm/yyyy.") from None
        return reporting.period(first, last)
    return reporting.this_month()


@allow(Role.AUDITOR, Role.ADMIN)
async def report(request: web.Request) -> web.StreamResponse:
    """Every agency over a month, a quarter or a period: sortable, printable, exportable."""
    sort, descending = request.query.get("sort", "name"), request.query.get("desc") == "1"
    try:
        within = _period(request)
        async with request.app[POOL].acquire() as conn:
            rows = reporting.sort_figures(await reporting.figures(conn, within), sort, descending)
    except InvalidInput as error:  # a period or a column typed wrong: say so on the page
        return aiohttp_jinja2.render_template(
            "ui/report.html",
            request,
            {"caller": request[CALLER], "error": f"Không đọc được kỳ báo cáo: {error.message}", "rows": []},
            status=422,
        )
    base = {k: v for k, v in request.query.items() if k in ("period", "from", "to") and v}
    return aiohttp_jinja2.render_template(
        "ui/report.html",
        request,
        {
            "caller": request[CALLER],
            "error": None,
            "within": within,
            "rows": rows,
            "columns": REPORT_COLUMNS,
            "sort": sort,
            "descending": descending,
            "base_query": urlencode(base),
            "form_period": request.query.get("period", ""),
            "form_from": request.query.get("from", ""),
            "form_to": request.query.get("to", ""),
            "totals": _totals(rows),
        },
    )


def _totals(rows: list[AgencyFigures]) -> dict[str, int]:
    return {key: sum(getattr(row, key) for row in rows) for key in reports.COUNTS}


@allow(Role.AUDITOR, Role.ADMIN)
async def report_export(request: web.Request) -> web.Response:
    """The report as CSV or XLSX (``?format=``), for the same period and order as the page."""
    within = _period(request)
    async with request.app[POOL].acquire() as conn:
        rows = reporting.sort_figures(
            await reporting.figures(conn, within),
            request.query.get("sort", "name"),
            request.query.get("desc") == "1",
        )
    return export_response(rows, within, request.query.get("format", "csv"))


@allow(Role.AUDITOR, Role.ADMIN)
@aiohttp_jinja2.template("ui/agency.html")
async def agency(request: web.Request) -> dict[str, Any]:
    organ_id = request.match_info["organ_id"]
    within = _period(request)
    async with request.app[POOL].acquire() as conn:
        agencies = await ui_views.agency_names(conn)
        if organ_id not in agencies:
            raise NotFound(f"no agency {organ_id}")
        found = await reporting.figures(conn, within, organ_id)
        per_day = await reports.agency_per_day(conn, within.start, within.end, organ_id)
        failed = await reports.failed_to_agency(conn, within.start, within.end, organ_id, 50)
    return {
        "caller": request[CALLER],
        "organ_id": organ_id,
        "agencies": agencies,
        "within": within,
        "figures": found[0] if found else None,
        "columns": REPORT_COLUMNS,
        "failed": failed,
        "form_period": request.query.get("period", ""),
        "chart": bar_chart(
            "Văn bản gửi và nhận mỗi ngày",
            [f"{d:%d/%m}" for d, *_ in per_day],
            [("gửi", [s for _, s, _ in per_day]), ("nhận", [r for *_, r in per_day])],
        ),
    }
