"""Queries for the audit hash chain: unsealed entries, sealing, the head, checkpoints, walking."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from exchange.store.audit import ENTRY_COLUMNS, AuditEntry, entry_from_row
from exchange.store.db import Connection, LockNotAvailable, bound_lock_waits

# Arbitrary but fixed: whoever holds it (for one transaction) is the only sealer.
SEALER_LOCK = 7_246_002

_ENTRY = ENTRY_COLUMNS


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: bytes
    signed_at: datetime
    signature: str


# Becomes the sealer for this transaction, or says someone else is: no parameters.
_TRY_LOCK = f"SELECT pg_try_advisory_xact_lock({SEALER_LOCK})"
# Becomes the sealer for this transaction once the one sealing now is done: no parameters.
_LOCK = f"SELECT pg_advisory_xact_lock({SEALER_LOCK})"
# The last sealed entry's position and hash.
_HEAD = "SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
# Committed entries not sealed yet, oldest id first: $1 how many.
_UNSEALED = f"SELECT {_ENTRY} FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1"
# Seals entries: parallel arrays of ids, positions, previous hashes and hashes.
_SEAL = """
UPDATE audit_log a SET seq = s.seq, prev_hash = s.prev_hash, hash = s.hash, sealed_at = now()
FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS s (id, seq, prev_hash, hash)
WHERE a.id = s.id AND a.seq IS NULL
"""
# How far behind the sealer is: seconds since the oldest unsealed entry, and how many there are.
_LAG = "SELECT extract(epoch FROM now() - min(at)), count(*) FROM audit_log WHERE seq IS NULL"
# Records a signed checkpoint: $1 seq, $2 hash, $3 signed at, $4 JWS.
_CHECKPOINT = "INSERT INTO audit_checkpoints (seq, hash, signed_at, signature) VALUES ($1, $2, $3, $4)"
# The newest checkpoint.
_LATEST_CHECKPOINT = "SELECT seq, hash, signed_at, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
# Every checkpoint, in chain order.
_CHECKPOINTS = "SELECT seq, hash, signed_at, signature FROM audit_checkpoints ORDER BY seq"
# The first checkpoint at or after a position: $1 seq.
_CHECKPOINT_AFTER = """
SELECT seq, hash, signed_at, signature FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT 1
"""
# Sealed entries in chain order.
_CHAIN = f"SELECT {_ENTRY} FROM audit_log WHERE seq IS NOT NULL ORDER BY seq"
# Sealed entries between two positions, inclusive: $1 from, $2 to.
_SEGMENT = f"SELECT {_ENTRY} FROM audit_log WHERE seq BETWEEN $1 AND $2 ORDER BY seq"
# How many entries are sealed.
_SEALED_COUNT = "SELECT count(*) FROM audit_log WHERE seq IS NOT NULL"


async def try_become_sealer(conn: Connection) -> bool:
    return bool(await conn.fetchval(_TRY_LOCK))


async def become_sealer(conn: Connection, wait_s: float) -> bool:
    """Wait up to ``wait_s`` for the sealer at work (if any) to finish, then become the sealer.
    Inside a savepoint: a wait that times out aborts only it, not the caller's transaction."""
    try:
        async with conn.transaction():
            await bound_lock_waits(conn, wait_s)
            await conn.execute(_LOCK)
    except LockNotAvailable:
        return False
    return True


async def head(conn: Connection) -> tuple[int, bytes] | None:
    row = await conn.fetchrow(_HEAD)
    return None if row is None else (row["seq"], row["hash"])


async def unsealed(conn: Connection, limit: int) -> list[AuditEntry]:
    return [entry_from_row(row) for row in await conn.fetch(_UNSEALED, limit)]


async def seal(conn: Connection, sealed: Sequence[tuple[int, int, bytes, bytes]]) -> None:
    await conn.execute(
        _SEAL, [s[0] for s in sealed], [s[1] for s in sealed], [s[2] for s in sealed], [s[3] for s in sealed]
    )


async def lag(conn: Connection) -> tuple[float, int]:
    row = await conn.fetchrow(_LAG)
    return float(row[0] or 0.0), int(row[1])


async def add_checkpoint(conn: Connection, checkpoint: Checkpoint) -> None:
    await conn.execute(
        _CHECKPOINT, checkpoint.seq, checkpoint.hash, checkpoint.signed_at, checkpoint.signature
    )


async def latest_checkpoint(conn: Connection) -> Checkpoint | None:
    row = await conn.fetchrow(_LATEST_CHECKPOINT)
    return None if row is None else Checkpoint(**dict(row))


async def checkpoints(conn: Connection) -> list[Checkpoint]:
    return [Checkpoint(**dict(row)) for row in await conn.fetch(_CHECKPOINTS)]


async def checkpoint_at_or_after(conn: Connection, seq: int) -> Checkpoint | None:
    row = await conn.fetchrow(_CHECKPOINT_AFTER, seq)
    return None if row is None else Checkpoint(**dict(row))


async def sealed_count(conn: Connection) -> int:
    return int(await conn.fetchval(_SEALED_COUNT))


async def walk(conn: Connection, prefetch: int = 10_000) -> AsyncIterator[AuditEntry]:
    """Every sealed entry in chain order (call inside a transaction: a server-side cursor)."""
    async for row in conn.cursor(_CHAIN, prefetch=prefetch):
        yield entry_from_row(row)


async def segment(conn: Connection, first: int, last: int) -> list[AuditEntry]:
    return [entry_from_row(row) for row in await conn.fetch(_SEGMENT, first, last)]
