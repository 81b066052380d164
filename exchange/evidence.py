"""Evidence bundles: everything an auditor needs to prove what happened to one document, offline.

A bundle is a zip of the original package, the receipt the axis signed when it accepted
it, the trace (JSON and a readable HTML page), the segment of the audit hash chain that
holds the document's entries up to a checkpoint signed by the axis, the axis
certificate, the validation report of the signatures inside its attachments
(``exchange.attachment_evidence``), and a manifest of SHA-256 hashes that the axis signs
(``manifest.jws``). ``verify_bundle`` checks all of it with
nothing but the bundle (and, better, a copy of the axis certificate obtained separately).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import jinja2
import jwt
from cryptography import x509

from exchange import attachment_evidence, timeline, visibility
from exchange.audit_chain import (
    SEAL_BATCH,
    SEALER_WAIT_S,
    ChainChecker,
    ChainReport,
    axis_signed,
    axis_signed_claims,
    seal_pending,
)
from exchange.charts import readable_json
from exchange.errors import Conflict, NotSealedYet
from exchange.model import System
from exchange.receipts import read_receipt
from exchange.store import audit
from exchange.store import chain as chain_store
from exchange.store import messages as message_store
from exchange.store.audit import AuditEntry
from exchange.store.chain import Checkpoint
from exchange.store.db import Connection
from exchange.trust.certificates import pem
from exchange.trust.signing import Signer
from exchange.visibility import EventFilter

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
)
_TEMPLATES.filters["details"] = readable_json
FILES = ("package.edxml", "receipt.jws", "trace.json", "trace.html", "chain.json", "axis-certificate.pem")
# The axis's signature over the manifest, so every member it lists is vouched for, the trace too.
MANIFEST_SIGNATURE = "manifest.jws"
MANIFEST_TYPE = "exchange-evidence-manifest+jws"


async def write_bundle(
    conn: Connection,
    caller: System | None,
    message_id: UUID,
    signer: Signer,
    target: IO[bytes],
    sealer_waiter: asyncio.Lock,
) -> None:
    """Write the bundle as ``caller`` may see it (``exchange.visibility``) to ``target`` (seekable):
    the package only for a caller who may read its body, going in as it is read from the database a
    chunk at a time (a bundle costs no more memory for a large package); the trace and the chain
    entries of others left out or redacted. ``sealer_waiter`` is held by the one request of the
    process that may wait for the background sealer (``_anchored_chain_proof``)."""
    message, deliveries = await timeline.visible_message(conn, caller, message_id)
    trace = await timeline.trace(conn, caller, message_id)
    readable = visibility.may_read_body(caller, message, deliveries)
    chunks = await message_store.body_chunks(conn, message_id) if readable else None
    chain = await _anchored_chain_proof(
        conn, signer, message_id, visibility.event_filter(caller, message, deliveries), sealer_waiter
    )
    files = {
        "receipt.jws": (message.receipt or "").encode(),
        "trace.json": json.dumps(trace, ensure_ascii=False, indent=2).encode(),
        "trace.html": _TEMPLATES.get_template("evidence_trace.html").render(trace=trace).encode(),
        "chain.json": json.dumps(chain, ensure_ascii=False, indent=2).encode(),
        "axis-certificate.pem": pem(signer.certificate),
    }
    # The validation report describes the package's content: it goes only where the package goes.
    if readable and (validation := await attachment_evidence.build_member(conn, message_id)) is not None:
        files[attachment_evidence.MEMBER] = validation
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as bundle:
        package = _member("package.edxml")
        package.file_size = message.size_bytes if chunks is not None else 0
        digest = hashlib.sha256()
        with bundle.open(package, "w") as member:
            for seq in range(chunks or 0):
                data = await message_store.body_chunk(conn, message_id, seq)
                if data is None:
                    raise Conflict("the package was removed while the bundle was made; ask again")
                member.write(data)
                digest.update(data)
        for name, data in files.items():
            bundle.writestr(_member(name), data)
        manifest = {
            "message_id": str(message_id),
            "created_at": datetime.now(UTC).isoformat(),
            "package_removed_by_retention": readable and chunks is None,
            "files": {
                "package.edxml": digest.hexdigest(),
                **{name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
            },
        }
        if not readable:
            manifest["package_withheld"] = "the caller's copy was withdrawn; its content is not readable"
        manifest_bytes = json.dumps(manifest, indent=2).encode()
        bundle.writestr(_member("manifest.json"), manifest_bytes)
        bundle.writestr(
            _member(MANIFEST_SIGNATURE),
            axis_signed(
                signer, {"manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}, MANIFEST_TYPE
            ).encode(),
        )


def canonical_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip whose bytes follow from its members alone: stored (no compression, so no zlib
    differences between machines) with fixed metadata. A verifier rebuilds it and compares,
    so even a byte of zip bookkeeping that no reader checks cannot change unnoticed."""
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        # Readers differ on which of two same-named members they show: a bundle has none.
        raise ValueError(f"members named twice: {sorted({n for n in names if names.count(n) > 1})}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in members:
            bundle.writestr(_member(name), data)
    return buffer.getvalue()


def _member(name: str) -> zipfile.ZipInfo:
    # write_bundle streams the package into a member with its size set beforehand, which gives
    # the same bytes as writestr: both layouts are this one.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.create_system = 3
    return info


async def _anchored_chain_proof(
    conn: Connection, signer: Signer, message_id: UUID, shows: EventFilter, waiter: asyncio.Lock
) -> dict[str, Any]:
    """Seal what is pending and sign the head, so every entry of the bundle is anchored now.

    If the background sealer was at work right then and left some unanchored, wait for it and
    seal after it, for up to ``SEALER_WAIT_S``: the caller gets its bundle, not a 409. A waiter
    holds its pooled connection, so only one request per process waits (``waiter``); another one
    meanwhile is told to ask again (409 ``not_sealed_yet`` with Retry-After), and cannot take the
    pool."""
    deadline = time.monotonic() + SEALER_WAIT_S
    await _seal_everything(conn, signer, deadline, wait=False)
    try:
        return await _chain_proof(conn, message_id, shows)
    except NotSealedYet:
        if waiter.locked():
            raise
    async with waiter:
        deadline = time.monotonic() + SEALER_WAIT_S
        while True:
            sealed = await _seal_everything(conn, signer, deadline, wait=True)
            try:
                return await _chain_proof(conn, message_id, shows)
            except NotSealedYet:
                # Nothing sealed: the wait ran out, or nothing is pending and waiting cannot help.
                if sealed == 0 or time.monotonic() >= deadline:
                    raise


async def _seal_everything(conn: Connection, signer: Signer, deadline: float, *, wait: bool) -> int:
    """Seal what is pending, batch after batch until ``deadline`` (small batches: the event loop
    is never held for long), and sign the head. Gives way at once to a sealer at work in another
    process, or with ``wait`` waits for it. How many entries were sealed."""
    total = 0
    while True:
        wait_s = max(deadline - time.monotonic(), 0.001) if wait else 0.0
        sealed = (await seal_pending(conn, signer, force_checkpoint=True, wait_s=wait_s)).sealed
        total += sealed
        if sealed < SEAL_BATCH or time.monotonic() >= deadline:
            return total


async def _chain_proof(conn: Connection, message_id: UUID, shows: EventFilter) -> dict[str, Any]:
    """The chain from the message's first entry to the first signed checkpoint after its last.

    Entries the caller may not see (another recipient's, other documents') keep only their
    position and hashes: the links stay checkable, their content is not shown.
    """
    entries = await audit.entries_for_message(conn, message_id)
    mine = [entry for entry in entries if shows.shows(entry)]
    if not mine or any(entry.seq is None for entry in mine):
        raise NotSealedYet("the record of this message is not sealed yet; ask again in a few seconds")
    first, last = min(e.seq for e in mine if e.seq), max(e.seq for e in mine if e.seq)
    checkpoint = await chain_store.checkpoint_at_or_after(conn, last)
    if checkpoint is None:
        raise NotSealedYet("no signed checkpoint covers this message yet; ask again in a few seconds")
    segment = await chain_store.segment(conn, first, checkpoint.seq)
    shown = {entry.id for entry in mine}
    return {
        "message_entries": sorted(shown),
        "segment": [
            entry.as_dict() if entry.id in shown or shows.whole_log else _redacted(entry) for entry in segment
        ],
        "checkpoint": {
            "seq": checkpoint.seq,
            "hash": checkpoint.hash.hex(),
            "signed_at": checkpoint.signed_at.isoformat(),
            "signature": checkpoint.signature,
        },
    }


def _redacted(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "seq": entry.seq,
        "prev_hash": None if entry.prev_hash is None else entry.prev_hash.hex(),
        "hash": None if entry.hash is None else entry.hash.hex(),
        "redacted": True,
    }


@dataclass
class BundleReport:
    message_id: str | None = None
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    # What the bundle shows without proof: kept apart from problems, so that a bundle made before
    # manifests were signed is not called forged, nor one stripped of its signature called proven.
    unproven: list[str] = field(default_factory=list)
    redacted_entries: int = 0  # chain entries of others, shown by position and hashes only

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def proven(self) -> bool:
        """Valid, and nothing in it shown without proof."""
        return self.valid and not self.unproven

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "proven": self.proven,
            "message_id": self.message_id,
            "checked": self.checked,
            "problems": self.problems,
            "unproven": self.unproven,
            "redacted_entries": self.redacted_entries,
        }


def verify_bundle(data: bytes, certificate: x509.Certificate | None = None) -> BundleReport:
    """Check a bundle offline; ``certificate`` is the axis certificate the auditor trusts."""
    report = BundleReport()
    try:
        files = _read_zip(data)
        manifest_bytes = files.pop("manifest.json")
        manifest = json.loads(manifest_bytes)
        signature = files.pop(MANIFEST_SIGNATURE, None)
        axis = certificate or x509.load_pem_x509_certificate(files["axis-certificate.pem"])
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, UnicodeDecodeError) as exc:
        report.problems.append(f"the bundle is damaged or not a bundle: {exc!r}")
        return report
    report.message_id = manifest.get("message_id")
    _check_manifest(report, files, manifest)
    signed = _check_manifest_signature(report, manifest_bytes, signature, axis)
    try:
        _check_receipt(report, files, axis, manifest)
        _check_chain(report, files, axis)
        _check_trace(report, files, signed)
        if attachment_evidence.MEMBER in files:
            removed = bool(manifest.get("package_removed_by_retention"))
            report.problems += attachment_evidence.check_member(files, removed)
            report.checked.append("attachments")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a part that no longer parses
        report.problems.append(f"the bundle's contents are malformed: {exc!r}")
    return report


def _check_manifest(report: BundleReport, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    listed = manifest.get("files", {})
    for name in sorted(set(listed) | set(files)):
        if name not in files or name not in listed:
            report.problems.append(
                f"{name} is {'missing from the bundle' if name not in files else 'not listed'}"
            )
        elif hashlib.sha256(files[name]).hexdigest() != listed[name]:
            report.problems.append(f"{name} does not match its SHA-256 in the manifest")
    report.checked.append("manifest")


def _check_manifest_signature(
    report: BundleReport, manifest: bytes, signature: bytes | None, axis: x509.Certificate
) -> bool:
    """Whether the axis signed this manifest. A bundle without the signature (made before
    manifests were signed, or stripped of it) is not a forgery on that account, but what only
    the signature proves (the trace) is then reported unproven."""
    if signature is None:
        report.unproven.append(
            "the manifest is not signed (a bundle made before manifests were signed, or one stripped"
            " of its signature): trace.json and trace.html are not proven, only the chain entries"
        )
        return False
    try:
        claims = axis_signed_claims(signature.decode(), axis)
    except (jwt.PyJWTError, UnicodeDecodeError) as exc:
        report.problems.append(f"the manifest's signature does not verify with the axis certificate: {exc}")
        return False
    if claims.get("manifest_sha256") != hashlib.sha256(manifest).hexdigest():
        report.problems.append("manifest.json is not the manifest the axis signed")
        return False
    report.checked.append("signed manifest")
    return True


def _read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        members = [(info.filename, bundle.read(info)) for info in bundle.infolist()]  # read() checks CRCs
    if canonical_zip(members) != data:
        raise ValueError(
            "the zip container differs from the canonical layout the axis writes: it was altered"
        )
    return dict(members)


def _check_receipt(
    report: BundleReport, files: dict[str, bytes], axis: x509.Certificate, manifest: dict[str, Any]
) -> None:
    try:
        claims = read_receipt(files["receipt.jws"].decode(), axis.public_key())
    except (jwt.InvalidTokenError, UnicodeDecodeError, KeyError) as exc:
        report.problems.append(f"the receipt does not verify with the axis certificate: {exc}")
        return
    if claims.get("message_id") != manifest.get("message_id"):
        report.problems.append("the receipt names another message than the bundle")
    if (
        not manifest.get("package_removed_by_retention")
        and not manifest.get("package_withheld")
        and claims.get("sha256") != hashlib.sha256(files.get("package.edxml", b"")).hexdigest()
    ):
        report.problems.append(
            "package.edxml is not the package the receipt was signed for (SHA-256 differs)"
        )
    report.checked.append("receipt")


def _check_chain(report: BundleReport, files: dict[str, bytes], axis: x509.Certificate) -> None:
    chain = json.loads(files["chain.json"])
    entries = [_entry(item) for item in chain["segment"]]
    redacted = {item["id"] for item in chain["segment"] if item.get("redacted")}
    report.redacted_entries = len(redacted)
    if not entries:
        report.problems.append("the chain segment is empty")
        return
    raw = chain["checkpoint"]
    checkpoint = Checkpoint(
        raw["seq"], bytes.fromhex(raw["hash"]), datetime.fromisoformat(raw["signed_at"]), raw["signature"]
    )
    try:
        axis_signed_claims(checkpoint.signature, axis)
    except jwt.PyJWTError as exc:
        report.problems.append(f"the checkpoint signature does not verify with the axis certificate: {exc}")
        return
    chain_report = ChainReport()
    checker = ChainChecker(chain_report, {checkpoint.seq: checkpoint}, axis, max_seal_delay=timedelta.max)
    checker.start_at(entries[0])
    for entry in entries:
        checker.feed(entry, redacted=entry.id in redacted)
    report.problems += [f"chain: {problem}" for problem in chain_report.problems]
    if chain_report.checkpoints != 1:
        report.problems.append(
            f"the chain segment does not reach its checkpoint at position {checkpoint.seq}"
        )
    segment_ids = {entry.id for entry in entries}
    if hidden := sorted(redacted & set(chain["message_entries"])):
        report.problems.append(f"entries {hidden} of the message are redacted in the chain segment")
    if missing := [i for i in chain["message_entries"] if i not in segment_ids]:
        report.problems.append(f"entries {missing} of the message are not in the chain segment")
    report.checked.append("chain")


# What a trace event says, each to be as the chain entry of the same id says it.
_TRACED = ("at", "actor", "action", "message_id", "delivery_id", "details")


def _check_trace(report: BundleReport, files: dict[str, bytes], signed: bool) -> None:
    """Every event of the trace (what an auditor reads) is an entry the chain anchors, as it was
    sealed. In a bundle whose manifest is not signed, a disagreement is reported unproven, not
    as a problem: bundles made before a bundle sealed everything it showed could have one."""
    found = report.problems if signed else report.unproven
    chain = json.loads(files["chain.json"])
    anchored = {
        item["id"]: item
        for item in chain["segment"]
        if not item.get("redacted") and item["id"] in set(chain["message_entries"])
    }
    for event in json.loads(files["trace.json"])["events"]:
        entry = anchored.get(event.get("id"))
        if entry is None:
            found.append(f"trace event {event.get('id')} is not anchored in the chain")
        elif any(event.get(key) != entry.get(key) for key in _TRACED):
            found.append(f"trace event {event['id']} differs from the chain entry of that id")
    report.checked.append("trace")


def _entry(item: dict[str, Any]) -> AuditEntry:
    if item.get("redacted"):  # position and hashes only; the content is another party's
        return AuditEntry(
            id=item["id"],
            at=datetime.min.replace(tzinfo=UTC),
            actor="",
            action="",
            message_id=None,
            delivery_id=None,
            details={},
            seq=item["seq"],
            prev_hash=bytes.fromhex(item["prev_hash"]),
            hash=bytes.fromhex(item["hash"]),
        )
    return AuditEntry(
        id=item["id"],
        at=datetime.fromisoformat(item["at"]),
        actor=item["actor"],
        action=item["action"],
        message_id=UUID(item["message_id"]) if item["message_id"] else None,
        delivery_id=UUID(item["delivery_id"]) if item["delivery_id"] else None,
        details=item["details"],
        seq=item["seq"],
        prev_hash=bytes.fromhex(item["prev_hash"]),
        hash=bytes.fromhex(item["hash"]),
        sealed_at=datetime.fromisoformat(item["sealed_at"]) if item["sealed_at"] else None,
    )
