"""Upper bounds on the free text a client sends, so no field can be stored huge and multiply into views.

Each bound is generous for real use (Vietnamese official document subjects run to a few
hundred characters) and small next to the package limit. A field past its bound is refused
with 422 ``too_long`` naming the field and its limit; nothing is stored. Lengths are counted
in characters (Unicode code points), as PostgreSQL's ``length()`` does.

Text is also refused (422 ``invalid_input``) when it holds control characters other than tab and
line breaks: PostgreSQL cannot store a NUL, and the others hide what a field says. A name must show
something: one made only of spaces and invisible characters (U+200B and the like) is refused.
"""

from __future__ import annotations

import re
import unicodedata

from exchange.edxml.model import Edoc, Status
from exchange.errors import ErrorDetail, InvalidInput, TooLong

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


# C0 controls but tab, LF and CR; DEL.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(field: str, value: str | None, limit: int) -> None:
    """Refuse ``value`` when it is longer than ``limit`` characters or holds a control character."""
    if value is not None and len(value) > limit:
        raise TooLong(
            f"{field} is longer than {limit} characters",
            [ErrorDetail(f"{len(value)} characters; at most {limit}", path=field)],
        )
    check_chars(field, value)


def control_problem(value: str | None) -> str | None:
    """What is wrong with the characters of ``value`` (None: nothing)."""
    found = _CONTROL.search(value or "")
    if found is None:
        return None
    return f"holds the control character U+{ord(found.group()):04X}"


def check_chars(field: str, value: str | None) -> None:
    """Refuse control characters (a NUL first of all) before they reach the database."""
    if (problem := control_problem(value)) is not None:
        raise InvalidInput(f"{field} {problem}", [ErrorDetail(problem, path=field)])


def shows_something(value: str) -> bool:
    """Whether a name has a visible character: not only spaces, controls and format characters."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf") for c in value)


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
