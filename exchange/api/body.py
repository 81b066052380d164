"""Reading a package body as it arrives, parsed on the way in.

The hardened parser is fed each piece as it is received, so a package that crosses a
parser limit (elements, depth, attributes, text, size) or is not XML at all is refused
at that point: the rest of its body is never held, and the refusal costs memory and
time in proportion to the limits, not to the body. A package that keeps every limit
arrives already parsed; intake does not parse it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from lxml import etree

from exchange.api.connections import drop_unread_body
from exchange.edxml.errors import EdxmlError
from exchange.edxml.parser import FeedParser, Limits


@dataclass(frozen=True)
class ReceivedPackage:
    data: bytes
    root: etree._Element | None  # None for an empty body


async def read_package(request: web.Request, limits: Limits) -> ReceivedPackage:
    """The body and its parsed root, or the parser's refusal (400/413) at the first limit crossed."""
    parser = FeedParser(limits)
    pieces = []
    async for piece in request.content.iter_any():
        try:
            parser.feed(piece)
        except EdxmlError:
            drop_unread_body(request)  # refused: the rest of the body is not even read
            raise
        pieces.append(piece)
    data = b"".join(pieces)
    del pieces
    return ReceivedPackage(data, parser.close() if data.strip() else None)
