"""Identifiers of QCVN 102:2016: the agency code (OrganId, "mã định danh")."""

from __future__ import annotations

import re

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
