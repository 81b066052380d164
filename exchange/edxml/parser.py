"""The one XML parser of the axis, hardened against hostile input.

Entities are never expanded, DTDs and the network are never loaded, and any DOCTYPE
is refused outright. Size, nesting depth, element count and text-node length are
capped, so a package cannot make the parser do work out of proportion to its size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO

from lxml import etree

from exchange.edxml.errors import ErrorDetail, HostileXml, NotWellFormed, PackageTooLarge

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_UTF8_NAMES = {"UTF-8", "UTF8", "US-ASCII", "ASCII"}


@dataclass(frozen=True)
class Limits:
    """What a package may demand of the parser."""

    max_bytes: int = 50 * 1024 * 1024
    max_depth: int = 40
    max_elements: int = 200_000
    # Attachments travel as one base64 text node, so this is close to the size limit.
    max_text_chars: int = 50 * 1024 * 1024


DEFAULT_LIMITS = Limits()


def parse_xml(data: bytes, limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse ``data`` safely and return the root element, or raise a format error."""
    if len(data) > limits.max_bytes:
        raise PackageTooLarge(f"the package is {len(data)} bytes; the limit is {limits.max_bytes}")
    _check_prolog(data)
    try:
        root = etree.fromstring(data, make_parser())
    except etree.XMLSyntaxError as exc:
        raise NotWellFormed(
            "the package is not well-formed XML", [ErrorDetail(_syntax_reason(exc), line=exc.lineno or None)]
        ) from None
    return _checked(root, limits)


# The prolog check reads this much of a package in a file; feeding goes on in chunks of this size.
_FILE_CHUNK = 1024 * 1024


def parse_xml_file(source: IO[bytes], limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """``parse_xml`` for a package in a file: the bytes are fed to the parser a chunk at a time,
    so only the tree is ever held whole, never the bytes beside it."""
    chunk = source.read(_FILE_CHUNK)
    _check_prolog(chunk)
    parser = make_parser()
    size = 0
    try:
        while chunk:
            size += len(chunk)
            if size > limits.max_bytes:
                raise PackageTooLarge(f"the package is over {limits.max_bytes} bytes, the limit")
            parser.feed(chunk)
            chunk = source.read(_FILE_CHUNK)
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise NotWellFormed(
            "the package is not well-formed XML", [ErrorDetail(_syntax_reason(exc), line=exc.lineno or None)]
        ) from None
    return _checked(root, limits)


def _checked(root: etree._Element, limits: Limits) -> etree._Element:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # a second line, should the scan miss one
        raise HostileXml(
            "DOCTYPE declarations are not allowed in packages (entities and DTDs are refused)",
            [ErrorDetail("DOCTYPE declaration", line=1)],
        )
    encoding = (docinfo.encoding or "UTF-8").upper()
    if encoding not in _UTF8_NAMES:
        raise NotWellFormed(f"packages must be encoded in UTF-8, not {docinfo.encoding}")
    _check_shape(root, limits)
    return root


_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def make_parser() -> etree.XMLParser:
    """The hardened lxml parser (one per use: lxml parsers are not shared between threads)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,  # base64 attachments exceed libxml2's 10 MB text limit; Limits applies ours
        collect_ids=False,
    )


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


def _syntax_reason(exc: etree.XMLSyntaxError) -> str:
    message = str(exc.msg or exc)
    # lxml appends ", line N, column M"; the line is reported separately.
    return message.split(", line ")[0]


def _check_shape(root: etree._Element, limits: Limits) -> None:
    depth = 0
    elements = 0
    for event, node in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        elements += 1
        if depth > limits.max_depth:
            raise HostileXml(
                f"elements are nested deeper than {limits.max_depth} levels",
                [ErrorDetail("nesting too deep", line=node.sourceline, path=_path(node))],
            )
        if elements > limits.max_elements:
            raise HostileXml(
                f"the package has more than {limits.max_elements} elements",
                [ErrorDetail("too many elements", line=node.sourceline)],
            )
        for text in (node.text, node.tail):
            if text is not None and len(text) > limits.max_text_chars:
                raise HostileXml(
                    f"a text node is longer than {limits.max_text_chars} characters",
                    [ErrorDetail("text node too long", line=node.sourceline, path=_path(node))],
                )


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
