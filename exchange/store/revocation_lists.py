"""Queries on ``certificate_revocation_lists``: CRLs imported from files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exchange.store.db import Connection


@dataclass(frozen=True)
class RevocationList:
    sha256: bytes
    issuer: str
    this_update: datetime
    next_update: datetime | None
    revoked_count: int
    der: bytes


# Records a CRL unless the same bytes are known: $1 sha256, $2 issuer, $3 this update, $4 next update,
# $5 number of revoked certificates, $6 DER. Returns the hash when inserted.
_INSERT = """
INSERT INTO certificate_revocation_lists (sha256, issuer, this_update, next_update, revoked_count, der)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (sha256) DO NOTHING
RETURNING sha256
"""
# The newest list of each issuer (an older one never overrides a newer).
_CURRENT = """
SELECT DISTINCT ON (issuer) sha256, issuer, this_update, next_update, revoked_count, der
FROM certificate_revocation_lists ORDER BY issuer, this_update DESC
"""


async def insert_list(conn: Connection, crl: RevocationList) -> bool:
    """Record a revocation list; False when the same bytes were imported before."""
    inserted = await conn.fetchval(
        _INSERT, crl.sha256, crl.issuer, crl.this_update, crl.next_update, crl.revoked_count, crl.der
    )
    return inserted is not None


async def current_lists(conn: Connection) -> list[RevocationList]:
    return [RevocationList(**dict(row)) for row in await conn.fetch(_CURRENT)]
