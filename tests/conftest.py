"""Fixtures shared by every test.

One real PostgreSQL cluster per test session (the same embedded mechanism as
``exchange serve``), a template database migrated once, and a fresh database
cloned from it for each test that asks for one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import yarl

from exchange.settings import Settings, load_settings
from exchange.store.embedded import embedded_cluster
from exchange.store.migrate import apply_migrations

T = TypeVar("T")
TEMPLATE = "exchange_template"
REPO = Path(__file__).resolve().parent.parent
# A copy of ../shared/samples (real published packages), so that a lone clone tests itself.
SAMPLES = REPO / "tests" / "samples"
_numbers = itertools.count()


def run_sync(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def database_url_for(cluster_url: str, database: str) -> str:
    url = yarl.URL(cluster_url)
    return str(url.with_path("/" + database).with_query(url.query))


@pytest.fixture(autouse=True)
def _no_exchange_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the configuration they set themselves."""
    for name in list(os.environ):
        if name.startswith("EXCHANGE_"):
            monkeypatch.delenv(name)


def run_admin(cluster_url: str, statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the cluster's maintenance database."""

    async def execute() -> None:
        conn = await asyncpg.connect(cluster_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    run_sync(execute)


def new_database(cluster_url: str, name: str) -> str:
    """Create a database from the migrated template and return its URL."""
    run_admin(cluster_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return database_url_for(cluster_url, name)


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private PostgreSQL cluster for the whole test session, with a migrated template."""
    with embedded_cluster(tmp_path_factory.mktemp("cluster") / "pgdata") as url:
        run_admin(url, f"CREATE DATABASE {TEMPLATE}")

        async def migrate() -> None:
            conn = await asyncpg.connect(database_url_for(url, TEMPLATE))
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()

        run_sync(migrate)
        yield url


@pytest.fixture
def database_url(cluster_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    yield new_database(cluster_url, name)
    run_admin(cluster_url, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A development PKI made by the certs script's module: CA, axis, TLS server, demo agencies."""
    from exchange.demo import AGENCIES
    from exchange.trust.devca import write_dev_pki

    return write_dev_pki(
        tmp_path_factory.mktemp("pki"), [(organ_id, name) for organ_id, name, *_ in AGENCIES]
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path, dev_pki: dict[str, Path]) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path / "data",
        database={"url": database_url},
        trust={"axis_certificate": str(dev_pki["axis"]), "axis_key": str(dev_pki["axis_key"])},
        delivery={"allow_private_endpoints": True},  # push receivers of the tests listen on 127.0.0.1
    )


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()
