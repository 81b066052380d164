"""The exchange end to end: real server processes, real PostgreSQL, real HTTP in and out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from exchange import cert_registry
from exchange.audit_chain import seal_pending, verify_chain
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, StatusCode
from exchange.edxml.model import Bussiness
from exchange.edxml.package import parse_package
from exchange.model import Role
from exchange.trust.signing import Signer, sign_package
from tests.e2e.harness import (
    Client,
    Receiver,
    Server,
    expire_leases,
    register_each,
    start_receiver,
    write_config,
)
from tests.edxml_factories import small_edoc, small_status

DEPT, FINANCE, BUILDING, CENTRAL = "000.00.01.H26", "000.00.02.H26", "000.00.03.H26", "000.00.00.G22"
DOC = "000.00.01.H26,2026/11/20,15/SNV-VP"


async def register(database_url: str, agencies: list[dict[str, Any]]) -> dict[str, str]:
    """Register agencies, one system each (named after the OrganId), and an auditor: their keys."""
    return await register_each(database_url, agencies, Role.AUDITOR)


async def trust_dev_ca(database_url: str, dev_pki: dict[str, Path]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        ca = cert_registry.read_certificates(dev_pki["ca"].read_bytes(), "ca.pem")
        await cert_registry.import_certificates(conn, ca, organ_id=None)
    finally:
        await conn.close()


def signer_for(dev_pki: dict[str, Path], organ_id: str) -> Signer:
    return Signer.from_files(dev_pki[f"agency:{organ_id}"], dev_pki[f"agency_key:{organ_id}"])


async def test_a_signed_document_travels_to_three_recipients_and_its_statuses_come_back(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    building_endpoint, central_endpoint = Receiver(), Receiver(failures=2)
    runners = [await start_receiver(r) for r in (building_endpoint, central_endpoint)]
    keys = await register(
        database_url,
        [
            {"organ_id": DEPT, "name": "Sở Nội vụ", "signature_policy": "required"},
            {"organ_id": FINANCE, "name": "Sở Tài chính"},
            {"organ_id": BUILDING, "name": "Sở Xây dựng", "mode": "push", "endpoint": runners[0][1]},
            {"organ_id": CENTRAL, "name": "Văn phòng Chính phủ", "mode": "push", "endpoint": runners[1][1]},
        ],
    )
    await trust_dev_ca(database_url, dev_pki)
    config = write_config(tmp_path / "exchange.toml", dev_pki)
    server = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        async with aiohttp.ClientSession() as session:
            dept, finance, building, central = (
                Client(session, server.url, keys[o]) for o in (DEPT, FINANCE, BUILDING, CENTRAL)
            )
            document = sign_package(
                build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, BUILDING, CENTRAL), document_id=DOC)),
                signer_for(dev_pki, DEPT),
            )
            status, accepted = await dept.post_package(document)
            assert status == 201, accepted
            assert accepted["signature"]["verdict"] == "valid"
            message_path = f"/v1/messages/{accepted['message_id']}"

            unsigned = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC + "-x"))
            status, refused = await dept.post_package(unsigned)
            assert (status, refused["error"]["code"]) == (422, "signature_rejected")

            # Pushed: the building department at once, the central office after two failures.
            await building_endpoint.wait_for(lambda: len(building_endpoint.requests) == 1)
            await central_endpoint.wait_for(lambda: len(central_endpoint.requests) == 3)
            assert len(central_endpoint.counts()) == 1  # three attempts, one delivery id

            # Pulled: the finance department downloads and acknowledges.
            _, items = await finance.get_json("/v1/inbox")
            [item] = items["items"]
            status, package = await finance.get_bytes(f"/v1/deliveries/{item['delivery_id']}/package")
            assert status == 200
            assert parse_package(package).edoc.document_id == DOC
            assert (await finance.post_json(f"/v1/deliveries/{item['delivery_id']}/ack", {"result": "done"}))[
                0
            ] == 200

            for code in ("01", "03", "04", "05", "06"):
                status, _ = await finance.post_package(
                    build_status(
                        small_status(
                            sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode(code)
                        )
                    )
                )
                assert status == 201
            refusal = replace(
                small_status(sender=BUILDING, original_sender=DEPT, document_id=DOC, code=StatusCode.REFUSED),
                description="Sai thẩm quyền",
            )
            assert (await building.post_package(build_status(refusal)))[0] == 201

            # Take-back: the sender asks the central office; it agrees.
            take_back = small_status(
                sender=DEPT, original_sender=CENTRAL, document_id=DOC, code=StatusCode.TAKE_BACK
            )
            assert (
                await dept.post_package(sign_package(build_status(take_back), signer_for(dev_pki, DEPT)))
            )[0] == 201
            await central_endpoint.wait_for(
                lambda: any(b"<edXML:StatusCode>13<" in r["body"] for r in central_endpoint.requests)
            )
            agreed = small_status(
                sender=CENTRAL, original_sender=DEPT, document_id=DOC, code=StatusCode.CHANGE_AGREED
            )
            assert (await central.post_package(build_status(agreed)))[0] == 201

            _, statuses = await dept.get_json("/v1/inbox?kind=status")
            assert sorted(i["status_code"] for i in statuses["items"]) == [
                "01",
                "02",
                "03",
                "04",
                "05",
                "06",
                "15",
            ]
            _, view = await dept.get_json(message_path)
            assert {d["recipient"]: (d["state"], d["business_status"]) for d in view["deliveries"]} == {
                FINANCE: ("acked", "06"),
                BUILDING: ("delivered", "02"),
                CENTRAL: ("withdrawn", "15"),
            }

            # Revocation of a copy nobody downloaded yet.
            second = small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC + "-2")
            await dept.post_package(sign_package(build_edoc(second), signer_for(dev_pki, DEPT)))
            _, items = await finance.get_json("/v1/inbox")
            [pending] = items["items"]
            revoke = replace(
                second,
                document_id=DOC + "-2/TH",
                bussiness=Bussiness(BusinessType.REVOKE, document_id=DOC + "-2"),
            )
            status, revoked = await dept.post_package(
                sign_package(build_edoc(revoke), signer_for(dev_pki, DEPT))
            )
            assert (status, revoked["deliveries"]) == (201, [])
            assert (await finance.get_bytes(f"/v1/deliveries/{pending['delivery_id']}/package"))[0] == 410

            # The trace shows every step; so does the CLI.
            status, trace = await Client(session, server.url, keys["auditor"]).get_json(
                message_path + "/trace"
            )
            assert status == 200
            actions = [event["action"] for event in trace["events"]]
            for expected in (
                "message.accepted",
                "signature.checked",
                "delivery.created",
                "delivery.retry_scheduled",
                "delivery.pushed",
                "delivery.downloaded",
                "delivery.ack_done",
                "status.recorded",
                "delivery.withdrawn",
            ):
                assert expected in actions, expected
            assert actions.count("delivery.retry_scheduled") == 2
            assert actions.count("status.recorded") == 8
    finally:
        assert await server.stop() == 0
        for runner, _ in runners:
            await runner.cleanup()

    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "exchange", "trace", accepted["message_id"], "--database-url", database_url],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "signature: valid" in cli.stdout
    assert "06 Hoàn thành" in cli.stdout
    assert "delivery.retry_scheduled" in cli.stdout


async def test_two_servers_deliver_a_thousand_documents_once_each(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    endpoint = Receiver()
    runner, url = await start_receiver(endpoint)
    keys = await register(
        database_url,
        [
            {"organ_id": DEPT, "name": "Sở Nội vụ"},
            {"organ_id": CENTRAL, "name": "Văn phòng Chính phủ", "mode": "push", "endpoint": url},
        ],
    )
    config = write_config(tmp_path / "exchange.toml", dev_pki)
    servers = [await Server.start("--config", str(config), "--database-url", database_url) for _ in range(2)]
    total = 1000
    try:
        async with aiohttp.ClientSession() as session:
            clients = [Client(session, s.url, keys[DEPT]) for s in servers]
            limit = asyncio.Semaphore(16)

            async def submit(index: int) -> str:
                edoc = small_edoc(
                    sender=DEPT, recipients=(CENTRAL,), document_id=f"{DEPT},2026/11/21,{index}/NV"
                )
                async with limit:
                    status, accepted = await clients[index % 2].post_package(build_edoc(edoc))
                assert status == 201, accepted
                return str(accepted["deliveries"][0]["delivery_id"])

            delivery_ids = await asyncio.gather(*(submit(i) for i in range(total)))
            await endpoint.wait_for(lambda: len(endpoint.counts()) == total, within_s=240)
    finally:
        for server in servers:
            assert await server.stop() == 0
        await runner.cleanup()
    counts = endpoint.counts()
    assert set(counts) == set(delivery_ids)
    assert max(counts.values()) == 1, "a delivery reached the recipient twice"
    pushers = {e.get("event") for s in servers for e in s.events}
    assert "delivery.pushed" in pushers
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
        assert {r["state"]: r["n"] for r in rows} == {"delivered": total}
        workers = await conn.fetchval("SELECT count(DISTINCT leased_by) FROM deliveries")
        assert workers == 2, "both server processes should have delivered"
        # Both processes ran the sealer: the chain must still be one unbroken line over every entry.
        entries = await conn.fetchval("SELECT count(*) FROM audit_log")
        axis = Signer.from_files(dev_pki["axis"], dev_pki["axis_key"])
        while (await seal_pending(conn, axis, force_checkpoint=True)).sealed:
            pass
        report = await verify_chain(conn, axis.certificate)
        assert report.intact, report.problems[:3]
        assert report.entries == entries
    finally:
        await conn.close()


async def test_a_killed_server_loses_nothing(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    endpoint = Receiver()
    endpoint.hold.clear()  # the endpoint keeps the first server's pushes hanging
    runner, url = await start_receiver(endpoint)
    keys = await register(
        database_url,
        [
            {"organ_id": DEPT, "name": "Sở Nội vụ"},
            {"organ_id": CENTRAL, "name": "Văn phòng Chính phủ", "mode": "push", "endpoint": url},
        ],
    )
    config = write_config(tmp_path / "exchange.toml", dev_pki)
    first = await Server.start("--config", str(config), "--database-url", database_url)
    second: Server | None = None
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, first.url, keys[DEPT])
            accepted = []
            for index in range(5):
                edoc = small_edoc(
                    sender=DEPT, recipients=(CENTRAL,), document_id=f"{DEPT},2026/11/21,{index}/K"
                )
                status, body = await client.post_package(build_edoc(edoc))
                assert status == 201
                accepted.append(body["deliveries"][0]["delivery_id"])
            await endpoint.wait_for(lambda: len(endpoint.requests) == 5)  # all five claimed and in flight
            await first.kill()
            # The killed server's leases run out (the long lease keeps it from claiming its own
            # hanging pushes again before the kill, whatever the machine's speed).
            await expire_leases(database_url)
            endpoint.hold.set()
            second = await Server.start("--config", str(config), "--database-url", database_url)
            await endpoint.wait_for(lambda: len(endpoint.requests) == 10, within_s=60)
    finally:
        if second is not None:
            assert await second.stop() == 0
        await runner.cleanup()
    assert endpoint.counts() == {delivery_id: 2 for delivery_id in accepted}  # the same ids, retried once
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM messages") == 5
        states = await conn.fetch("SELECT state, attempts FROM deliveries")
        assert [(r["state"], r["attempts"]) for r in states] == [("delivered", 2)] * 5
    finally:
        await conn.close()
