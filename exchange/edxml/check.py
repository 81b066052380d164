"""The offline conformance report a DMS vendor runs on their own packages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exchange.edxml.attachments import decode_attachment
from exchange.edxml.errors import EdxmlError, ErrorDetail
from exchange.edxml.model import Edoc
from exchange.edxml.package import ParsedPackage, parse_package


@dataclass
class Report:
    """What a package is and everything wrong with it; valid only with no problems."""

    name: str
    kind: str | None = None
    sender: str | None = None
    recipients: list[str] = field(default_factory=list)
    document_id: str | None = None
    business_type: str | None = None
    status_code: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    problems: list[ErrorDetail] = field(default_factory=list)
    error_code: str | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "valid": self.valid,
            "kind": self.kind,
            "sender": self.sender,
            "recipients": self.recipients,
            "document_id": self.document_id,
            "business_type": self.business_type,
            "status_code": self.status_code,
            "attachments": self.attachments,
            "signatures": self.signatures,
            "error_code": self.error_code,
            "problems": [problem.as_dict() for problem in self.problems],
        }


def check_package(name: str, data: bytes) -> Report:
    report = Report(name)
    try:
        parsed = parse_package(data)
    except EdxmlError as error:
        report.error_code = error.code
        report.problems = list(error.details) or [ErrorDetail(error.message)]
        return report
    _describe(report, parsed)
    return report


def _describe(report: Report, parsed: ParsedPackage) -> None:
    model = parsed.model
    report.kind = parsed.kind
    report.sender = model.sender.organ_id
    report.document_id = model.document_id
    report.signatures = [
        {"layout": slot.layout, "line": slot.line, "empty": slot.empty} for slot in parsed.signatures
    ]
    if not isinstance(model, Edoc):
        report.recipients = [model.response_for.organ_id or ""]
        report.status_code = f"{model.status_code.value} {model.status_code.label}"
        return
    report.recipients = [recipient.organ_id for recipient in model.recipients]
    business = model.business_type
    report.business_type = f"{business.value} {business.label}"
    for attachment in model.attachments or ():
        try:
            decoded = decode_attachment(attachment)
        except EdxmlError as error:
            report.error_code = error.code
            report.problems.append(ErrorDetail(error.message, path=f"Attachment[{attachment.content_id}]"))
            continue
        report.attachments.append(
            {
                "name": decoded.name,
                "content_type": decoded.content_type,
                "bytes": len(decoded.data),
                "was_zipped": decoded.was_zipped,
            }
        )
