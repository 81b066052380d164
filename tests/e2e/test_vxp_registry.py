"""registerAgency and deleteAgency against a real server: a system acts only inside its own subtree,
and what it registers neither sends nor receives until an admin approves it (issue 11, item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from adapters.vxp_client import VxpClient
from exchange.edxml.builder import build_edoc
from exchange.vxp.protocol import hash_file
from tests.e2e.harness import Client, Server, fetch_value, register_two_departments, write_config
from tests.e2e.test_vxp import assert_fail, assert_ok
from tests.edxml_factories import small_edoc

DEPT, FINANCE, CENTRAL = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22"
UNIT, ROUTED = "000.07.02.H26", "000.05.02.H26"  # children of FINANCE; ROUTED goes to an upstream axis
SECRET = "s3cret-of-finance"


async def setup(database_url: str) -> dict[str, str]:
    return await register_two_departments(database_url, (DEPT, FINANCE, CENTRAL), SECRET)


async def registry_state(database_url: str) -> list[tuple[str, bool, bool]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT organ_id, active, pending FROM agencies ORDER BY organ_id")
        return [(r["organ_id"], r["active"], r["pending"]) for r in rows]
    finally:
        await conn.close()


def edoc(sender: str, recipient: str) -> bytes:
    return build_edoc(
        small_edoc(sender=sender, recipients=(recipient,), document_id=f"{sender},2026/11/20,1/X")
    )


def unit_body(code: str, parent: str) -> str:
    return f'{{"id":"","pcode":"{parent}","code":"{code}","name":"Phòng {code}","mail":"p@example.vn"}}'


async def register(client: VxpClient, code: str, parent: str) -> dict[str, Any]:
    body = unit_body(code, parent)
    return await client.register_agency({"hash-file": hash_file(body.encode())}, body)


async def start(tmp_path: Path, dev_pki: dict[str, Path], database_url: str, extra: str = "") -> Server:
    config = write_config(tmp_path / "x.toml", dev_pki)
    config.write_text(
        config.read_text()
        + extra
        + '[[upstreams]]\nname = "national"\nurl = "http://127.0.0.1:9"\nsystem_id = "city"\n'
        + f'secret = "x"\nprefixes = ["{ROUTED}"]\npoll_interval_s = 3600.0\nsync_interval_s = 3600.0\n'
    )
    return await Server.start("--config", str(config), "--database-url", database_url)


async def test_a_system_registers_only_under_its_own_agencies_and_waits_for_approval(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await setup(database_url)
    server = await start(tmp_path, dev_pki, database_url)
    try:
        async with aiohttp.ClientSession() as session:
            finance = VxpClient(session, server.url, "so-tai-chinh", SECRET)
            before = await registry_state(database_url)

            for code, parent, error in [
                ("000.07.01.H26", DEPT, "403"),  # under another system's agency
                ("000.00.00.G12", FINANCE, "403"),  # a ministry's code
                ("000.00.05.H44", FINANCE, "403"),  # another province's
                ("001.07.02.H26", FINANCE, "403"),  # skips a level of the hierarchy
                ("000.07.02.H27", FINANCE, "403"),  # same digits, another level-1 body
                (ROUTED, FINANCE, "403"),  # a child by shape, but routed to the upstream axis
                (FINANCE, FINANCE, "403"),  # itself
                ("H26.07.02", FINANCE, "422"),  # not an OrganId
            ]:
                assert_fail(await register(finance, code, parent), error)
            assert await registry_state(database_url) == before
            assert (
                await fetch_value(database_url, "SELECT count(*) FROM audit_log WHERE action LIKE 'agency.%'")
                == 0
            )

            assert_ok(await register(finance, UNIT, FINANCE))
            assert (UNIT, True, True) in await registry_state(database_url)
            listed = await finance.call("getAgenciesList", {})
            assert UNIT not in {a["code"] for a in listed["data"]}
            units = {u["code"]: u for u in (await finance.call("getSynchronizeUnit", {}))["data"]}
            assert (units[UNIT]["pid"], units[UNIT]["deleted"]) == (FINANCE, True)
            assert_fail(await register(finance, UNIT, FINANCE), "409")  # registered once only

            # Pending: the system cannot send as it, nobody can send to it.
            from_unit = edoc(UNIT, DEPT)
            params = {"from": UNIT, "servicetype": "eDoc", "messagetype": "edoc"}
            assert_fail(await finance.send_edoc(params, from_unit), "422")
            dept = Client(session, server.url, keys["dept"])
            to_unit = edoc(DEPT, UNIT)
            status, refused = await dept.post_package(to_unit)
            assert (status, refused["error"]["code"]) == (422, "agency_pending")
            assert "pending" in refused["error"]["details"][0]["reason"]
            native_finance = Client(session, server.url, keys["finance"])
            status, refused = await native_finance.post_package(from_unit)
            assert (status, refused["error"]["code"]) == (422, "agency_pending")
            assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 0
            assert await fetch_value(database_url, "SELECT count(*) FROM deliveries") == 0

            # The native admin API is not within a system's reach.
            status, _ = await native_finance.post_json(f"/v1/admin/agencies/{UNIT}/approve", {})
            assert status == 403
            status, _ = await native_finance.post_json(
                "/v1/admin/agencies", {"organ_id": "000.00.00.G12", "name": "Bộ Tài chính"}
            )
            assert status == 403
            assert (UNIT, True, True) in await registry_state(database_url)
            assert "000.00.00.G12" not in {o for o, _, _ in await registry_state(database_url)}

            admin = Client(session, server.url, keys["admin"])
            status, approved = await admin.post_json(f"/v1/admin/agencies/{UNIT}/approve", {})
            assert (status, approved["state"], approved["pending"]) == (200, "active", False)
            assert UNIT in {a["code"] for a in (await finance.call("getAgenciesList", {}))["data"]}
            assert (await dept.post_package(to_unit))[0] == 201
            assert_ok(await finance.send_edoc(params, from_unit))
            assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 2
    finally:
        assert await server.stop() == 0


async def test_delete_agency_only_inside_the_callers_subtree(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    await setup(database_url)
    server = await start(tmp_path, dev_pki, database_url)
    try:
        async with aiohttp.ClientSession() as session:
            finance = VxpClient(session, server.url, "so-tai-chinh", SECRET)
            assert_ok(await register(finance, UNIT, FINANCE))
            before = await registry_state(database_url)
            for code, error in [
                (DEPT, "404"),  # another system's agency
                (FINANCE, "403"),  # its own top agency: not a unit it registered under another
                (CENTRAL, "404"),
                ("000.09.02.H26", "404"),  # not registered
            ]:
                assert_fail(await finance.call("deleteAgency", {"AgencyCode": code}), error)
            assert await registry_state(database_url) == before
            assert_ok(await finance.call("deleteAgency", {"AgencyCode": UNIT}))
            assert (UNIT, False, True) in await registry_state(database_url)
    finally:
        assert await server.stop() == 0


async def test_auto_registration_is_in_service_at_once(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await setup(database_url)
    server = await start(tmp_path, dev_pki, database_url, '[vxp]\nregister_agency = "auto"\n')
    try:
        async with aiohttp.ClientSession() as session:
            finance = VxpClient(session, server.url, "so-tai-chinh", SECRET)
            assert_fail(await register(finance, "000.07.01.H26", DEPT), "403")  # the subtree rule stays
            assert_ok(await register(finance, UNIT, FINANCE))
            assert (UNIT, True, False) in await registry_state(database_url)
            assert UNIT in {a["code"] for a in (await finance.call("getAgenciesList", {}))["data"]}
            dept = Client(session, server.url, keys["dept"])
            assert (await dept.post_package(edoc(DEPT, UNIT)))[0] == 201
    finally:
        assert await server.stop() == 0
