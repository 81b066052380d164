"""Building packages from models, in the layout the national SDK writes.

The root puts the QCVN namespace in the default namespace and the envelope declares
the ``edXML:`` prefix, so the header elements come out as ``edXML:From`` and so on,
as DMS software in the field expects. Elements follow the SDK's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from lxml import etree

from exchange.edxml.model import (
    Attachment,
    Bussiness,
    Edoc,
    Organization,
    OtherInfo,
    Reference,
    ResponseFor,
    StaffInfo,
    Status,
)
from exchange.edxml.parser import NS
from exchange.edxml.reader import DATE_FORMAT, TIMESTAMP_FORMAT

_Value = str | int | date | datetime | bool | None


def build_edoc(edoc: Edoc) -> bytes:
    root, header = _skeleton()
    message = _sub(header, "MessageHeader")
    _organization(message, "From", edoc.sender)
    for recipient in edoc.recipients:
        _organization(message, "To", recipient)
    _leaf(message, "DocumentId", edoc.document_id)
    code = _sub(message, "Code")
    _leaf(code, "CodeNumber", edoc.code.code_number)
    _leaf(code, "CodeNotation", edoc.code.code_notation)
    promulgation = _sub(message, "PromulgationInfo")
    _leaf(promulgation, "Place", edoc.promulgation_info.place)
    _leaf(promulgation, "PromulgationDate", edoc.promulgation_info.promulgation_date)
    document_type = _sub(message, "DocumentType")
    _leaf(document_type, "Type", edoc.document_type.type)
    _leaf(document_type, "TypeDetail", edoc.document_type.type_detail)
    _leaf(document_type, "TypeName", edoc.document_type.type_name)
    _leaf(message, "Subject", edoc.subject)
    _leaf(message, "Content", edoc.content)
    if edoc.signer_info is not None:
        signer = _sub(message, "SignerInfo")
        _leaf(signer, "Competence", edoc.signer_info.competence)
        _leaf(signer, "Position", edoc.signer_info.position)
        _leaf(signer, "FullName", edoc.signer_info.full_name)
    _leaf(message, "DueDate", edoc.due_date)
    if edoc.other_info is not None:
        _other_info(message, edoc.other_info)
    for response in edoc.response_for:
        _response_for(message, response)
    _leaf(message, "SteeringType", edoc.steering_type)
    _list(message, "ResponseForTask", "TaskCode", edoc.response_for_task)
    _leaf(message, "ApplicationType", edoc.application_type)
    _list(message, "ToPlaces", "Place", edoc.to_places)

    traces = _sub(header, "TraceHeaderList")
    for trace in edoc.trace_headers:
        node = _sub(traces, "TraceHeader")
        _leaf(node, "OrganId", trace.organ_id)
        _leaf(node, "Timestamp", trace.timestamp)
    if edoc.bussiness is not None:
        _bussiness(traces, edoc.bussiness)

    if edoc.references is not None:
        body = _sub(root[0], "edXMLBody")
        manifest = _sub(body, "edXMLManifest", version="1.0")
        for reference in edoc.references:
            _reference(manifest, reference)
    if edoc.attachments is not None:
        encoded = _sub(root, "AttachmentEncoded")
        for attachment in edoc.attachments:
            _attachment(encoded, attachment)
    return _serialize(root)


def build_status(status: Status) -> bytes:
    root, header = _skeleton()
    message = _sub(header, "MessageHeader")
    _organization(message, "From", status.sender)
    _response_for(message, status.response_for)
    if status.staff_info is not None:
        _staff(message, status.staff_info)
    _leaf(message, "StatusCode", status.status_code.value)
    _leaf(message, "Description", status.description)
    _leaf(message, "Timestamp", status.timestamp)
    return _serialize(root)


def _skeleton() -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{NS}}}edXML", nsmap={None: NS})
    envelope = etree.SubElement(root, f"{{{NS}}}edXMLEnvelope", nsmap={"edXML": NS})
    return root, _sub(envelope, "edXMLHeader")


def _serialize(root: etree._Element) -> bytes:
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


def _sub(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS}}}{name}", attributes)


def _leaf(parent: etree._Element, name: str, value: _Value) -> None:
    if value is not None:
        _sub(parent, name).text = _format(value)


def _format(value: _Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime(TIMESTAMP_FORMAT)
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT)
    return str(value)


def _list(parent: etree._Element, name: str, item: str, values: Iterable[str] | None) -> None:
    if values is None:
        return
    node = _sub(parent, name)
    for value in values:
        _leaf(node, item, value)


def _organization(parent: etree._Element, name: str, organization: Organization) -> None:
    node = _sub(parent, name)
    _leaf(node, "OrganId", organization.organ_id)
    _leaf(node, "OrganizationInCharge", organization.organization_in_charge)
    _leaf(node, "OrganName", organization.organ_name)
    _leaf(node, "OrganAdd", organization.organ_add)
    _leaf(node, "Email", organization.email)
    _leaf(node, "Telephone", organization.telephone)
    _leaf(node, "Fax", organization.fax)
    _leaf(node, "Website", organization.website)


def _other_info(parent: etree._Element, info: OtherInfo) -> None:
    node = _sub(parent, "OtherInfo")
    _leaf(node, "Priority", None if info.priority is None else int(info.priority))
    _leaf(node, "SphereOfPromulgation", info.sphere_of_promulgation)
    _leaf(node, "TyperNotation", info.typer_notation)
    _leaf(node, "PromulgationAmount", info.promulgation_amount)
    _leaf(node, "PageAmount", info.page_amount)
    _leaf(node, "Direction", info.direction)
    _list(node, "Appendixes", "Appendix", info.appendixes)


def _response_for(parent: etree._Element, response: ResponseFor) -> None:
    node = _sub(parent, "ResponseFor")
    _leaf(node, "OrganId", response.organ_id)
    _leaf(node, "Code", response.code)
    _leaf(node, "DocumentId", response.document_id)
    _leaf(node, "PromulgationDate", response.promulgation_date)


def _staff(parent: etree._Element, staff: StaffInfo) -> None:
    node = _sub(parent, "StaffInfo")
    _leaf(node, "Department", staff.department)
    _leaf(node, "DepartmentId", staff.department_id)
    _leaf(node, "Staff", staff.staff)
    _leaf(node, "StaffId", staff.staff_id)
    _leaf(node, "Email", staff.email)
    _leaf(node, "Mobile", staff.mobile)


def _bussiness(parent: etree._Element, bussiness: Bussiness) -> None:
    node = _sub(parent, "Bussiness")
    _leaf(node, "DocumentId", bussiness.document_id)
    _leaf(node, "BussinessDocType", int(bussiness.doc_type))
    _leaf(node, "BussinessDocReason", bussiness.reason)
    _leaf(node, "Paper", bussiness.paper)
    info = bussiness.document_info
    if info is not None:
        info_node = _sub(node, "BussinessDocumentInfo")
        _leaf(info_node, "DocumentInfo", info.document_info)
        _leaf(info_node, "DocumentReceiver", info.document_receiver)
        if info.receivers is not None:
            receivers = _sub(info_node, "ReceiverList")
            for receiver in info.receivers:
                receiver_node = _sub(receivers, "Receiver")
                _leaf(receiver_node, "OrganId", receiver.organ_id)
                _leaf(receiver_node, "ReceiverType", receiver.receiver_type)
    if bussiness.replacements is not None:
        replacements = _sub(node, "ReplacementInfoList")
        for replacement in bussiness.replacements:
            replacement_node = _sub(replacements, "ReplacementInfo")
            _leaf(replacement_node, "DocumentId", replacement.document_id)
            _list(replacement_node, "OrganIdList", "OrganId", replacement.organ_ids)
    if bussiness.staff_info is not None:
        _staff(node, bussiness.staff_info)


def _reference(parent: etree._Element, reference: Reference) -> None:
    node = _sub(parent, "Reference")
    _leaf(node, "ContentId", reference.content_id)
    _leaf(node, "ContentType", reference.content_type)
    _leaf(node, "Description", reference.description)
    _leaf(node, "AttachmentName", reference.attachment_name)


def _attachment(parent: etree._Element, attachment: Attachment) -> None:
    node = _sub(parent, "Attachment")
    _leaf(node, "ContentId", attachment.content_id)
    _leaf(node, "AttachmentName", attachment.attachment_name)
    _leaf(node, "Description", attachment.description)
    _leaf(node, "ContentType", attachment.content_type)
    _leaf(node, "FieldName", attachment.field_name)
    _leaf(node, "MimeType", attachment.mime_type)
    _leaf(node, "Format", attachment.format)
    encoded = etree.SubElement(node, f"{{{NS}}}ContentTransferEncoded", nsmap={"edXML": NS})
    encoded.text = attachment.content
