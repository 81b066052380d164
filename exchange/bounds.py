"""Upper bounds on the free text a client sends, so no field can be stored huge and multiply into views.

Each bound is generous for real use (Vietnamese official document subjects run to a few
hundred characters) and small next to the package limit. A field past its bound is refused
with 422 ``too_long`` naming the field and its limit; nothing is stored. Lengths are counted
in characters (Unicode code points), as PostgreSQL's ``length()`` does.
"""

from __future__ import annotations

from exchange.edxml.model import Edoc, Status
from exchange.errors import ErrorDetail, TooLong

# What a recipient writes when it acknowledges or reports on a delivery (ack reason, VXP note).
REASON = 2_000
# Agency names (registry, VXP registerAgency, edXML OrganName of recipients registered upstream).
AGENCY_NAME = 500
# A push endpoint URL.
ENDPOINT = 2_000
# Values of search parameters (DocumentId, OrganIds, status) and cursors.
QUERY_TEXT = 256
# Fields of an edXML package the axis stores and shows in every view of it.
DOCUMENT_ID = 255
CODE = 255
SUBJECT = 2_000
STATUS_DESCRIPTION = 2_000
STAFF = 255

_HEADER = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"


def check_text(field: str, value: str | None, limit: int) -> None:
    """Refuse ``value`` when it is longer than ``limit`` characters."""
    if value is not None and len(value) > limit:
        raise TooLong(
            f"{field} is longer than {limit} characters",
            [ErrorDetail(f"{len(value)} characters; at most {limit}", path=field)],
        )


def check_package(model: Edoc | Status) -> None:
    """The stored and shown text of a package, each within its bound (path: the element)."""
    if isinstance(model, Status):
        check_text(f"{_HEADER}/ResponseFor/DocumentId", model.document_id, DOCUMENT_ID)
        check_text(f"{_HEADER}/ResponseFor/Code", model.response_for.code, CODE)
        check_text(f"{_HEADER}/Description", model.description, STATUS_DESCRIPTION)
        if model.staff_info is not None:
            check_text(f"{_HEADER}/StaffInfo/Staff", model.staff_info.staff, STAFF)
        return
    check_text(f"{_HEADER}/DocumentId", model.document_id, DOCUMENT_ID)
    check_text(f"{_HEADER}/Code", str(model.code), CODE)
    check_text(f"{_HEADER}/Subject", model.subject, SUBJECT)
    for recipient in model.recipients:
        check_text(f"{_HEADER}/To/OrganName", recipient.organ_name, AGENCY_NAME)
