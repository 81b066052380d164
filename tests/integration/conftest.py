import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from exchange import registry
from exchange.app import create_app
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.model import Role
from exchange.settings import Settings
from exchange.store import chain as chain_store
from tests.edxml_factories import small_edoc, small_status

KeyMaker = Callable[..., Awaitable[str]]


@pytest.fixture
def app(settings: Settings, database_url: str) -> Application:
    return create_app(settings, database_url)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[Application], Awaitable[TestClient]], app: Application
) -> TestClient:
    return await aiohttp_client(app)


@pytest.fixture
def make_key(conn: asyncpg.Connection) -> KeyMaker:
    """Register a system with a role (and OrganIds) and return its API key."""
    counter = iter(range(1_000_000))

    async def make(role: Role, organ_ids: tuple[str, ...] = (), name: str | None = None) -> str:
        new = await registry.add_system(conn, name or f"{role.value}-{next(counter)}", role, organ_ids)
        return new.api_key

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


DEPT, FINANCE, CENTRAL, OTHER = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22", "000.00.03.H26"
DOC = "000.00.01.H26,2026/11/20,15/SNV-VP"


class World:
    """Four agencies, each with its own system and key."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    def as_(self, organ_id: str) -> dict[str, str]:
        return bearer(self.keys[organ_id])


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": organ, "name": organ})
            for organ in (DEPT, FINANCE, CENTRAL, OTHER)
        ],
    )
    keys = {}
    for organ in (DEPT, FINANCE, CENTRAL, OTHER):
        keys[organ] = (await registry.add_system(conn, f"dms-{organ}", Role.SYSTEM, [organ])).api_key
    keys["auditor"] = (await registry.add_system(conn, "auditor", Role.AUDITOR)).api_key
    return World(keys)


async def count(conn: asyncpg.Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def send(client: TestClient, world: World, organ: str, data: bytes, status: int = 201) -> dict:  # type: ignore[type-arg]
    response = await client.post("/v1/packages", data=data, headers=world.as_(organ))
    body = await response.json()
    assert response.status == status, body
    return body  # type: ignore[no-any-return]


async def send_with_status(client: TestClient, world: World, code: StatusCode) -> dict:  # type: ignore[type-arg]
    """DEPT sends DOC to FINANCE and CENTRAL; FINANCE answers with ``code``. The acceptance of DOC."""
    accepted = await send(
        client,
        world,
        DEPT,
        build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC)),
    )
    await receive(client, world, FINANCE)  # statuses 01-06 need a copy that reached the recipient
    await send(
        client,
        world,
        FINANCE,
        build_status(small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=code)),
    )
    return accepted


async def inbox(client: TestClient, world: World, organ: str, kind: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    query = f"?kind={kind}" if kind else ""
    response = await client.get(f"/v1/inbox{query}", headers=world.as_(organ))
    assert response.status == 200
    return (await response.json())["items"]  # type: ignore[no-any-return]


async def receive(client: TestClient, world: World, organ: str) -> list[str]:
    """Download every package waiting in an agency's inbox, as its DMS would; their delivery ids."""
    fetched = []
    for item in await inbox(client, world, organ):
        response = await client.get(f"/v1/deliveries/{item['delivery_id']}/package", headers=world.as_(organ))
        assert response.status == 200
        fetched.append(item["delivery_id"])
    return fetched


async def waiting_for_the_sealer(conn: asyncpg.Connection) -> None:
    """Until some session waits for the sealer's lock: the state itself, not the clock."""
    for _ in range(400):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted",
            chain_store.SEALER_LOCK,
        )
        if waiting:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("nobody waits for the sealer's lock")
