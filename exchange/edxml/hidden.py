"""Markup a signature does not cover: comments and processing instructions inside a signed package.

Canonical XML without comments (what XML-DSig digests) drops comments, and processing
instructions split text nodes, so ``<Subject>1000<!-- x -->000</Subject>`` verifies as
"1000000" while a reader that takes the element's first text node sees "1000". A signed
package may therefore hold neither anywhere inside its document element; what lies before
the root (an XML declaration, a leading comment) touches no element's content.
"""

from __future__ import annotations

from lxml import etree

from exchange.edxml.errors import CommentInEnvelope, ErrorDetail
from exchange.edxml.parser import element_path

MAX_REPORTED = 10


def refuse_hidden_markup(root: etree._Element) -> None:
    """Raise CommentInEnvelope naming each comment or processing instruction inside ``root``."""
    found = [
        ErrorDetail(
            "a comment" if isinstance(node, etree._Comment) else "a processing instruction",
            path=element_path(node.getparent()) if node.getparent() is not None else None,
            line=node.sourceline,
        )
        for node in root.iter(etree.Comment, etree.ProcessingInstruction)
    ]
    if found:
        raise CommentInEnvelope(
            "a signed package may not contain comments or processing instructions: its signature "
            "does not cover them, so readers could see other content than what was signed",
            found[:MAX_REPORTED],
        )
