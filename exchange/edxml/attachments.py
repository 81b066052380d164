"""Decoding attachments: base64, and the zip wrapping some producers apply.

The VNPT library zips any file that is not pdf/doc/docx/xls/xlsx/zip into one entry
named ``<uuid>.<ext>`` and labels it ``application/zip``; the real file name is in
AttachmentName. Such a zip is opened here; a genuine ``.zip`` attachment is not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from exchange.edxml.errors import AttachmentError, ErrorDetail
from exchange.edxml.model import Attachment

MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class DecodedAttachment:
    name: str
    content_type: str | None
    data: bytes
    was_zipped: bool


# Base64 characters decoded at a time where an attachment is read in pieces (a multiple of 4).
_PIECE_CHARS = 1024 * 1024


def attachment_name(attachment: Attachment) -> str:
    return (attachment.attachment_name or attachment.description or attachment.content_id).strip()


def is_wrapped_in_zip(attachment: Attachment) -> bool:
    """A file the VNPT library zipped (labelled application/zip, not named .zip)."""
    name = attachment_name(attachment)
    return (attachment.content_type or "").lower() == "application/zip" and not name.lower().endswith(".zip")


@dataclass(frozen=True)
class AttachmentSummary:
    """What one pass over an attachment tells without holding the decoded file."""

    sha256: str  # hex, of the decoded file
    size: int
    head: bytes  # its first bytes, to tell its kind
    says: bool  # whether the decoded bytes contain the marker asked about


def summarise_attachment(
    attachment: Attachment, marker: bytes = b"", head_size: int = 1024
) -> AttachmentSummary:
    """Digest, size, head and whether ``marker`` occurs, read a piece at a time: a large attachment
    that is only listed (or a PDF that carries no signature) never costs its size in memory."""
    digest, size, head, says, tail = hashlib.sha256(), 0, b"", False, b""
    for piece in _decoded_pieces(attachment):
        digest.update(piece)
        size += len(piece)
        if len(head) < head_size:
            head += piece[: head_size - len(head)]
        if marker and not says:
            says = marker in tail + piece
            tail = piece[-(len(marker) - 1) :] if len(marker) > 1 else b""
    return AttachmentSummary(digest.hexdigest(), size, head, says)


def _decoded_pieces(attachment: Attachment, chars: int = _PIECE_CHARS) -> Iterator[bytes]:
    text, rest = attachment.content, b""
    try:
        for start in range(0, len(text), chars):
            data = rest + _WHITESPACE.sub(b"", text[start : start + chars].encode("ascii"))
            whole = len(data) - len(data) % 4
            rest = data[whole:]
            yield base64.b64decode(data[:whole], validate=True)
        if rest:
            yield base64.b64decode(rest, validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AttachmentError(
            f"attachment {attachment_name(attachment)!r} is not valid base64",
            [ErrorDetail(str(exc), path=f"Attachment[{attachment.content_id}]")],
        ) from None


def decode_attachment(attachment: Attachment, max_unzipped: int = MAX_UNZIPPED_BYTES) -> DecodedAttachment:
    name = attachment_name(attachment)
    try:
        raw = base64.b64decode(_WHITESPACE.sub(b"", attachment.content.encode("ascii")), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AttachmentError(
            f"attachment {name!r} is not valid base64",
            [ErrorDetail(str(exc), path=f"Attachment[{attachment.content_id}]")],
        ) from None
    if is_wrapped_in_zip(attachment):
        return DecodedAttachment(name, _guess_type(name), _unzip_single(raw, name, max_unzipped), True)
    return DecodedAttachment(name, attachment.content_type, raw, False)


def _unzip_single(raw: bytes, name: str, max_unzipped: int) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            entries = [info for info in archive.infolist() if not info.is_dir()]
            if len(entries) != 1:
                raise AttachmentError(f"attachment {name!r} is a zip with {len(entries)} files, expected 1")
            entry = entries[0]
            if entry.file_size > max_unzipped:
                raise AttachmentError(
                    f"attachment {name!r} unzips to {entry.file_size} bytes, over the limit"
                )
            with archive.open(entry) as stream:
                # Read one byte past the limit: a lying header cannot smuggle more in.
                data = stream.read(max_unzipped + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise AttachmentError(
            f"attachment {name!r} is labelled application/zip but cannot be opened: {exc}"
        ) from None
    if len(data) > max_unzipped:
        raise AttachmentError(f"attachment {name!r} unzips to more than {max_unzipped} bytes")
    return data


_TYPES = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".txt": "text/plain",
}


def _guess_type(name: str) -> str | None:
    dot = name.rfind(".")
    return _TYPES.get(name[dot:].lower()) if dot >= 0 else None
