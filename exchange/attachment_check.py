"""Judging the signatures inside a package's attachments at intake, under the sender's policy.

The attachments are decoded as ``exchange.edxml.attachments`` does (base64, the VNPT zip), the
PDFs judged in a bounded child process (``exchange.trust.pdf_bounded``) against the document
trust store, and the sender's ``attachment_signature_policy`` applied: ``off`` looks at nothing,
``record`` keeps the report and refuses nothing, ``official-required`` refuses a package whose
main document is not official (422 ``document_not_official``, nothing stored). The report is
stored with the message, in the same statement or transaction, with an ``attachments.checked``
audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from exchange.cert_registry import pdf_limits
from exchange.edxml.model import Edoc, Status
from exchange.errors import DocumentNotOfficial, ErrorDetail
from exchange.model import AttachmentSignaturePolicy
from exchange.package_body import PackageBody
from exchange.settings import TrustSettings
from exchange.store.audit import Event
from exchange.trust.pdf_bounded import validate_attachments
from exchange.trust.pdf_signatures import (
    AttachmentReport,
    AttachmentResult,
    DocumentTrust,
    Item,
    items_of,
    looks_like_pdf,
)

_ATTACHMENT_PATH = "/edXML/Attachments/Attachment"


async def check_attachments(
    settings: TrustSettings,
    model: Edoc | Status,
    body: PackageBody,
    policy: AttachmentSignaturePolicy,
    trust: DocumentTrust,
) -> AttachmentReport | None:
    """The report on ``model``'s attachments (decoded from the package's ``body`` where the model
    holds no base64) under its sender's ``policy`` and ``trust`` store (None for a status
    package); raises when the policy refuses."""
    if not isinstance(model, Edoc):
        return None
    sender = model.sender.organ_id
    items = await body.work(lambda: items_of(model, body.chunks()))
    now = datetime.now(UTC)
    if policy is AttachmentSignaturePolicy.OFF:
        return unchecked(items, sender, now)
    report = await validate_attachments(items, trust, sender, now, pdf_limits(settings))
    if policy is AttachmentSignaturePolicy.OFFICIAL_REQUIRED and not report.official:
        raise DocumentNotOfficial(
            f"the main document is not official and {sender}'s attachment signature policy is "
            "official-required",
            [ErrorDetail(report.reason, path=_ATTACHMENT_PATH)],
        )
    return report


def unchecked(items: list[Item], sender: str, at: datetime) -> AttachmentReport:
    """The attachments listed but not judged (the sender's policy is off)."""
    reason = "not checked: the sender's attachment signature policy is off"
    return AttachmentReport(
        tuple(
            AttachmentResult(
                item.name,
                item.content_type,
                item.sha256,
                item.size,
                looks_like_pdf(item),
                official_reason=reason,
            )
            for item in items
        ),
        False,
        reason,
        None,
        at.isoformat(),
        sender,
        checked=False,
    )


def attachment_events(message_id: UUID, report: AttachmentReport | None) -> list[Event]:
    """The audit entry that tells how a message's attachments were judged (none: not judged)."""
    if report is None:
        return []
    return [Event("attachments.checked", message_id, details=audit_summary(report))]


def audit_summary(report: AttachmentReport) -> dict[str, Any]:
    """What the trace shows: per attachment, who signed, for whom, and the verdict with its reason."""
    return {
        "checked": report.checked,
        "official": report.official,
        "reason": report.reason,
        "main": report.main,
        "attachments": [
            {
                "name": a.name,
                "sha256": a.sha256,
                "official": a.official,
                "signatures": [
                    {
                        "verdict": s.verdict,
                        "kind": s.kind,
                        "signer": s.signer,
                        "organ_id": s.organ_id,
                        "signed_at": s.signed_at,
                        "reason": s.reason,
                    }
                    for s in a.signatures
                ],
            }
            for a in report.attachments
        ],
    }


def api_view(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``attachments`` of ``GET /v1/messages/{id}``, from a stored report."""
    if report is None:
        return []
    return [
        {
            "name": a["name"],
            "content_type": a["content_type"],
            "sha256": a["sha256"],
            "size": a["size"],
            "signable": a["signable"],
            "official": a["official"],
            "official_reason": a["official_reason"],
            "main": a["name"] == report.get("main"),
            "signatures": [
                {
                    "verdict": s["verdict"],
                    "kind": s["kind"],
                    "signer": s["signer"],
                    "organization": s["organization"],
                    "organ_id": s["organ_id"],
                    "signed_at": s["signed_at"],
                    "signed_at_source": s["signed_at_source"],
                    "covers_whole_document": s["covers_whole_document"],
                    "changes_after": s["changes_after"],
                    "reason": s["reason"],
                }
                for s in a["signatures"]
            ],
        }
        for a in report.get("attachments", [])
    ]


def official_view(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """Whether the main document is official, and why (None when the package had no report)."""
    if report is None:
        return None
    return {
        "checked": report.get("checked", True),
        "official": report["official"],
        "reason": report["reason"],
        "main": report.get("main"),
    }
