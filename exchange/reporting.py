"""Agency reports: periods in Vietnamese days, the figures, sorting, and CSV/XLSX exports.

The API (``/v1/reports/agencies``), the auditor pages and the public progress feed all
take their figures from here, and their headers from ``exchange.vocabulary``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from exchange.clock import VIETNAM, today_in_vietnam
from exchange.errors import InvalidInput
from exchange.store import reports
from exchange.store.db import Connection
from exchange.store.reports import AgencyFigures
from exchange.vocabulary import REPORT_COLUMNS, fold, vn_date

# A report may span at most this many days (a year and a leap day): its query reads every copy in it.
MAX_DAYS = 367
SORTABLE = tuple(key for key, _ in REPORT_COLUMNS)


@dataclass(frozen=True)
class Period:
    """Vietnamese calendar days ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=VIETNAM)

    @property
    def end(self) -> datetime:
        """The instant after the period (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=VIETNAM)

    @property
    def label(self) -> str:
        return f"{vn_date(self.first)} – {vn_date(self.last)}"

    def query(self) -> str:
        return f"from={self.first.isoformat()}&to={self.last.isoformat()}"


def period(first: date, last: date) -> Period:
    if last < first:
        raise InvalidInput("the period ends before it begins ('to' is before 'from')")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days")
    return Period(first, last)


def parse_iso_period(raw_from: str | None, raw_to: str | None) -> Period:
    """``from`` and ``to`` as YYYY-MM-DD (the API's form), both required."""
    days = []
    for name, raw in (("from", raw_from), ("to", raw_to)):
        if not raw:
            raise InvalidInput(f"'{name}' is required (YYYY-MM-DD)")
        try:
            days.append(date.fromisoformat(raw))
        except ValueError:
            raise InvalidInput(f"'{name}' must be a date YYYY-MM-DD, not {raw!r}") from None
    return period(days[0], days[1])


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def named_period(raw: str) -> Period:
    """A month "2026-11" or a quarter "2026-Q4"."""
    if match := _MONTH.match(raw):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise InvalidInput(f"{raw!r} is not a month")
        return month_period(year, month)
    if match := _QUARTER.match(raw):
        year, quarter = int(match[1]), int(match[2])
        first = date(year, 3 * quarter - 2, 1)
        return Period(first, _month_end(year, 3 * quarter))
    raise InvalidInput(f"a period is a month (2026-11) or a quarter (2026-Q4), not {raw!r}")


def month_period(year: int, month: int) -> Period:
    return Period(date(year, month, 1), _month_end(year, month))


def _month_end(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def this_month() -> Period:
    today = today_in_vietnam()
    return month_period(today.year, today.month)


def previous_month(current: Period) -> Period:
    before = current.first - timedelta(days=1)
    return month_period(before.year, before.month)


async def figures(conn: Connection, within: Period, organ_id: str | None = None) -> list[AgencyFigures]:
    return await reports.agency_figures(conn, within.start, within.end, today_in_vietnam(), organ_id)


def sort_figures(rows: Sequence[AgencyFigures], key: str, descending: bool) -> list[AgencyFigures]:
    """Rows by one column; missing times last whichever the direction."""
    if key not in SORTABLE:
        raise InvalidInput(f"sort must be one of {', '.join(SORTABLE)}")

    def value(row: AgencyFigures) -> tuple[bool, Any]:
        cell = getattr(row, key)
        if isinstance(cell, str):
            cell = (fold(cell), cell)  # Vietnamese order: "Ủy ban" after "Sở", before "Văn phòng"
        return (cell is None) != descending, cell if cell is not None else 0

    return sorted(rows, key=value, reverse=descending)


def report_csv(rows: Sequence[AgencyFigures]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel shows the Vietnamese headers and names right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _, header in REPORT_COLUMNS])
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in _cells(row)])
    return ("\ufeff" + out.getvalue()).encode()


def report_xlsx(rows: Sequence[AgencyFigures], within: Period) -> bytes:
    """One sheet: a title line, the headers, one row per agency; counts and hours are numbers."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Báo cáo"
    sheet.append([f"Tình hình gửi, nhận văn bản điện tử {within.label}"])
    sheet["A1"].font = Font(bold=True)
    sheet.append([header for _, header in REPORT_COLUMNS])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(_cells(row))
    sheet.column_dimensions["A"].width = 16
    sheet.column_dimensions["B"].width = 40
    sheet.freeze_panes = "C3"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cells(row: AgencyFigures) -> list[Any]:
    values = row.as_dict()
    return [values[key] for key, _ in REPORT_COLUMNS]


def table_csv(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _, header in columns])
    for row in rows:
        writer.writerow([row[key] for key, _ in columns])
    return ("\ufeff" + out.getvalue()).encode()
