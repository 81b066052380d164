"""Signatures inside attached PDF documents: who signed, for which agency, when, and whether it still holds.

pyHanko checks the mathematics (the digest over the signed byte range, the CMS signature),
the certificate path to a trusted document CA (pyhanko-certvalidator, with imported CRLs and no
network unless asked), and what changed after each signature (its difference analysis). This
module turns that into one verdict per signature with a reason a person understands:

- ``valid``: intact, the certificate chains to a trusted document CA both when it signed and at
  receipt, is for signing, and nothing but signatures, timestamps or annotations came after it;
- ``invalid``: the mathematics fail, or the document was changed after signing beyond that;
- ``untrusted``: the mathematics hold but the signer is not acceptable (untrusted CA, expired,
  revoked, not for signing);
- ``unverifiable``: the file cannot be judged (malformed, over a limit, too slow).

The official-document rule (:func:`judge_official`) and which certificate is a person's or an
organisation's (:func:`signer_kind`, the only place that decides it) live here too.

Pure: no database, no network unless ``DocumentTrust.fetch_revocation``; bounded execution
(a subprocess with a deadline and a memory cap) is in ``exchange.trust.pdf_bounded``, which
runs :func:`main` below.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import functools
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.x509.oid import NameOID

from exchange.edxml.attachments import (
    DecodedFile,
    attachment_name,
    decode_from_package,
    decode_text,
    is_wrapped_in_zip,
    unwrap_zip,
)
from exchange.edxml.errors import EdxmlError
from exchange.edxml.ids import is_organ_id
from exchange.edxml.model import Attachment, Edoc
from exchange.trust.certificates import describe, fingerprint, is_signing_certificate, organ_id_of

# Certificate policies the development document CA writes. A production CA's own policy OIDs for
# person and organisation certificates are added to these sets (see certs/README.md).
PERSON_POLICY_OIDS = frozenset({"1.3.6.1.4.1.59999.102.1.1"})
ORGANIZATION_POLICY_OIDS = frozenset({"1.3.6.1.4.1.59999.102.1.2"})
PERSON_POLICY_OID = x509.ObjectIdentifier("1.3.6.1.4.1.59999.102.1.1")
ORGANIZATION_POLICY_OID = x509.ObjectIdentifier("1.3.6.1.4.1.59999.102.1.2")

PDF_CONTENT_TYPE = "application/pdf"
NOT_SIGNABLE = "not signable here: only signatures inside PDF documents are checked"


class PdfVerdict(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNTRUSTED = "untrusted"
    UNVERIFIABLE = "unverifiable"


class SignerKind(enum.StrEnum):
    PERSON = "person"
    ORGANIZATION = "organization"


@dataclass(frozen=True)
class PdfLimits:
    """What validating one package's PDFs may cost; past any of them a PDF is ``unverifiable``."""

    max_bytes: int = 64 * 1024 * 1024
    max_signatures: int = 8
    max_revisions: int = 64
    timeout_s: float = 30.0
    max_memory_mb: int = 1024


@dataclass(frozen=True)
class DocumentTrust:
    """Document-signing trust anchors and revocation lists (DER), kept apart from the envelope CAs."""

    roots: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    fetch_revocation: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "roots": [base64.b64encode(r).decode() for r in self.roots],
            "crls": [base64.b64encode(c).decode() for c in self.crls],
            "fetch_revocation": self.fetch_revocation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentTrust:
        return cls(
            tuple(base64.b64decode(r) for r in data.get("roots", [])),
            tuple(base64.b64decode(c) for c in data.get("crls", [])),
            bool(data.get("fetch_revocation", False)),
        )


@dataclass(frozen=True)
class PdfSignature:
    """One signature field of a PDF, judged."""

    verdict: str
    reason: str
    field: str | None = None
    kind: str | None = None
    signer: str | None = None
    organization: str | None = None
    organ_id: str | None = None
    signed_at: str | None = None
    signed_at_source: str | None = None  # "timestamp" (a token) or "signer" (claimed in the signature)
    covers_whole_document: bool = False
    changes_after: str | None = None  # none | timestamps | signatures | annotations | other
    certificate_sha256: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", str(self.verdict))  # a plain string, as stored and sent

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AttachmentResult:
    """An attachment and the signatures found in it; ``official`` is the rule applied to it alone."""

    name: str
    content_type: str | None
    sha256: str
    size: int
    signable: bool
    signatures: tuple[PdfSignature, ...] = ()
    official: bool = False
    official_reason: str = NOT_SIGNABLE
    problem: str | None = None  # why the file as a whole could not be judged

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["signatures"] = [s.as_dict() for s in self.signatures]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttachmentResult:
        fields = dict(data)
        fields["signatures"] = tuple(PdfSignature(**s) for s in data.get("signatures", []))
        return cls(**fields)


@dataclass(frozen=True)
class AttachmentReport:
    """Every attachment of a package judged, and whether its main document is official."""

    attachments: tuple[AttachmentResult, ...]
    official: bool
    reason: str
    main: str | None = None  # the name of the main document (the first PDF attachment)
    checked_at: str | None = None
    sender: str | None = None
    checked: bool = True  # False when the sender's policy is "off"

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "official": self.official,
            "reason": self.reason,
            "main": self.main,
            "sender": self.sender,
            "checked_at": self.checked_at,
            "attachments": [a.as_dict() for a in self.attachments],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttachmentReport:
        return cls(
            tuple(AttachmentResult.from_dict(a) for a in data.get("attachments", [])),
            bool(data.get("official")),
            str(data.get("reason", "")),
            data.get("main"),
            data.get("checked_at"),
            data.get("sender"),
            bool(data.get("checked", True)),
        )

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for attachment in self.attachments:
            for signature in attachment.signatures:
                counts[signature.verdict] = counts.get(signature.verdict, 0) + 1
        return counts


@dataclass(frozen=True)
class Item:
    """An attachment as decoded from a package (after base64 and unzipping)."""

    name: str
    content_type: str | None
    data: bytes = field(repr=False)  # held only for a PDF that may carry signatures: others are listed
    sha256: str = ""  # of the decoded file; computed from data unless given
    size: int = -1
    head: bytes = field(default=b"", repr=False)  # the file's first bytes
    may_be_signed: bool = False  # its bytes say /ByteRange (see may_hold_signatures)

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
            object.__setattr__(self, "size", len(self.data))
            object.__setattr__(self, "head", self.data[:1024])
            object.__setattr__(self, "may_be_signed", may_hold_signatures(self.data))


def items_of(edoc: Edoc, package: Iterable[bytes] | None = None) -> list[Item]:
    """Every attachment of a package (base64 and the VNPT zip undone), decoded from the base64 the
    model holds or, where it holds none (a text set aside: exchange.edxml.aside), from the
    package's bytes (``package``). One that cannot be
    decoded is kept, empty, so that it is still listed. Only PDFs keep their bytes: a large scan or
    spreadsheet is hashed and let go, so judging attachments holds no more than the PDFs it judges."""
    attachments = edoc.attachments or ()
    left_out = {n for n, a in enumerate(attachments) if a.content is None}
    if left_out and package is None:
        raise ValueError("the attachments' base64 was left in the package's bytes, not given")
    from_bytes = decode_from_package(package or (), left_out, SIGNATURE_MARKER) if left_out else {}
    decoded = [
        from_bytes[n] if n in left_out else decode_text(a.content or "", SIGNATURE_MARKER)
        for n, a in enumerate(attachments)
    ]
    try:
        return [_item(a, d) for a, d in zip(attachments, decoded, strict=True)]
    finally:
        for one in decoded:
            one.close()


def _item(attachment: Attachment, decoded: DecodedFile) -> Item:
    name = attachment_name(attachment)
    if decoded.error is not None:
        return Item(name, attachment.content_type, b"")
    if is_wrapped_in_zip(attachment):
        try:
            unzipped = unwrap_zip(attachment, decoded.file)
        except EdxmlError:
            return Item(name, attachment.content_type, b"")
        item = Item(unzipped.name, unzipped.content_type, unzipped.data)
        return item if looks_like_pdf(item) and item.may_be_signed else replace(item, data=b"")
    seen = decoded.summary
    item = Item(name, attachment.content_type, b"", seen.sha256, seen.size, seen.head, seen.says)
    if looks_like_pdf(item) and item.may_be_signed:
        return Item(name, attachment.content_type, decoded.file.read())
    return item


# --- which certificate is a person's, which an organisation's -----------------------------------


def signer_kind(certificate: x509.Certificate) -> SignerKind:
    """Decide whether a document-signing certificate is a person's or an organisation's.

    The one place this is decided, in this order:
    1. a certificate policy OID listed in ``PERSON_POLICY_OIDS`` / ``ORGANIZATION_POLICY_OIDS``
       (what the development CA writes; add a production CA's OIDs there);
    2. a subject naming a person (givenName, surname or title) is a person's;
    3. a subject whose common name equals its organisation name is an organisation's
       (how agency seals are issued: CN = O = the agency's name);
    4. otherwise a person's.
    """
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
        oids = {p.policy_identifier.dotted_string for p in policies}
    except x509.ExtensionNotFound:
        oids = set()
    if oids & ORGANIZATION_POLICY_OIDS:
        return SignerKind.ORGANIZATION
    if oids & PERSON_POLICY_OIDS:
        return SignerKind.PERSON
    subject = certificate.subject
    if any(subject.get_attributes_for_oid(o) for o in (NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.TITLE)):
        return SignerKind.PERSON
    common, organization = (
        _attribute(subject, NameOID.COMMON_NAME),
        _attribute(subject, NameOID.ORGANIZATION_NAME),
    )
    if common and organization and common.casefold() == organization.casefold():
        return SignerKind.ORGANIZATION
    return SignerKind.PERSON


def organ_id_in(certificate: x509.Certificate) -> str | None:
    """The OrganId a certificate names: its subjectAltName URI, else a subject field shaped like one."""
    from_san = organ_id_of(certificate)
    if from_san:
        return from_san
    for attribute in certificate.subject:
        value = str(attribute.value).strip()
        if is_organ_id(value):
            return value
    return None


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


# --- validating one PDF ------------------------------------------------------------------------


class Unverifiable(Exception):
    """The file as a whole cannot be judged; the message says why."""


def looks_like_pdf(item: Item) -> bool:
    return (
        item.head.lstrip().startswith(b"%PDF-")
        or (item.content_type or "").lower() == PDF_CONTENT_TYPE
        or item.name.lower().endswith(".pdf")
    )


SIGNATURE_MARKER = b"/ByteRange"


def may_hold_signatures(data: bytes) -> bool:
    """A signature dictionary cannot sit in a compressed object stream (its /Contents is patched in
    place after hashing), so a PDF whose bytes never say /ByteRange carries no signature."""
    return SIGNATURE_MARKER in data


def validate_pdf(data: bytes, trust: DocumentTrust, at: datetime, limits: PdfLimits) -> list[PdfSignature]:
    """Every signature field of one PDF, judged as of ``at`` (the receipt, UTC)."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    if not data.lstrip()[:8].startswith(b"%PDF-"):
        raise Unverifiable("not a PDF file (no %PDF- header)")
    if len(data) > limits.max_bytes:
        raise Unverifiable(f"the PDF is {len(data)} bytes, over the limit of {limits.max_bytes}")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        revisions = reader.xrefs.total_revisions
        if revisions > limits.max_revisions:
            raise Unverifiable(f"the PDF has {revisions} revisions, over the limit of {limits.max_revisions}")
        embedded = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise Unverifiable(f"the PDF cannot be read: {exc}") from None
    if len(embedded) > limits.max_signatures:
        raise Unverifiable(
            f"the PDF carries {len(embedded)} signatures, over the limit of {limits.max_signatures}"
        )
    return [_judge_one(signature, trust, at) for signature in embedded]


def _judge_one(embedded: Any, trust: DocumentTrust, at: datetime) -> PdfSignature:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.validation.errors import SignatureValidationError

    name = embedded.field_name
    try:
        certificate = x509.load_der_x509_certificate(embedded.signer_cert.dump())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return PdfSignature(
            PdfVerdict.INVALID, f"the signature holds no readable signer certificate: {exc}", name
        )
    identity = {
        "field": name,
        "kind": signer_kind(certificate).value,
        "signer": describe(certificate),
        "organization": _attribute(certificate.subject, NameOID.ORGANIZATION_NAME),
        "organ_id": organ_id_in(certificate),
        "certificate_sha256": fingerprint(certificate).hex(),
    }
    try:
        status = _validate(embedded, trust, at, certificate.issuer)
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        return PdfSignature(PdfVerdict.INVALID, f"the signature cannot be validated: {exc}", **identity)
    signed_at, source = _signing_time(status)
    coverage, changes, change_reason, allowed = _coverage(status, embedded)
    verdict, reason = _verdict(
        embedded, status, certificate, trust, (signed_at, source, at), (changes, change_reason, allowed)
    )
    return PdfSignature(
        verdict,
        reason,
        signed_at=None if signed_at is None else signed_at.isoformat(),
        signed_at_source=source,
        covers_whole_document=coverage,
        changes_after=changes,
        **identity,
    )


def _context(trust: DocumentTrust, moment: datetime, issuer: x509.Name | None) -> Any:
    """A validation context as of ``moment``.

    pyhanko-certvalidator's usual modes consult revocation data only for certificates that declare
    a distribution point, and the axis fetches nothing by default: so when a CRL of the signer's
    issuer was imported, the signer's certificate must be checked against it (and a stale list
    makes the signature untrusted rather than silently unchecked). Otherwise revocation is checked
    where the certificate declares it and data is at hand, without failing when it is not.
    """
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )

    strict = issuer is not None and issuer in _crl_issuers(trust)
    policy = CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED
            if strict
            else RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
            intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
        )
    )
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root) for root in trust.roots],
        crls=list(trust.crls),
        allow_fetching=trust.fetch_revocation,
        moment=moment,
        revinfo_policy=policy,
    )


def _crl_issuers(trust: DocumentTrust) -> list[x509.Name]:
    issuers = []
    for data in trust.crls:
        try:
            issuers.append(x509.load_der_x509_crl(data).issuer)
        except ValueError:
            continue  # refused at import; a damaged one here only means no list for that issuer
    return issuers


def _usage() -> Any:
    from pyhanko.sign.validation.settings import KeyUsageConstraints

    # Key usage is judged below with a clearer reason; pyHanko only must not refuse on it first.
    return KeyUsageConstraints(key_usage=set(), match_all_key_usages=False)


def _validate(
    embedded: Any, trust: DocumentTrust, moment: datetime, issuer: x509.Name | None, skip_diff: bool = False
) -> Any:
    from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature

    context = _context(trust, moment, issuer)
    return asyncio.run(
        async_validate_pdf_signature(
            embedded, signer_validation_context=context, key_usage_settings=_usage(), skip_diff=skip_diff
        )
    )


def _signing_time(status: Any) -> tuple[datetime | None, str | None]:
    stamp = getattr(status, "timestamp_validity", None)
    if stamp is not None and stamp.intact and stamp.valid and stamp.trusted:
        return stamp.timestamp, "timestamp"
    if status.signer_reported_dt is not None:
        return status.signer_reported_dt, "signer"
    return None, None


_CHANGE_KINDS = {
    "NONE": "none",
    "LTA_UPDATES": "timestamps",
    "FORM_FILLING": "signatures",
    "ANNOTATIONS": "annotations",
    "OTHER": "other",
}


def _coverage(status: Any, embedded: Any) -> tuple[bool, str | None, str | None, bool]:
    """Whether the signature covers the whole file; if not, what kind of change came after it, why it
    matters, and whether that change is one a signed document may receive (later signatures,
    timestamps, annotations the difference analysis recognises)."""
    from pyhanko.sign.diff_analysis import SuspiciousModification
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return True, "none", None, True
    if status.coverage != SignatureCoverageLevel.ENTIRE_REVISION:
        return False, "other", "the signed byte range does not cover a whole revision of the file", False
    result = status.diff_result
    if result is None or isinstance(result, SuspiciousModification):
        kind, what = _what_changed(embedded)
        return False, kind, f"the document was changed after signing: {what}", False
    kind = _CHANGE_KINDS.get(result.modification_level.name, "other")
    if kind == "other":
        return False, kind, "the document was changed after signing (content or pages)", False
    if kind == "signatures" and result.changed_form_fields:
        fields = ", ".join(sorted(result.changed_form_fields))
        return False, kind, f"later signatures or form fields: {fields}", True
    return False, kind, None, True


def _what_changed(embedded: Any) -> tuple[str, str]:
    """Name the change pyHanko refused: pages added or removed, annotations added, or other content."""
    try:
        reader = embedded.reader
        before = _shape(reader.get_historical_root(embedded.signed_revision))
        after = _shape(reader.get_historical_root(reader.xrefs.total_revisions - 1))
    except Exception:  # the analysis already failed; naming the change is a courtesy
        return "other", "content or structure changed"
    if after[0] != before[0]:
        return "other", f"pages changed ({before[0]} page(s) when signed, {after[0]} now)"
    if after[1] != before[1]:
        return "annotations", f"annotations added or removed ({before[1]} when signed, {after[1]} now)"
    return "other", "content or structure changed"


def _shape(root: Any) -> tuple[int, int]:
    """(pages, annotations other than signature widgets) of one revision."""
    pages = annotations = 0
    stack = [root["/Pages"]]
    while stack and pages < 10_000:
        node = stack.pop().get_object()
        if "/Kids" in node:
            stack.extend(node["/Kids"])
            continue
        pages += 1
        annots = node.get("/Annots", [])
        annotations += sum(1 for a in annots if a.get_object().get("/Subtype") != "/Widget")
    return pages, annotations


def _verdict(
    embedded: Any,
    status: Any,
    certificate: x509.Certificate,
    trust: DocumentTrust,
    times: tuple[datetime | None, str | None, datetime],
    change: tuple[str | None, str | None, bool],
) -> tuple[PdfVerdict, str]:
    signed_at, source, at = times
    changes, change_reason, allowed = change
    who = describe(certificate)
    if not status.intact:
        return PdfVerdict.INVALID, "the signed bytes were changed after signing (digest mismatch)"
    if not status.valid:
        return PdfVerdict.INVALID, f"the signature value does not match the certificate of {who}"
    if not allowed:
        return PdfVerdict.INVALID, change_reason or "the document was changed after signing"
    if not is_signing_certificate(certificate):
        return PdfVerdict.UNTRUSTED, f"the certificate of {who} is not for signing (key usage)"
    when = at if signed_at is None else signed_at
    if when > certificate.not_valid_after_utc:
        return PdfVerdict.UNTRUSTED, (
            f"the certificate of {who} had expired ({certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC) "
            f"when it signed ({when:%Y-%m-%d %H:%M} UTC)"
        )
    if when < certificate.not_valid_before_utc:
        return PdfVerdict.UNTRUSTED, (
            f"the certificate of {who} was not yet valid when it signed ({when:%Y-%m-%d %H:%M} UTC)"
        )
    if status.revoked:
        details = status.revocation_details
        on = f" on {details.revocation_date:%Y-%m-%d %H:%M} UTC" if details is not None else ""
        return PdfVerdict.UNTRUSTED, f"the certificate of {who} was revoked{on} (revocation list)"
    if signed_at is not None and signed_at != at:
        at_signing = _validate(embedded, trust, signed_at, None, skip_diff=True)
        if at_signing.revoked:
            return PdfVerdict.UNTRUSTED, f"the certificate of {who} was revoked when it signed"
        if not at_signing.trusted:
            return PdfVerdict.UNTRUSTED, f"at signing time: {_trust_problem(at_signing, certificate)}"
    if not status.trusted:
        return PdfVerdict.UNTRUSTED, f"at receipt: {_trust_problem(status, certificate)}"
    how = "a timestamp" if source == "timestamp" else "the signer's own clock"
    reason = f"signed by {who}; certificate issued by {_issuer(certificate)}"
    reason += f"; signing time from {how}" if signed_at is not None else "; no signing time"
    if change_reason:
        reason += f"; after signing: {change_reason}"
    elif changes == "annotations":
        reason += "; after signing: annotations were added or changed"
    elif changes == "timestamps":
        reason += "; after signing: validation data or timestamps were added"
    return PdfVerdict.VALID, reason


def _trust_problem(status: Any, certificate: x509.Certificate) -> str:
    who = describe(certificate)
    indication = status.trust_problem_indic
    name = getattr(indication, "name", "") or ""
    if name in (
        "NO_CERTIFICATE_CHAIN_FOUND",
        "CHAIN_CONSTRAINTS_FAILURE",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    ) or (name == "" and status.validation_path is None):
        issuer = _issuer(certificate)
        return f"the certificate of {who} does not chain to a trusted document CA (issuer: {issuer})"
    if name in ("OUT_OF_BOUNDS_NO_POE", "OUT_OF_BOUNDS_NOT_REVOKED", "EXPIRED"):
        return f"the certificate of {who} or its CA is expired"
    if name == "NOT_YET_VALID":
        return f"the certificate of {who} or its CA is not yet valid"
    if name.startswith("REVOKED"):
        return f"the certificate of {who} or its CA is revoked"
    return f"the certificate of {who} is not trusted ({name.lower().replace('_', ' ') or 'unknown reason'})"


def _issuer(certificate: x509.Certificate) -> str:
    return _attribute(certificate.issuer, NameOID.COMMON_NAME) or certificate.issuer.rfc4514_string()


# --- the official-document rule ----------------------------------------------------------------


def judge_official(signatures: Sequence[PdfSignature], sender: str) -> tuple[bool, str]:
    """A PDF is official when it carries a valid signature of a person and a valid signature of an
    organisation whose OrganId is the sender's, and nothing but signatures or timestamps came after
    either of them. Otherwise the answer says which part is missing or wrong."""
    if not signatures:
        return False, "the document carries no signature"
    problems = []
    people = [s for s in signatures if s.kind == SignerKind.PERSON]
    organizations = [s for s in signatures if s.kind == SignerKind.ORGANIZATION]
    valid_people = [s for s in people if s.verdict == PdfVerdict.VALID]
    if not people:
        problems.append("no signature of a person")
    elif not valid_people:
        problems.append("the person's signature is not valid: " + _first_reason(people))
    valid_organizations = [s for s in organizations if s.verdict == PdfVerdict.VALID]
    ours = [s for s in valid_organizations if s.organ_id == sender]
    if not organizations:
        problems.append("no signature of an organisation (the agency's seal)")
    elif not valid_organizations:
        problems.append("the organisation's signature is not valid: " + _first_reason(organizations))
    elif not ours:
        other = valid_organizations[0]
        problems.append(
            f"the organisation's signature is by {other.signer} "
            f"({other.organ_id or 'no OrganId in its certificate'}), not by the sender {sender}"
        )
    for signature in [*valid_people[:1], *ours[:1]]:
        if signature.changes_after in ("annotations", "other"):
            problems.append(
                f"the {signature.kind} signature by {signature.signer} does not cover later changes "
                f"({signature.changes_after})"
            )
    if problems:
        return False, "; ".join(problems)
    person, organization = valid_people[0], ours[0]
    return True, f"signed by {person.signer} and sealed by {organization.signer} ({sender})"


def _first_reason(signatures: Sequence[PdfSignature]) -> str:
    first = signatures[0]
    return f"{first.signer}: {first.verdict} ({first.reason})"


def describe_items(
    items: Sequence[Item], results: dict[int, list[PdfSignature] | str], sender: str, at: datetime
) -> AttachmentReport:
    """Assemble the report from per-attachment outcomes (signatures, or why the file is unverifiable)."""
    attachments = []
    for index, item in enumerate(items):
        digest = item.sha256
        if not looks_like_pdf(item):
            attachments.append(AttachmentResult(item.name, item.content_type, digest, item.size, False))
            continue
        outcome = results.get(index, [])
        problem = outcome if isinstance(outcome, str) else None
        signatures: tuple[PdfSignature, ...]
        if isinstance(outcome, str):
            signatures = (PdfSignature(PdfVerdict.UNVERIFIABLE, outcome),)
            official, reason = False, f"the document cannot be verified: {outcome}"
        else:
            signatures = tuple(outcome)
            official, reason = judge_official(outcome, sender)
        attachments.append(
            AttachmentResult(
                item.name,
                item.content_type or PDF_CONTENT_TYPE,
                digest,
                item.size,
                True,
                signatures,
                official,
                reason,
                problem,
            )
        )
    main = next((a for a in attachments if a.signable), None)
    if main is None:
        official, reason = False, "the package carries no PDF document"
    else:
        official, reason = main.official, f"main document {main.name}: {main.official_reason}"
    return AttachmentReport(
        tuple(attachments), official, reason, None if main is None else main.name, at.isoformat(), sender
    )


# --- the worker (a child of exchange.trust.pdf_zygote, started by exchange.trust.pdf_bounded) ----


def judge_request(reading: BinaryIO, writing: BinaryIO) -> None:
    """Read one request (a JSON header line, then the PDFs' bytes), cap this process's address space,
    and write one JSON line per PDF as soon as it is judged. JSON, not pickle: a process subverted by
    a crafted PDF cannot make the server run code."""
    header = json.loads(reading.readline())
    limits = PdfLimits(**header["limits"])
    _limit_resources(limits)
    trust = DocumentTrust.from_dict(header["trust"])
    at = datetime.fromisoformat(header["at"])
    for index, size in header["sizes"]:
        line = _judge_body(index, functools.partial(reading.read, size), trust, at, limits)
        writing.write(json.dumps(line).encode() + b"\n")
        writing.flush()


def _judge_body(
    index: int, read: Callable[[], bytes], trust: DocumentTrust, at: datetime, limits: PdfLimits
) -> dict[str, Any]:
    try:
        data = read()  # inside: holding the PDF itself counts against the memory cap
        return {"index": index, "signatures": [s.as_dict() for s in validate_pdf(data, trust, at, limits)]}
    except Unverifiable as exc:
        return {"index": index, "unverifiable": str(exc)}
    except MemoryError:
        return {"index": index, "unverifiable": f"validation needs more than {limits.max_memory_mb} MB"}
    except RecursionError:
        return {"index": index, "unverifiable": "the PDF's object graph is nested too deeply"}
    except Exception as exc:  # a hostile file must not take the others down with it
        return {"index": index, "unverifiable": f"the PDF cannot be processed: {type(exc).__name__}: {exc}"}


def _limit_resources(limits: PdfLimits) -> None:
    """Cap this process's address space, and its CPU time as a backstop: the parent kills it at the
    deadline, but a parent that died meanwhile cannot."""
    import math
    import resource

    memory = limits.max_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    seconds = math.ceil(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
