"""Queries on ``agencies``: the registry of government bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exchange.model import Agency, AgencySpec, AttachmentSignaturePolicy, DeliveryMode, SignaturePolicy
from exchange.store import deliveries
from exchange.store.db import Connection, Record

# What an agency row is read with (see _agency): its columns and its serving system's.
_AGENCY_ROWS = """
SELECT a.organ_id, a.name, a.parent_organ_id, s.name AS system_name, a.delivery_mode,
       a.push_endpoint, a.signature_policy, a.active, a.allow_sha1, a.max_attempts, a.max_age_s,
       a.pending, coalesce(s.active, true) AS system_active, a.foreign_document_ids,
       a.attachment_signature_policy
FROM agencies a LEFT JOIN systems s ON s.id = a.system_id
"""
# Every agency with the name of the system serving it, by OrganId.
_LIST = _AGENCY_ROWS + "ORDER BY a.organ_id"
# Which of the given OrganIds are registered: $1 OrganIds.
_EXISTING = "SELECT organ_id FROM agencies WHERE organ_id = ANY($1::text[])"
# Which of the given system names are registered, with their ids: $1 names.
_SYSTEM_IDS = "SELECT name, id FROM systems WHERE name = ANY($1::text[])"
# Registers agencies in one statement; the arrays are parallel, one element per agency.
_INSERT = """
INSERT INTO agencies (organ_id, name, parent_organ_id, system_id, delivery_mode, push_endpoint,
                      signature_policy, active, allow_sha1, max_attempts, max_age_s, pending,
                      foreign_document_ids, attachment_signature_policy)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::delivery_mode[], $6::text[],
                     $7::signature_policy[], $8::boolean[], $9::boolean[], $10::integer[], $11::integer[],
                     $12::boolean[], $13::boolean[], $14::attachment_signature_policy[])
"""


def _agency(row: Record) -> Agency:
    policy = row["signature_policy"]
    return Agency(
        organ_id=row["organ_id"],
        name=row["name"],
        parent=row["parent_organ_id"],
        system=row["system_name"],
        mode=DeliveryMode(row["delivery_mode"]),
        endpoint=row["push_endpoint"],
        signature_policy=None if policy is None else SignaturePolicy(policy),
        active=row["active"],
        allow_sha1=row["allow_sha1"],
        max_attempts=row["max_attempts"],
        max_age_s=row["max_age_s"],
        pending=row["pending"],
        system_active=row["system_active"],
        foreign_document_ids=row["foreign_document_ids"],
        attachment_signature_policy=None
        if row["attachment_signature_policy"] is None
        else AttachmentSignaturePolicy(row["attachment_signature_policy"]),
    )


async def list_agencies(conn: Connection) -> list[Agency]:
    return [_agency(row) for row in await conn.fetch(_LIST)]


async def existing_organ_ids(conn: Connection, organ_ids: Sequence[str]) -> set[str]:
    return {row["organ_id"] for row in await conn.fetch(_EXISTING, list(organ_ids))}


async def system_ids(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    return {row["name"]: row["id"] for row in await conn.fetch(_SYSTEM_IDS, list(names))}


async def insert_agencies(conn: Connection, specs: Sequence[AgencySpec], system_ids: dict[str, int]) -> None:
    """Insert checked specs; ``system_ids`` maps each named serving system to its id."""
    await conn.execute(
        _INSERT,
        [spec.organ_id for spec in specs],
        [spec.name for spec in specs],
        [spec.parent for spec in specs],
        [None if spec.system is None else system_ids[spec.system] for spec in specs],
        [spec.mode.value for spec in specs],
        [spec.endpoint for spec in specs],
        [None if spec.signature_policy is None else spec.signature_policy.value for spec in specs],
        [spec.active for spec in specs],
        [spec.allow_sha1 for spec in specs],
        [spec.max_attempts for spec in specs],
        [spec.max_age_s for spec in specs],
        [spec.pending for spec in specs],
        [spec.foreign_document_ids for spec in specs],
        [
            None if spec.attachment_signature_policy is None else spec.attachment_signature_policy.value
            for spec in specs
        ],
    )


# An agency's own signature policy and SHA-1 acceptance (NULL: the global defaults): $1 OrganId.
_SIGNATURE_SETTINGS = "SELECT signature_policy, allow_sha1 FROM agencies WHERE organ_id = $1"


async def signature_settings(conn: Connection, organ_id: str) -> tuple[SignaturePolicy | None, bool | None]:
    row = await conn.fetchrow(_SIGNATURE_SETTINGS, organ_id)
    if row is None or row["signature_policy"] is None:
        return None, None if row is None else row["allow_sha1"]
    return SignaturePolicy(row["signature_policy"]), row["allow_sha1"]


class RegistryChanged(Exception):
    """The registry's version is no longer the one a write was made on condition of."""


async def registry_version(conn: Connection) -> int:
    """The number every change to agencies, systems, certificates or revocation lists moves on."""
    version: int = await conn.fetchval("SELECT version FROM registry_version")
    return version


async def agencies_by_ids(conn: Connection, organ_ids: Sequence[str]) -> dict[str, Agency]:
    """The registered agencies among ``organ_ids``, by OrganId."""
    rows = await conn.fetch(_BY_IDS, list(organ_ids))
    return {row["organ_id"]: _agency(row) for row in rows}


# Registered agencies among some OrganIds: $1 OrganIds.
_BY_IDS = _AGENCY_ROWS + "WHERE a.organ_id = ANY($1::text[])"


# The registry for incremental sync, with each entry's last change: no parameters.
_FOR_SYNC = """
SELECT a.organ_id, a.name, a.parent_organ_id, a.updated_at,
       a.organ_id IN (SELECT organ_id FROM agencies_in_service) AS in_service
FROM agencies a ORDER BY a.organ_id
"""
# Changes an agency's standing: $1 OrganId, $2 active (NULL: unchanged), $3 pending (NULL: unchanged).
# Returns the OrganId when it exists.
_SET_STANDING = """
UPDATE agencies SET active = coalesce($2, active), pending = coalesce($3, pending), updated_at = now()
WHERE organ_id = $1 RETURNING organ_id
"""


async def for_sync(conn: Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(_FOR_SYNC)]


async def set_standing(conn: Connection, organ_id: str, *, active: bool | None, pending: bool | None) -> bool:
    """False when no such agency is registered. Wakes the workers, since held deliveries may resume."""
    found = await conn.fetchval(_SET_STANDING, organ_id, active, pending) is not None
    if found:
        await deliveries.wake_workers(conn)
    return found


# Registers agencies served by an upstream axis, unless already known: parallel arrays of OrganIds, names.
_REGISTER_UPSTREAM = """
INSERT INTO agencies (organ_id, name, delivery_mode)
SELECT organ_id, name, 'upstream' FROM unnest($1::text[], $2::text[]) AS t (organ_id, name)
ON CONFLICT (organ_id) DO NOTHING
"""
# Mirrors an upstream axis's registry entry, never touching agencies served here: $1 OrganId, $2 name,
# $3 active.
_SYNC_UPSTREAM = """
INSERT INTO agencies (organ_id, name, delivery_mode, active) VALUES ($1, $2, 'upstream', $3)
ON CONFLICT (organ_id) DO UPDATE SET name = EXCLUDED.name, active = EXCLUDED.active, updated_at = now()
WHERE agencies.delivery_mode = 'upstream'
  AND (agencies.name, agencies.active) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.active)
RETURNING organ_id
"""


async def register_upstream(conn: Connection, agencies: Sequence[tuple[str, str]]) -> None:
    # In OrganId order, once each: two transactions registering the same agencies in different
    # orders would each wait for the other's uncommitted row (a deadlock, refused as a 500).
    ordered = sorted(dict(agencies).items())
    await conn.execute(_REGISTER_UPSTREAM, [a[0] for a in ordered], [a[1] or a[0] for a in ordered])


async def sync_upstream(conn: Connection, organ_id: str, name: str, active: bool) -> bool:
    """True when the entry was new or changed."""
    return await conn.fetchval(_SYNC_UPSTREAM, organ_id, name, active) is not None
