"""Agency report figures: the report against an independent count, the API's formats and refusals."""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg
import openpyxl
import pytest
from aiohttp.test_utils import TestClient

from exchange.clock import today_in_vietnam
from exchange.demo import AGENCIES, load_demo
from exchange.vocabulary import REPORT_COLUMNS
from tests.integration.conftest import bearer
from tests.traffic import MONTH_FIRST, MONTH_LAST, generate_month

ORGAN_IDS = [organ_id for organ_id, *_ in AGENCIES]

# Counted copy by copy, with the month taken in Vietnam's named time zone and the first 06 found by
# a lateral join: a different road from exchange/store/reports.py to the same definitions.
_INDEPENDENT = """
WITH doc AS (
    SELECT id, sender, due_date FROM messages
    WHERE kind = 'edoc' AND business_type = 0
      AND (received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date BETWEEN $1 AND $2
), copy AS (
    SELECT d.recipient, d.state::text AS state, doc.due_date, d.created_at, first06.received_at AS done_at,
           EXISTS (SELECT FROM business_statuses x WHERE x.delivery_id = d.id AND x.code = '02') AS refused
    FROM deliveries d JOIN doc ON doc.id = d.message_id
    LEFT JOIN LATERAL (
        SELECT y.received_at FROM business_statuses y WHERE y.delivery_id = d.id AND y.code = '06'
        ORDER BY y.received_at LIMIT 1
    ) first06 ON true
    WHERE d.state::text <> 'withdrawn'
)
SELECT a.organ_id,
       (SELECT count(*) FROM doc WHERE doc.sender = a.organ_id) AS sent,
       (SELECT count(*) FROM copy c WHERE c.recipient = a.organ_id) AS received,
       (SELECT count(*) FROM copy c WHERE c.recipient = a.organ_id AND c.done_at IS NOT NULL
          AND (c.due_date IS NULL OR (c.done_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date <= c.due_date))
           AS processed_on_time,
       (SELECT count(*) FROM copy c WHERE c.recipient = a.organ_id AND c.done_at IS NOT NULL
          AND (c.done_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date > c.due_date) AS late,
       (SELECT count(*) FROM copy c WHERE c.recipient = a.organ_id AND c.done_at IS NULL AND c.refused)
           AS rejected,
       (SELECT count(*) FROM copy c WHERE c.recipient = a.organ_id AND c.done_at IS NULL AND NOT c.refused
          AND c.due_date < $3) AS overdue,
       (SELECT count(*) FROM copy c WHERE c.recipient = a.organ_id AND c.state IN ('failed', 'expired'))
           AS failed_deliveries,
       ARRAY(SELECT extract(epoch FROM c.done_at - c.created_at) / 3600 FROM copy c
             WHERE c.recipient = a.organ_id AND c.done_at IS NOT NULL) AS hours
FROM agencies a ORDER BY a.organ_id
"""
COUNTS = ("sent", "received", "processed_on_time", "late", "rejected", "overdue", "failed_deliveries")


def _quantile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (what percentile_cont computes)."""
    if not values:
        return None
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def independent(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(_INDEPENDENT, MONTH_FIRST, MONTH_LAST, today_in_vietnam())
    counted = {}
    for row in rows:
        hours = [float(h) for h in row["hours"]]
        counted[row["organ_id"]] = {
            **{key: row[key] for key in COUNTS},
            "median_hours_to_complete": _quantile(hours, 0.5),
            "p90_hours_to_complete": _quantile(hours, 0.9),
        }
    return counted


@pytest.fixture
async def keys(conn: asyncpg.Connection) -> dict[str, str]:
    return {s.system.name: s.api_key for s in await load_demo(conn)}


@pytest.fixture
async def month(conn: asyncpg.Connection, keys: dict[str, str]) -> dict[str, str]:
    await generate_month(conn, ORGAN_IDS, 250)
    return keys


def _report_query() -> str:
    return f"from={MONTH_FIRST.isoformat()}&to={MONTH_LAST.isoformat()}"


async def test_report_figures_agree_with_an_independent_count(
    client: TestClient, conn: asyncpg.Connection, month: dict[str, str]
) -> None:
    expected = await independent(conn)
    response = await client.get(f"/v1/reports/agencies?{_report_query()}", headers=bearer(month["auditor"]))
    assert response.status == 200
    body = await response.json()
    assert body["from"] == "2026-10-01"
    assert body["to"] == "2026-10-31"
    items = {item["organ_id"]: item for item in body["items"]}
    assert set(items) == set(expected)
    for organ_id, figures in expected.items():
        for key in COUNTS:
            assert items[organ_id][key] == figures[key], (organ_id, key)
        for key in ("median_hours_to_complete", "p90_hours_to_complete"):
            if figures[key] is None:
                assert items[organ_id][key] is None
            else:
                assert items[organ_id][key] == pytest.approx(figures[key], abs=0.01), (organ_id, key)
    # The generated month is not trivial: every outcome occurs somewhere.
    for key in COUNTS:
        assert sum(f[key] for f in expected.values()) > 0, key
    # Withdrawn copies and revocations are not counted; documents at the month's edges are placed by
    # Vietnamese midnight, not UTC's.
    total_sent = await conn.fetchval(
        "SELECT count(*) FROM messages WHERE kind = 'edoc' AND business_type = 0 "
        "AND received_at >= '2026-10-01 00:00+07' AND received_at < '2026-11-01 00:00+07'"
    )
    assert sum(item["sent"] for item in body["items"]) == total_sent


async def test_report_exports_carry_the_same_numbers_with_vietnamese_headers(
    client: TestClient, month: dict[str, str]
) -> None:
    headers = bearer(month["admin"])
    as_json = await (await client.get(f"/v1/reports/agencies?{_report_query()}", headers=headers)).json()
    by_id = {item["organ_id"]: item for item in as_json["items"]}

    response = await client.get(f"/v1/reports/agencies?{_report_query()}&format=csv", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert rows[0] == [header for _, header in REPORT_COLUMNS]
    assert rows[0][:4] == ["Mã định danh", "Đơn vị", "Văn bản gửi", "Văn bản nhận"]
    for row in rows[1:]:
        item = by_id[row[0]]
        assert row[1] == item["name"]
        assert [int(cell) for cell in row[2:10]] == [item[key] for key, _ in REPORT_COLUMNS[2:10]]

    response = await client.get(f"/v1/reports/agencies?{_report_query()}&format=xlsx", headers=headers)
    assert response.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(await response.read())).active
    values = list(sheet.iter_rows(values_only=True))
    assert "01/10/2026 – 31/10/2026" in values[0][0]
    assert list(values[1]) == [header for _, header in REPORT_COLUMNS]
    assert len(values) - 2 == len(by_id)
    for row in values[2:]:
        item = by_id[row[0]]
        for (key, _), cell in zip(REPORT_COLUMNS[2:10], row[2:10], strict=True):
            assert isinstance(cell, int), (key, cell)  # numbers as numbers, not text
            assert cell == item[key]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("from=2026-10-01", 422),
        ("from=2026-10-31&to=2026-10-01", 422),
        ("from=01/10/2026&to=2026-10-31", 422),
        ("from=2024-01-01&to=2026-10-31", 422),
        ("from=2026-10-01&to=2026-10-31&format=pdf", 422),
    ],
)
async def test_bad_report_requests_are_refused(
    client: TestClient, keys: dict[str, str], query: str, status: int
) -> None:
    response = await client.get(f"/v1/reports/agencies?{query}", headers=bearer(keys["auditor"]))
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == "invalid_input"
    assert "items" not in await response.text()


async def test_a_system_may_not_read_the_report(client: TestClient, keys: dict[str, str]) -> None:
    response = await client.get(f"/v1/reports/agencies?{_report_query()}", headers=bearer(keys["so-noi-vu"]))
    assert response.status == 403
    body = await response.text()
    assert "Sở" not in body
    assert "items" not in body
    anonymous = await client.get(f"/v1/reports/agencies?{_report_query()}")
    assert anonymous.status == 401
