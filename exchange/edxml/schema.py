"""Schema validation: fast with lxml on the hot path, readable with xmlschema on failure.

The readable validator (xmlschema, pure Python) costs ~100 us an element and ~0.3 us a
text character, twenty to fifty times lxml. So that a broken package cannot buy CPU
with its size, it runs only on packages small enough for that to stay within a few tens
of milliseconds, stops at the first problems and at a deadline; larger packages are
explained from lxml's own error log (line, path, reason), which costs nothing more.

Both schemas (edoc and status) are compiled once per process. XSD 1.0 cannot say how
many times each member of an any-order group may appear, so the counting rules that
the schema leaves open are checked here too, with the same kind of error detail.
"""

from __future__ import annotations

import ast
import contextlib
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import xmlschema
from lxml import etree

from exchange.edxml.errors import ErrorDetail, SchemaInvalid
from exchange.edxml.parser import NS, element_path, local_name

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
MAX_REPORTED = 50
# Above either, only lxml's error log is used (see the module docstring for the costs).
READABLE_MAX_ELEMENTS = 300
READABLE_MAX_TEXT_CHARS = 64 * 1024
READABLE_PROBLEMS = 10
READABLE_DEADLINE_S = 0.2  # a backstop: the caps above keep it far shorter


@dataclass
class ReadableWork:
    """What the readable validator was given in this process: the measure its bound is tested on."""

    runs: int = 0
    elements: int = 0
    text_chars: int = 0
    declined: int = 0


WORK = ReadableWork()

Kind = Literal["edoc", "status"]

# MessageHeader of an edoc: how often each element may appear (min, max; None = unbounded).
_EDOC_HEADER_COUNTS: dict[str, tuple[int, int | None]] = {
    "From": (1, 1),
    "To": (1, None),
    "DocumentId": (1, 1),
    "Code": (1, 1),
    "PromulgationInfo": (1, 1),
    "DocumentType": (1, 1),
    "Subject": (1, 1),
    "Content": (0, 1),
    "SignerInfo": (0, 1),
    "DueDate": (0, 1),
    "OtherInfo": (0, 1),
    "ResponseFor": (0, None),
    "SteeringType": (0, 1),
    "ResponseForTask": (0, 1),
    "ApplicationType": (0, 1),
    "ToPlaces": (0, 1),
}
_TRACE_LIST_COUNTS: dict[str, tuple[int, int | None]] = {"TraceHeader": (1, None), "Bussiness": (0, 1)}


def package_kind(root: etree._Element) -> Kind:
    """A status package is the one whose MessageHeader carries a StatusCode."""
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/{{{NS}}}MessageHeader")
    if header is not None and header.find(f"{{{NS}}}StatusCode") is not None:
        return "status"
    return "edoc"


def validate(root: etree._Element, kind: Kind, *, explain: bool = True) -> None:
    """Raise SchemaInvalid, listing every problem with its line and path, unless valid.

    With ``explain=False`` the refusal carries lxml's reasons only and can be made readable
    later with ``explain_invalid`` (off the event loop: that is the slower part).
    """
    if not _lxml_schema(kind).validate(root):
        invalid = SchemaInvalid(f"the {kind} package does not follow QCVN 102:2016", _lxml_errors(root, kind))
        invalid.unexplained = (root, kind)
        raise explain_invalid(invalid) if explain else invalid
    problems = _count_problems(root) if kind == "edoc" else []
    if problems:
        raise SchemaInvalid(f"the {kind} package does not follow QCVN 102:2016", problems[:MAX_REPORTED])


def explain_invalid(invalid: SchemaInvalid) -> SchemaInvalid:
    """The same refusal with the readable validator's reasons, where its cost is bounded."""
    if invalid.unexplained is None:
        return invalid
    root, kind = invalid.unexplained
    details = _readable_errors(root, "status" if kind == "status" else "edoc", invalid.details)
    return SchemaInvalid(invalid.message, details)


def load_validators() -> None:
    """Build both validators for both kinds now. The readable one costs a fifth of a second of
    CPU to build: built at the first refusal instead, it would stall the requests served beside it."""
    for kind in get_args(Kind):
        _lxml_schema(kind)
        _xmlschema(kind)


@cache
def _lxml_schema(kind: Kind) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / f"{kind}.xsd")))


@cache
def _xmlschema(kind: Kind) -> xmlschema.XMLSchema10:
    # Only the failure path pays for this richer (and slower) validator.
    return xmlschema.XMLSchema10(str(SCHEMA_DIR / f"{kind}.xsd"), allow="sandbox")


def _readable_errors(
    root: etree._Element, kind: Kind, lxml_details: Sequence[ErrorDetail]
) -> list[ErrorDetail]:
    size = _size_within(root, READABLE_MAX_ELEMENTS, READABLE_MAX_TEXT_CHARS)
    details = _xmlschema_errors(root, kind, size) if size is not None else []
    if size is None:
        WORK.declined += 1
    # Both validators must agree; never report "invalid" without a reason.
    return details or list(lxml_details)


def _size_within(root: etree._Element, max_elements: int, max_text: int) -> tuple[int, int] | None:
    """(elements, text characters) of the tree, or None as soon as either passes its cap."""
    elements = text = 0
    for node in root.iter():
        elements += 1
        text += len(node.text or "") + len(node.tail or "")
        if elements > max_elements or text > max_text:
            return None
    return elements, text


def _xmlschema_errors(root: etree._Element, kind: Kind, size: tuple[int, int]) -> list[ErrorDetail]:
    WORK.runs += 1
    WORK.elements += size[0]
    WORK.text_chars += size[1]
    details = []
    validator = _xmlschema(kind)  # compiled once per process, before the clock starts
    deadline = time.monotonic() + READABLE_DEADLINE_S
    # The package is already parsed; "none" forbids xmlschema from loading anything it names.
    resource = xmlschema.XMLResource(root, allow="none")
    for error in validator.iter_errors(resource, use_location_hints=False):
        element = _culprit(error)
        details.append(
            ErrorDetail(
                reason=_reason(error),
                path=element_path(element) if element is not None else error.path,
                line=element.sourceline if element is not None else None,
            )
        )
        if len(details) >= READABLE_PROBLEMS:
            break
        if time.monotonic() > deadline:
            return []  # cut short: lxml's complete list is better than a partial one
    return details


_NAMESPACED = re.compile(r"\{[^{}:]+:[^{}]*\}")  # a namespace URI, not a pattern's {4}
_PREFIXED_STEP = re.compile(r"(?<=/)[A-Za-z_][\w.-]*:")
_LXML_PATTERN = re.compile(r"\[facet 'pattern'\] The value '(.*)' is not accepted by the pattern '(.*)'\.")


def _lxml_errors(root: etree._Element, kind: Kind) -> list[ErrorDetail]:
    """lxml's error log said for people: no namespaces, our paths, patterns in words."""
    details = []
    for entry in list(_lxml_schema(kind).error_log)[:MAX_REPORTED]:
        reason = _NAMESPACED.sub("", str(entry.message))
        if (pattern := _LXML_PATTERN.search(reason)) is not None and pattern[2] in _PATTERN_WORDS:
            reason = f"{pattern[1]!r}: must be {_PATTERN_WORDS[pattern[2]]}"
        path = entry.path or None
        if path is not None:
            path = _PREFIXED_STEP.sub("", path).replace("/*", "/" + local_name(root), 1)
        details.append(ErrorDetail(reason, path=path, line=entry.line or None))
    return details


# Our own patterns, said in words (xmlschema quotes the regular expression).
_DATE = "[0-9]{4}/(0[1-9]|1[0-2])/(0[1-9]|[12][0-9]|3[01])"
_PATTERN_WORDS = {
    _DATE: "a date written yyyy/MM/dd",
    _DATE + " ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]": "a timestamp written yyyy/MM/dd HH:mm:ss",
    r"[0-9A-Za-z][0-9A-Za-z._\-]{0,63}": "an OrganId (letters, digits, dots, dashes)",
    r"[\s\S]*\S[\s\S]*": "a non-blank text",
}


def _reason(error: xmlschema.XMLSchemaValidationError) -> str:
    reason = error.reason or str(error.message)
    _, found, patterns = reason.partition("doesn't match any pattern of ")
    if found:
        with contextlib.suppress(ValueError, SyntaxError):
            words = [_PATTERN_WORDS.get(pattern) for pattern in ast.literal_eval(patterns)]
            if all(words):
                reason = "must be " + " or ".join(str(w) for w in words)
    if not isinstance(error.obj, etree._Element) and error.obj is not None:
        return f"{str(error.obj)!r}: {reason}"
    return reason


def _culprit(error: xmlschema.XMLSchemaValidationError) -> etree._Element | None:
    """The element a problem is about: for an unexpected child, the child itself."""
    element = error.elem if isinstance(error.elem, etree._Element) else None
    index = getattr(error, "index", None)
    if element is not None and isinstance(index, int) and 0 <= index < len(element):
        return element[index]
    return element


def _count_problems(root: etree._Element) -> list[ErrorDetail]:
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert header is not None  # the schema guarantees it
    problems = []
    for parent_name, counts in (
        ("MessageHeader", _EDOC_HEADER_COUNTS),
        ("TraceHeaderList", _TRACE_LIST_COUNTS),
    ):
        parent = header.find(f"{{{NS}}}{parent_name}")
        assert parent is not None
        problems += _counted(parent, counts)
    problems += _attachment_problems(root)
    return problems


def _counted(parent: etree._Element, counts: dict[str, tuple[int, int | None]]) -> list[ErrorDetail]:
    seen = Counter(local_name(child) for child in parent if isinstance(child.tag, str))
    problems = []
    for name, (least, most) in counts.items():
        if seen[name] < least:
            problems.append(
                ErrorDetail(f"{name} is required", path=element_path(parent), line=parent.sourceline)
            )
        if most is not None and seen[name] > most:
            extra = parent.findall(f"{{{NS}}}{name}")[most]
            problems.append(
                ErrorDetail(
                    f"{name} may appear at most {most} time(s)",
                    path=element_path(extra),
                    line=extra.sourceline,
                )
            )
    return problems


def _attachment_problems(root: etree._Element) -> list[ErrorDetail]:
    """Every manifest Reference needs its Attachment, and ContentIds must be unique."""
    references = root.findall(f".//{{{NS}}}edXMLManifest/{{{NS}}}Reference")
    attachments = root.findall(f"{{{NS}}}AttachmentEncoded/{{{NS}}}Attachment")
    problems = []
    attached: dict[str, etree._Element] = {}
    for attachment in attachments:
        content_id = _content_id(attachment)
        if content_id in attached:
            problems.append(
                ErrorDetail(
                    f"ContentId {content_id!r} is used by two attachments",
                    path=element_path(attachment),
                    line=attachment.sourceline,
                )
            )
        attached[content_id] = attachment
    for reference in references:
        content_id = _content_id(reference)
        if content_id not in attached:
            problems.append(
                ErrorDetail(
                    f"the manifest names {content_id!r} but no attachment has it",
                    path=element_path(reference),
                    line=reference.sourceline,
                )
            )
    return problems


def _content_id(node: etree._Element) -> str:
    text = node.findtext(f"{{{NS}}}ContentId") or ""
    return normalize_content_id(text)


def normalize_content_id(text: str) -> str:
    """ContentIds are compared without the optional ``cid:`` prefix (producers differ)."""
    text = text.strip()
    return text[4:] if text.lower().startswith("cid:") else text
