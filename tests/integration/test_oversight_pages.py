"""The auditor pages in Vietnamese, search paging, and the public progress feed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from exchange.app import create_app
from exchange.clock import VIETNAM
from exchange.demo import load_demo
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.settings import Settings, load_settings
from tests.edxml_factories import small_edoc, small_status
from tests.integration.conftest import bearer

NOI_VU, TAI_CHINH, VPCP = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22"


@pytest.fixture
async def keys(conn: asyncpg.Connection) -> dict[str, str]:
    return {s.system.name: s.api_key for s in await load_demo(conn)}


async def post(client: TestClient, key: str, data: bytes) -> dict:  # type: ignore[type-arg]
    response = await client.post("/v1/packages", data=data, headers=bearer(key))
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


def doc_id(n: int) -> str:
    return f"{NOI_VU},2026/11/20,{n}/SNV-VP"


async def login(client: TestClient, key: str) -> None:
    response = await client.post("/ui/login", data={"key": key}, allow_redirects=False)
    assert response.status == 303


async def test_the_document_page_reads_as_vietnamese(
    client: TestClient, conn: asyncpg.Connection, keys: dict[str, str]
) -> None:
    accepted = await post(
        client, keys["so-noi-vu"], build_edoc(small_edoc(NOI_VU, (TAI_CHINH, VPCP), doc_id(1)))
    )
    # Statuses 01-06 need a copy that reached the recipient: Sở Tài chính downloads its copy first.
    copy = next(d["delivery_id"] for d in accepted["deliveries"] if d["recipient"] == TAI_CHINH)
    download = await client.get(
        f"/v1/deliveries/{copy}/package", headers={"Authorization": f"Bearer {keys['so-tai-chinh']}"}
    )
    assert download.status == 200
    for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.COMPLETED, StatusCode.ASSIGNED):
        await post(
            client,
            keys["so-tai-chinh"],
            build_status(small_status(TAI_CHINH, NOI_VU, doc_id(1), code)),
        )
    await login(client, keys["auditor"])
    page = await client.get(f"/ui/documents/{accepted['message_id']}")
    text = await page.text()
    assert page.status == 200, text
    received = await conn.fetchval(
        "SELECT received_at FROM messages WHERE id = $1::uuid", accepted["message_id"]
    )
    assert received.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M") in text
    assert "Sở Nội vụ (000.00.01.H26)" in text
    assert "Sở Nội vụ gửi văn bản" in text
    assert "Sở Tài chính báo 03 Đã tiếp nhận" in text
    assert "Văn phòng Chính phủ" in text
    assert "Không có chữ ký số" in text
    assert "Chờ chuyển" in text  # the transport state in words
    assert "⚠ Không theo trình tự" in text  # 04 after 06 goes back
    assert "queued" not in re.sub(r'data-state="[a-z_]+"', "", text)
    assert '"recipient":' not in text  # no JSON in the timeline
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text)  # no ISO times


async def test_search_counts_matches_and_pages_through_them(client: TestClient, keys: dict[str, str]) -> None:
    for n in range(7):
        await post(client, keys["so-noi-vu"], build_edoc(small_edoc(NOI_VU, (TAI_CHINH,), doc_id(n))))
    await login(client, keys["auditor"])
    seen: list[str] = []
    url: str | None = "/ui/?sender=so+noi+vu&size=3"  # part of the name, without accents
    while url is not None:
        page = await client.get(url)
        text = await page.text()
        assert page.status == 200, text
        assert 'data-total="7"' in text
        seen += re.findall(r'data-message-id="([0-9a-f-]+)"', text)
        found = re.search(r'href="([^"]+)" id="next-page"', text)
        url = found[1].replace("&amp;", "&") if found else None
    assert len(seen) == 7
    assert len(set(seen)) == 7
    bad = await client.get("/ui/?since=31/02/2026")
    assert "không phải ngày dạng dd/mm/yyyy" in await bad.text()
    assert "data-message-id" not in await bad.text()
    ambiguous = await client.get("/ui/?sender=S%E1%BB%9F")  # "Sở": several departments
    assert "Hãy chọn một đơn vị" in await ambiguous.text()


async def test_report_agency_and_operations_pages(client: TestClient, keys: dict[str, str]) -> None:
    await post(client, keys["so-noi-vu"], build_edoc(small_edoc(NOI_VU, (TAI_CHINH,), doc_id(1))))
    await login(client, keys["auditor"])
    report = await client.get("/ui/reports")
    text = await report.text()
    assert report.status == 200, text
    assert "Xử lý đúng hạn" in text
    assert 'href="/ui/reports/export?' in text
    assert "@media print" in text
    sorted_page = await (await client.get("/ui/reports?sort=received&desc=1")).text()
    first = re.search(r'<tr data-organ-id="([^"]+)"', sorted_page)
    assert first is not None
    assert first[1] == TAI_CHINH
    by_days = await (await client.get("/ui/reports?from=01/01/2026&to=31/12/2026")).text()
    assert "01/01/2026 – 31/12/2026" in by_days
    wrong = await client.get("/ui/reports?period=2026-13")
    assert wrong.status == 422
    assert "2026-13" in await wrong.text()
    assert 'id="report"' not in await wrong.text()
    export = await client.get("/ui/reports/export?format=xlsx")
    assert export.status == 200
    assert export.headers["Content-Type"].startswith("application/vnd.openxml")
    agency = await client.get(f"/ui/agencies/{TAI_CHINH}")
    assert agency.status == 200
    assert "Sở Tài chính" in await agency.text()
    assert (await client.get("/ui/agencies/999.99.99.Z99")).status == 404
    operations = await (await client.get("/ui/operations")).text()
    assert 'id="backlog"' in operations
    assert "Sở Tài chính (000.00.02.H26)" in operations  # a pull copy waits in its inbox
    assert "Không có lần gửi lại hay thất bại nào." in operations  # an honest empty chart


@pytest.fixture
def public_app(settings: Settings, database_url: str, tmp_path: Path) -> Application:
    enabled = load_settings(
        None,
        data_dir=tmp_path / "data",
        database={"url": database_url},
        trust=settings.trust.model_dump(),
        public={"enabled": True, "cache_s": 3600},
    )
    return create_app(enabled, database_url)


async def test_public_progress_is_404_unless_enabled(client: TestClient, keys: dict[str, str]) -> None:
    await post(client, keys["so-noi-vu"], build_edoc(small_edoc(NOI_VU, (TAI_CHINH,), doc_id(1))))
    for path in ("/public/", "/public/progress.json", "/public/progress.csv"):
        response = await client.get(path)
        assert response.status == 404
        assert "Sở" not in await response.text()


async def test_public_progress_shows_counts_only_and_is_cached(
    aiohttp_client: Callable[[Application], Awaitable[TestClient]],
    public_app: Application,
    keys: dict[str, str],
) -> None:
    client = await aiohttp_client(public_app)
    await post(client, keys["so-noi-vu"], build_edoc(small_edoc(NOI_VU, (TAI_CHINH,), doc_id(1))))
    response = await client.get("/public/progress.json")
    assert response.status == 200
    text = await response.text()
    for secret in (doc_id(1), "V/v thử nghiệm", "SNV-VP"):
        assert secret not in text
    body = await response.json()
    items = {item["organ_id"]: item for item in body["items"]}
    assert items[NOI_VU]["current_month"] == {"sent": 1, "received": 0, "processed_on_time": 0, "overdue": 0}
    assert items[TAI_CHINH]["current_month"]["received"] == 1
    assert set(items[NOI_VU]) == {"organ_id", "name", "current_month", "previous_month"}
    # Recomputed at most every cache_s: a second document does not show yet.
    await post(client, keys["so-noi-vu"], build_edoc(small_edoc(NOI_VU, (TAI_CHINH,), doc_id(2))))
    again = await (await client.get("/public/progress.json")).json()
    assert again == body
    page = await client.get("/public/")
    assert page.status == 200
    assert "Sở Nội vụ" in await page.text()
    feed = await client.get("/public/progress.csv")
    lines = (await feed.read()).decode("utf-8-sig").splitlines()
    assert lines[0] == "Mã định danh,Đơn vị,Tháng,Văn bản gửi,Văn bản nhận,Xử lý đúng hạn,Quá hạn"
    assert doc_id(1) not in "\n".join(lines)
