"""Appending this axis's TraceHeader to a stored package, changing no other byte.

The original bytes are evidence, so the package is not re-serialised: the new
TraceHeader is spliced in after the last one. Comments, CDATA sections and
processing instructions are skipped while looking for it, since only they can hide
a ``<`` that is not markup. Works on packages the parser accepted (UTF-8).
"""

from __future__ import annotations

import re
from datetime import datetime
from xml.sax.saxutils import escape

from exchange.edxml.errors import SchemaInvalid
from exchange.edxml.reader import TIMESTAMP_FORMAT

_TOKENS = re.compile(
    rb"<!--.*?-->"
    rb"|<!\[CDATA\[.*?\]\]>"
    rb"|<\?.*?\?>"
    rb"|<(?P<close>/?)(?P<prefix>[A-Za-z_][\w.-]*:)?(?P<name>TraceHeader|edXMLHeader)(?=[\s/>])[^>]*>",
    re.DOTALL,
)


def append_trace_header(data: bytes, organ_id: str | None, timestamp: datetime) -> bytes:
    """Return ``data`` with a TraceHeader for ``organ_id`` at ``timestamp`` after the last one."""
    last_start = last_end = None
    prefix = b""
    for token in _TOKENS.finditer(data):
        if token["name"] is None:
            continue  # a comment, CDATA section or processing instruction
        if token["name"] == b"edXMLHeader" and token["close"]:
            break
        if token["name"] == b"TraceHeader":
            if token["close"]:
                last_end = token.end()
                prefix = token["prefix"] or b""
            else:
                last_start = token.start()
    if last_start is None or last_end is None:
        raise SchemaInvalid("the package has no TraceHeader to append to")
    line_start = data.rfind(b"\n", 0, last_start) + 1
    indent = data[line_start:last_start] if not data[line_start:last_start].strip() else b""
    snippet = b"\n" + indent + _trace_header(prefix, organ_id, timestamp)
    return data[:last_end] + snippet + data[last_end:]


def _trace_header(prefix: bytes, organ_id: str | None, timestamp: datetime) -> bytes:
    p = prefix.decode("ascii")
    organ = f"<{p}OrganId>{escape(organ_id)}</{p}OrganId>" if organ_id else ""
    stamp = f"<{p}Timestamp>{timestamp.strftime(TIMESTAMP_FORMAT)}</{p}Timestamp>"
    return f"<{p}TraceHeader>{organ}{stamp}</{p}TraceHeader>".encode()
