"""Decoding attachments: base64, and the zip wrapping some producers apply.

The VNPT library zips any file that is not pdf/doc/docx/xls/xlsx/zip into one entry
named ``<uuid>.<ext>`` and labels it ``application/zip``; the real file name is in
AttachmentName. Such a zip is opened here; a genuine ``.zip`` attachment is not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from exchange.edxml.aside import attachment_texts
from exchange.edxml.errors import AttachmentError, ErrorDetail
from exchange.edxml.model import Attachment

MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
_WHITESPACE = b" \t\n\r\f\v"  # what base64 text may be broken with (all of \s)


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


class DecodedFile:
    """One attachment decoded a piece at a time as its base64 arrives: digest, size, head and a
    marker search as it goes, the decoded bytes in a spooled temporary file (memory while small).
    ``error``: why the text is not base64 (then nothing more is decoded)."""

    def __init__(self, marker: bytes = b"", head_size: int = 1024) -> None:
        self._marker, self._head_size = marker, head_size
        self._digest = hashlib.sha256()
        self._size, self._head, self._says, self._tail = 0, b"", False, b""
        self._rest = b""  # base64 characters short of a group of 4, kept for the next piece
        self._padded = False  # the last group ended with '=': nothing may follow
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_PIECE_CHARS)  # noqa: SIM115
        self.error: str | None = None
        self.summary = AttachmentSummary("", 0, b"", False)  # until finish

    def add(self, text: str) -> None:
        if self.error is not None:
            return
        try:
            data = self._rest + text.encode("ascii").translate(None, _WHITESPACE)
            if self._padded and data:
                raise binascii.Error("characters after the padding ('=') that ends base64")
            whole = len(data) - len(data) % 4
            self._rest = data[whole:]
            self._padded = self._padded or data[:whole].endswith(b"=")  # a piece of spaces keeps it
            self._take(base64.b64decode(data[:whole], validate=True))
        except (binascii.Error, UnicodeEncodeError) as exc:
            self.error = str(exc)

    def finish(self) -> None:
        """The end of the text: ``summary`` holds, ``file`` reads the decoded bytes from the start."""
        if self._rest and self.error is None:
            self.error = f"the base64 ends with {len(self._rest)} characters short of a group of 4"
        self.file.seek(0)
        self.summary = AttachmentSummary(self._digest.hexdigest(), self._size, self._head, self._says)

    def _take(self, piece: bytes) -> None:
        self._digest.update(piece)
        self._size += len(piece)
        self.file.write(piece)
        if len(self._head) < self._head_size:
            self._head += piece[: self._head_size - len(self._head)]
        marker = self._marker
        if marker and not self._says:
            self._says = marker in self._tail + piece
            self._tail = piece[-(len(marker) - 1) :] if len(marker) > 1 else b""

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> DecodedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def decode_text(text: str, marker: bytes = b"") -> DecodedFile:
    """An attachment whose base64 text is in hand, decoded a piece at a time."""
    decoded = DecodedFile(marker)
    for start in range(0, len(text), _PIECE_CHARS):
        decoded.add(text[start : start + _PIECE_CHARS])
    decoded.finish()
    return decoded


def decode_from_package(
    package: Iterable[bytes], wanted: set[int], marker: bytes = b""
) -> dict[int, DecodedFile]:
    """The attachments numbered ``wanted`` (in document order) decoded straight from the package's
    bytes, without their base64 ever being held whole: texts set aside (exchange.edxml.aside).
    The schema never saw them, so one that is not base64 is refused here (422 ``bad_attachment``),
    as the schema refuses one it sees."""
    found: dict[int, DecodedFile] = {}
    try:
        for ordinal, piece in attachment_texts(package, wanted):
            if ordinal not in found:
                found[ordinal] = DecodedFile(marker)
            decoded = found[ordinal]
            if piece is not None:
                decoded.add(piece)
                continue
            decoded.finish()
            if decoded.error is not None:
                raise AttachmentError(
                    f"attachment {ordinal + 1} is not valid base64",
                    [ErrorDetail(decoded.error, path=f"/edXML/AttachmentEncoded/Attachment[{ordinal + 1}]")],
                )
    except BaseException:
        for decoded in found.values():
            decoded.close()
        raise
    return found


def decode_attachment(attachment: Attachment, max_unzipped: int = MAX_UNZIPPED_BYTES) -> DecodedAttachment:
    """An attachment whose base64 is in hand, decoded whole (and unzipped, for the VNPT zip)."""
    name = attachment_name(attachment)
    with decode_text(attachment.content or "") as decoded:
        if decoded.error is not None:
            raise AttachmentError(
                f"attachment {name!r} is not valid base64",
                [ErrorDetail(decoded.error, path=f"Attachment[{attachment.content_id}]")],
            )
        if is_wrapped_in_zip(attachment):
            return unwrap_zip(attachment, decoded.file, max_unzipped)
        return DecodedAttachment(name, attachment.content_type, decoded.file.read(), False)


def unwrap_zip(
    attachment: Attachment, archive: IO[bytes], max_unzipped: int = MAX_UNZIPPED_BYTES
) -> DecodedAttachment:
    """The one file inside an attachment the VNPT library zipped (``archive``: the decoded zip)."""
    name = attachment_name(attachment)
    return DecodedAttachment(name, _guess_type(name), _unzip_single(archive, name, max_unzipped), True)


def _unzip_single(source: IO[bytes], name: str, max_unzipped: int) -> bytes:
    try:
        with zipfile.ZipFile(source) as archive:
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
