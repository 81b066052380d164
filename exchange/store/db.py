"""The one module that imports asyncpg: connections, the pool, and driver errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

from exchange.errors import DatabaseUnavailable
from exchange.settings import DatabaseSettings

Connection: TypeAlias = asyncpg.Connection
Pool: TypeAlias = asyncpg.Pool
Record: TypeAlias = asyncpg.Record

# Driver errors the store layer turns into the axis's own errors.
UniqueViolation = asyncpg.UniqueViolationError
ForeignKeyViolation = asyncpg.ForeignKeyViolationError
CheckViolation = asyncpg.CheckViolationError
PostgresError = asyncpg.PostgresError
# The database is away or restarting (not the caller's fault; worth retrying).
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    # What asyncpg raises on a connection that broke in the middle of an operation, and when no
    # host of a multi-host URL matches target_session_attrs (no primary: a failover in progress).
    asyncpg.InternalClientError,
    ConnectionError,
    # The Unix socket file is gone while the server restarts.
    FileNotFoundError,
    TimeoutError,
)
# SQLSTATE class 22: a value PostgreSQL cannot take (a NUL character in text, an out-of-range number).
DataError = asyncpg.DataError
# A lock not granted within the transaction's lock_timeout (``bound_lock_waits``).
LockNotAvailable = asyncpg.LockNotAvailableError

# Bounds how long the statements after it wait for a lock, to the end of the transaction: $1 e.g. '5000ms'.
_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', $1, true)"


async def connect(dsn: str, settings: DatabaseSettings) -> Connection:
    try:
        connection: Connection = await asyncpg.connect(
            dsn, timeout=settings.connect_timeout_s, command_timeout=settings.command_timeout_s
        )
    except (*DATABASE_AWAY, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
    return connection


async def bound_lock_waits(conn: Connection, seconds: float) -> None:
    """Until the transaction ends, a statement waits at most ``seconds`` for a lock, then raises
    LockNotAvailable. At least 1 ms: PostgreSQL reads 0 as "wait for ever"."""
    await conn.execute(_LOCK_TIMEOUT, f"{max(1, round(seconds * 1000))}ms")


async def _keep_session(conn: Connection) -> None:
    """Release a pooled connection without asyncpg's RESET ALL / UNLISTEN / advisory-unlock round trip.

    Pooled connections never carry session state here: LISTEN has its own connection, advisory
    locks are transaction-scoped (the migration lock is released in a ``finally``), nothing SETs a
    session variable; asyncpg still rolls back a transaction left open and drops listeners.
    Saves one round trip per acquire on every request and every delivery.
    """


async def create_pool(dsn: str, settings: DatabaseSettings) -> Pool:
    try:
        pool: Pool = await asyncpg.create_pool(
            dsn,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.connect_timeout_s,
            command_timeout=settings.command_timeout_s,
            reset=_keep_session,
        )
    except (*DATABASE_AWAY, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
    return pool


@asynccontextmanager
async def connection(dsn: str, settings: DatabaseSettings) -> AsyncIterator[Connection]:
    """One connection for a short-lived command (the CLI); closed on exit."""
    conn = await connect(dsn, settings)
    try:
        yield conn
    finally:
        await conn.close()
