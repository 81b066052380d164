"""The VXP wire format, pure: headers, the HMAC over the signed-header JSON, hash-file, answers.

Every parameter travels as an ``XroadVnpt-<name>`` header; the SDK signs a compact JSON
of those headers (in java.util.HashMap order) with HMAC-SHA256 keyed by the system's
secret text. A verifier needs no ordering: it checks the HMAC over the JSON it received
and that every ``XroadVnpt-*`` header it acts on says what the JSON says.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PREFIX = "xroadvnpt-"
SIGNED = ("sign-header", "sign-header-key", "hash-header", "version")  # never part of what is signed
SUCCESS = "Thanh cong"


class VxpFailure(Exception):
    """A refusal in the protocol's own terms: FAIL, a non-zero ErrorCode, an ASCII ErrorDesc."""

    def __init__(self, http_status: int, error_code: str, description: str) -> None:
        super().__init__(description)
        self.http_status, self.error_code, self.description = http_status, error_code, description

    def body(self, with_doc_id: bool = False) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "status": "FAIL",
            "ErrorCode": self.error_code,
            "ErrorDesc": ascii_text(self.description),
        }
        if with_doc_id:
            answer["DocId"] = ""  # the SDK reads DocId on every sendEdoc answer, failures included
        return answer


@dataclass(frozen=True)
class SignedHeaders:
    """The parameters of one request, as the signature covers them."""

    values: dict[str, str]  # lower-cased name without the prefix -> value
    hash_header: str

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name.lower(), default)

    @property
    def system_id(self) -> str:
        return self.values.get("systemid", "")


def read_headers(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], str, str]:
    """The XroadVnpt-* parameters (names lower-cased), the signed JSON and the HMAC sent."""
    params: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower.startswith(PREFIX) and lower[len(PREFIX) :] not in SIGNED:
            params[lower[len(PREFIX) :]] = value
    get = {name.lower(): value for name, value in headers}
    return params, get.get(PREFIX + "sign-header", ""), get.get(PREFIX + "hash-header", "")


def verify(params: Mapping[str, str], sign_header: str, hash_header: str, secret: str) -> SignedHeaders:
    """Check the HMAC and that the headers acted on are the signed ones; raise VxpFailure otherwise."""
    expected = hmac.new(secret.encode("utf-8"), sign_header.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, hash_header.strip().lower()):
        raise VxpFailure(401, "401", "XroadVnpt-hash-header is not the HMAC-SHA256 of XroadVnpt-sign-header")
    try:
        signed = json.loads(sign_header)
    except json.JSONDecodeError:
        raise VxpFailure(401, "401", "XroadVnpt-sign-header is not JSON") from None
    if not isinstance(signed, dict) or not all(isinstance(v, str) for v in signed.values()):
        raise VxpFailure(401, "401", "XroadVnpt-sign-header must map header names to strings")
    covered = {name.lower().removeprefix(PREFIX): value for name, value in signed.items()}
    for name, value in params.items():
        if name not in covered:
            raise VxpFailure(401, "401", f"header XroadVnpt-{name} is not covered by the signature")
        if covered[name] != value:
            raise VxpFailure(401, "401", f"header XroadVnpt-{name} differs from its signed value")
    return SignedHeaders(covered, hash_header.strip().lower())


class Use(enum.StrEnum):
    """What an operation does with a signature, which decides how often one may be used."""

    READ = "read"  # the SDK repeats identical signed polls: any number of times
    SEND = "send"  # sendEdoc: the body is bound by hash-file and submission is idempotent
    CHANGE = "change"  # updateStatus, registerAgency, deleteAgency: a signature is spent once


@dataclass(frozen=True)
class Operation:
    """How one VXP operation binds a signature: its use, and whether it acts on the body."""

    name: str
    use: Use
    reads_body: bool = False  # the body is acted on, so XroadVnpt-hash-file must cover it

    @property
    def content_type(self) -> str:
        """The SDK signs Content-Type: octet-stream for sendEdoc, JSON for every other call."""
        return "application/octet-stream" if self.use is Use.SEND else "application/json"

    def payload(self, body: bytes) -> bytes:
        """The bytes hash-file covers: sendEdoc's file is sent with a CRLF the SDK adds."""
        return body.removesuffix(b"\r\n") if self.use is Use.SEND else body


def check_signed_for(signed: SignedHeaders, operation: Operation) -> None:
    """Refuse signed headers that were not made for this kind of operation, or leave its body out.

    The scheme signs neither the path nor the body: the signed Content-Type at least tells a
    sendEdoc from every other call, and an operation that acts on its body needs hash-file.
    """
    content_type = (signed.get("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != operation.content_type:
        raise VxpFailure(
            401,
            "401",
            f"the signed XroadVnpt-Content-Type is {content_type or '(none)'}; "
            f"{operation.name} is signed with {operation.content_type}",
        )
    if operation.reads_body and not (signed.get("hash-file") or "").strip():
        raise VxpFailure(
            401,
            "401",
            f"XroadVnpt-hash-file is required for {operation.name}: the signature must cover the body",
        )


def check_body(signed: SignedHeaders, operation: Operation, body: bytes) -> None:
    """The body must be the one the signed hash-file names."""
    check_digest(signed.get("hash-file"), hashlib.sha256(operation.payload(body)).digest())


def check_digest(signed_hash: str | None, digest: bytes) -> None:
    """The SHA-256 of the body (taken while it streamed in, for sendEdoc) is the signed hash-file."""
    if not hash_matches((signed_hash or "").strip().lower(), digest):
        raise VxpFailure(422, "422", "XroadVnpt-hash-file does not match the SHA-256 of the body")


def hash_matches(signed_hash: str, digest: bytes) -> bool:
    """The SDK's unpadded hex, or the ordinary padded one a caller may compute itself."""
    return any(hmac.compare_digest(signed_hash, form) for form in (java_hex(digest), digest.hex()))


def java_hex(digest: bytes) -> str:
    """Hex the way the SDK writes hash-file: Integer.toHexString per byte, no zero padding."""
    return "".join(format(byte, "x") for byte in digest)


def hash_file(body: bytes) -> str:
    return java_hex(hashlib.sha256(body).digest())


def parse_timestamp(text: str) -> datetime | None:
    """``ddMMyyyy'T'HHmmss+SSSS`` in the client's own (unknown) time zone; None if malformed."""
    try:
        return datetime.strptime(text.split("+", 1)[0], "%d%m%YT%H%M%S")
    except ValueError:
        return None


def ok(**fields: Any) -> dict[str, Any]:
    return {"status": "OK", "ErrorCode": "0", "ErrorDesc": SUCCESS, **fields}


def ascii_text(text: str) -> str:
    """The SDK reads some answers as US-ASCII: write Vietnamese without its diacritics."""
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return folded.encode("ascii", "ignore").decode("ascii")


def parse_to_header(text: str | None) -> frozenset[str] | None:
    """VXP's ``to``: the JSON text of a list or a string, or a bare OrganId."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    items = value if isinstance(value, list) else [value]
    return frozenset(str(item).strip() for item in items if str(item).strip())
