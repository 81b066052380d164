"""Business statuses: which document a status package is about, who must receive it, and
whether it follows from what the recipient reported before.

A recipient reports 01 arrived, then 02 refused or 03 accepted, 04 assigned, 05
processing, 06 completed. The sender may ask for the document back (13); the recipient
agrees (15) or refuses (16). A status that does not follow (06 before 03, anything after
02, 15 without a 13) is recorded with a flag, never dropped, and never becomes the current
status: the current one only moves forward (store.statuses.CURRENT_STATUS).

Routing never guesses. A DocumentId is not unique across senders (legacy producers, or an
agency that copies another's on purpose), so a status is about the document of that id which
the reporter holds a delivery of, from the sender its ResponseFor names when it names one; a
choice left between several senders is refused. Progress statuses (01-06) need a copy that
actually reached the reporter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exchange.edxml.codes import StatusCode
from exchange.edxml.model import Status
from exchange.errors import AmbiguousDocument, ErrorDetail, NotReceived, UnknownDocument
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store.db import Connection
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow

# How far along the handling each recipient status is; a status may not step back.
_PROGRESS = {
    StatusCode.ARRIVED: 1,
    StatusCode.ACCEPTED: 2,
    StatusCode.ASSIGNED: 3,
    StatusCode.PROCESSING: 4,
    StatusCode.COMPLETED: 5,
}
_FINAL = {StatusCode.REFUSED, StatusCode.COMPLETED}
_ANSWERS = {StatusCode.CHANGE_AGREED, StatusCode.CHANGE_REFUSED}
# What a recipient reports about its own handling of the copy: only about a copy it received.
_NEEDS_RECEIVED = {StatusCode.REFUSED} | set(_PROGRESS)
_RESPONSE_FOR = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/ResponseFor"


@dataclass(frozen=True)
class StatusRoute:
    """Where a status package goes, and which deliveries of the document it is about."""

    document: MessageRow
    recipients: tuple[str, ...]
    concerned: tuple[DeliveryRow, ...]


async def route_status(conn: Connection, status: Status) -> StatusRoute:
    """Find the document a status reports on; refuse statuses about documents the reporter never had."""
    reporter = status.sender.organ_id
    document_id = status.response_for.document_id or ""
    if status.status_code is StatusCode.TAKE_BACK:
        document = await message_store.edoc_by_document(conn, reporter, document_id)
        if document is None:
            raise UnknownDocument(f"take-back (13) for document {document_id!r}, which {reporter} never sent")
        deliveries = [
            d for d in await delivery_store.deliveries_of(conn, document.id) if d.state != "withdrawn"
        ]
        asked = status.response_for.organ_id
        concerned = [d for d in deliveries if d.recipient == asked] or deliveries
        if not concerned:
            raise UnknownDocument(f"document {document_id!r} has no recipient left to take it back from")
        return StatusRoute(document, tuple(d.recipient for d in concerned), tuple(concerned))
    document, delivery = await _received_document(conn, status)
    check_reportable(status, delivery)
    return StatusRoute(document, (document.sender,), (delivery,))


def check_reportable(status: Status, delivery: DeliveryRow) -> None:
    """01-06 only about a copy that reached the reporter and is still its own (not withdrawn: revoked,
    removed by an update or taken back). Checked again under the delivery's lock when recording."""
    if status.status_code not in _NEEDS_RECEIVED:
        return
    document_id = status.response_for.document_id or ""
    reporter = status.sender.organ_id
    if not delivery.received:
        raise NotReceived(
            f"status {status.status_code.value} for document {document_id!r}: {reporter}'s copy "
            f"(delivery {delivery.id}, {delivery.state}) was never delivered to it; download it first",
            [ErrorDetail("01-06 need a copy pushed with a 2xx or downloaded", path=_RESPONSE_FOR)],
        )
    if delivery.state == "withdrawn":
        raise NotReceived(
            f"status {status.status_code.value} for document {document_id!r}: {reporter}'s copy "
            f"(delivery {delivery.id}) was withdrawn; it has no copy left to report on",
            [ErrorDetail("01-06 need a copy that is not withdrawn", path=_RESPONSE_FOR)],
        )


async def _received_document(conn: Connection, status: Status) -> tuple[MessageRow, DeliveryRow]:
    """The one document a recipient's status is about, and the reporter's delivery of it."""
    reporter = status.sender.organ_id
    document_id = status.response_for.document_id or ""
    named_sender = (status.response_for.organ_id or "").strip() or None
    candidates = await message_store.edocs_received_by(conn, document_id, reporter, named_sender)
    if not candidates:
        sender_note = f" from {named_sender}" if named_sender else ""
        raise UnknownDocument(
            f"status {status.status_code.value} for document {document_id!r}, which {reporter} never "
            f"received{sender_note}",
            [ErrorDetail("no delivery to the reporter carries this DocumentId", path=_RESPONSE_FOR)],
        )
    senders = sorted({c.sender for c in candidates})
    if len(senders) > 1:
        raise AmbiguousDocument(
            f"{reporter} received document {document_id!r} from {len(senders)} senders "
            f"({', '.join(senders)}); name the sender in ResponseFor/OrganId",
            [
                ErrorDetail(f"candidate: message {c.id} from {c.sender}", path=_RESPONSE_FOR)
                for c in candidates
            ],
        )
    # One sender: its original (business type 0) before an update carrying the same id.
    document = candidates[0]
    delivery = await delivery_store.delivery_to(conn, document.id, reporter)
    assert delivery is not None  # the query only returns documents with a delivery to the reporter
    return document, delivery


def transition_flag(history: Sequence[str], new: StatusCode) -> str | None:
    """Why ``new`` does not follow from the statuses already reported (oldest first), or None."""
    earlier = [StatusCode(code) for code in history]
    reported = [code for code in earlier if code not in _ANSWERS and code is not StatusCode.TAKE_BACK]
    if new is StatusCode.TAKE_BACK:
        if StatusCode.COMPLETED in reported:
            return "take-back requested after the recipient completed the document"
        return None
    if new in _ANSWERS:
        open_requests = earlier.count(StatusCode.TAKE_BACK) - sum(code in _ANSWERS for code in earlier)
        return None if open_requests > 0 else f"{new.value} answers no pending take-back request (13)"
    final = next((code for code in reported if code in _FINAL), None)
    if final is not None:
        return f"{new.value} after final status {final.value}"
    if new is StatusCode.REFUSED:
        return (
            None if not reported or reported[-1] is StatusCode.ARRIVED else f"02 after {reported[-1].value}"
        )
    last = max((_PROGRESS[code] for code in reported if code in _PROGRESS), default=0)
    if _PROGRESS[new] < last:
        return f"{new.value} after {reported[-1].value}: the status goes back"
    return None  # moving on, repeating, or starting without 01 (common and harmless)
