"""Numbered SQL migrations, applied in order under an advisory lock.

Several processes may start at once against one database: the lock makes the
first one apply what is missing while the others wait, then find nothing to do.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from exchange.store.db import Connection, LockNotAvailable, bound_lock_waits

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE_NAME = re.compile(r"(?P<version>[0-9]{4})_(?P<name>[a-z0-9_]+)\.sql")
# Arbitrary but fixed: every process of the axis must use the same key.
_LOCK_KEY = 7_246_001
# A migration waiting for a table lock (behind a long report, say) makes every query on that table
# queue behind it, while older processes still serve: it waits this long at most, lets them
# through, and tries again after a pause, so many times.
LOCK_WAIT_S = 5.0
LOCK_ATTEMPTS = 12
RETRY_PAUSE_S = 1.0

# Creates the bookkeeping table; harmless when it exists.
_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# The versions already applied.
_APPLIED = "SELECT version FROM schema_migrations"
# Records one applied migration: $1 version, $2 name.
_RECORD = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
# The newest applied version, or NULL; NULL too when the ledger does not exist yet.
_CURRENT = """
SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN NULL
            ELSE (SELECT max(version) FROM schema_migrations) END
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def available_migrations() -> tuple[Migration, ...]:
    """The migration files shipped with the package, oldest first."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise RuntimeError(f"migration file name not of the form NNNN_name.sql: {path.name}")
        found.append(Migration(int(match["version"]), match["name"], path.read_text("utf-8")))
    versions = [migration.version for migration in found]
    # Numbers are handed out ahead to work done in parallel, so a branch may lack some; the order
    # is what matters (and that no number is used twice).
    if len(set(versions)) != len(versions) or versions[:1] != [1]:
        raise RuntimeError(f"migration versions must start at 1 and be unique: {versions}")
    return tuple(found)


def latest_version() -> int:
    return available_migrations()[-1].version


async def apply_migrations(conn: Connection) -> list[Migration]:
    """Apply every missing migration, each in its own transaction; return those applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_LEDGER)
        applied = {row["version"] for row in await conn.fetch(_APPLIED)}
        done = []
        for migration in available_migrations():
            if migration.version in applied:
                continue
            await _apply(conn, migration)
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _apply(conn: Connection, migration: Migration) -> None:
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await bound_lock_waits(conn, LOCK_WAIT_S)
                await conn.execute(migration.sql)
                await conn.execute(_RECORD, migration.version, migration.name)
            return
        except LockNotAvailable:
            if attempt == LOCK_ATTEMPTS:
                raise
            await asyncio.sleep(RETRY_PAUSE_S)  # the queries that queued behind the wait go through


async def current_version(conn: Connection) -> int | None:
    version: int | None = await conn.fetchval(_CURRENT)
    return version
