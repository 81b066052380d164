from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from exchange import registry
from exchange.app import create_app
from exchange.model import Role
from exchange.settings import Settings

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
