"""The one XML parser of the axis, hardened against hostile input.

Entities are never expanded, DTDs and the network are never loaded, and any DOCTYPE
is refused outright. Size, nesting depth, element count, attribute count and
text-node length are checked WHILE the bytes are fed to the parser, event by event,
and parsing stops at the first limit crossed: a refused package costs memory and time
in proportion to the limits, never to its own size (50 MB of ``<a/>`` is refused
after the first ``max_elements`` elements, about 200 KB of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from lxml import etree

from exchange.edxml.errors import ErrorDetail, HostileXml, NotWellFormed, PackageTooLarge

if TYPE_CHECKING:
    from exchange.edxml.aside import Aside

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_UTF8_NAMES = {"UTF-8", "UTF8", "US-ASCII", "ASCII"}
# Bytes handed to libxml2 at a time: small enough that a limit stops it soon after it is crossed.
CHUNK = 64 * 1024
# How much of the start is kept to look for a DOCTYPE before libxml2 sees any of it.
_PROLOG_WINDOW = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """What a package may demand of the parser."""

    max_bytes: int = 50 * 1024 * 1024
    max_depth: int = 40
    # A real package has a few hundred elements (a few per attachment); each one costs the
    # tree ~150 bytes, so this bounds what a refused element bomb can cost (~8 MB).
    max_elements: int = 50_000
    max_attributes: int = 64  # on one element
    # Attachments travel as one base64 text node, so this is close to the size limit.
    max_text_chars: int = 50 * 1024 * 1024


DEFAULT_LIMITS = Limits()


class FeedParser:
    """Parse a package fed in pieces (as it arrives), refusing it at the first limit crossed.

    ``feed`` raises the refusal as soon as the offending element (or byte) is seen;
    ``close`` returns the root of a package that kept every limit. ``consumed`` is how
    many bytes were handed to libxml2, the measure of the work a refusal cost. With an
    ``aside``, attachment texts are set aside as they end (exchange.edxml.aside).
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, aside: Aside | None = None) -> None:
        self._limits = limits
        self._aside = aside  # where attachment texts are set aside (exchange.edxml.aside), if asked
        self._started: list[int] = []  # bytes consumed when each open element started (for aside)
        self._parser = etree.XMLPullParser(events=("start", "end"), **_HARDENED)
        self._head = b""  # the start, held back until the prolog is known to carry no DOCTYPE
        self._head_checked = False
        self.received = 0
        self.consumed = 0
        self._depth = 0
        self._elements = 0
        self._last_ended: etree._Element | None = None  # its tail is complete at the next event
        # A text has no more characters than the package has bytes: with a text limit as large,
        # the check would only copy every text (a 100 MB attachment) into Python to measure it.
        self._texts_checked = limits.max_text_chars < limits.max_bytes

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self._limits.max_bytes:
            raise PackageTooLarge(
                f"the package is more than {self._limits.max_bytes} bytes; that is the limit"
            )
        if not self._head_checked:
            self._head += data
            if len(self._head) < _PROLOG_WINDOW:
                return
            data, self._head = self._head, b""
            self._head_checked = True
            _check_prolog(data)
        for start in range(0, len(data), CHUNK):
            self._feed(data[start : start + CHUNK])

    def close(self) -> etree._Element:
        if not self._head_checked:
            data, self._head = self._head, b""
            self._head_checked = True
            _check_prolog(data)
            self._feed(data)
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise _not_well_formed(exc) from None
        self._check_events()
        if self._last_ended is not None and self._texts_checked:
            self._check_text(self._last_ended.tail, self._last_ended)
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:  # a second line, should the scan miss one
            raise HostileXml(
                "DOCTYPE declarations are not allowed in packages (entities and DTDs are refused)",
                [ErrorDetail("DOCTYPE declaration", line=1)],
            )
        encoding = (docinfo.encoding or "UTF-8").upper()
        if encoding not in _UTF8_NAMES:
            raise NotWellFormed(f"packages must be encoded in UTF-8, not {docinfo.encoding}")
        return root

    def _feed(self, piece: bytes) -> None:
        self.consumed += len(piece)
        try:
            self._parser.feed(piece)
        except etree.XMLSyntaxError as exc:
            # Report the limit crossed before the syntax error, when there is one.
            self._check_events()
            raise _not_well_formed(exc) from None
        self._check_events()

    def _check_events(self) -> None:
        limits = self._limits
        for event, node in self._parser.read_events():
            if self._last_ended is not None:
                if self._texts_checked:
                    self._check_text(self._last_ended.tail, self._last_ended)
                self._last_ended = None
            if event == "end":
                self._depth -= 1
                if self._texts_checked:
                    self._check_text(node.text, node)
                if self._aside is not None:
                    self._aside.take(node, self.consumed - self._started.pop())
                self._last_ended = node
                continue
            self._depth += 1
            self._elements += 1
            if self._aside is not None:
                self._started.append(self.consumed)
            if self._depth > limits.max_depth:
                raise HostileXml(
                    f"elements are nested deeper than {limits.max_depth} levels",
                    [ErrorDetail("nesting too deep", line=node.sourceline, path=_path(node))],
                )
            if self._elements > limits.max_elements:
                raise HostileXml(
                    f"the package has more than {limits.max_elements} elements",
                    [ErrorDetail("too many elements", line=node.sourceline)],
                )
            if len(node.attrib) > limits.max_attributes:
                raise HostileXml(
                    f"an element has more than {limits.max_attributes} attributes",
                    [ErrorDetail("too many attributes", line=node.sourceline, path=_path(node))],
                )

    def _check_text(self, text: str | None, node: etree._Element) -> None:
        if text is not None and len(text) > self._limits.max_text_chars:
            raise HostileXml(
                f"a text node is longer than {self._limits.max_text_chars} characters",
                [ErrorDetail("text node too long", line=node.sourceline, path=_path(node))],
            )


_HARDENED = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": True,  # base64 attachments exceed libxml2's 10 MB text limit; Limits applies ours
    "collect_ids": False,
}


def parse_xml(
    source: bytes | IO[bytes] | Iterable[bytes], limits: Limits = DEFAULT_LIMITS, aside: Aside | None = None
) -> etree._Element:
    """Parse ``source`` (bytes, a binary file, or pieces) safely and return the root element
    (with its attachment texts set aside in ``aside``, when given: see exchange.edxml.aside).

    Whatever the source, the parser reads it in pieces and stops at the first limit, so
    a file (a body spooled to disk) is never read past the point of refusal.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        size = len(source)
        if size > limits.max_bytes:
            raise PackageTooLarge(f"the package is {size} bytes; the limit is {limits.max_bytes}")
        view = memoryview(source)
        pieces: Iterable[bytes] = (bytes(view[start : start + CHUNK]) for start in range(0, size, CHUNK))
    elif hasattr(source, "read"):
        reader: IO[bytes] = source  # type: ignore[assignment]
        pieces = iter(lambda: reader.read(CHUNK), b"")
    else:
        pieces = source
    parser = FeedParser(limits, aside)
    for piece in pieces:
        parser.feed(piece)
    return parser.close()


_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def make_parser(target: object = None) -> etree.XMLParser:
    """The hardened lxml parser (one per use: lxml parsers are not shared between threads); with a
    ``target``, one that calls it for each event and builds no tree."""
    return etree.XMLParser(target=target, **_HARDENED)


def _check_prolog(data: bytes) -> None:
    """Refuse a DOCTYPE before libxml2 sees it, and name stray bytes before the prolog plainly."""
    position = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while (item := _PROLOG_ITEM.match(data, position)) is not None:
        position = item.end()
    if data.startswith(b"<!DOCTYPE", position):
        raise HostileXml(
            "DOCTYPE declarations are not allowed in packages (entities and DTDs are refused)",
            [ErrorDetail("DOCTYPE declaration", line=data.count(b"\n", 0, position) + 1)],
        )
    if position < len(data) and data[position : position + 1] != b"<":
        junk = data[position:].split(b"<", 1)[0]
        raise NotWellFormed(
            "the package is not well-formed XML",
            [
                ErrorDetail(
                    f"{len(junk)} stray bytes {junk[:20]!r} before the XML declaration",
                    line=data.count(b"\n", 0, position) + 1,
                )
            ],
        )


def _not_well_formed(exc: etree.XMLSyntaxError) -> NotWellFormed:
    return NotWellFormed(
        "the package is not well-formed XML", [ErrorDetail(_syntax_reason(exc), line=exc.lineno or None)]
    )


def _syntax_reason(exc: etree.XMLSyntaxError) -> str:
    message = str(exc.msg or exc)
    # lxml appends ", line N, column M"; the line is reported separately.
    return message.split(", line ")[0]


def _path(node: etree._Element) -> str:
    parts = []
    current: etree._Element | None = node
    while current is not None:
        if isinstance(current.tag, str):
            parts.append(etree.QName(current).localname)
        current = current.getparent()
    return "/" + "/".join(reversed(parts))


def local_name(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def element_path(node: etree._Element) -> str:
    """A readable location such as /edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To."""
    return _path(node)
