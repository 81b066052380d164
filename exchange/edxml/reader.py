"""Reading a validated package tree into the typed models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from lxml import etree

from exchange.edxml.codes import BusinessType, Priority, StatusCode
from exchange.edxml.errors import ErrorDetail, SchemaInvalid
from exchange.edxml.model import (
    Attachment,
    Bussiness,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    Edoc,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    TraceHeader,
)
from exchange.edxml.parser import NS, element_path

DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
T = TypeVar("T")


def read_edoc(root: etree._Element) -> Edoc:
    header = _header(root)
    message = _required(header, "MessageHeader")
    traces = _required(header, "TraceHeaderList")
    body_manifest = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLBody/{{{NS}}}edXMLManifest")
    encoded = _child(root, "AttachmentEncoded")
    return Edoc(
        sender=_organization(_required(message, "From")),
        recipients=tuple(_organization(node) for node in _children(message, "To")),
        document_id=_required_text(message, "DocumentId"),
        code=_code(_required(message, "Code")),
        promulgation_info=_promulgation(_required(message, "PromulgationInfo")),
        document_type=_document_type(_required(message, "DocumentType")),
        subject=_required_text(message, "Subject"),
        content=_text(message, "Content"),
        signer_info=_optional(message, "SignerInfo", _signer),
        due_date=_date(message, "DueDate"),
        other_info=_optional(message, "OtherInfo", _other_info),
        response_for=tuple(_response_for(node) for node in _children(message, "ResponseFor")),
        steering_type=_int(message, "SteeringType"),
        response_for_task=_optional(message, "ResponseForTask", lambda n: _texts(n, "TaskCode")),
        application_type=_text(message, "ApplicationType"),
        to_places=_optional(message, "ToPlaces", lambda n: _texts(n, "Place")),
        trace_headers=tuple(_trace_header(node) for node in _children(traces, "TraceHeader")),
        bussiness=_optional(traces, "Bussiness", _bussiness),
        references=None
        if body_manifest is None
        else tuple(_reference(node) for node in _children(body_manifest, "Reference")),
        attachments=None
        if encoded is None
        else tuple(_attachment(node) for node in _children(encoded, "Attachment")),
    )


def read_status(root: etree._Element) -> Status:
    message = _required(_header(root), "MessageHeader")
    return Status(
        sender=_organization(_required(message, "From")),
        response_for=_response_for(_required(message, "ResponseFor")),
        status_code=StatusCode(_required_text(message, "StatusCode")),
        timestamp=_timestamp(message, "Timestamp"),
        staff_info=_optional(message, "StaffInfo", _staff),
        description=_text(message, "Description"),
    )


# ---- records ---------------------------------------------------------------------------------


def _organization(node: etree._Element) -> Organization:
    return Organization(
        organ_id=_required_text(node, "OrganId"),
        organization_in_charge=_text(node, "OrganizationInCharge"),
        organ_name=_text(node, "OrganName"),
        organ_add=_text(node, "OrganAdd"),
        email=_text(node, "Email"),
        telephone=_text(node, "Telephone"),
        fax=_text(node, "Fax"),
        website=_text(node, "Website"),
    )


def _code(node: etree._Element) -> Code:
    return Code(_required_text(node, "CodeNumber"), _text(node, "CodeNotation"))


def _promulgation(node: etree._Element) -> PromulgationInfo:
    promulgated = _date(node, "PromulgationDate")
    assert promulgated is not None  # required by the schema
    return PromulgationInfo(promulgated, _text(node, "Place"))


def _document_type(node: etree._Element) -> DocumentType:
    return DocumentType(_required_text(node, "TypeName"), _int(node, "Type"), _int(node, "TypeDetail"))


def _signer(node: etree._Element) -> SignerInfo:
    return SignerInfo(_text(node, "Competence"), _text(node, "Position"), _text(node, "FullName"))


def _other_info(node: etree._Element) -> OtherInfo:
    priority = _int(node, "Priority")
    direction = _text(node, "Direction")
    return OtherInfo(
        priority=None if priority is None else Priority(priority),
        sphere_of_promulgation=_text(node, "SphereOfPromulgation"),
        typer_notation=_text(node, "TyperNotation"),
        promulgation_amount=_int(node, "PromulgationAmount"),
        page_amount=_int(node, "PageAmount"),
        direction=None if direction is None else direction.strip() in ("true", "1"),
        appendixes=_optional(node, "Appendixes", lambda n: _texts(n, "Appendix")),
    )


def _response_for(node: etree._Element) -> ResponseFor:
    return ResponseFor(
        organ_id=_text(node, "OrganId"),
        code=_text(node, "Code"),
        document_id=_text(node, "DocumentId"),
        promulgation_date=_date(node, "PromulgationDate"),
    )


def _staff(node: etree._Element) -> StaffInfo:
    return StaffInfo(
        department=_text(node, "Department"),
        department_id=_text(node, "DepartmentId"),
        staff=_text(node, "Staff"),
        staff_id=_text(node, "StaffId"),
        email=_text(node, "Email"),
        mobile=_text(node, "Mobile"),
    )


def _trace_header(node: etree._Element) -> TraceHeader:
    return TraceHeader(_timestamp(node, "Timestamp"), _text(node, "OrganId"))


def _bussiness(node: etree._Element) -> Bussiness:
    doc_type = _int(node, "BussinessDocType")
    assert doc_type is not None  # required by the schema
    return Bussiness(
        doc_type=BusinessType(doc_type),
        document_id=_text(node, "DocumentId"),
        reason=_text(node, "BussinessDocReason"),
        paper=_int(node, "Paper"),
        document_info=_optional(node, "BussinessDocumentInfo", _document_info),
        replacements=_optional(node, "ReplacementInfoList", _replacements),
        staff_info=_optional(node, "StaffInfo", _staff),
    )


def _document_info(node: etree._Element) -> BussinessDocumentInfo:
    return BussinessDocumentInfo(
        document_info=_int(node, "DocumentInfo"),
        document_receiver=_int(node, "DocumentReceiver"),
        receivers=_optional(
            node,
            "ReceiverList",
            lambda n: tuple(
                Receiver(_required_text(r, "OrganId"), int(_required_text(r, "ReceiverType")))
                for r in _children(n, "Receiver")
            ),
        ),
    )


def _replacements(node: etree._Element) -> tuple[ReplacementInfo, ...]:
    return tuple(
        ReplacementInfo(
            _required_text(info, "DocumentId"),
            _optional(info, "OrganIdList", lambda n: _texts(n, "OrganId")),
        )
        for info in _children(node, "ReplacementInfo")
    )


def _reference(node: etree._Element) -> Reference:
    return Reference(
        content_id=_required_text(node, "ContentId"),
        content_type=_text(node, "ContentType"),
        description=_text(node, "Description"),
        attachment_name=_text(node, "AttachmentName"),
    )


def _attachment(node: etree._Element) -> Attachment:
    return Attachment(
        content_id=_required_text(node, "ContentId"),
        content=_required_text(node, "ContentTransferEncoded"),
        attachment_name=_text(node, "AttachmentName"),
        description=_text(node, "Description"),
        content_type=_text(node, "ContentType"),
        field_name=_text(node, "FieldName"),
        mime_type=_text(node, "MimeType"),
        format=_text(node, "Format"),
    )


# ---- element helpers -------------------------------------------------------------------------


def _header(root: etree._Element) -> etree._Element:
    return _required(_required(root, "edXMLEnvelope"), "edXMLHeader")


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return parent.find(f"{{{NS}}}{name}")


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return list(parent.iterfind(f"{{{NS}}}{name}"))


def _required(parent: etree._Element, name: str) -> etree._Element:
    node = _child(parent, name)
    if node is None:
        raise SchemaInvalid(
            f"{name} is required",
            [ErrorDetail(f"{name} is required", element_path(parent), parent.sourceline)],
        )
    return node


def _optional(parent: etree._Element, name: str, read: Callable[[etree._Element], T]) -> T | None:
    node = _child(parent, name)
    return None if node is None else read(node)


def _text(parent: etree._Element, name: str) -> str | None:
    node = _child(parent, name)
    return None if node is None else (node.text or "")


def _required_text(parent: etree._Element, name: str) -> str:
    return _required(parent, name).text or ""


def _texts(parent: etree._Element, name: str) -> tuple[str, ...]:
    return tuple(node.text or "" for node in _children(parent, name))


def _int(parent: etree._Element, name: str) -> int | None:
    text = _text(parent, name)
    return None if text is None else int(text.strip())


def _date(parent: etree._Element, name: str) -> date | None:
    text = _text(parent, name)
    if text is None or not text.strip():
        return None
    return _parse_time(parent, name, text.strip(), DATE_FORMAT).date()


def _timestamp(parent: etree._Element, name: str) -> datetime:
    return _parse_time(parent, name, _required_text(parent, name).strip(), TIMESTAMP_FORMAT)


def _parse_time(parent: etree._Element, name: str, text: str, form: str) -> datetime:
    try:
        return datetime.strptime(text, form)
    except ValueError:
        node = _child(parent, name)
        where = node if node is not None else parent
        raise SchemaInvalid(
            f"{name} is not a real date",
            [
                ErrorDetail(
                    f"{text!r} is not a valid {form.replace('%', '')} value",
                    element_path(where),
                    where.sourceline,
                )
            ],
        ) from None
