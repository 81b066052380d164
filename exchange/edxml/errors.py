"""Errors of the format layer. Each says what is wrong and where (line, path)."""

from __future__ import annotations

from typing import Any

from exchange.errors import ErrorDetail, ExchangeError


class EdxmlError(ExchangeError):
    """Base of every refusal of a package by the format layer."""

    status = 422
    code = "invalid_package"


class NotWellFormed(EdxmlError):
    """The bytes are not well-formed XML (or not a supported encoding)."""

    status = 400
    code = "not_well_formed"


class HostileXml(EdxmlError):
    """XML built to attack a parser: DOCTYPE/entities, excessive depth, giant text nodes."""

    status = 400
    code = "hostile_xml"


class PackageTooLarge(EdxmlError):
    status = 413
    code = "too_large"


class SchemaInvalid(EdxmlError):
    """Well-formed XML that is not an edoc or status package of QCVN 102:2016."""

    status = 422
    code = "schema_invalid"
    # (root, kind) while only the fast validator's reasons are given (see schema.explain_invalid).
    unexplained: tuple[Any, str] | None = None


class AttachmentError(EdxmlError):
    """An attachment that cannot be decoded (bad base64, broken or oversized zip)."""

    status = 422
    code = "bad_attachment"


class CommentInEnvelope(EdxmlError):
    """A signed package holding comments or processing instructions, which its signature does not cover."""

    status = 422
    code = "comment_in_envelope"


__all__ = [
    "AttachmentError",
    "CommentInEnvelope",
    "EdxmlError",
    "ErrorDetail",
    "HostileXml",
    "NotWellFormed",
    "PackageTooLarge",
    "SchemaInvalid",
]
