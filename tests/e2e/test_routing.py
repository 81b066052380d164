"""Routing and processing states against a real server: a status reaches the document its
reporter received, a DocumentId belongs to its sender, nothing a sender asked for is dropped,
the current status only moves forward, statuses need a received copy, and a repeated
acknowledgement is answered the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from adapters.vxp_client import VxpClient
from exchange import registry
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.model import Role
from tests.e2e.harness import (
    Client,
    Receiver,
    Server,
    fetch_value,
    register_each,
    start_receiver,
    write_config,
)
from tests.edxml_factories import small_edoc, small_status

# A (the real author), B (a legacy producer tolerated by the registry), D (a strict one), C the central
# office that receives from all of them.
A, B, D, C = "000.00.01.H26", "000.00.02.H26", "000.00.04.H26", "000.00.00.G22"
DOC = f"{A},2026/11/20,15/SNV-VP"
SECRET = "routing-test-secret"


async def _register(database_url: str, agencies: list[dict[str, Any]]) -> dict[str, str]:
    """Each agency with its own system ``dms-<OrganId>`` (VXP secret SECRET), and an admin."""
    return await register_each(database_url, agencies, Role.ADMIN, SECRET)


@asynccontextmanager
async def _server(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> AsyncIterator[Server]:
    config = write_config(tmp_path / "exchange.toml", dev_pki)
    server = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        yield server
    finally:
        assert await server.stop() == 0


async def _download_all(client: Client) -> list[str]:
    _, inbox = await client.get_json("/v1/inbox?kind=edoc")
    ids = [item["delivery_id"] for item in inbox["items"]]
    for delivery_id in ids:
        assert (await client.get_bytes(f"/v1/deliveries/{delivery_id}/package"))[0] == 200
    return ids


def _status(reporter: str, original_sender: str, code: StatusCode, document_id: str = DOC) -> bytes:
    return build_status(
        small_status(sender=reporter, original_sender=original_sender, document_id=document_id, code=code)
    )


async def test_a_reused_document_id_neither_gets_in_nor_captures_a_status(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await _register(database_url, [{"organ_id": o, "name": o} for o in (A, D, C)])
    async with _server(tmp_path, database_url, dev_pki) as server, aiohttp.ClientSession() as session:
        a, d, c, admin = (Client(session, server.url, keys[o]) for o in (A, D, C, "admin"))
        # B, a legacy producer, is registered through the admin API with the tolerance switch on.
        status, _ = await admin.post_json(
            "/v1/admin/agencies", {"organ_id": B, "name": "legacy", "foreign_document_ids": True}
        )
        assert status == 201
        conn = await asyncpg.connect(database_url)
        try:
            keys[B] = (await registry.add_system(conn, f"dms-{B}", Role.SYSTEM, [B])).api_key
        finally:
            await conn.close()
        b = Client(session, server.url, keys[B])

        # A strict agency cannot send under A's DocumentId: refused, nothing stored.
        decoy = build_edoc(small_edoc(sender=D, recipients=(C,), document_id=DOC))
        status, refused = await d.post_package(decoy)
        assert (status, refused["error"]["code"]) == (422, "document_id_not_sender")
        assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 0
        assert await fetch_value(database_url, "SELECT count(*) FROM deliveries") == 0

        # The tolerated legacy producer's decoy gets in first, then A's real document.
        status, legacy = await b.post_package(
            build_edoc(small_edoc(sender=B, recipients=(C,), document_id=DOC))
        )
        assert status == 201, legacy
        status, real = await a.post_package(
            build_edoc(small_edoc(sender=A, recipients=(C,), document_id=DOC))
        )
        assert status == 201, real
        assert len(await _download_all(c)) == 2

        # C's 03 names A in ResponseFor: it is recorded on A's document and travels to A only.
        status, answer = await c.post_package(_status(C, A, StatusCode.ACCEPTED))
        assert status == 201, answer
        assert [x["recipient"] for x in answer["deliveries"]] == [A]
        _, real_view = await a.get_json(f"/v1/messages/{real['message_id']}")
        assert [x["business_status"] for x in real_view["deliveries"]] == ["03"]
        _, legacy_view = await b.get_json(f"/v1/messages/{legacy['message_id']}")
        assert [x["business_status"] for x in legacy_view["deliveries"]] == [None]
        assert (await b.get_json("/v1/inbox?kind=status"))[1]["items"] == []

        # A status naming a sender C never received that DocumentId from: refused, nothing stored.
        statuses_before = await fetch_value(database_url, "SELECT count(*) FROM business_statuses")
        status, refused = await c.post_package(_status(C, D, StatusCode.PROCESSING))
        assert (status, refused["error"]["code"]) == (422, "unknown_document")
        assert await fetch_value(database_url, "SELECT count(*) FROM business_statuses") == statuses_before
        assert await fetch_value(database_url, "SELECT count(*) FROM messages WHERE kind = 'status'") == 1


async def test_a_wider_resubmission_adds_the_missing_recipient_and_an_empty_scope_is_refused(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await _register(database_url, [{"organ_id": o, "name": o} for o in (A, B, C)])
    document = build_edoc(small_edoc(sender=A, recipients=(B, C), document_id=DOC))
    params = {"from": A, "servicetype": "eDoc", "messagetype": "edoc"}
    async with _server(tmp_path, database_url, dev_pki) as server, aiohttp.ClientSession() as session:
        first = VxpClient(session, server.url, f"dms-{A}", SECRET)
        sent = await first.send_edoc({**params, "to": [B]}, document)
        assert sent["status"] == "OK", sent
        assert await fetch_value(database_url, "SELECT count(*) FROM deliveries") == 1

        # An empty scope would deliver to nobody: refused, for a known package and for a new one.
        empty = await first.send_edoc({**params, "to": []}, document)
        assert (empty["status"], empty["ErrorCode"]) == ("FAIL", "422"), empty
        assert "no_recipients" in empty["ErrorDesc"]
        other = build_edoc(small_edoc(sender=A, recipients=(B,), document_id=DOC + "-2"))
        assert (await first.send_edoc({**params, "to": []}, other))["ErrorCode"] == "422"
        assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 1
        assert await fetch_value(database_url, "SELECT count(*) FROM deliveries") == 1

        # The same package with a wider scope: the same document, and a delivery for C.
        wider = await first.send_edoc({**params, "to": [B, C]}, document)
        assert wider["DocId"] == sent["DocId"]
        c = Client(session, server.url, keys[C])
        _, inbox = await c.get_json("/v1/inbox")
        assert [item["message_id"] for item in inbox["items"]] == [sent["DocId"]]

        # Each recipient at most once, whatever comes again and however.
        later = VxpClient(
            session, server.url, f"dms-{A}", SECRET, created_at=datetime.now() - timedelta(hours=1)
        )
        assert (await later.send_edoc({**params, "to": [C, B]}, document))["DocId"] == sent["DocId"]
        status, native = await Client(session, server.url, keys[A]).post_package(document)
        assert status == 200
        assert sorted(x["recipient"] for x in native["deliveries"]) == sorted([B, C])
        assert await fetch_value(database_url, "SELECT count(*) FROM deliveries") == 2
        assert (
            await fetch_value(
                database_url,
                "SELECT count(*) FROM audit_log WHERE action = 'delivery.created' "
                "AND details->>'reason' = 'added by a resubmission with a wider scope'",
            )
            == 1
        )


async def test_a_late_status_never_moves_the_current_one_back(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await _register(database_url, [{"organ_id": o, "name": o} for o in (A, B)])
    overdue = replace(
        small_edoc(sender=A, recipients=(B,), document_id=DOC), due_date=date.today() - timedelta(days=2)
    )
    async with _server(tmp_path, database_url, dev_pki) as server, aiohttp.ClientSession() as session:
        a, b = Client(session, server.url, keys[A]), Client(session, server.url, keys[B])
        status, accepted = await a.post_package(build_edoc(overdue))
        assert status == 201
        await _download_all(b)
        for code in (StatusCode.ARRIVED, StatusCode.COMPLETED, StatusCode.ACCEPTED):
            assert (await b.post_package(_status(B, A, code)))[0] == 201

        message_path = f"/v1/messages/{accepted['message_id']}"
        _, view = await a.get_json(message_path)
        assert [(x["business_status"], x["business_status_label"]) for x in view["deliveries"]] == [
            ("06", StatusCode.COMPLETED.label)
        ]
        assert view["overdue"] is False  # completed; the late 03 does not reopen it
        _, trace = await a.get_json(message_path + "/trace")
        [history] = [x["statuses"] for x in trace["deliveries"]]
        assert [(s["code"], s["out_of_order"]) for s in history] == [
            ("01", False),
            ("06", False),
            ("03", True),
        ]
        assert history[2]["flag"] == "03 after final status 06"

        async def search(query: str) -> list[str]:
            _, found = await a.get_json(f"/v1/documents?{query}")
            return [item["message_id"] for item in found["items"]]

        assert await search("status=06") == [accepted["message_id"]]
        assert await search("status=03") == []
        assert await search("overdue=true") == []

        vxp = VxpClient(session, server.url, f"dms-{A}", SECRET)
        sent = await vxp.call(
            "getSentEdocList", {"servicetype": "eDoc", "messagetype": "edoc", "docId": accepted["message_id"]}
        )
        assert [(x["toCode"], x["receiveStatus"]) for x in sent["data"]] == [(B, "06")]
        # Kept in the history, with its flag; only the current status stayed where it was.
        assert await fetch_value(database_url, "SELECT count(*) FROM business_statuses") == 3


async def test_statuses_need_a_copy_that_reached_the_recipient(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    failing = Receiver(failures=10_000)
    runner, endpoint = await start_receiver(failing)
    keys = await _register(
        database_url,
        [
            {"organ_id": A, "name": A},
            {"organ_id": B, "name": B},
            {"organ_id": D, "name": D, "mode": "push", "endpoint": endpoint},
        ],
    )
    try:
        async with _server(tmp_path, database_url, dev_pki) as server, aiohttp.ClientSession() as session:
            a, b, d = (Client(session, server.url, keys[o]) for o in (A, B, D))
            status, accepted = await a.post_package(
                build_edoc(small_edoc(sender=A, recipients=(B, D), document_id=DOC))
            )
            assert status == 201
            await failing.wait_for(lambda: len(failing.requests) >= 1)  # pushed, refused by the DMS

            for reporter, client in ((B, b), (D, d)):
                for code in (StatusCode.COMPLETED, StatusCode.ARRIVED, StatusCode.REFUSED):
                    status, refused = await client.post_package(_status(reporter, A, code))
                    assert (status, refused["error"]["code"]) == (409, "not_received"), refused
            assert await fetch_value(database_url, "SELECT count(*) FROM messages WHERE kind = 'status'") == 0
            assert await fetch_value(database_url, "SELECT count(*) FROM business_statuses") == 0
            assert (await a.get_json("/v1/inbox?kind=status"))[1]["items"] == []

            # Once downloaded, the same status is accepted.
            await _download_all(b)
            status, arrived = await b.post_package(_status(B, A, StatusCode.ARRIVED))
            assert (status, [x["recipient"] for x in arrived["deliveries"]]) == (201, [A])
            _, view = await a.get_json(f"/v1/messages/{accepted['message_id']}")
            assert {x["recipient"]: x["business_status"] for x in view["deliveries"]} == {B: "01", D: None}
    finally:
        await runner.cleanup()


async def test_a_repeated_ack_is_answered_the_same_and_a_conflicting_one_is_refused(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await _register(database_url, [{"organ_id": o, "name": o} for o in (A, B)])

    async def acks(action: str) -> int:
        return await fetch_value(database_url, "SELECT count(*) FROM audit_log WHERE action = $1", action)

    async with _server(tmp_path, database_url, dev_pki) as server, aiohttp.ClientSession() as session:
        a, b = Client(session, server.url, keys[A]), Client(session, server.url, keys[B])
        for index in range(3):
            edoc = small_edoc(sender=A, recipients=(B,), document_id=f"{DOC}-{index}")
            assert (await a.post_package(build_edoc(edoc)))[0] == 201
        first, second, third = await _download_all(b)

        # Native: done, and done again after a lost answer.
        status, done = await b.post_json(f"/v1/deliveries/{first}/ack", {"result": "done"})
        assert (status, done["state"]) == (200, "acked")
        assert await b.post_json(f"/v1/deliveries/{first}/ack", {"result": "done"}) == (200, done)
        status, refused = await b.post_json(f"/v1/deliveries/{first}/ack", {"result": "fail", "reason": "x"})
        assert (status, refused["error"]["code"]) == (409, "ack_conflict")
        assert await acks("delivery.ack_done") == 1
        assert await acks("delivery.ack_fail") == 0

        # Native: fail, the same fail again, then a different reason and a done for the same round.
        fail = {"result": "fail", "reason": "chữ ký không hợp lệ"}
        status, failed = await b.post_json(f"/v1/deliveries/{second}/ack", fail)
        assert (status, failed["state"], failed["attempts"]) == (200, "queued", 1)
        assert await b.post_json(f"/v1/deliveries/{second}/ack", fail) == (200, failed)
        for other in ({"result": "fail", "reason": "khác"}, {"result": "done"}):
            status, refused = await b.post_json(f"/v1/deliveries/{second}/ack", other)
            assert (status, refused["error"]["code"]) == (409, "ack_conflict")
        _, view = await b.get_json(f"/v1/messages/{failed['message_id']}")
        assert [(x["state"], x["attempts"]) for x in view["deliveries"]] == [("queued", 1)]
        assert await acks("delivery.ack_fail") == 1
        # Fetched again, the copy is a new round and may be acknowledged afresh.
        assert (await b.get_bytes(f"/v1/deliveries/{second}/package"))[0] == 200
        assert (await b.post_json(f"/v1/deliveries/{second}/ack", {"result": "done"}))[0] == 200

        # VXP updateStatus: the same done from a DMS that recreated its service object, then a fail.
        vxp = VxpClient(session, server.url, f"dms-{B}", SECRET)
        assert (await vxp.call("updateStatus", {"status": "done", "docId": third}))["status"] == "OK"
        retry = VxpClient(
            session, server.url, f"dms-{B}", SECRET, created_at=datetime.now() - timedelta(hours=1)
        )
        assert (await retry.call("updateStatus", {"status": "done", "docId": third}))["status"] == "OK"
        conflict = await retry.call("updateStatus", {"status": "fail", "docId": third})
        assert (conflict["status"], conflict["ErrorCode"]) == ("FAIL", "409"), conflict
        assert "ack_conflict" in conflict["ErrorDesc"]
        assert await acks("delivery.ack_done") == 3
        assert await acks("delivery.ack_fail") == 1
