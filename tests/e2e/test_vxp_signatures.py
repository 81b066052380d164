"""Signed VXP headers cannot be reused: not after the old replay window, not without hash-file over
the body, not for another operation (issue 11, item 4); and the SDK's own reuse keeps working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from adapters.vxp_client import VxpClient
from exchange import registry
from exchange.edxml.builder import build_edoc
from exchange.model import Role
from exchange.vxp.protocol import hash_file
from tests.e2e.harness import Client, Server, fetch_value, write_config
from tests.e2e.test_vxp import assert_fail, assert_ok
from tests.edxml_factories import small_edoc

DEPT, FINANCE, UNIT = "000.00.01.H26", "000.00.02.H26", "000.07.02.H26"
SECRETS = {"so-noi-vu": "secret-of-dept", "so-tai-chinh": "secret-of-finance"}
EDOC = {"servicetype": "eDoc", "messagetype": "edoc"}


async def setup(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn, [registry.AgencyInput({"organ_id": o, "name": o}) for o in (DEPT, FINANCE)]
        )
        dept = await registry.add_system(conn, "so-noi-vu", Role.SYSTEM, [DEPT], SECRETS["so-noi-vu"])
        await registry.add_system(conn, "so-tai-chinh", Role.SYSTEM, [FINANCE], SECRETS["so-tai-chinh"])
        return dept.api_key
    finally:
        await conn.close()


def document(number: int) -> bytes:
    return build_edoc(
        small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=f"{DEPT},2026/11/20,{number}/SNV")
    )


async def post(
    session: aiohttp.ClientSession, url: str, headers: list[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    async with session.post(url, headers=headers, data=body) as response:
        answer: dict[str, Any] = await response.json()
        return answer


class Axis:
    """A running server, a session, and the two systems' SDK service objects."""

    def __init__(self, server: Server, session: aiohttp.ClientSession, dept_key: str) -> None:
        self.server, self.session = server, session
        self.dept = Client(session, server.url, dept_key)
        self.finance = self.sdk("so-tai-chinh")

    def sdk(self, name: str) -> VxpClient:
        return VxpClient(self.session, self.server.url, name, SECRETS[name])

    async def inbox(self) -> list[str]:
        received = await self.finance.call("getReceivedEdocList", EDOC)
        return [item["docId"] for item in received["data"]]


async def run(tmp_path: Path, database_url: str, dev_pki: dict[str, Path], scenario: Any) -> None:
    dept_key = await setup(database_url)
    config = write_config(tmp_path / "x.toml", dev_pki)
    config.write_text(config.read_text() + '[vxp]\nregister_agency = "auto"\n')
    server = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        async with aiohttp.ClientSession() as session:
            await scenario(Axis(server, session, dept_key))
    finally:
        assert await server.stop() == 0


async def test_a_spent_signature_stays_spent_while_its_timestamp_is_accepted(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        assert (await axis.dept.post_package(document(1)))[0] == 201
        [doc_id] = await axis.inbox()
        params = {"status": "processing", "docId": doc_id}
        headers = axis.finance.signed_headers("application/json", params)
        assert_ok(await post(axis.session, f"{axis.server.url}/updateStatus", headers, b"{}"))
        # The clock moves on: past the old 600 s window (the reported replay came after 613 s), then
        # 20 days on, while the SDK's timestamp is still accepted (30 days and a day's zone slack).
        for age in ("700 seconds", "20 days"):
            await fetch_value(database_url, f"UPDATE vxp_requests SET seen_at = seen_at - interval '{age}'")
            again = await post(axis.session, f"{axis.server.url}/updateStatus", headers, b"{}")
            assert_fail(again, "409")
            assert "already used for updateStatus" in again["ErrorDesc"]
        events = "SELECT count(*) FROM audit_log WHERE action = 'delivery.processing'"
        assert await fetch_value(database_url, events) == 1

    await run(tmp_path, database_url, dev_pki, scenario)


async def test_send_edoc_needs_hash_file_and_the_same_headers_make_no_second_document(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        dept = axis.sdk("so-noi-vu")
        params = {"from": DEPT, **EDOC}
        unhashed = dept.signed_headers("application/octet-stream", params, send_edoc=True)
        assert "XroadVnpt-hash-file" not in dict(unhashed)
        for body in (document(1), document(2)):
            answer = await post(axis.session, f"{axis.server.url}/sendEdoc", unhashed, body + b"\r\n")
            assert_fail(answer, "401")
            assert answer["DocId"] == ""
            assert "hash-file is required" in answer["ErrorDesc"]
        # With hash-file, the same headers carry exactly one body: another one is refused.
        hashed = dept.signed_headers(
            "application/octet-stream", params, send_edoc=True, file_hash=hash_file(document(1))
        )
        sent = await post(axis.session, f"{axis.server.url}/sendEdoc", hashed, document(1) + b"\r\n")
        assert_ok(sent)
        assert_fail(
            await post(axis.session, f"{axis.server.url}/sendEdoc", hashed, document(2) + b"\r\n"), "422"
        )
        again = await post(axis.session, f"{axis.server.url}/sendEdoc", hashed, document(1) + b"\r\n")
        assert again["DocId"] == sent["DocId"]  # the same document, not a second one
        assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 1

    await run(tmp_path, database_url, dev_pki, scenario)


async def test_register_agency_needs_hash_file_over_its_own_body(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        body = f'{{"pcode":"{FINANCE}","code":"{UNIT}","name":"Phòng Kế hoạch"}}'
        other = f'{{"pcode":"{FINANCE}","code":"000.08.02.H26","name":"Phòng khác"}}'
        assert_fail(await axis.finance.register_agency({}, body), "401")  # no hash-file at all
        signed_for_other = {"hash-file": hash_file(other.encode())}
        assert_fail(await axis.finance.register_agency(signed_for_other, body), "422")
        # The SDK keeps sendEdoc's hash-file in its map: that covers the file sent, not this body.
        sent = build_edoc(
            small_edoc(sender=FINANCE, recipients=(DEPT,), document_id=f"{FINANCE},2026/11/20,1/STC")
        )
        assert_ok(await axis.finance.send_edoc({"from": FINANCE, **EDOC}, sent))
        assert_fail(await axis.finance.register_agency({}, body), "422")
        agencies = "SELECT count(*) FROM agencies"
        assert await fetch_value(database_url, agencies) == 2
        assert_ok(await axis.finance.register_agency({"hash-file": hash_file(body.encode())}, body))
        assert await fetch_value(database_url, agencies) == 3

    await run(tmp_path, database_url, dev_pki, scenario)


async def test_headers_signed_for_one_operation_do_not_work_for_another(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        url = axis.server.url
        assert (await axis.dept.post_package(document(1)))[0] == 201
        [doc_id] = await axis.inbox()
        body = f'{{"pcode":"{FINANCE}","code":"{UNIT}","name":"Phòng Kế hoạch"}}'.encode()

        # A read's headers, replayed to registerAgency with a new body: they do not cover it.
        read = axis.finance.signed_headers("application/json", {})
        assert_ok(await post(axis.session, f"{url}/getAgenciesList", read, b""))
        assert_fail(await post(axis.session, f"{url}/registerAgency", read, body), "401")

        # sendEdoc's headers (signed as application/octet-stream) are good for nothing else, even
        # when the SDK's lingering keys put a status and a docId in them.
        sender = axis.sdk("so-tai-chinh")
        payload = build_edoc(
            small_edoc(sender=FINANCE, recipients=(DEPT,), document_id=f"{FINANCE},2026/11/20,2/STC")
        )
        send = sender.signed_headers(
            "application/octet-stream",
            {"from": FINANCE, **EDOC, "status": "done", "docId": doc_id},
            send_edoc=True,
            file_hash=hash_file(payload),
        )
        assert_fail(await post(axis.session, f"{url}/updateStatus", send, b"{}"), "401")

        # Headers spent on updateStatus, that also carry an AgencyCode, cannot then delete it.
        assert_ok(await axis.finance.register_agency({"hash-file": hash_file(body)}, body.decode()))
        change = axis.sdk("so-tai-chinh").signed_headers(
            "application/json", {"status": "processing", "docId": doc_id, "AgencyCode": UNIT}
        )
        assert_ok(await post(axis.session, f"{url}/updateStatus", change, b"{}"))
        refused = await post(axis.session, f"{url}/deleteAgency", change, b"{}")
        assert_fail(refused, "409")
        assert "already used for updateStatus" in refused["ErrorDesc"]

        assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 1
        assert (
            await fetch_value(database_url, "SELECT active FROM agencies WHERE organ_id = $1", UNIT) is True
        )
        # "processing" is a note: it hands nothing out, so the copy stays queued (issue 11, review item 6).
        assert await fetch_value(database_url, "SELECT state::text FROM deliveries") == "queued"
        assert (
            await fetch_value(
                database_url, "SELECT count(*) FROM audit_log WHERE action LIKE 'delivery.ack%'"
            )
            == 0
        )

    await run(tmp_path, database_url, dev_pki, scenario)


async def test_the_sdk_reusing_its_own_signatures_keeps_working(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    """The SDK's usual loop: getEdoc then updateStatus "done" per document, on one service object.
    From the second document on, the map already holds status=done, so the two requests carry
    identical signed headers: a read's signature legitimately changes state once."""

    async def scenario(axis: Axis) -> None:
        for number in (1, 2):
            assert (await axis.dept.post_package(document(number)))[0] == 201
        first, second = await axis.inbox()
        sdk = axis.finance
        for doc_id in (first, second):
            get = {"filePath": "C:/dms", "docId": doc_id}
            read_signature = dict(sdk.signed_headers("application/json", get))["XroadVnpt-hash-header"]
            assert_ok(await sdk.call("getEdoc", get))
            ack = {"status": "done", "docId": doc_id}
            ack_signature = dict(sdk.signed_headers("application/json", ack))["XroadVnpt-hash-header"]
            assert (ack_signature == read_signature) is (doc_id == second)
            assert_ok(await sdk.call("updateStatus", ack))
            assert_ok(await sdk.call("getEdoc", get))  # a read repeating a spent signature is fine
        assert await axis.inbox() == []
        states = "SELECT array_agg(DISTINCT state::text) FROM deliveries"
        assert await fetch_value(database_url, states) == ["acked"]

    await run(tmp_path, database_url, dev_pki, scenario)
