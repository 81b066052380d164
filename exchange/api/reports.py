"""Agency reports over the API: ``GET /v1/reports/agencies?from=&to=&format=json|csv|xlsx``."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from exchange import reporting
from exchange.api.auth import allow
from exchange.api.keys import POOL
from exchange.errors import InvalidInput
from exchange.model import Role
from exchange.reporting import Period
from exchange.store.reports import AgencyFigures

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("json", "csv", "xlsx")


@allow(Role.AUDITOR, Role.ADMIN)
async def agencies_report(request: web.Request) -> web.Response:
    """Per-agency figures for documents accepted from ``from`` to ``to`` (Vietnamese days, both included)."""
    within = reporting.parse_iso_period(request.query.get("from"), request.query.get("to"))
    kind = request.query.get("format", "json")
    if kind not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}")
    async with request.app[POOL].acquire() as conn:
        rows = await reporting.figures(conn, within)
    return export_response(rows, within, kind)


def export_response(rows: Sequence[AgencyFigures], within: Period, kind: str) -> web.Response:
    """The figures as JSON (codes and numbers), CSV or XLSX (Vietnamese headers), named for the period."""
    name = f"bao-cao-don-vi_{within.first.isoformat()}_{within.last.isoformat()}"
    if kind == "json":
        return web.json_response(
            {
                "from": within.first.isoformat(),
                "to": within.last.isoformat(),
                "items": [r.as_dict() for r in rows],
            }
        )
    if kind == "csv":
        body, content_type = reporting.report_csv(rows), "text/csv; charset=utf-8"
    elif kind == "xlsx":
        body, content_type = reporting.report_xlsx(rows, within), XLSX
    else:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}")
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{name}.{kind}"',
        },
    )
