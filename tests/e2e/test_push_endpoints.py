"""Push endpoints on this machine, its network or the cloud metadata service are refused
(delivery.allow_private_endpoints = false): at registration and again at every push."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from exchange.edxml.builder import build_edoc
from tests.e2e.harness import Receiver, start_receiver
from tests.e2e.world import DEPT, FINANCE, World, open_world
from tests.edxml_factories import small_edoc


@pytest.fixture
async def world(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> AsyncIterator[World]:
    async with open_world(
        tmp_path, database_url, dev_pki, allow_private_endpoints=False, max_attempts=1
    ) as opened:
        yield opened


async def sql(world: World, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(world.database_url)
    try:
        return await conn.fetchrow(query, *args)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8080/edoc", "loopback"),
        ("http://[::1]/edoc", "loopback"),
        ("http://[::ffff:127.0.0.1]/edoc", "loopback"),
        ("https://10.1.2.3/edoc", "private"),
        ("http://192.168.0.10/edoc", "private"),
        ("http://localhost:9000/edoc", "this machine"),
        ("http://0.0.0.0/edoc", "unspecified"),
    ],
)
async def test_a_private_endpoint_is_refused_at_registration(world: World, endpoint: str, why: str) -> None:
    before = await world.count("agencies")
    status, refused = await world.client("admin").post_json(
        "/v1/admin/agencies",
        {"organ_id": "000.00.09.H26", "name": "Quận", "mode": "push", "endpoint": endpoint},
    )
    assert (status, refused["error"]["code"]) == (422, "invalid_input"), refused
    reason = refused["error"]["details"][0]["reason"]
    assert why in reason
    assert "allow_private_endpoints" in reason
    assert await world.count("agencies") == before


async def test_a_public_endpoint_is_registered(world: World) -> None:
    status, created = await world.client("admin").post_json(
        "/v1/admin/agencies",
        {
            "organ_id": "000.00.09.H26",
            "name": "Quận",
            "mode": "push",
            "endpoint": "https://district.example/edoc",
        },
    )
    assert status == 201, created


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_an_endpoint_that_turned_private_is_not_pushed_to(world: World, host: str) -> None:
    """An address written in the URL is checked before the push; a name, on what it resolves to
    then (here localhost, as a rebinding name would resolve after passing registration)."""
    receiver = Receiver()
    runner, url = await start_receiver(receiver)
    try:
        port = url.rsplit(":", 1)[1]
        # As if registered while allowed, or as if its name now resolved to this machine.
        await sql(
            world,
            "UPDATE agencies SET delivery_mode = 'push', push_endpoint = $2 WHERE organ_id = $1",
            FINANCE,
            f"http://{host}:{port}",
        )
        edoc = small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=f"000.00.01.H26,2026/11/22,{host}")
        status, accepted = await world.client(DEPT).post_package(build_edoc(edoc))
        assert status == 201, accepted
        delivery_id = accepted["deliveries"][0]["delivery_id"]
        row = await until_settled(world, delivery_id)
        assert row["state"] == "failed"
        assert "loopback" in row["last_error"], row["last_error"]
        assert receiver.requests == []  # nothing reached the endpoint
    finally:
        await runner.cleanup()


async def until_settled(world: World, delivery_id: str, within_s: float = 30) -> Any:
    """The delivery once its one allowed attempt is recorded (polled: the outcome is in the database)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        row = await sql(world, "SELECT state::text, last_error FROM deliveries WHERE id = $1", delivery_id)
        if row["state"] in ("failed", "delivered"):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"delivery {delivery_id} was not attempted within {within_s} s")
