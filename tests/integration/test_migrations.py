import asyncio

import asyncpg
import pytest

from exchange.store import migrate
from exchange.store.migrate import (
    Migration,
    apply_migrations,
    available_migrations,
    current_version,
    latest_version,
)
from tests.conftest import database_url_for


async def test_template_is_at_the_latest_version(conn: asyncpg.Connection) -> None:
    assert await current_version(conn) == latest_version() == available_migrations()[-1].version


async def test_concurrent_starts_apply_each_migration_once(cluster_url: str) -> None:
    admin = await asyncpg.connect(cluster_url)
    await admin.execute("CREATE DATABASE migrate_race")
    url = database_url_for(cluster_url, "migrate_race")
    try:
        connections = [await asyncpg.connect(url) for _ in range(6)]
        results = await asyncio.gather(*(apply_migrations(c) for c in connections))
        applied = sorted(m.version for result in results for m in result)
        assert applied == [m.version for m in available_migrations()]
        rows = await connections[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == applied
        assert await apply_migrations(connections[0]) == []
        for c in connections:
            await c.close()
    finally:
        await admin.execute("DROP DATABASE migrate_race WITH (FORCE)")
        await admin.close()


async def test_schema_mirrors_the_enums(conn: asyncpg.Connection) -> None:
    from exchange.model import DeliveryMode, Role, SignaturePolicy

    for type_name, enum in [
        ("system_role", Role),
        ("delivery_mode", DeliveryMode),
        ("signature_policy", SignaturePolicy),
    ]:
        labels = await conn.fetchval(f"SELECT enum_range(NULL::{type_name})::text[]")
        assert labels == [member.value for member in enum]


async def test_a_migration_waiting_for_a_table_lock_gives_way_and_tries_again(
    conn: asyncpg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While it waits for its lock, every query on the table queues behind it: it waits only so
    long, lets them through, tries again, and in the end gives up leaving nothing half done."""
    shipped = latest_version()
    probe = Migration(9999, "probe", "ALTER TABLE deliveries ADD COLUMN probe integer")
    monkeypatch.setattr(migrate, "available_migrations", lambda: (*available_migrations(), probe))
    monkeypatch.setattr(migrate, "LOCK_WAIT_S", 0.1)
    monkeypatch.setattr(migrate, "LOCK_ATTEMPTS", 3)
    monkeypatch.setattr(migrate, "RETRY_PAUSE_S", 0.01)
    reader = await asyncpg.connect(database_url)  # a long report, reading deliveries throughout
    try:
        async with reader.transaction():
            await reader.execute("LOCK TABLE deliveries IN ACCESS SHARE MODE")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await apply_migrations(conn)
            assert await current_version(conn) == shipped  # not applied, not recorded
            # What the waits held back went through in the end: the reader's transaction is alive.
            assert await reader.fetchval("SELECT count(*) FROM deliveries") == 0
        assert [m.version for m in await apply_migrations(conn)] == [9999]
    finally:
        await reader.close()
    assert (
        await conn.fetchval("SELECT count(*) FROM information_schema.columns WHERE column_name = 'probe'")
        == 1
    )
