"""Typed models of the two package kinds. Field names follow the edXML element names.

Absent elements are ``None`` (or an empty tuple for repeatable ones); an element
present but empty keeps its empty string, so that parse -> build -> parse gives
back the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from exchange.edxml.codes import BusinessType, Priority, StatusCode


@dataclass(frozen=True)
class Organization:
    organ_id: str
    organization_in_charge: str | None = None
    organ_name: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class Code:
    code_number: str
    code_notation: str | None = None

    def __str__(self) -> str:
        return f"{self.code_number}/{self.code_notation}" if self.code_notation else self.code_number


@dataclass(frozen=True)
class PromulgationInfo:
    promulgation_date: date
    place: str | None = None


@dataclass(frozen=True)
class DocumentType:
    type_name: str
    type: int | None = None
    type_detail: int | None = None


@dataclass(frozen=True)
class SignerInfo:
    competence: str | None = None
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True)
class OtherInfo:
    priority: Priority | None = None
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None
    appendixes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ResponseFor:
    """Names the document a package answers; every part may be empty in edoc packages."""

    organ_id: str | None = None
    code: str | None = None
    document_id: str | None = None
    promulgation_date: date | None = None


@dataclass(frozen=True)
class StaffInfo:
    department: str | None = None
    department_id: str | None = None
    staff: str | None = None
    staff_id: str | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class TraceHeader:
    """One hop: who handled the package, and when (the sender's local time)."""

    timestamp: datetime
    organ_id: str | None = None


@dataclass(frozen=True)
class Receiver:
    organ_id: str
    receiver_type: int  # 0: removed from the recipients, 1: newly added


@dataclass(frozen=True)
class BussinessDocumentInfo:
    document_info: int | None = None
    document_receiver: int | None = None
    receivers: tuple[Receiver, ...] | None = None


@dataclass(frozen=True)
class ReplacementInfo:
    document_id: str
    organ_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Bussiness:
    """What the package does (new, revoke, update, replace) and to which document."""

    doc_type: BusinessType
    document_id: str | None = None
    reason: str | None = None
    paper: int | None = None
    document_info: BussinessDocumentInfo | None = None
    replacements: tuple[ReplacementInfo, ...] | None = None
    staff_info: StaffInfo | None = None


@dataclass(frozen=True)
class Reference:
    """A manifest entry announcing one attachment."""

    content_id: str
    content_type: str | None = None
    description: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True)
class Attachment:
    content_id: str
    # The base64 text as carried in the package; None where it was left in the package's bytes
    # (intake decodes attachments from there: see exchange.edxml.attachments.decode_from_package).
    content: str | None
    attachment_name: str | None = None
    description: str | None = None
    content_type: str | None = None
    field_name: str | None = None
    mime_type: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Edoc:
    """An official document package ("gói tin văn bản")."""

    sender: Organization
    recipients: tuple[Organization, ...]
    document_id: str
    code: Code
    promulgation_info: PromulgationInfo
    document_type: DocumentType
    subject: str
    trace_headers: tuple[TraceHeader, ...]
    content: str | None = None
    signer_info: SignerInfo | None = None
    due_date: date | None = None
    other_info: OtherInfo | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: int | None = None
    response_for_task: tuple[str, ...] | None = None
    application_type: str | None = None
    to_places: tuple[str, ...] | None = None
    bussiness: Bussiness | None = None
    references: tuple[Reference, ...] | None = None
    attachments: tuple[Attachment, ...] | None = None

    @property
    def business_type(self) -> BusinessType:
        return self.bussiness.doc_type if self.bussiness is not None else BusinessType.NEW

    @property
    def priority(self) -> Priority:
        if self.other_info is None or self.other_info.priority is None:
            return Priority.NORMAL
        return self.other_info.priority


@dataclass(frozen=True)
class Status:
    """A status package ("gói tin trạng thái") about one document."""

    sender: Organization
    response_for: ResponseFor
    status_code: StatusCode
    timestamp: datetime
    staff_info: StaffInfo | None = None
    description: str | None = None

    @property
    def document_id(self) -> str:
        return self.response_for.document_id or ""


Package = Edoc | Status
