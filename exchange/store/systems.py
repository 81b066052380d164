"""Queries on ``systems``: the registered callers and their credentials."""

from __future__ import annotations

from collections.abc import Sequence

from exchange.errors import DuplicateSystem, NotFound
from exchange.model import Role, System
from exchange.store.db import Connection, Record, UniqueViolation

# Registers a system: $1 name, $2 role, $3 API key hash. Returns its id.
_INSERT = "INSERT INTO systems (name, role, api_key_hash) VALUES ($1, $2, $3) RETURNING id"
# A system with the OrganIds it serves, and the registry's version as of the read (a caller is read
# when it authenticates: what a process keeps of the registry under that version needs no other read).
_SYSTEM = """
SELECT s.id, s.name, s.role, s.active, s.created_at, s.key_rotated_at, s.relay,
       array(SELECT a.organ_id FROM agencies a WHERE a.system_id = s.id ORDER BY a.organ_id) AS organ_ids,
       array(SELECT a.organ_id FROM agencies a
             WHERE a.system_id = s.id AND a.organ_id IN (SELECT organ_id FROM agencies_in_service)
             ORDER BY a.organ_id) AS serving,
       (SELECT version FROM registry_version) AS registry_version
FROM systems s"""
# Every system, by name.
_LIST = f"{_SYSTEM} ORDER BY s.name"
# One system by name: $1 name.
_BY_NAME = f"{_SYSTEM} WHERE s.name = $1"
# The active system holding an API key: $1 key hash.
_BY_KEY_HASH = f"{_SYSTEM} WHERE s.api_key_hash = $1 AND s.active"
# The active system a TLS client certificate belongs to: $1 certificate fingerprint.
_BY_CLIENT_CERT = f"{_SYSTEM} WHERE s.client_cert_fingerprint = $1 AND s.active"
# Registers a system's TLS client certificate: $1 name, $2 fingerprint (NULL removes it).
_SET_CLIENT_CERT = "UPDATE systems SET client_cert_fingerprint = $2 WHERE name = $1 RETURNING id"
# Replaces a system's API key: $1 name, $2 new key hash.
_SET_KEY = "UPDATE systems SET api_key_hash = $2, key_rotated_at = now() WHERE name = $1 RETURNING id"
# Disables or enables a system: $1 name, $2 active.
_SET_ACTIVE = "UPDATE systems SET active = $2 WHERE name = $1 RETURNING id"
# Its agencies changed standing with it: registry sync (getSynchronizeUnit) versions them by this.
_TOUCH_AGENCIES = "UPDATE agencies SET updated_at = now() WHERE system_id = $1"
# Makes a system the one serving some agencies: $1 system id, $2 OrganIds; returns those found.
_SERVE = """
UPDATE agencies SET system_id = $1, updated_at = now()
WHERE organ_id = ANY($2::text[]) RETURNING organ_id
"""


def _system(row: Record) -> System:
    return System(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        active=row["active"],
        created_at=row["created_at"],
        key_rotated_at=row["key_rotated_at"],
        organ_ids=tuple(row["organ_ids"]),
        serving=tuple(row["serving"]),
        relay=row["relay"],
        registry_version=row["registry_version"],
    )


async def insert_system(conn: Connection, name: str, role: Role, key_hash: bytes) -> System:
    try:
        await conn.execute(_INSERT, name, role.value, key_hash)
    except UniqueViolation:
        raise DuplicateSystem(f"a system named {name!r} is already registered") from None
    return await system_by_name(conn, name)


async def list_systems(conn: Connection) -> list[System]:
    return [_system(row) for row in await conn.fetch(_LIST)]


async def system_by_name(conn: Connection, name: str) -> System:
    row = await conn.fetchrow(_BY_NAME, name)
    if row is None:
        raise NotFound(f"no system named {name!r}")
    return _system(row)


async def system_by_key_hash(conn: Connection, key_hash: bytes) -> System | None:
    row = await conn.fetchrow(_BY_KEY_HASH, key_hash)
    return None if row is None else _system(row)


async def system_by_client_certificate(conn: Connection, fingerprint: bytes) -> System | None:
    row = await conn.fetchrow(_BY_CLIENT_CERT, fingerprint)
    return None if row is None else _system(row)


async def set_client_certificate(conn: Connection, name: str, fingerprint: bytes | None) -> None:
    try:
        found = await conn.fetchval(_SET_CLIENT_CERT, name, fingerprint)
    except UniqueViolation:
        raise DuplicateSystem("that client certificate already belongs to another system") from None
    if found is None:
        raise NotFound(f"no system named {name!r}")


async def set_api_key(conn: Connection, name: str, key_hash: bytes) -> None:
    if await conn.fetchval(_SET_KEY, name, key_hash) is None:
        raise NotFound(f"no system named {name!r}")


async def set_active(conn: Connection, name: str, active: bool) -> None:
    system_id = await conn.fetchval(_SET_ACTIVE, name, active)
    if system_id is None:
        raise NotFound(f"no system named {name!r}")
    await conn.execute(_TOUCH_AGENCIES, system_id)


async def serve_agencies(conn: Connection, system_id: int, organ_ids: Sequence[str]) -> set[str]:
    """Point agencies at the system that serves them; return the OrganIds that exist."""
    return {row["organ_id"] for row in await conn.fetch(_SERVE, system_id, list(organ_ids))}


# A system's VXP secret, with the system: $1 name (the SDK's systemid).
_VXP_SECRET = "SELECT vxp_secret FROM systems WHERE name = $1 AND active"  # noqa: S105 (a query)
# Sets a system's VXP secret: $1 name, $2 secret.
_SET_VXP_SECRET = "UPDATE systems SET vxp_secret = $2 WHERE name = $1 RETURNING id"  # noqa: S105
# Forgets spent signatures whose timestamps can no longer be accepted: $1 system id, $2 seconds.
_FORGET_OLD_REQUESTS = """
DELETE FROM vxp_requests WHERE system_id = $1 AND seen_at < now() - make_interval(secs => $2)
"""
# Spends a signature on a state-changing operation unless it was spent before: $1 system id,
# $2 hash header, $3 operation. Returns the row only when new.
_SPEND_SIGNATURE = """
INSERT INTO vxp_requests (system_id, hash_header, operation) VALUES ($1, $2, $3)
ON CONFLICT (system_id, hash_header) DO NOTHING RETURNING system_id
"""
# The operation a signature was spent on: $1 system id, $2 hash header.
_SPENT_ON = "SELECT operation FROM vxp_requests WHERE system_id = $1 AND hash_header = $2"


async def vxp_secret(conn: Connection, name: str) -> str | None:
    secret: str | None = await conn.fetchval(_VXP_SECRET, name)
    return secret


async def set_vxp_secret(conn: Connection, name: str, secret: str) -> None:
    if await conn.fetchval(_SET_VXP_SECRET, name, secret) is None:
        raise NotFound(f"no system named {name!r}")


async def spend_signature(
    conn: Connection, system_id: int, hash_header: str, operation: str, retention_s: float
) -> str | None:
    """None when the signature is new (now spent); else the operation it was spent on before."""
    async with conn.transaction():
        await conn.execute(_FORGET_OLD_REQUESTS, system_id, retention_s)
        if await conn.fetchval(_SPEND_SIGNATURE, system_id, hash_header, operation) is not None:
            return None
        spent_on: str = await conn.fetchval(_SPENT_ON, system_id, hash_header) or ""
        return spent_on


# Makes a system the local stand-in of an upstream axis (created when missing): $1 name, $2 key hash.
_ENSURE_RELAY = """
INSERT INTO systems (name, role, api_key_hash, relay) VALUES ($1, 'system', $2, true)
ON CONFLICT (name) DO UPDATE SET relay = true
"""


async def ensure_relay(conn: Connection, name: str, unusable_key_hash: bytes) -> System:
    await conn.execute(_ENSURE_RELAY, name, unusable_key_hash)
    return await system_by_name(conn, name)
