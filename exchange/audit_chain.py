"""The audit log as a tamper-evident hash chain.

Each sealed entry carries ``hash = SHA-256(prev_hash || canonical JSON of the entry)``,
with 32 zero bytes before the first. A single sealer at a time (a transaction-scoped
advisory lock) gives committed entries their chain positions, so writers never wait on
a shared chain head; entries that commit late simply get later positions. Checkpoints
sign the head hash with the axis certificate (a compact JWS), so an auditor holding the
certificate can prove every entry up to a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from exchange.store import chain as chain_store
from exchange.store.audit import AuditEntry
from exchange.store.chain import Checkpoint
from exchange.store.db import Connection
from exchange.trust.signing import Signer

GENESIS = bytes(32)
# Entries sealed per transaction. Hashing them is CPU on the event loop: a few hundred at a time keeps
# each stretch to milliseconds, where thousands at once held every request in the process back.
SEAL_BATCH = 250
# How long one who needs the head anchored now waits for the sealer at work (sealing thousands
# of entries takes about a second).
SEALER_WAIT_S = 10.0
CHECKPOINT_TYPE = "exchange-audit-checkpoint+jws"


def canonical(entry: AuditEntry) -> bytes:
    """The bytes of an entry that its hash covers (its seal columns excepted)."""
    return json.dumps(
        {
            "id": entry.id,
            "seq": entry.seq,
            "at": entry.at.astimezone(UTC).isoformat(),
            "actor": entry.actor,
            "action": entry.action,
            "message_id": None if entry.message_id is None else str(entry.message_id),
            "delivery_id": None if entry.delivery_id is None else str(entry.delivery_id),
            "details": entry.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def entry_hash(prev_hash: bytes, entry: AuditEntry) -> bytes:
    return hashlib.sha256(prev_hash + canonical(entry)).digest()


def sign_checkpoint(signer: Signer, seq: int, head_hash: bytes, at: datetime) -> str:
    return axis_signed(
        signer, {"seq": seq, "hash": head_hash.hex(), "signed_at": at.isoformat()}, CHECKPOINT_TYPE
    )


def axis_signed(signer: Signer, claims: dict[str, Any], typ: str) -> str:
    """A compact JWS of ``claims`` (JSON, keys sorted) with the axis key; ``axis_signed_claims`` reads it."""
    payload = json.dumps(claims, sort_keys=True).encode()
    token: str = jwt.PyJWS().encode(payload, signer.key, algorithm="RS256", headers={"typ": typ})
    return token


def axis_signed_claims(token: str, certificate: x509.Certificate) -> dict[str, Any]:
    """The signed content of a JWS the axis key made (a checkpoint, a bundle's manifest); raises
    jwt.PyJWTError when the signature fails, the certificate holds no RSA key, or the content is
    not a JSON object."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise jwt.InvalidKeyError("the axis certificate does not hold an RSA key")
    decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=["RS256"])
    try:
        claims = json.loads(decoded["payload"])
    except ValueError as exc:
        raise jwt.DecodeError(f"the signed content is not JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise jwt.DecodeError("the signed content is not a JSON object")
    return claims


@dataclass
class SealResult:
    sealed: int = 0
    checkpoint: Checkpoint | None = None


async def seal_pending(
    conn: Connection,
    signer: Signer,
    *,
    batch: int = SEAL_BATCH,
    checkpoint_every: timedelta = timedelta(minutes=1),
    force_checkpoint: bool = False,
    wait_s: float = 0.0,
) -> SealResult:
    """Seal committed entries, at most ``batch``, and sign a checkpoint when one is due or, with
    ``force_checkpoint``, once everything pending is sealed (a caller sealing batch after batch
    gets one checkpoint, at the end). If another process is sealing, give way at once, or wait
    up to ``wait_s`` for it to finish and seal after it (for a caller who needs its entries
    anchored now)."""
    result = SealResult()
    async with conn.transaction():
        if wait_s > 0:
            sealer = await chain_store.become_sealer(conn, wait_s)
        else:
            sealer = await chain_store.try_become_sealer(conn)
        if not sealer:
            return result
        current = await chain_store.head(conn)
        seq, prev = current if current is not None else (0, GENESIS)
        sealed = []
        for entry in await chain_store.unsealed(conn, batch):
            seq += 1
            positioned = replace(entry, seq=seq)
            digest = entry_hash(prev, positioned)
            sealed.append((entry.id, seq, prev, digest))
            prev = digest
        if sealed:
            await chain_store.seal(conn, sealed)
        result.sealed = len(sealed)
        if seq > 0:
            at_head = len(sealed) < batch
            result.checkpoint = await _checkpoint_if_due(
                conn, signer, seq, prev, checkpoint_every, force_checkpoint and at_head
            )
    return result


async def _checkpoint_if_due(
    conn: Connection, signer: Signer, seq: int, head_hash: bytes, every: timedelta, force: bool
) -> Checkpoint | None:
    latest = await chain_store.latest_checkpoint(conn)
    now = datetime.now(UTC)
    if latest is not None and (latest.seq == seq or (not force and now - latest.signed_at < every)):
        return None
    checkpoint = Checkpoint(seq, head_hash, now, sign_checkpoint(signer, seq, head_hash, now))
    await chain_store.add_checkpoint(conn, checkpoint)
    return checkpoint


@dataclass
class ChainReport:
    entries: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_entry: int | None = None  # audit_log.id of the first entry found wrong
    unsealed: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "unsealed": self.unsealed,
            "first_bad_entry": self.first_bad_entry,
            "problems": self.problems,
        }


class ChainChecker:
    """Walks entries in chain order and says where the chain was edited, cut, padded or reordered."""

    def __init__(
        self,
        report: ChainReport,
        checkpoints: dict[int, Checkpoint],
        certificate: x509.Certificate,
        max_seal_delay: timedelta,
    ) -> None:
        self.report, self._checkpoints, self._certificate = report, checkpoints, certificate
        self._max_delay = max_seal_delay
        self._prev, self._expected = GENESIS, 1
        self.last_seq = 0

    def start_at(self, entry: AuditEntry) -> None:
        """Check a segment that starts mid-chain: trust its first link, verify the rest."""
        self._prev, self._expected = entry.prev_hash or GENESIS, entry.seq or 1

    def feed(self, entry: AuditEntry, *, redacted: bool = False) -> None:
        """Check one entry; a ``redacted`` one (content withheld) is checked for position and link only."""
        report = self.report
        report.entries += 1
        if entry.seq != self._expected:
            self._problem(
                entry,
                f"chain position {self._expected} is missing before entry {entry.id} "
                f"(position {entry.seq}): an entry was deleted",
            )
            self._expected = entry.seq or self._expected
        elif entry.prev_hash != self._prev:
            self._problem(
                entry,
                f"entry {entry.id} (position {entry.seq}) does not link to the entry before it: "
                "entries were inserted or reordered",
            )
        if not redacted and entry.hash != entry_hash(entry.prev_hash or b"", entry):
            self._problem(entry, f"entry {entry.id} (position {entry.seq}) was changed after it was sealed")
        if entry.sealed_at is not None and entry.sealed_at - entry.at > self._max_delay:
            self._problem(
                entry,
                f"entry {entry.id} (position {entry.seq}) was sealed "
                f"{int((entry.sealed_at - entry.at).total_seconds())} s after its time: "
                "inserted late or backdated",
            )
        checkpoint = self._checkpoints.get(entry.seq or 0)
        if checkpoint is not None:
            self._check_checkpoint(checkpoint, entry)
        self._prev, self._expected = entry.hash or b"", (entry.seq or 0) + 1
        self.last_seq = entry.seq or self.last_seq

    def _check_checkpoint(self, checkpoint: Checkpoint, entry: AuditEntry) -> None:
        self.report.checkpoints += 1
        try:
            claims = axis_signed_claims(checkpoint.signature, self._certificate)
        except jwt.PyJWTError as exc:
            self.report.problems.append(f"checkpoint at position {checkpoint.seq} has a bad signature: {exc}")
            return
        if claims.get("hash") != (entry.hash or b"").hex() or claims.get("seq") != entry.seq:
            self._problem(
                entry,
                f"the signed checkpoint at position {checkpoint.seq} does not match the chain "
                f"there (entry {entry.id}): the log before it was rewritten",
            )

    def _problem(self, entry: AuditEntry, text: str) -> None:
        if self.report.first_bad_entry is None:
            self.report.first_bad_entry = entry.id
        self.report.problems.append(text)


async def verify_chain(
    conn: Connection,
    certificate: x509.Certificate,
    *,
    max_seal_delay: timedelta = timedelta(minutes=5),
    progress: Callable[[int], None] | None = None,
) -> ChainReport:
    report = ChainReport()
    marks = {checkpoint.seq: checkpoint for checkpoint in await chain_store.checkpoints(conn)}
    checker = ChainChecker(report, marks, certificate, max_seal_delay)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        total_lag = await chain_store.lag(conn)
        report.unsealed = total_lag[1]
        async for entry in chain_store.walk(conn):
            checker.feed(entry)
            if progress is not None and report.entries % 10_000 == 0:
                progress(report.entries)
    if progress is not None:
        progress(report.entries)
    missing = sorted(seq for seq in marks if seq > checker.last_seq)
    report.problems += [
        f"a signed checkpoint names position {seq}, beyond the end of the chain: entries were "
        "deleted from its end"
        for seq in missing
    ]
    return report
