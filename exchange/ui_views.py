"""What the auditor pages show, shaped from the store for the templates (handlers stay thin).

Every word and time a person reads comes from ``exchange.vocabulary``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from exchange import timeline
from exchange.clock import VIETNAM, today_in_vietnam
from exchange.edxml.codes import StatusCode
from exchange.edxml.package import parse_package
from exchange.model import System
from exchange.store import agencies as agency_store
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store.db import Connection
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import DocumentQuery, MessageRow
from exchange.vocabulary import (
    Agencies,
    EventContext,
    event_fields,
    event_sentence,
    fold,
    parse_vn_date,
    status_label,
    transport_state,
)

# The statuses a recipient reports, always shown as columns; the take-back ones only when reported.
MATRIX_CODES = ("01", "02", "03", "04", "05", "06")
TAKE_BACK_CODES = ("13", "15", "16")
HOPS_MAX_BYTES = 5 * 1024 * 1024
_ORGAN_IN_TEXT = re.compile(r"\b(\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})\b")


async def agency_names(conn: Connection) -> Agencies:
    return Agencies({agency.organ_id: agency.name for agency in await agency_store.list_agencies(conn)})


# --- the document page ---------------------------------------------------------------------------


@dataclass
class Cell:
    """One status a recipient reported: when it reached the axis, and what is odd about it."""

    code: str
    received_at: datetime
    reported_at: datetime | None
    flag: str | None
    late: bool
    out_of_order: bool  # kept in the history; never the current status


@dataclass
class MatrixRow:
    recipient: str
    delivery_id: str
    mode: str
    state: str
    attempts: int
    last_error: str | None
    current: str | None
    cells: dict[str, list[Cell]] = field(default_factory=dict)


async def document_page(conn: Connection, caller: System, message_id: UUID) -> dict[str, Any]:
    view = await timeline.trace(conn, caller, message_id)
    agencies = await agency_names(conn)
    due = date.fromisoformat(view["due_date"]) if view["due_date"] else None
    rows = [_matrix_row(delivery, due) for delivery in view["deliveries"]]
    reported = {code for row in rows for code in row.cells}
    codes = [*MATRIX_CODES, *(code for code in TAKE_BACK_CODES if code in reported)]
    # Who sent each status package about this document: the recipient whose history it joined.
    reporters = {s["status_message_id"]: d["recipient"] for d in view["deliveries"] for s in d["statuses"]}
    ctx = EventContext(
        agencies,
        view["sender"],
        {d["delivery_id"]: d["recipient"] for d in view["deliveries"]},
        {view["message_id"]: view["sender"], **reporters},
    )
    events = [
        {
            "at": datetime.fromisoformat(e["at"]),
            "sentence": event_sentence(e["action"], e["details"], e["delivery_id"], ctx, e["message_id"]),
            "action": e["action"],
            "actor": e["actor"],
            "fields": event_fields(e["details"], agencies),
        }
        for e in view["events"]
    ]
    return {
        "trace": view,
        "received_at": datetime.fromisoformat(view["received_at"]),
        "due": due,
        "deadline": _deadline(view["overdue"], due),
        "rows": rows,
        "codes": codes,
        "events": events,
        "hops": await _hops(conn, message_id, view),
        "agencies": agencies,
    }


def _deadline(overdue: bool, due: date | None) -> str:
    if due is None:
        return "none"
    return "overdue" if overdue else "open"


def _matrix_row(delivery: dict[str, Any], due: date | None) -> MatrixRow:
    row = MatrixRow(
        recipient=delivery["recipient"],
        delivery_id=delivery["delivery_id"],
        mode=delivery["mode"],
        state=delivery["state"],
        attempts=delivery["attempts"],
        last_error=delivery["last_error"],
        current=delivery["business_status"],
    )
    for status in delivery["statuses"]:
        received = datetime.fromisoformat(status["received_at"])
        reported = datetime.fromisoformat(status["reported_at"]) if status["reported_at"] else None
        late = due is not None and received.astimezone(VIETNAM).date() > due
        row.cells.setdefault(status["code"], []).append(
            Cell(status["code"], received, reported, status["flag"], late, bool(status.get("out_of_order")))
        )
    return row


@dataclass(frozen=True)
class Hop:
    organ_id: str | None
    at: datetime | None
    what: str


async def _hops(conn: Connection, message_id: UUID, view: dict[str, Any]) -> list[Hop]:
    """The package's way here (its TraceHeaders), this axis, and any forwarding to an upstream axis."""
    hops: list[Hop] = []
    # Reading the hops means parsing the package: done for ordinary sizes only, not for every view
    # of a 20 MB package (its hops are in the evidence bundle).
    data = await message_store.body(conn, message_id) if view["size_bytes"] <= HOPS_MAX_BYTES else None
    if data is not None:
        try:
            model = parse_package(data).model
        except Exception:  # a package parsed once; a newer parser may be stricter: show no hops
            model = None
        for header in getattr(model, "trace_headers", ()) or ():
            hops.append(Hop(header.organ_id, header.timestamp, "Chuyển qua"))
    hops.append(Hop(None, datetime.fromisoformat(view["received_at"]), "Trục liên thông này tiếp nhận"))
    for delivery in view["deliveries"]:
        if delivery["mode"] == "upstream":
            hops.append(
                Hop(
                    delivery["recipient"],
                    datetime.fromisoformat(delivery["delivered_at"]) if delivery["delivered_at"] else None,
                    "Chuyển tiếp lên trục cấp trên",
                )
            )
    return hops


# --- search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchForm:
    """The search form as typed: agencies by name or OrganId, days as dd/mm/yyyy."""

    document_id: str = ""
    sender: str = ""
    recipient: str = ""
    status: str = ""
    since: str = ""
    until: str = ""
    overdue: bool = False


@dataclass
class SearchResult:
    total: int
    rows: list[dict[str, Any]]
    next_after: tuple[datetime, UUID] | None
    errors: list[str]


def resolve_agency(text: str, agencies: Agencies) -> tuple[str | None, str | None]:
    """An agency picked by its OrganId, by "Name (OrganId)" or by part of its name: (OrganId, problem)."""
    if not text.strip():
        return None, None
    if match := _ORGAN_IN_TEXT.search(text):
        return match[1], None
    wanted = fold(text)
    found = [organ_id for organ_id, name in agencies.items() if wanted in fold(name)]
    if len(found) == 1:
        return found[0], None
    if not found:
        return None, f"Không có đơn vị nào tên chứa “{text.strip()}”."
    names = ", ".join(agencies.label(organ_id) for organ_id in found[:5])
    return None, f"Có {len(found)} đơn vị tên chứa “{text.strip()}”: {names}… Hãy chọn một đơn vị."


def _day(raw: str, end: bool, errors: list[str], what: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        day = parse_vn_date(raw)
    except ValueError:
        errors.append(f"{what} “{raw}” không phải ngày dạng dd/mm/yyyy.")
        return None
    if end:  # up to the end of that Vietnamese day
        return datetime.combine(day, time.min, tzinfo=VIETNAM) + _ONE_DAY
    return datetime.combine(day, time.min, tzinfo=VIETNAM)


async def search(
    conn: Connection, form: SearchForm, agencies: Agencies, after: tuple[datetime, UUID] | None, size: int
) -> SearchResult:
    errors: list[str] = []
    sender, problem = resolve_agency(form.sender, agencies)
    if problem:
        errors.append(f"Đơn vị gửi: {problem}")
    recipient, problem = resolve_agency(form.recipient, agencies)
    if problem:
        errors.append(f"Đơn vị nhận: {problem}")
    since = _day(form.since, False, errors, "Từ ngày")
    until = _day(form.until, True, errors, "Đến ngày")
    if errors:  # a filter that could not be read must not silently widen the search
        return SearchResult(0, [], None, errors)
    today = today_in_vietnam()
    query = DocumentQuery(
        document_id=form.document_id.strip() or None,
        sender=sender,
        recipient=recipient,
        status=form.status or None,
        since=since,
        until=until,
        overdue_on=today if form.overdue else None,
        after=after,
        limit=size + 1,  # one more tells whether another page follows
    )
    total = await message_store.count_documents(conn, query)
    found = await message_store.search_documents(conn, query)
    page, more = found[:size], len(found) > size
    ids = [m.id for m in page]
    deliveries = await delivery_store.deliveries_of_messages(conn, ids)
    overdue = await message_store.overdue_among(conn, ids, today)
    rows = [_result_row(m, deliveries[m.id], m.id in overdue) for m in page]
    last = page[-1] if more else None
    return SearchResult(total, rows, None if last is None else (last.received_at, last.id), errors)


def _result_row(message: MessageRow, deliveries: list[DeliveryRow], overdue: bool) -> dict[str, Any]:
    return {
        "message": message,
        "overdue": overdue,
        "recipients": [
            {
                "organ_id": d.recipient,
                "state": transport_state(d.state),
                "status": status_label(d.business_status),
            }
            for d in deliveries
        ],
    }


STATUS_CHOICES = [
    *((code.value, status_label(code.value)) for code in StatusCode),
    *((state, f"Chuyển: {transport_state(state)}") for state in delivery_store.STATES),
]

_ONE_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)
