import asyncio

import asyncpg

from exchange.store.migrate import apply_migrations, available_migrations, current_version, latest_version
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
