"""Push deliveries to an agency out of service are held, not failed, and resume when it is back:
driven step by step with a worker (issue 11, item 15)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exchange import registry, registry_control
from exchange.app import create_app
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.model import Role
from exchange.settings import Settings
from exchange.store import deliveries as delivery_store
from tests.edxml_factories import small_edoc, small_status
from tests.integration.conftest import DOC, FINANCE, World, bearer, inbox, send
from tests.integration.test_push import DEPT, DISTRICT, Receiver, make_due, setup_agencies, worker_for


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[Receiver, TestServer]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/edoc", receiver.handle)
    return receiver, await aiohttp_server(app)


@pytest.fixture
async def push_client(aiohttp_client: Any, settings: Settings, database_url: str) -> TestClient:
    quiet = settings.model_copy(update={"delivery": settings.delivery.model_copy(update={"enabled": False})})
    client: TestClient = await aiohttp_client(create_app(quiet, database_url))
    return client


async def accept(client: TestClient, key: str, number: int) -> UUID:
    document = small_edoc(sender=DEPT, recipients=(DISTRICT,), document_id=f"{DEPT},2026/11/20,{number}/X")
    response = await client.post("/v1/packages", headers=bearer(key), data=build_edoc(document))
    body = await response.json()
    assert response.status == 201, body
    return UUID(body["deliveries"][0]["delivery_id"])


async def state(conn: asyncpg.Connection, delivery_id: UUID) -> tuple[str, int]:
    row = await delivery_store.delivery_by_id(conn, delivery_id)
    assert row is not None
    return row.state, row.attempts


async def test_an_agency_disabled_after_acceptance_holds_its_deliveries_until_enabled(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    endpoint, server = receiver
    endpoint.failures = 1
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    retried = await accept(push_client, key, 1)
    worker, pusher = worker_for(push_client)
    await pusher.start()
    try:
        assert await worker.run_until_idle() == 1  # the endpoint fails once: retry_wait
        queued = await accept(push_client, key, 2)  # due at once, not yet pushed
        await registry_control.set_agency_enabled(conn, "ops", DISTRICT, False)
        await make_due(conn)
        assert await worker.run_until_idle() == 0
        assert await state(conn, retried) == ("retry_wait", 1)
        assert await state(conn, queued) == ("queued", 0)
        assert len(endpoint.requests) == 1

        await registry_control.set_agency_enabled(conn, "ops", DISTRICT, True)
        assert await worker.run_until_idle() == 2
        assert await state(conn, retried) == ("delivered", 2)
        assert await state(conn, queued) == ("delivered", 1)
    finally:
        await pusher.close()


async def test_a_disabled_systems_agencies_hold_their_push_deliveries(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    endpoint, server = receiver
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    await registry.add_system(conn, "district-dms", Role.SYSTEM, [DISTRICT])
    delivery_id = await accept(push_client, key, 1)
    await registry_control.set_system_enabled(conn, "ops", "district-dms", False)
    worker, pusher = worker_for(push_client)
    await pusher.start()
    try:
        assert await worker.run_until_idle() == 0
        assert await state(conn, delivery_id) == ("queued", 0)
        assert endpoint.requests == []
        await registry_control.set_system_enabled(conn, "ops", "district-dms", True)
        assert await worker.run_until_idle() == 1
        assert await state(conn, delivery_id) == ("delivered", 1)
    finally:
        await pusher.close()


async def test_a_status_for_a_disabled_sender_is_accepted_and_held(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    """The reporter is not blocked by the sender's standing; the sender gets the status once back."""
    accepted = await send(
        client, world, DEPT, build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    )
    delivery_id = accepted["deliveries"][0]["delivery_id"]
    downloaded = await client.get(f"/v1/deliveries/{delivery_id}/package", headers=world.as_(FINANCE))
    assert downloaded.status == 200
    await registry_control.set_agency_enabled(conn, "ops", DEPT, False)
    status = small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode.ARRIVED)
    reported = await send(client, world, FINANCE, build_status(status))
    assert [d["recipient"] for d in reported["deliveries"]] == [DEPT]
    assert await inbox(client, world, DEPT, "status") == []
    await registry_control.set_agency_enabled(conn, "ops", DEPT, True)
    assert [i["message_id"] for i in await inbox(client, world, DEPT, "status")] == [reported["message_id"]]
