"""The VXP facade against a real server, spoken exactly as the national-axis SDK speaks it."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from adapters.vxp_client import VxpClient
from exchange import registry
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.edxml.package import parse_package
from exchange.model import Role
from exchange.vxp.protocol import hash_file
from tests.e2e.harness import Client, Server, write_config
from tests.edxml_factories import small_edoc, small_status

DEPT, FINANCE, CENTRAL, COMMUNE = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22", "000.07.02.H26"
DOC = "000.00.01.H26,2026/11/21,9/SNV-VP"
SECRETS = {"so-noi-vu": "A7TKG/r2gOKTEpe1MhWx6zw8O4JfzN0KkCRS6HZY81Ve", "so-tai-chinh": "s3cret-Tài-chính"}


async def setup(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn,
            [registry.AgencyInput({"organ_id": o, "name": f"Đơn vị {o}"}) for o in (DEPT, FINANCE, CENTRAL)],
        )
        await registry.add_system(conn, "so-noi-vu", Role.SYSTEM, [DEPT], SECRETS["so-noi-vu"])
        await registry.add_system(conn, "so-tai-chinh", Role.SYSTEM, [FINANCE], SECRETS["so-tai-chinh"])
        central = await registry.add_system(conn, "vpcp", Role.SYSTEM, [CENTRAL])
        return {"central": central.api_key}
    finally:
        await conn.close()


async def count(database_url: str, table: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def assert_ok(answer: dict[str, Any]) -> None:
    assert (answer["status"], answer["ErrorCode"]) == ("OK", "0"), answer
    assert None not in answer.values()


def assert_fail(answer: dict[str, Any], code: str) -> None:
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", code), answer
    assert answer["ErrorDesc"].isascii()


async def test_every_operation_as_the_sdk_calls_it(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await setup(database_url)
    server = await Server.start(
        "--config", str(write_config(tmp_path / "x.toml", dev_pki)), "--database-url", database_url
    )
    try:
        async with aiohttp.ClientSession() as session:
            stale = datetime.now() - timedelta(days=3)  # the SDK fixes the timestamp when created
            dept = VxpClient(session, server.url, "so-noi-vu", SECRETS["so-noi-vu"], created_at=stale)
            finance = VxpClient(session, f"{server.url}/vxp", "so-tai-chinh", SECRETS["so-tai-chinh"])

            document = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC))
            sent = await dept.send_edoc(
                {"from": DEPT, "servicetype": "eDoc", "messagetype": "edoc", "to": [FINANCE, CENTRAL]},
                document,
            )
            assert_ok(sent)
            assert sent["DocId"]
            again = await dept.send_edoc(
                {"from": DEPT, "servicetype": "eDoc", "messagetype": "edoc"}, document
            )
            assert again["DocId"] == sent["DocId"]  # a repeated submission is the same document

            received = await finance.call(
                "getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "edoc"}
            )
            assert_ok(received)
            [item] = received["data"]
            assert (item["from"], item["to"], item["messageType"]) == (DEPT, FINANCE, "edoc")
            assert (await finance.call("countReceiveEdoc", {"servicetype": "eDoc", "messagetype": "edoc"}))[
                "count"
            ] == 1
            got = await finance.call("getEdoc", {"filePath": "C:/dms/edoc", "docId": item["docId"]})
            assert_ok(got)
            package = base64.b64decode(got["data"])
            assert parse_package(package).edoc.document_id == DOC
            status, downloaded = await finance.download_edoc(
                {"filePath": "C:/dms/edoc", "docId": item["docId"]}
            )
            assert (status, downloaded) == (200, package)
            assert_ok(await finance.call("updateStatus", {"status": "processing", "docId": item["docId"]}))
            assert_ok(await finance.call("updateStatus", {"status": "done", "docid": item["docId"]}))
            assert (
                await finance.call("getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "edoc"})
            )["data"] == []

            arrived = build_status(
                small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode.ARRIVED)
            )
            assert_ok(
                await finance.send_edoc(
                    {"from": FINANCE, "servicetype": "eDoc", "messagetype": "status", "to": DEPT}, arrived
                )
            )
            statuses = await dept.call(
                "getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "status"}
            )
            assert [s["from"] for s in statuses["data"]] == [FINANCE]
            assert (await dept.call("countReceiveStatus", {"servicetype": "eDoc", "messagetype": "status"}))[
                "count"
            ] == 1
            sent_list = await dept.call(
                "getSentEdocList", {"servicetype": "eDoc", "messagetype": "edoc", "docId": sent["DocId"]}
            )
            assert_ok(sent_list)
            by_recipient = {i["toCode"]: i for i in sent_list["data"]}
            assert by_recipient[FINANCE]["receiveStatus"] == "01"
            assert by_recipient[FINANCE]["sendStatus"] == "acked"
            assert by_recipient[CENTRAL]["receiveStatus"] == ""

            # The same exchange is there for the native API, and the other way round.
            central = Client(session, server.url, keys["central"])
            _, inbox = await central.get_json("/v1/inbox")
            assert [i["document_id"] for i in inbox["items"]] == [DOC]
            native = build_edoc(
                small_edoc(
                    sender=CENTRAL, recipients=(FINANCE,), document_id="000.00.00.G22,2026/11/21,5/VPCP"
                )
            )
            assert (await central.post_package(native))[0] == 201
            from_native = await finance.call(
                "getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "edoc"}
            )
            assert [i["from"] for i in from_native["data"]] == [CENTRAL]

            agencies = await dept.call("getAgenciesList", {})
            assert {a["code"] for a in agencies["data"]} == {DEPT, FINANCE, CENTRAL}
            assert_ok(await dept.call("getAgenciesListQD20", {"level": "1"}))
            unit = (
                '{"id":"","pcode":"000.00.02.H26","code":"000.07.02.H26",'
                '"name":"Phòng Kế hoạch","mail":"kh@example.vn"}'
            )
            # The SDK signs no body: the caller names its hash among the signed headers (required).
            assert_ok(await finance.register_agency({"hash-file": hash_file(unit.encode())}, unit))
            assert_ok(await finance.call("deleteAgency", {"AgencyCode": COMMUNE}))
            units = await dept.call("getSynchronizeUnit", {})
            commune = next(u for u in units["data"] if u["code"] == COMMUNE)
            assert (commune["pid"], commune["deleted"], commune["isAgency"]) == (FINANCE, True, True)
            assert isinstance(commune["version"], int)
    finally:
        assert await server.stop() == 0


async def test_refusals_are_fail_answers_and_store_nothing(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    await setup(database_url)
    server = await Server.start(
        "--config", str(write_config(tmp_path / "x.toml", dev_pki)), "--database-url", database_url
    )
    document = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    params = {"from": DEPT, "servicetype": "eDoc", "messagetype": "edoc"}
    try:
        async with aiohttp.ClientSession() as session:
            wrong_secret = VxpClient(session, server.url, "so-noi-vu", "not-the-secret")
            answer = await wrong_secret.send_edoc(params, document)
            assert_fail(answer, "401")
            assert answer["DocId"] == ""

            stranger = VxpClient(session, server.url, "no-such-system", "x")
            assert_fail(await stranger.call("getAgenciesList", {}), "401")

            dept = VxpClient(session, server.url, "so-noi-vu", SECRETS["so-noi-vu"])
            assert_fail(await dept.send_edoc({**params, "from": FINANCE}, document), "403")

            headers = dept.signed_headers(
                "application/octet-stream", params, send_edoc=True, file_hash=hash_file(document)
            )
            tampered = document.replace(b"V/v", b"V/V")
            assert tampered != document
            async with session.post(f"{server.url}/sendEdoc", data=tampered + b"\r\n", headers=headers) as r:
                answer = await r.json()
            assert_fail(answer, "422")
            assert answer["DocId"] == ""

            too_old = VxpClient(
                session,
                server.url,
                "so-noi-vu",
                SECRETS["so-noi-vu"],
                created_at=datetime.now() - timedelta(days=60),
            )
            assert_fail(await too_old.call("getAgenciesList", {}), "401")

            assert await count(database_url, "messages") == 0
            assert_ok(await dept.send_edoc(params, document))
            finance = VxpClient(session, server.url, "so-tai-chinh", SECRETS["so-tai-chinh"])
            [item] = (
                await finance.call("getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "edoc"})
            )["data"]
            assert_ok(await finance.call("updateStatus", {"status": "processing", "docId": item["docId"]}))
            replayed = await finance.call("updateStatus", {"status": "processing", "docId": item["docId"]})
            assert_fail(replayed, "409")
            assert await count(database_url, "messages") == 1
    finally:
        assert await server.stop() == 0
