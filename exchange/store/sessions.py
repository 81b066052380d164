"""Queries on ``ui_sessions``: the auditor page's server-side sessions (stored by the hash of their id)."""

from __future__ import annotations

from exchange.model import System
from exchange.store.db import Connection
from exchange.store.systems import system_by_name

# Opens a session: $1 id hash, $2 system id, $3 lifetime in seconds.
_CREATE = """
INSERT INTO ui_sessions (id_hash, system_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
"""
# The system of a live session: not expired, not revoked, its system active and its key not rotated
# since the session began: $1 id hash.
_LIVE = """
SELECT s.name FROM ui_sessions u JOIN systems s ON s.id = u.system_id
WHERE u.id_hash = $1 AND u.revoked_at IS NULL AND u.expires_at > now() AND s.active
  AND u.created_at >= s.key_rotated_at
"""
# Ends one session: $1 id hash.
_REVOKE = "UPDATE ui_sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL"
# Ends every session of a system: $1 system id.
_REVOKE_ALL = "UPDATE ui_sessions SET revoked_at = now() WHERE system_id = $1 AND revoked_at IS NULL"
# Forgets sessions that ended more than a day ago.
_PURGE = """
DELETE FROM ui_sessions WHERE coalesce(revoked_at, expires_at) < now() - interval '1 day'
"""


async def create(conn: Connection, id_hash: bytes, system_id: int, lifetime_s: float) -> None:
    await conn.execute(_PURGE)
    await conn.execute(_CREATE, id_hash, system_id, lifetime_s)


async def live_system(conn: Connection, id_hash: bytes) -> System | None:
    name = await conn.fetchval(_LIVE, id_hash)
    return None if name is None else await system_by_name(conn, name)


async def revoke(conn: Connection, id_hash: bytes) -> None:
    await conn.execute(_REVOKE, id_hash)


async def revoke_all(conn: Connection, system_id: int) -> int:
    """End every open session of a system (its key was rotated); how many there were."""
    status: str = await conn.execute(_REVOKE_ALL, system_id)
    return int(status.split()[-1])
