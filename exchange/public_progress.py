"""Public progress of document exchange: per-agency counts for this month and the last, cached.

Only aggregate counts leave here (sent, received, processed on time, overdue): never a
subject, a document id or an error text. The figures are the agency report's own, and
are recomputed at most every ``public.cache_s`` seconds however many anonymous people
ask, so that public traffic costs the database one report query per period.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from exchange import reporting
from exchange.clock import now
from exchange.store.db import Pool

# The only figures published; everything else in an agency's report line stays inside.
PUBLISHED = ("sent", "received", "processed_on_time", "overdue")


class ProgressCache:
    """The latest public figures and when they were computed; one computation at a time."""

    def __init__(self, max_age_s: float) -> None:
        self._max_age_s = max_age_s
        self._lock = asyncio.Lock()
        self._computed: float | None = None
        self._value: dict[str, Any] | None = None

    async def get(self, pool: Pool) -> dict[str, Any]:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if not self._fresh():  # another request may have refreshed it while this one waited
                self._value = await compute(pool)
                self._computed = time.monotonic()
        assert self._value is not None
        return self._value

    def _fresh(self) -> bool:
        return self._computed is not None and time.monotonic() - self._computed < self._max_age_s


async def compute(pool: Pool) -> dict[str, Any]:
    current = reporting.this_month()
    previous = reporting.previous_month(current)
    async with pool.acquire() as conn:
        months = [(period, await reporting.figures(conn, period)) for period in (current, previous)]
    agencies: dict[str, dict[str, Any]] = {}
    for index, (_, rows) in enumerate(months):
        for row in rows:
            entry = agencies.setdefault(row.organ_id, {"organ_id": row.organ_id, "name": row.name})
            entry["current_month" if index == 0 else "previous_month"] = {
                key: getattr(row, key) for key in PUBLISHED
            }
    empty = dict.fromkeys(PUBLISHED, 0)
    items = [
        {"current_month": dict(empty), "previous_month": dict(empty), **entry}
        for entry in sorted(agencies.values(), key=lambda e: e["name"])
    ]
    return {
        "generated_at": now().isoformat(),
        "current_month": _month(current),
        "previous_month": _month(previous),
        "items": items,
    }


def _month(period: reporting.Period) -> dict[str, str]:
    return {"month": f"{period.first:%Y-%m}", "from": period.first.isoformat(), "to": period.last.isoformat()}


def csv_rows(progress: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per agency and month, for the CSV feed."""
    rows = []
    for item in progress["items"]:
        for which in ("current_month", "previous_month"):
            rows.append(
                {
                    "organ_id": item["organ_id"],
                    "name": item["name"],
                    "month": progress[which]["month"],
                    **item[which],
                }
            )
    return rows
