"""Appending this axis's TraceHeader to a stored package, changing no other byte.

The original bytes are evidence, so the package is not re-serialised: the new
TraceHeader is spliced in after the last one. Comments, CDATA sections and
processing instructions are skipped while looking for it, since only they can hide
a ``<`` that is not markup. Works on packages the parser accepted (UTF-8). The place
is found from the head of the package alone, so a large one is spliced as it streams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from exchange.edxml.errors import SchemaInvalid
from exchange.edxml.reader import TIMESTAMP_FORMAT

# What can open a token: a comment, CDATA section or processing instruction (skipped whole, since
# only they can hide a ``<`` that is not markup), or a TraceHeader / edXMLHeader tag.
_MARKUP = re.compile(
    rb"<!--|<!\[CDATA\[|<\?"
    rb"|<(?P<close>/?)(?P<prefix>[A-Za-z_][\w.-]*:)?(?P<name>TraceHeader|edXMLHeader)(?=[\s/>])"
)
_SKIPPED_TO = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}


@dataclass(frozen=True)
class Splice:
    """Where this axis's TraceHeader goes into a package (a byte offset), and its bytes."""

    offset: int
    insertion: bytes


def append_trace_header(data: bytes, organ_id: str | None, timestamp: datetime) -> bytes:
    """Return ``data`` with a TraceHeader for ``organ_id`` at ``timestamp`` after the last one."""
    splice = find_splice(data, organ_id, timestamp, complete=True)
    assert splice is not None  # complete data always decides
    return data[: splice.offset] + splice.insertion + data[splice.offset :]


def find_splice(head: bytes, organ_id: str | None, timestamp: datetime, *, complete: bool) -> Splice | None:
    """Where the TraceHeader goes, judged from the first bytes of a package (``complete``: all of it).

    None when ``head`` ends before that can be told: read more and ask again. The answer is the
    same as from the whole package, since it is given only once the end of edXMLHeader is reached
    with every comment, CDATA section, PI and tag before it complete; the header comes first in
    a package, so a few kilobytes usually decide, however large the attachments.
    """
    last_start = last_end = None
    prefix = b""
    position = 0
    while (mark := _MARKUP.search(head, position)) is not None:
        closing = _SKIPPED_TO.get(mark[0], b">")
        end = head.find(closing, mark.end())
        if end < 0:
            if not complete:
                return None  # the token may end in bytes not read yet
            position = mark.start() + 1  # unterminated: not a token (as a regex over it would say)
            continue
        position = end + len(closing)
        if mark["name"] is None:
            continue  # a comment, CDATA section or processing instruction
        if mark["name"] == b"edXMLHeader" and mark["close"]:
            break
        if mark["name"] == b"TraceHeader":
            if mark["close"]:
                last_end = position
                prefix = mark["prefix"] or b""
            else:
                last_start = mark.start()
    else:
        if not complete:
            return None
    if last_start is None or last_end is None:
        raise SchemaInvalid("the package has no TraceHeader to append to")
    line_start = head.rfind(b"\n", 0, last_start) + 1
    indent = head[line_start:last_start] if not head[line_start:last_start].strip() else b""
    return Splice(last_end, b"\n" + indent + _trace_header(prefix, organ_id, timestamp))


def _trace_header(prefix: bytes, organ_id: str | None, timestamp: datetime) -> bytes:
    p = prefix.decode("ascii")
    organ = f"<{p}OrganId>{escape(organ_id)}</{p}OrganId>" if organ_id else ""
    stamp = f"<{p}Timestamp>{timestamp.strftime(TIMESTAMP_FORMAT)}</{p}Timestamp>"
    return f"<{p}TraceHeader>{organ}{stamp}</{p}TraceHeader>".encode()
