"""The auditor web page in headless Chromium (Debian's build, driven by Playwright)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from exchange import registry
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.model import Role
from tests.conftest import REPO, run_sync
from tests.e2e.conftest import running_server
from tests.edxml_factories import small_edoc, small_status

ARTIFACTS = REPO / "tests" / "artifacts"
DEPT, FINANCE, CENTRAL = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22"
DOC = "000.00.01.H26,2026/11/20,88/SNV-VP"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by `make test`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


def register(database_url: str) -> dict[str, str]:
    async def work() -> dict[str, str]:
        conn = await asyncpg.connect(database_url)
        try:
            await registry.add_agencies(
                conn, [registry.AgencyInput({"organ_id": o, "name": o}) for o in (DEPT, FINANCE, CENTRAL)]
            )
            keys = {
                o: (await registry.add_system(conn, f"dms-{o}", Role.SYSTEM, [o])).api_key
                for o in (DEPT, FINANCE, CENTRAL)
            }
            keys["auditor"] = (await registry.add_system(conn, "kiem-toan", Role.AUDITOR)).api_key
            return keys
        finally:
            await conn.close()

    return run_sync(work)


def post(url: str, key: str, data: bytes) -> None:
    request = urllib.request.Request(
        f"{url}/v1/packages", data=data, method="POST", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def download_inbox(url: str, key: str) -> None:
    """Fetch every waiting package, as the recipient's DMS does before it reports a status."""
    headers = {"Authorization": f"Bearer {key}"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/inbox", headers=headers), timeout=30) as r:
        items = json.loads(r.read())["items"]
    for item in items:
        package = urllib.request.Request(
            f"{url}/v1/deliveries/{item['delivery_id']}/package", headers=headers
        )
        with urllib.request.urlopen(package, timeout=30) as response:
            assert response.status == 200


def statuses_in_database(database_url: str) -> dict[str, list[str]]:
    async def work() -> dict[str, list[str]]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT d.recipient, b.code FROM business_statuses b "
                "JOIN deliveries d ON d.id = b.delivery_id JOIN messages m ON m.id = d.message_id "
                "WHERE m.document_id = $1 AND m.kind = 'edoc' ORDER BY b.id",
                DOC,
            )
            found: dict[str, list[str]] = {}
            for row in rows:
                found.setdefault(row["recipient"], []).append(row["code"])
            return found
        finally:
            await conn.close()

    return run_sync(work)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def test_an_auditor_finds_a_document_and_reads_its_timeline(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    keys = register(database_url)
    with running_server(["--database-url", database_url, "--data-dir", str(tmp_path)]) as server:
        post(
            server.url,
            keys[DEPT],
            build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC)),
        )
        download_inbox(server.url, keys[FINANCE])
        download_inbox(server.url, keys[CENTRAL])
        for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.ASSIGNED):
            post(
                server.url,
                keys[FINANCE],
                build_status(small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=code)),
            )
        post(
            server.url,
            keys[CENTRAL],
            build_status(
                small_status(sender=CENTRAL, original_sender=DEPT, document_id=DOC, code=StatusCode.REFUSED)
            ),
        )

        page = browser.new_page()
        page.goto(f"{server.url}/ui/")
        expect(page.locator("input[name=key]")).to_be_visible()  # no key: the login form, no data
        expect(page.locator("#results")).to_have_count(0)
        shot(page, "login")

        page.fill("input[name=key]", "exk_wrong")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Khóa không hợp lệ.")
        page.fill("input[name=key]", keys[DEPT])
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Khóa này không phải của kiểm toán viên.")
        page.goto(f"{server.url}/ui/documents/00000000-0000-0000-0000-000000000000")
        expect(page.locator("#recipients")).to_have_count(0)

        page.goto(f"{server.url}/ui/login")
        page.fill("input[name=key]", keys["auditor"])
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Tra cứu văn bản")
        page.fill("input[name=document_id]", DOC)
        page.click("form.search button[type=submit]")
        expect(page.locator("#results a[href^='/ui/documents/']")).to_have_text(DOC)
        shot(page, "search")

        page.click(f"#results a[href^='/ui/documents/']:text('{DOC}')")
        expect(page.locator("#document-id")).to_have_text(DOC)  # the subject is the heading now
        shot(page, "document")
        shown = {}
        for row in page.locator("#recipients tr[data-recipient]").all():
            recipient = row.get_attribute("data-recipient")
            assert recipient is not None
            shown[recipient] = [s.get_attribute("data-code") for s in row.locator(".status").all()]
        assert shown == statuses_in_database(database_url)
        assert shown == {FINANCE: ["01", "03", "04"], CENTRAL: ["02"]}
        expect(page.locator("#recipients")).to_contain_text("Từ chối tiếp nhận")

        page.click("text=Vận hành")
        expect(page.locator("#per-day svg")).to_have_count(1)
        expect(page.locator("#latency svg")).to_have_count(1)
        shot(page, "operations")

        page.click("text=Đăng xuất")
        page.goto(f"{server.url}/ui/")
        expect(page.locator("input[name=key]")).to_be_visible()
        server.stop()
