"""The auditor's document page shows who signed each attached PDF and the verdicts, in Vietnamese."""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import replace
from pathlib import Path

import asyncpg
from playwright.sync_api import Browser, expect

from exchange import cert_registry, registry
from exchange.edxml.builder import build_edoc
from exchange.edxml.model import Attachment, Reference
from exchange.model import Role
from exchange.trust import devca
from tests.conftest import run_sync
from tests.e2e.conftest import running_server
from tests.e2e.test_ui_browser import browser, shot
from tests.edxml_factories import small_edoc
from tests.pdf_factories import OTHER, SENDER, DocumentPki

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
RECIPIENT = "000.00.00.G22"


def register(database_url: str, pki: DocumentPki) -> dict[str, str]:
    async def work() -> dict[str, str]:
        conn = await asyncpg.connect(database_url)
        try:
            await registry.add_agencies(
                conn, [registry.AgencyInput({"organ_id": o, "name": o}) for o in (SENDER, RECIPIENT)]
            )
            await cert_registry.import_certificates(
                conn, [pki.ca.certificate], organ_id=None, purpose="document"
            )
            return {
                "sender": (await registry.add_system(conn, "dms-snv", Role.SYSTEM, [SENDER])).api_key,
                "auditor": (await registry.add_system(conn, "kiem-toan", Role.AUDITOR)).api_key,
            }
        finally:
            await conn.close()

    return run_sync(work)


def package(document_id: str, pdf: bytes) -> bytes:
    sheet = Attachment("cid:2", base64.b64encode(b"STT;Noi dung\n").decode(), attachment_name="phu-luc.csv")
    edoc = small_edoc(sender=SENDER, recipients=(RECIPIENT,), document_id=document_id)
    pdf_attachment = Attachment(
        "cid:1",
        base64.b64encode(pdf).decode(),
        attachment_name="quyet-dinh.pdf",
        content_type="application/pdf",
    )
    return build_edoc(
        replace(
            edoc,
            attachments=(pdf_attachment, sheet),
            references=(
                Reference("cid:1", "application/pdf", attachment_name="quyet-dinh.pdf"),
                Reference("cid:2", "text/csv", attachment_name="phu-luc.csv"),
            ),
        )
    )


def post(url: str, key: str, data: bytes) -> str:
    request = urllib.request.Request(
        f"{url}/v1/packages", data=data, method="POST", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
        return str(json.loads(response.read())["message_id"])


def test_the_document_page_shows_the_attachment_signatures(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    pki = DocumentPki()
    keys = register(database_url, pki)
    with running_server(["--database-url", database_url, "--data-dir", str(tmp_path)]) as server:
        official = post(server.url, keys["sender"], package(f"{SENDER},2026/11/30,1/QD", pki.official()))
        foreign = devca.sign_pdf(devca.make_pdf(), pki.person(), field_name="NguoiKy", chain=(pki.ca,))
        foreign = devca.sign_pdf(foreign, pki.seal(OTHER), field_name="CoQuan", chain=(pki.ca,))
        other = post(server.url, keys["sender"], package(f"{SENDER},2026/11/30,2/QD", foreign))

        page = browser.new_page()
        page.goto(f"{server.url}/ui/login")
        page.fill("input[name=key]", keys["auditor"])
        page.click("button[type=submit]")

        page.goto(f"{server.url}/ui/documents/{official}")
        expect(page.locator("#official")).to_have_attribute("data-official", "true")
        expect(page.locator("#official")).to_contain_text("Văn bản điện tử hợp lệ")
        rows = page.locator("#attachment-signatures tr[data-verdict]")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("Cá nhân")
        expect(rows.nth(1)).to_contain_text("Cơ quan, tổ chức")
        expect(page.locator("#attachment-signatures .verdict")).to_have_text(["Hợp lệ", "Hợp lệ"])
        expect(page.locator("#attachment-signatures tr[data-attachment='phu-luc.csv']")).to_contain_text(
            "Không ký số được tại đây"
        )
        shot(page, "document-attachments-official")

        page.goto(f"{server.url}/ui/documents/{other}")
        expect(page.locator("#official")).to_have_attribute("data-official", "false")
        expect(page.locator("#official")).to_contain_text(f"not by the sender {SENDER}")
        shot(page, "document-attachments-other-agency")
        server.stop()
