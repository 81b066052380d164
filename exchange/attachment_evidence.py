"""The attachment validation report inside an evidence bundle, and its offline re-check.

``attachment-validation.json`` holds the report made at receipt (every PDF signature's verdict
and reason, the official-document judgement), the document trust store it can be re-checked
against (document CAs and CRLs), and the limits. ``exchange evidence verify`` checks that:

- the report is the one the audit chain recorded (the ``attachments.checked`` entry, whose
  integrity the chain check proves);
- it describes the attachments of ``package.edxml`` (same names and SHA-256s);
- validating those PDFs again, offline, as of the report's time, gives the same verdicts.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from exchange.attachment_check import audit_summary
from exchange.edxml.errors import EdxmlError
from exchange.edxml.model import Edoc
from exchange.edxml.package import parse_package
from exchange.store import attachment_reports
from exchange.store import certificates as certificate_store
from exchange.store import revocation_lists as crl_store
from exchange.store.db import Connection
from exchange.trust.pdf_bounded import validate_attachments
from exchange.trust.pdf_signatures import AttachmentReport, DocumentTrust, PdfLimits, items_of

MEMBER = "attachment-validation.json"


async def build_member(conn: Connection, message_id: UUID) -> bytes | None:
    """The bundle member for a message, or None when its attachments were never judged."""
    report = await attachment_reports.report_of(conn, message_id)
    if report is None:
        return None
    trust = DocumentTrust(
        tuple(await certificate_store.trusted_ca_ders(conn, "document")),
        tuple(crl.der for crl in await crl_store.current_lists(conn)),
    )
    member = {"report": report, "trust": trust.as_dict(), "limits": asdict(PdfLimits())}
    return json.dumps(member, ensure_ascii=False, indent=2).encode()


def check_member(files: dict[str, bytes], package_removed: bool) -> list[str]:
    """Problems with the bundle's attachment report; empty when it holds."""
    member = json.loads(files[MEMBER])
    report = AttachmentReport.from_dict(member["report"])
    problems = _against_chain(files, member["report"], report)
    if package_removed or not report.checked:
        return problems
    try:
        parsed = parse_package(files["package.edxml"])
    except EdxmlError as error:
        return [*problems, f"package.edxml cannot be read to re-check its attachments: {error.message}"]
    if not isinstance(parsed.model, Edoc):
        return [*problems, f"{MEMBER} describes attachments but package.edxml is a status package"]
    items = items_of(parsed.model)
    listed = [(a.name, a.sha256) for a in report.attachments]
    again = _revalidate(items, member, report)
    found = [(a.name, a.sha256) for a in again.attachments]
    if listed != found:
        return [*problems, f"{MEMBER} lists attachments {listed}, package.edxml holds {found}"]
    for before, after in zip(report.attachments, again.attachments, strict=True):
        was = [(s.field, s.verdict) for s in before.signatures]
        now = [(s.field, s.verdict) for s in after.signatures]
        if was != now:
            problems.append(f"{before.name}: the report says {was}, validating it again gives {now}")
    if report.official != again.official:
        problems.append(
            f"the report says official={report.official}, validating again gives {again.official}"
        )
    return problems


def _against_chain(files: dict[str, bytes], raw: dict[str, Any], report: AttachmentReport) -> list[str]:
    chain = json.loads(files["chain.json"])
    # Entries redacted for a system's bundle carry no action.
    recorded = [e["details"] for e in chain["segment"] if e.get("action") == "attachments.checked"]
    if not recorded:
        return [f"the audit chain holds no attachments.checked entry for {MEMBER}"]
    if recorded[0] != json.loads(json.dumps(audit_summary(report), ensure_ascii=False)):
        return [f"{MEMBER} is not the report the audit chain recorded at receipt"]
    return []


def _revalidate(items: list[Any], member: dict[str, Any], report: AttachmentReport) -> AttachmentReport:
    trust = DocumentTrust.from_dict(member["trust"])
    limits = PdfLimits(**member["limits"])
    at = datetime.fromisoformat(report.checked_at or "")
    work = validate_attachments(items, trust, report.sender or "", at, limits)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # Called from async code (a test, a handler): run the check on a loop of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()
