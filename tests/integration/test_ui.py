"""The auditor pages in process: login, search, document, operations, and who sees nothing."""

from aiohttp.test_utils import TestClient

from exchange.edxml.codes import StatusCode
from tests.integration.conftest import DEPT, DOC, World, send_with_status


async def test_pages_render_for_an_auditor_only(client: TestClient, world: World) -> None:
    accepted = await send_with_status(client, world, StatusCode.ACCEPTED)

    anonymous = await client.get(f"/ui/documents/{accepted['message_id']}")
    assert anonymous.status == 401
    assert DOC not in await anonymous.text()

    refused = await client.post("/ui/login", data={"key": world.keys[DEPT]}, allow_redirects=False)
    assert refused.status == 403
    logged_in = await client.post("/ui/login", data={"key": world.keys["auditor"]}, allow_redirects=False)
    assert logged_in.status == 303
    cookie = logged_in.cookies["exchange_ui"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"

    search = await client.get("/ui/", params={"document_id": DOC})
    assert search.status == 200, await search.text()
    assert DOC in await search.text()
    page = await client.get(f"/ui/documents/{accepted['message_id']}")
    text = await page.text()
    assert page.status == 200, text
    assert "03 Đã tiếp nhận" in text
    operations = await client.get("/ui/operations")
    assert operations.status == 200, await operations.text()
    assert "<svg" in await operations.text()
    bundle = await client.get(f"/ui/documents/{accepted['message_id']}/evidence")
    assert bundle.status == 200
    assert bundle.headers["Content-Type"] == "application/zip"


async def test_the_document_page_shows_a_late_status_as_history(client: TestClient, world: World) -> None:
    from exchange.edxml.builder import build_status
    from tests.edxml_factories import small_status
    from tests.integration.conftest import FINANCE, send

    accepted = await send_with_status(client, world, StatusCode.COMPLETED)
    late = small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode.ACCEPTED)
    await send(client, world, FINANCE, build_status(late))
    await client.post("/ui/login", data={"key": world.keys["auditor"]}, allow_redirects=False)
    text = await (await client.get(f"/ui/documents/{accepted['message_id']}")).text()
    assert '<td class="statuses" data-current="06">' in text
    assert "Hiện tại: 06 Hoàn thành" in text
    assert '<span class="status out-of-order" data-code="03"' in text
    assert '<span class="status" data-code="06"' in text
    assert 'title="03 after final status 06">⚠ Không theo trình tự (không thay trạng thái hiện tại)' in text
