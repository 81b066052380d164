"""Every free-text field has a bound, and out-of-range input gets our own words (real server, real HTTP)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from adapters.vxp_client import VxpClient
from exchange import bounds
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from tests.e2e.harness import fetch_value
from tests.e2e.world import CENTRAL, DEPT, FINANCE, World, open_world
from tests.edxml_factories import small_edoc, small_status

VXP_SECRET = "vxp-secret-of-finance-bounds-0001"
# What PostgreSQL and asyncpg say; none of it may reach a client.
DATABASE_WORDS = (
    "invalid input",
    "query argument",
    "asyncpg",
    "int64",
    "out of range for type",
    "0x00",
    "$1",
)


@pytest.fixture
async def world(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> AsyncIterator[World]:
    async with open_world(tmp_path, database_url, dev_pki, vxp_secrets={FINANCE: VXP_SECRET}) as opened:
        yield opened


def assert_too_long(status: int, answer: dict[str, Any], field: str, limit: int) -> None:
    assert status == 422, answer
    assert answer["error"]["code"] == "too_long"
    assert field in answer["error"]["message"]
    assert str(limit) in answer["error"]["message"]
    assert answer["error"]["details"][0]["path"] == field


async def send(world: World, document_id: str, **changes: Any) -> tuple[int, dict[str, Any]]:
    edoc = replace(small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=document_id), **changes)
    return await world.client(DEPT).post_package(build_edoc(edoc))


async def test_an_ack_reason_at_its_bound_is_kept_one_past_is_refused(world: World) -> None:
    status, accepted = await send(world, "000.00.01.H26,2026/11/22,1/B")
    assert status == 201
    copy = next(d["delivery_id"] for d in accepted["deliveries"] if d["recipient"] == FINANCE)
    finance = world.client(FINANCE)
    assert (await finance.get_bytes(f"/v1/deliveries/{copy}/package"))[0] == 200  # only a download is acked
    path = f"/v1/deliveries/{copy}/ack"
    status, refused = await finance.post_json(path, {"result": "fail", "reason": "x" * (bounds.REASON + 1)})
    assert_too_long(status, refused, "reason", bounds.REASON)
    assert await fetch_value(world.database_url, "SELECT attempts FROM deliveries WHERE id = $1", copy) == 0
    assert (
        await fetch_value(
            world.database_url, "SELECT count(*) FROM audit_log WHERE action LIKE 'delivery.ack%'"
        )
        == 0
    )
    status, acked = await finance.post_json(path, {"result": "fail", "reason": "x" * bounds.REASON})
    assert status == 200, acked
    assert await fetch_value(
        world.database_url, "SELECT length(last_error) FROM deliveries WHERE id = $1", copy
    ) == (bounds.REASON)


async def test_a_vxp_note_at_its_bound_is_kept_one_past_is_refused(world: World) -> None:
    status, accepted = await send(world, "000.00.01.H26,2026/11/22,2/B")
    assert status == 201
    copy = next(d["delivery_id"] for d in accepted["deliveries"] if d["recipient"] == FINANCE)
    finance = VxpClient(world.session, world.server.url, f"dms-{FINANCE}", VXP_SECRET)
    answer = await finance.call(
        "updateStatus", {"status": "processing", "docId": copy, "description": "y" * (bounds.REASON + 1)}
    )
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "422"), answer
    assert "too_long" in answer["ErrorDesc"]
    assert "XroadVnpt-description" in answer["ErrorDesc"]
    assert (
        await fetch_value(
            world.database_url, "SELECT count(*) FROM audit_log WHERE action = 'delivery.processing'"
        )
        == 0
    )
    answer = await finance.call(
        "updateStatus", {"status": "processing", "docId": copy, "description": "y" * bounds.REASON}
    )
    assert answer["status"] == "OK", answer
    assert (
        await fetch_value(
            world.database_url, "SELECT count(*) FROM audit_log WHERE action = 'delivery.processing'"
        )
        == 1
    )


async def test_package_text_at_its_bound_is_accepted_one_past_is_refused(world: World) -> None:
    status, refused = await send(world, "000.00.01.H26,2026/11/22,3/B", subject="S" * (bounds.SUBJECT + 1))
    subject_path = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Subject"
    assert_too_long(status, refused, subject_path, bounds.SUBJECT)
    long_id = "000.00.01.H26," + "9" * (bounds.DOCUMENT_ID - 13)
    status, refused = await send(world, long_id)
    assert_too_long(
        status, refused, "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/DocumentId", bounds.DOCUMENT_ID
    )
    assert await world.count("messages") == 0
    assert await world.count("deliveries") == 0

    status, accepted = await send(world, "000.00.01.H26,2026/11/22,3/B", subject="S" * bounds.SUBJECT)
    assert status == 201, accepted
    # Statuses 01-06 need a copy that reached the recipient: FINANCE downloads its copy first.
    finance_copy = next(d["delivery_id"] for d in accepted["deliveries"] if d["recipient"] == FINANCE)
    status, _ = await world.client(FINANCE).get_bytes(f"/v1/deliveries/{finance_copy}/package")
    assert status == 200
    status, accepted = await send(world, long_id[:-1])
    assert status == 201, accepted

    def report(description: str) -> bytes:
        return build_status(
            replace(
                small_status(
                    sender=FINANCE,
                    original_sender=DEPT,
                    document_id="000.00.01.H26,2026/11/22,3/B",
                    code=StatusCode.ARRIVED,
                ),
                description=description,
            )
        )

    status, refused = await world.client(FINANCE).post_package(report("d" * (bounds.STATUS_DESCRIPTION + 1)))
    assert_too_long(
        status,
        refused,
        "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Description",
        bounds.STATUS_DESCRIPTION,
    )
    assert await world.count("business_statuses") == 0
    status, accepted = await world.client(FINANCE).post_package(report("d" * bounds.STATUS_DESCRIPTION))
    assert status == 201, accepted
    assert await world.count("business_statuses") == 1


async def test_an_agency_name_at_its_bound_is_registered_one_past_is_refused(world: World) -> None:
    admin = world.client("admin")
    before = await world.count("agencies")
    status, refused = await admin.post_json(
        "/v1/admin/agencies", {"organ_id": "000.00.09.H26", "name": "N" * (bounds.AGENCY_NAME + 1)}
    )
    assert (status, refused["error"]["code"]) == (422, "invalid_input")
    assert f"name is longer than {bounds.AGENCY_NAME} characters" in refused["error"]["details"][0]["reason"]
    assert await world.count("agencies") == before
    status, created = await admin.post_json(
        "/v1/admin/agencies", {"organ_id": "000.00.09.H26", "name": "N" * bounds.AGENCY_NAME}
    )
    assert status == 201, created
    assert await world.count("agencies") == before + 1


async def test_search_parameters_are_bounded(world: World) -> None:
    auditor = world.client("auditor")
    status, refused = await auditor.get_json(f"/v1/documents?document_id={'d' * (bounds.QUERY_TEXT + 1)}")
    assert_too_long(status, refused, "document_id", bounds.QUERY_TEXT)
    status, found = await auditor.get_json(f"/v1/documents?document_id={'d' * bounds.QUERY_TEXT}")
    assert (status, found["items"]) == (200, [])


@pytest.mark.parametrize(
    "path",
    [
        "/v1/documents?limit=99999999999999999999",
        "/v1/admin/deliveries?limit=-99999999999999999999",
        "/v1/inbox?limit=1e400",
        "/v1/documents?since=" + quote("0001-01-01T00:00:00+14:00"),
        "/v1/documents?until=" + quote("9999-12-31T23:59:59-14:00"),
        "/v1/documents?since=" + quote("+20000-01-01"),
        "/v1/documents?document_id=a%00b",
        "/v1/documents?sender=%00",
        "/v1/documents?cursor="
        + base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|" + b"0" * 36).decode(),
        "/v1/documents?cursor=" + base64.urlsafe_b64encode(b"2026-01-01T00:00:00+07:00|not-a-uuid").decode(),
        "/v1/messages/00000000-0000-0000-0000-00000000000g",
        "/v1/deliveries/99999999999999999999/package",
    ],
)
async def test_out_of_range_parameters_get_our_own_message(world: World, path: str) -> None:
    who = FINANCE if "/inbox" in path or "/deliveries/" in path else "admin"
    status, answer = await world.client(who).get_json(path)
    assert status in (404, 422), answer
    assert set(answer["error"]) == {"code", "message", "details"}
    text = str(answer).lower()
    for words in DATABASE_WORDS:
        assert words.lower() not in text, f"{path} answered with the database's words: {answer}"


async def test_a_value_the_database_refuses_gets_our_own_message(world: World) -> None:
    before = await world.count("agencies")
    # A NUL is refused before the database (issue 11, review item 9); a number past PostgreSQL's
    # integer range still reaches it, and is said in our words.
    status, answer = await world.client("admin").post_json(
        "/v1/admin/agencies", {"organ_id": "000.00.08.H26", "name": "Ten\u0000co NUL"}
    )
    assert (status, answer["error"]["code"]) == (422, "invalid_input"), answer
    assert "U+0000" in str(answer)
    status, answer = await world.client("admin").post_json(
        "/v1/admin/agencies", {"organ_id": "000.00.08.H26", "name": "Sở", "max_attempts": "99999999999"}
    )
    assert (status, answer["error"]["code"]) == (422, "invalid_input"), answer
    assert answer["error"]["message"].startswith("a value in the request is out of range or cannot be stored")
    for words in DATABASE_WORDS:
        assert words.lower() not in str(answer).lower()
    assert await world.count("agencies") == before
