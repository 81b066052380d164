"""Identifiers of QCVN 102:2016: the agency code (OrganId, "mã định danh") and DocumentId."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

# V1V2V3.Z1Z2.Y1Y2.MX1X2: three levels of digits, then the level-1 code (a letter and two digits).
ORGAN_ID_PATTERN = r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}"
_ORGAN_ID = re.compile(ORGAN_ID_PATTERN)


def is_organ_id(text: str) -> bool:
    """True when ``text`` has the registry shape of QCVN 102 (e.g. ``000.00.12.H26``)."""
    return _ORGAN_ID.fullmatch(text) is not None


def organ_id_problem(text: str) -> str | None:
    """Why ``text`` is not a registrable OrganId, or None when it is one."""
    if not text:
        return "OrganId is empty"
    if text != text.strip():
        return f"OrganId {text!r} has surrounding white space"
    if not is_organ_id(text):
        return f"OrganId {text!r} is not in the QCVN 102 shape NNN.NN.NN.LNN (e.g. 000.00.12.H26)"
    return None


# The digit groups of each level, left to right in the OrganId: level 4, 3, 2 (level 1 is the letter code).
_LEVEL_GROUPS = ((0, 3), (4, 6), (7, 9))


def organ_level(organ_id: str) -> int | None:
    """1 for a level-1 body (000.00.00.H26), 2 for 000.00.12.H26, 3 for 000.07.12.H26, 4 for 001.07.12.H26.

    None when the text is not an OrganId, or when a level is set below an unset one (001.00.12.H26),
    which no hierarchy produces.
    """
    if not is_organ_id(organ_id):
        return None
    set_groups = [organ_id[start:end].strip("0") != "" for start, end in _LEVEL_GROUPS]  # level 4, 3, 2
    level = 1
    for depth, is_set in enumerate(reversed(set_groups), start=2):  # level 2, 3, 4
        if is_set:
            if level != depth - 1:
                return None
            level = depth
    return level


def is_child_organ(child: str, parent: str) -> bool:
    """True when ``child`` is directly under ``parent`` by the OrganId shape (QCVN 102 section 7).

    A child keeps its parent's codes and sets the next level: 000.00.24.H44 is under 000.00.00.H44,
    000.46.24.H44 under 000.00.24.H44, 001.46.24.H44 under 000.46.24.H44. Level-4 bodies have none.
    """
    parent_level, child_level = organ_level(parent), organ_level(child)
    if parent_level is None or child_level is None or child_level != parent_level + 1:
        return False
    start, _ = _LEVEL_GROUPS[3 - parent_level]  # the group the child sets
    zeros = "000" if start == 0 else "00"
    cut = start + len(zeros)
    return child[cut:] == parent[cut:] and parent[start:cut] == zeros


@dataclass(frozen=True)
class DocumentIdParts:
    """The parts of a DocumentId written as OrganId,yyyy/MM/dd,Number/Notation."""

    organ_id: str
    promulgated: date | None
    number_notation: str


_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def is_uuid(text: str) -> bool:
    return _UUID.fullmatch(text.strip()) is not None


def document_id_organ(text: str) -> str | None:
    """The agency a DocumentId names (its OrganId part), or None when it names none.

    None for UUIDs and other free forms, and for structured ids whose first part does not have
    the OrganId shape: those cannot claim an agency, so only well-formed claims are checked.
    """
    parts = parse_document_id(text)
    return parts.organ_id if parts is not None and is_organ_id(parts.organ_id) else None


def parse_document_id(text: str) -> DocumentIdParts | None:
    """Split a structured DocumentId; None for UUIDs and other free forms.

    Tolerates what circulates: yyyy-MM-dd dates, and dates that are not real days
    (kept as None) such as 2014/02/30 in the SDK samples.
    """
    parts = [part.strip() for part in text.split(",", 2)]
    if len(parts) != 3 or not all(parts):
        return None
    organ_id, when, number_notation = parts
    promulgated = None
    for form in ("%Y/%m/%d", "%Y-%m-%d"):
        try:
            promulgated = datetime.strptime(when, form).date()
            break
        except ValueError:
            continue
    return DocumentIdParts(organ_id, promulgated, number_notation)
