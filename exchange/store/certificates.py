"""Queries on ``certificates``: trust anchors, pinned agency certificates, revocations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exchange.store.db import Connection
from exchange.trust.certificates import CertificateFacts


@dataclass(frozen=True)
class CertificateRow:
    fingerprint: bytes
    role: str
    organ_id: str | None
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    purpose: str = "envelope"

    def as_dict(self) -> dict[str, object]:
        return {
            "fingerprint": self.fingerprint.hex(),
            "role": self.role,
            "organ_id": self.organ_id,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "revocation_reason": self.revocation_reason,
            "purpose": self.purpose,
        }


# Records a certificate unless it is known already: $1 fingerprint, $2 role, $3 OrganId, $4 subject,
# $5 issuer, $6 serial, $7 not before, $8 not after, $9 DER, $10 purpose (envelope | document).
# Returns the fingerprint when inserted.
_INSERT = """
INSERT INTO certificates (fingerprint, role, organ_id, subject, issuer, serial, not_before, not_after, der,
                          purpose)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (fingerprint) DO NOTHING
RETURNING fingerprint
"""
# Every certificate, newest first.
_LIST = """
SELECT fingerprint, role, organ_id, subject, issuer, not_before, not_after, revoked_at, revocation_reason,
       purpose
FROM certificates ORDER BY created_at DESC, subject
"""
# Marks a known certificate revoked: $1 fingerprint, $2 reason. Returns it when found.
_REVOKE = """
UPDATE certificates SET revoked_at = coalesce(revoked_at, now()), revocation_reason = $2
WHERE fingerprint = $1 RETURNING fingerprint
"""
# The DER of every trusted CA that is not revoked, for one purpose: $1 envelope | document.
_TRUSTED_CAS = "SELECT der FROM certificates WHERE role = 'ca' AND purpose = $1 AND revoked_at IS NULL"
# The DER of every CA known, whatever its purpose (to check who issued a revocation list).
_ALL_CAS = "SELECT der FROM certificates WHERE role = 'ca'"
# Fingerprints pinned to one agency and not revoked: $1 OrganId.
_PINNED = "SELECT fingerprint FROM certificates WHERE organ_id = $1 AND revoked_at IS NULL"
# Whether a certificate is revoked: $1 fingerprint.
_IS_REVOKED = "SELECT EXISTS (SELECT 1 FROM certificates WHERE fingerprint = $1 AND revoked_at IS NOT NULL)"
# Every revoked fingerprint.
_REVOKED = "SELECT fingerprint FROM certificates WHERE revoked_at IS NOT NULL"


async def insert_certificate(
    conn: Connection,
    facts: CertificateFacts,
    role: str,
    organ_id: str | None,
    der: bytes,
    purpose: str = "envelope",
) -> bool:
    """Record a certificate; False when it was already known."""
    inserted = await conn.fetchval(
        _INSERT,
        facts.fingerprint,
        role,
        organ_id,
        facts.subject,
        facts.issuer,
        facts.serial,
        facts.not_before,
        facts.not_after,
        der,
        purpose,
    )
    return inserted is not None


async def list_certificates(conn: Connection) -> list[CertificateRow]:
    return [CertificateRow(**dict(row)) for row in await conn.fetch(_LIST)]


async def revoke(conn: Connection, fingerprint: bytes, reason: str | None) -> bool:
    return await conn.fetchval(_REVOKE, fingerprint, reason) is not None


async def trusted_ca_ders(conn: Connection, purpose: str = "envelope") -> list[bytes]:
    return [row["der"] for row in await conn.fetch(_TRUSTED_CAS, purpose)]


async def all_ca_ders(conn: Connection) -> list[bytes]:
    return [row["der"] for row in await conn.fetch(_ALL_CAS)]


async def pinned_fingerprints(conn: Connection, organ_id: str) -> set[bytes]:
    return {row["fingerprint"] for row in await conn.fetch(_PINNED, organ_id)}


async def revoked_fingerprints(conn: Connection) -> set[bytes]:
    return {row["fingerprint"] for row in await conn.fetch(_REVOKED)}


async def is_revoked(conn: Connection, fingerprint: bytes) -> bool:
    return bool(await conn.fetchval(_IS_REVOKED, fingerprint))
