"""A city axis and a national axis, each with its own database: forwarding, statuses back, crashes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from exchange import registry
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.edxml.package import parse_package
from exchange.model import Role
from tests.conftest import new_database
from tests.e2e.harness import Client, Server, write_config
from tests.edxml_factories import small_edoc, small_status

CITY, DEPT, MINISTRY, CENTRAL = "000.00.00.H26", "000.00.01.H26", "000.00.00.G17", "000.00.00.G22"
CITY_SECRET = "city-axis-secret/on+the=national"


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 60) -> None:
    """Wait for a state another process reaches (its own timing), checking it every 0.2 s."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "the other axis did not get there in time"
        await asyncio.sleep(0.2)


async def register(
    url: str, agencies: list[dict[str, Any]], systems: list[tuple[str, list[str], str | None]]
) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        await registry.add_agencies(conn, [registry.AgencyInput(a) for a in agencies])
        return {
            name: (await registry.add_system(conn, name, Role.SYSTEM, organs, secret)).api_key
            for name, organs, secret in systems
        }
    finally:
        await conn.close()


def city_config(path: Path, dev_pki: dict[str, Path], national_url: str) -> Path:
    """The city axis: the national one upstream for ministries (top-level keys come before tables)."""
    # Short leases: forwards claimed by a killed city axis are taken up again by the next one.
    write_config(path, dev_pki, trace_organ_id=CITY, lease_s=3.0, push_timeout_s=2.0)
    upstream = (
        f'upstreams = [{{name = "national", url = "{national_url}", system_id = "truc-thanh-pho", '
        f'secret = {json.dumps(CITY_SECRET)}, prefixes = ["000.00.00.G"], poll_interval_s = 0.3}}]\n'
    )
    path.write_text(upstream + path.read_text())
    return path


async def test_a_document_goes_up_and_its_statuses_come_back_through_crashes(
    tmp_path: Path, database_url: str, cluster_url: str, dev_pki: dict[str, Path]
) -> None:
    national_url = new_database(cluster_url, f"national_{id(tmp_path) % 100000}")
    national_keys = await register(
        national_url,
        [
            {"organ_id": MINISTRY, "name": "Bộ Xây dựng"},
            {"organ_id": CENTRAL, "name": "Văn phòng Chính phủ"},
            {"organ_id": CITY, "name": "UBND Thành phố"},
            {"organ_id": DEPT, "name": "Sở Nội vụ", "parent": CITY},
        ],
        [("bo-xay-dung", [MINISTRY], None), ("truc-thanh-pho", [CITY, DEPT], CITY_SECRET)],
    )
    city_keys = await register(
        database_url, [{"organ_id": DEPT, "name": "Sở Nội vụ"}], [("so-noi-vu", [DEPT], None)]
    )

    national = await Server.start(
        "--config",
        str(write_config(tmp_path / "national.toml", dev_pki, trace_organ_id=CENTRAL)),
        "--database-url",
        national_url,
    )
    config = city_config(tmp_path / "city.toml", dev_pki, national.url)
    city = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        async with aiohttp.ClientSession() as session:
            dept = Client(session, city.url, city_keys["so-noi-vu"])
            ministry = Client(session, national.url, national_keys["bo-xay-dung"])
            document_id = f"{DEPT},2026/11/21,77/SNV-VP"
            status, accepted = await dept.post_package(
                build_edoc(small_edoc(sender=DEPT, recipients=(MINISTRY,), document_id=document_id))
            )
            assert status == 201, accepted
            assert [(d["recipient"], d["state"]) for d in accepted["deliveries"]] == [(MINISTRY, "queued")]

            async def ministry_has(count: int) -> bool:
                _, inbox = await ministry.get_json("/v1/inbox?kind=edoc")
                return len(inbox["items"]) >= count

            await eventually(lambda: ministry_has(1))
            _, inbox = await ministry.get_json("/v1/inbox?kind=edoc")
            [item] = inbox["items"]
            assert (item["sender"], item["document_id"]) == (DEPT, document_id)
            _, package = await ministry.get_bytes(f"/v1/deliveries/{item['delivery_id']}/package")
            hops = [header.organ_id for header in parse_package(package).edoc.trace_headers]
            assert hops == [DEPT, CITY, CENTRAL], "one TraceHeader per hop: sender, city axis, national axis"
            assert (
                await ministry.post_json(f"/v1/deliveries/{item['delivery_id']}/ack", {"result": "done"})
            )[0] == 200

            # The city axis dies; the ministry reports meanwhile; the statuses wait upstream.
            await city.kill()
            for code in ("01", "03", "04", "05", "06"):
                status, body = await ministry.post_package(
                    build_status(
                        small_status(
                            sender=MINISTRY,
                            original_sender=DEPT,
                            document_id=document_id,
                            code=StatusCode(code),
                        )
                    )
                )
                assert status == 201, body

            # A second document, with the city axis killed right after accepting it.
            city = await Server.start("--config", str(config), "--database-url", database_url)
            dept = Client(session, city.url, city_keys["so-noi-vu"])
            second_id = f"{DEPT},2026/11/21,78/SNV-VP"
            assert (
                await dept.post_package(
                    build_edoc(small_edoc(sender=DEPT, recipients=(MINISTRY,), document_id=second_id))
                )
            )[0] == 201
            await city.kill()
            city = await Server.start("--config", str(config), "--database-url", database_url)
            dept = Client(session, city.url, city_keys["so-noi-vu"])

            async def statuses_back() -> bool:
                _, inbox = await dept.get_json("/v1/inbox?kind=status")
                return len(inbox["items"]) >= 5

            await eventually(statuses_back)
            await eventually(lambda: ministry_has(1))  # the second document (the first was acknowledged)
            _, inbox = await dept.get_json("/v1/inbox?kind=status")
            assert sorted(i["status_code"] for i in inbox["items"]) == ["01", "03", "04", "05", "06"]
            assert {i["sender"] for i in inbox["items"]} == {MINISTRY}
            _, view = await dept.get_json(f"/v1/messages/{accepted['message_id']}")
            assert [
                (d["recipient"], d["mode"], d["state"], d["business_status"]) for d in view["deliveries"]
            ] == [(MINISTRY, "upstream", "delivered", "06")]
            _, second = await ministry.get_json("/v1/inbox?kind=edoc")
            assert [i["document_id"] for i in second["items"]] == [second_id]  # exactly once

            # The registry sync mirrored what the city routes upstream, and nothing it serves itself.
            async def mirrored() -> bool:
                _, agencies = await dept.get_json("/v1/agencies")
                return CENTRAL in {a["organ_id"] for a in agencies["items"]}

            await eventually(mirrored)
            _, agencies = await dept.get_json("/v1/agencies")
            modes = {a["organ_id"]: a["mode"] for a in agencies["items"]}
            assert modes == {DEPT: "pull", MINISTRY: "upstream", CENTRAL: "upstream"}
    finally:
        await city.stop()
        assert await national.stop() == 0
