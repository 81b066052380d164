"""Attachment texts set aside: the tree of a received package does not hold its attachments.

A package is mostly its attachments' base64 (a 100 MB scan is one text node). Held in the tree,
that text costs its size once; every use of it costs it again: reading it into Python copies it,
and libxml2's canonicalisation (what the signature digest is taken over) makes its own escaped
copy, twice over as its buffer grows. So intake's parser (``FeedParser(limits, Aside())``) puts
a marker in place of each ``/edXML/AttachmentEncoded/Attachment/ContentTransferEncoded`` text as
soon as the element ends (``Aside.take``), and whoever needs the text reads it again, a piece at
a time, from the package's bytes (spooled to disk as they arrived): the signature digest splices it into the
canonical form where its marker stands (``exchange.trust.signatures``), and the attachments are
decoded from it (``exchange.edxml.attachments``).

A marker is a random 128-bit token (new for each package, so no sender can write one in advance)
and the text's number: 40 hexadecimal digits, which is valid base64, so the schema still checks
the element's place and type. An element with anything inside its text (a comment, an element)
keeps its text: it is read as it stands.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from lxml import etree

from exchange.edxml.errors import AttachmentError, ErrorDetail
from exchange.edxml.model import Edoc
from exchange.edxml.parser import NS, make_parser

ATTACHMENT_TEXT_PATH = tuple(
    f"{{{NS}}}{name}" for name in ("edXML", "AttachmentEncoded", "Attachment", "ContentTransferEncoded")
)
_DIGITS = 8  # of the text's number in a marker
# Texts spanning fewer bytes of the package than this stay in the tree.
SET_ASIDE_BYTES = 256 * 1024


@dataclass
class Aside:
    """The texts set aside in one tree: their marker token, and which attachment texts (numbered
    in document order among the elements at ATTACHMENT_TEXT_PATH) they are."""

    token: str = field(default_factory=lambda: secrets.token_hex(16))
    ordinals: list[int] = field(default_factory=list)
    # The package's bytes from the start, each time it is called (set by whoever holds them).
    source: Callable[[], Iterable[bytes]] | None = None
    _seen: int = 0  # attachment texts met so far while parsing

    def marker(self, index: int) -> str:
        return f"{self.token}{index:0{_DIGITS}d}"

    @property
    def marker_length(self) -> int:
        return len(self.token) + _DIGITS

    def take(self, node: etree._Element, span: int) -> None:
        """Called by the parser at the end of each element, ``span`` bytes of the package after its
        start: a large attachment text is replaced by its marker, unless something stands inside it.
        A small one stays (reading it again from the bytes would cost more than it saves)."""
        if node.tag != ATTACHMENT_TEXT_PATH[-1] or not _at_attachment_text_path(node):
            return
        self._seen += 1
        if span < SET_ASIDE_BYTES or len(node):
            return
        node.text = self.marker(len(self.ordinals))
        self.ordinals.append(self._seen - 1)

    def left_out(self, edoc: Edoc) -> Edoc:
        """``edoc`` as read from a tree with these texts set aside: their ``content`` None (unknown
        here), not the marker that stands in the tree."""
        if not self.ordinals or not edoc.attachments:
            return edoc
        aside = set(self.ordinals)
        attachments = tuple(
            replace(attachment, content=None) if n in aside else attachment
            for n, attachment in enumerate(edoc.attachments)
        )
        return replace(edoc, attachments=attachments)

    def texts(self) -> Iterator[Iterator[str]]:
        """The texts set aside, in order, each as its pieces, read again from the package's bytes."""
        if self.source is None:
            raise RuntimeError("the package's bytes are not known")
        wanted, started = set(self.ordinals), set[int]()
        events = attachment_texts(self.source(), wanted)
        for ordinal, piece in events:
            if ordinal not in started:
                started.add(ordinal)
                yield _one_text(piece, events)


def _one_text(first: str | None, events: Iterator[tuple[int, str | None]]) -> Iterator[str]:
    """One text's pieces, ``first`` and those that follow it up to its end."""
    if first is None:
        return
    yield first
    for _, piece in events:
        if piece is None:
            return
        yield piece


def _at_attachment_text_path(node: etree._Element) -> bool:
    path: list[object] = []
    current: etree._Element | None = node
    while current is not None and len(path) <= len(ATTACHMENT_TEXT_PATH):
        path.append(current.tag)
        current = current.getparent()
    return current is None and tuple(reversed(path)) == ATTACHMENT_TEXT_PATH


def attachment_texts(package: Iterable[bytes], wanted: set[int]) -> Iterator[tuple[int, str | None]]:
    """``(ordinal, piece)`` for the text of each ``wanted`` element at ATTACHMENT_TEXT_PATH (by its
    ordinal among them), in pieces of at least PIECE_CHARS but the last, then ``(ordinal, None)``
    at its end, read from the package's bytes with no tree built.

    libxml2 hands a plain text (LF or CRLF line breaks) over in large pieces, but one split by
    character references (``&#81;``) or CDATA sections in small ones, each a call into Python.
    Some producers write line breaks as references (``&#13;&#10;`` after each 76-character line:
    three pieces a line); a text in more pieces than one per 24 characters is refused (422
    ``bad_attachment``) as soon as that is seen, so that its cost stays near an honest one's.
    Taken out of the tree, such a text is not seen by the schema, so it is held to the same rule
    as base64 then (see attachments.DecodedFile)."""
    target = _AttachmentTexts(wanted)
    parser = make_parser(target=target)
    for chunk in package:
        parser.feed(chunk)
        yield from target.take()
    parser.close()
    yield from target.take()


# Pieces are passed on joined up to this size at least (downstream work is per piece).
PIECE_CHARS = 64 * 1024
# Line breaks written as two references after 76-character lines make one piece per 26 characters.
_MIN_CHARS_PER_PIECE = 24


class _AttachmentTexts:
    """The parser target behind ``attachment_texts``."""

    def __init__(self, wanted: set[int]) -> None:
        self._wanted = wanted
        self._open: list[str] = []
        self._ordinal = -1
        self._in_text = False
        self._held: list[str] = []  # pieces of the current text not yet passed on
        self._held_chars = 0
        self._pieces = self._chars = 0  # of the current text
        self._events: list[tuple[int, str | None]] = []

    def take(self) -> list[tuple[int, str | None]]:
        events, self._events = self._events, []
        return events

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str, str] | None = None) -> None:
        self._pass_on()
        self._in_text = False  # what follows a child element is not the element's own text
        self._open.append(tag)
        if tuple(self._open) == ATTACHMENT_TEXT_PATH:
            self._ordinal += 1
            self._in_text = self._ordinal in self._wanted
            self._pieces = self._chars = 0

    def end(self, tag: str) -> None:
        self._pass_on()
        if tuple(self._open) == ATTACHMENT_TEXT_PATH and self._ordinal in self._wanted:
            self._events.append((self._ordinal, None))
        self._in_text = False
        self._open.pop()

    def data(self, text: str) -> None:
        if not self._in_text:
            return
        self._pieces += 1
        self._chars += len(text)
        if self._pieces > 16 and self._pieces * _MIN_CHARS_PER_PIECE > self._chars:
            raise AttachmentError(
                f"the text of attachment {self._ordinal + 1} is cut into {self._pieces} pieces in its "
                f"first {self._chars} characters: base64 is written as plain characters, not as "
                "character references or CDATA sections",
                [
                    ErrorDetail(
                        "not plain base64", path=f"/edXML/AttachmentEncoded/Attachment[{self._ordinal + 1}]"
                    )
                ],
            )
        self._held.append(text)
        self._held_chars += len(text)
        if self._held_chars >= PIECE_CHARS:
            self._pass_on()

    def _pass_on(self) -> None:
        if self._held:
            self._events.append((self._ordinal, "".join(self._held)))
            self._held, self._held_chars = [], 0

    def close(self) -> None:
        return None
