"""Rotating a VXP secret, disabling and enabling systems and agencies, against a real server: every
credential of a disabled system is refused, deliveries to an agency out of service are held and
resume when it is back (issue 11, item 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from adapters.vxp_client import VxpClient
from exchange.edxml.builder import build_edoc
from tests.e2e.harness import Client, Server, fetch_value, register_two_departments, write_config
from tests.e2e.test_vxp import assert_fail, assert_ok
from tests.edxml_factories import small_edoc

DEPT, FINANCE = "000.00.01.H26", "000.00.02.H26"
SECRET = "secret-of-finance"
EDOC = {"servicetype": "eDoc", "messagetype": "edoc"}


async def setup(database_url: str) -> dict[str, str]:
    return await register_two_departments(database_url, (DEPT, FINANCE), SECRET)


def document(sender: str, recipient: str, number: int) -> bytes:
    document_id = f"{sender},2026/11/20,{number}/X"
    return build_edoc(small_edoc(sender=sender, recipients=(recipient,), document_id=document_id))


class Axis:
    def __init__(self, server: Server, session: aiohttp.ClientSession, keys: dict[str, str]) -> None:
        self.url, self.session = server.url, session
        self.dept = Client(session, server.url, keys["dept"])
        self.finance = Client(session, server.url, keys["finance"])
        self.admin = Client(session, server.url, keys["admin"])

    def sdk(self, secret: str = SECRET) -> VxpClient:
        return VxpClient(self.session, self.url, "so-tai-chinh", secret)

    async def inbox(self) -> list[str]:
        status, body = await self.finance.get_json("/v1/inbox")
        assert status == 200, body
        return [item["delivery_id"] for item in body["items"]]


async def run(tmp_path: Path, database_url: str, dev_pki: dict[str, Path], scenario: Any) -> None:
    keys = await setup(database_url)
    config = write_config(tmp_path / "x.toml", dev_pki)
    server = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        async with aiohttp.ClientSession() as session:
            await scenario(Axis(server, session, keys))
    finally:
        assert await server.stop() == 0


async def test_a_disabled_system_gets_401_everywhere_and_its_deliveries_wait(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        status, accepted = await axis.dept.post_package(document(DEPT, FINANCE, 1))
        assert status == 201
        delivery_id = accepted["deliveries"][0]["delivery_id"]

        status, disabled = await axis.admin.post_json("/v1/admin/systems/so-tai-chinh/disable", {})
        assert (status, disabled["active"]) == (200, False)
        status, refused = await axis.admin.post_json("/v1/admin/systems/ops/disable", {})
        assert (status, refused["error"]["code"]) == (409, "conflict")  # an admin cannot lock itself out

        for path in ("/v1/inbox", "/v1/agencies", f"/v1/deliveries/{delivery_id}/package", "/v1/documents"):
            status, _ = await axis.finance.get_bytes(path)
            assert status == 401, path
        status, _ = await axis.finance.post_package(document(FINANCE, DEPT, 2))
        assert status == 401
        status, _ = await axis.finance.post_json(f"/v1/deliveries/{delivery_id}/ack", {"result": "done"})
        assert status == 401
        assert_fail(await axis.sdk().call("getReceivedEdocList", EDOC), "401")
        sent = await axis.sdk().send_edoc({"from": FINANCE, **EDOC}, document(FINANCE, DEPT, 3))
        assert_fail(sent, "401")
        assert sent["DocId"] == ""

        # Its agency is out of service with it: nothing new is accepted for it.
        status, body = await axis.dept.post_package(document(DEPT, FINANCE, 4))
        assert (status, body["error"]["code"]) == (422, "agency_disabled")
        _, agencies = await axis.dept.get_json("/v1/agencies")
        finance = next(a for a in agencies["items"] if a["organ_id"] == FINANCE)
        assert (finance["active"], finance["state"]) == (False, "disabled")
        assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 1
        assert (
            await fetch_value(database_url, "SELECT state::text FROM deliveries") == "queued"
        )  # held, not failed

        status, enabled = await axis.admin.post_json("/v1/admin/systems/so-tai-chinh/enable", {})
        assert (status, enabled["active"]) == (200, True)
        assert await axis.inbox() == [delivery_id]
        assert_ok(await axis.sdk().call("getReceivedEdocList", EDOC))
        actions = "SELECT array_agg(action ORDER BY id) FROM audit_log WHERE action LIKE 'system.%'"
        assert await fetch_value(database_url, actions) == ["system.disabled", "system.enabled"]

    await run(tmp_path, database_url, dev_pki, scenario)


async def test_rotating_the_vxp_secret_retires_the_old_one_at_once(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        assert_ok(await axis.sdk().call("getAgenciesList", {}))
        status, rotated = await axis.admin.post_json("/v1/admin/systems/so-tai-chinh/rotate-secret", {})
        assert status == 200
        assert rotated["vxp_secret"] != SECRET
        assert_fail(await axis.sdk().call("getAgenciesList", {}), "401")
        assert_ok(await axis.sdk(rotated["vxp_secret"]).call("getAgenciesList", {}))
        status, refused = await axis.admin.post_json("/v1/admin/systems/ops/rotate-secret", {})
        assert (status, refused["error"]["code"]) == (422, "invalid_input")  # an admin has no VXP secret
        status, _ = await axis.admin.post_json("/v1/admin/systems/nobody/rotate-secret", {})
        assert status == 404
        status, _ = await axis.finance.post_json("/v1/admin/systems/so-tai-chinh/rotate-secret", {})
        assert status == 403
        secrets = "SELECT count(DISTINCT vxp_secret) FROM systems WHERE name = 'so-tai-chinh'"
        assert await fetch_value(database_url, secrets) == 1

    await run(tmp_path, database_url, dev_pki, scenario)


async def test_deliveries_to_a_disabled_agency_are_held_and_resume_on_enable(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    async def scenario(axis: Axis) -> None:
        status, accepted = await axis.dept.post_package(document(DEPT, FINANCE, 1))
        assert status == 201
        delivery_id = accepted["deliveries"][0]["delivery_id"]

        status, disabled = await axis.admin.post_json(f"/v1/admin/agencies/{FINANCE}/disable", {})
        assert (status, disabled["state"], disabled["active"]) == (200, "disabled", False)

        # Held: out of its inbox (native and VXP), not handed out, not failed.
        assert await axis.inbox() == []
        assert (await axis.sdk().call("getReceivedEdocList", EDOC))["data"] == []
        assert (await axis.sdk().call("countReceiveEdoc", EDOC))["count"] == 0
        status, body = await axis.finance.get_json(f"/v1/deliveries/{delivery_id}/package")
        assert (status, body["error"]["code"]) == (409, "delivery_held")
        status, body = await axis.finance.post_json(f"/v1/deliveries/{delivery_id}/ack", {"result": "done"})
        assert (status, body["error"]["code"]) == (409, "delivery_held")
        state = "SELECT state::text || ' ' || (downloaded_at IS NULL)::text FROM deliveries"
        assert await fetch_value(database_url, state) == "queued true"

        # Neither sends nor receives anything new, and is not listed as deliverable.
        status, body = await axis.dept.post_package(document(DEPT, FINANCE, 2))
        assert (status, body["error"]["code"]) == (422, "agency_disabled")
        status, body = await axis.finance.post_package(document(FINANCE, DEPT, 3))
        assert (status, body["error"]["code"]) == (422, "agency_disabled")
        assert_fail(await axis.sdk().send_edoc({"from": FINANCE, **EDOC}, document(FINANCE, DEPT, 3)), "422")
        listed = await axis.sdk().call("getAgenciesList", {})
        assert FINANCE not in {a["code"] for a in listed["data"]}
        assert await fetch_value(database_url, "SELECT count(*) FROM messages") == 1

        status, enabled = await axis.admin.post_json(f"/v1/admin/agencies/{FINANCE}/enable", {})
        assert (status, enabled["state"]) == (200, "active")
        assert await axis.inbox() == [delivery_id]
        status, package = await axis.finance.get_bytes(f"/v1/deliveries/{delivery_id}/package")
        assert status == 200
        assert package.startswith(b"<?xml")
        status, _ = await axis.admin.post_json("/v1/admin/agencies/000.00.09.H26/disable", {})
        assert status == 404

    await run(tmp_path, database_url, dev_pki, scenario)
