"""XML signatures of edXML packages: finding them, checking them, deciding whether to trust them.

signxml checks the mathematics (digest, signature value, algorithms, where the
signature stands); this module decides trust (chain or pin, validity, revocation,
key usage, whether the certificate belongs to the sender). That split gives the four
verdicts: *invalid* (the mathematics fail), *untrusted* (they hold, but the signer is
not acceptable), *absent*, and *valid*.

edXML signatures are enveloped over the whole document (``Reference URI=""``) and
stand last in ``edXMLHeader``. The SDK writes them in the edXML namespace rather than
the XML-DSig one (the legacy layout): such a signature is moved into the XML-DSig
namespace in the document for the time of the check, which is what the signer
computed it over.

The transit rule: every axis a package passes through appends its own TraceHeader at
the end of ``TraceHeaderList`` (``exchange.edxml.trace``), a newline and indentation
followed by the element, changing no other byte. A signature made by the sender is
therefore checked first as is and, when the digest no longer matches, again with the
last TraceHeader and exactly the whitespace inserted before it removed, newest hop
first, while at least the sender's own TraceHeader remains. A match after ``n``
removals is reported as "signed before n transit hops"; any other change still fails.
"""

from __future__ import annotations

import base64
import binascii
import copy
import enum
from base64 import b64decode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature as InvalidSignatureError
from cryptography.hazmat.primitives.hashes import Hash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
    digest_algorithm_implementations,
)
from signxml.exceptions import InvalidDigest, InvalidSignature, SignXMLException
from signxml.util import _remove_sig
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier

from exchange.edxml.aside import Aside
from exchange.edxml.parser import DSIG_NS, NS, element_path, make_parser
from exchange.trust.certificates import (
    describe,
    fingerprint,
    is_ca_certificate,
    is_signing_certificate,
    organ_id_of,
)

HEADER_PATH = f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/"
_MODERN_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
_MODERN_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_MAX_CHAIN = 5
# More hops than any chain of axes has; each undo costs a copy and a verification.
MAX_TRANSIT_HOPS = 8
_DIGEST_MISMATCH = "the signed content was changed after signing (digest mismatch)"
_ENVELOPED = SignatureConstructionMethod.enveloped.value
_C14N_ALGORITHMS = frozenset(method.value for method in CanonicalizationMethod)


class Verdict(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNTRUSTED = "untrusted"
    ABSENT = "absent"
    NOT_CHECKED = "not-checked"  # the policy is "off"


@dataclass(frozen=True)
class SignatureVerdict:
    """The outcome of checking a package's signature, with a reason a person understands."""

    verdict: Verdict
    reason: str
    layout: str | None = None
    signer: str | None = None
    organ_id: str | None = None
    fingerprint: str | None = None
    algorithm: str | None = None
    transit_hops: int = 0  # TraceHeaders appended by axes after the sender signed
    # The document as the signature covers it; what intake reads after a valid verdict.
    signed_root: etree._Element | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "layout": self.layout,
            "signer": self.signer,
            "organ_id": self.organ_id,
            "fingerprint": self.fingerprint,
            "algorithm": self.algorithm,
            "transit_hops": self.transit_hops,
        }


@dataclass(frozen=True)
class TrustMaterial:
    """What the registry says about certificates, for one sender agency."""

    trusted_cas: tuple[x509.Certificate, ...] = ()
    pinned: frozenset[bytes] = frozenset()  # SHA-256 fingerprints pinned to the sender agency
    revoked: frozenset[bytes] = frozenset()
    allow_sha1: bool = False


def verify_signature(
    root: etree._Element,
    sender_organ_id: str,
    trust: TrustMaterial,
    at: datetime,
    aside: Aside | None = None,
) -> SignatureVerdict:
    """Check the signature of a parsed package from ``sender_organ_id``, as of ``at`` (UTC), undoing
    the TraceHeaders axes appended in transit when the package as it stands does not match.
    ``aside``: the attachment texts the tree holds markers for (exchange.edxml.aside)."""
    verdict = _verify_as_received(root, sender_organ_id, trust, at, aside)
    document = root
    for hops in range(1, MAX_TRANSIT_HOPS + 1):
        if verdict.verdict is not Verdict.INVALID or verdict.reason != _DIGEST_MISMATCH:
            return verdict
        undone = without_last_hop(document)
        if undone is None:
            break
        document = undone
        again = _verify_as_received(document, sender_organ_id, trust, at, aside)
        if again.verdict is not Verdict.INVALID or again.reason != _DIGEST_MISMATCH:
            plural = "hop" if hops == 1 else "hops"
            return replace(
                again, reason=f"{again.reason}; signed before {hops} transit {plural}", transit_hops=hops
            )
    return verdict


def without_last_hop(root: etree._Element) -> etree._Element | None:
    """A copy of the document without what the newest hop inserted: its TraceHeader and the newline
    and indentation before it. None when nothing can be undone (one TraceHeader left: the sender's)."""
    traces = root.findall(
        f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/{{{NS}}}TraceHeaderList/{{{NS}}}TraceHeader"
    )
    if len(traces) < 2:
        return None
    last, previous = traces[-1], traces[-2]
    # An axis inserts right after the previous TraceHeader, so that is its immediate sibling and the
    # text between them is exactly the newline and indentation it wrote.
    gap = previous.tail or ""
    if last.getprevious() is not previous or not gap.startswith("\n") or gap.strip():
        return None
    document = copy.deepcopy(root)
    copies = document.findall(
        f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/{{{NS}}}TraceHeaderList/{{{NS}}}TraceHeader"
    )
    last, previous = copies[-1], copies[-2]
    tail = last.tail
    last.getparent().remove(last)
    previous.tail = tail
    return document


def _verify_as_received(
    root: etree._Element, sender_organ_id: str, trust: TrustMaterial, at: datetime, aside: Aside | None
) -> SignatureVerdict:
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    misplaced = [
        node for node in _signature_elements(root) if header is None or node.getparent() is not header
    ]
    if misplaced:
        return _invalid(
            f"a signature stands at {element_path(misplaced[0])} (line {misplaced[0].sourceline}); edXML "
            "signatures belong directly in edXMLHeader, so this looks like a signature-wrapping attempt"
        )
    placeholders = _children(header, f"{{{NS}}}DigitalSignature")
    signatures = _signature_elements(root)
    if not signatures:
        if any(len(n) or (n.text or "").strip() for n in placeholders):
            return _invalid("DigitalSignature holds content the axis cannot check as an XML signature")
        return SignatureVerdict(Verdict.ABSENT, "the package carries no signature")
    if len(signatures) > 1:
        lines = ", ".join(str(node.sourceline) for node in signatures)
        return _invalid(
            f"the package carries {len(signatures)} signatures (lines {lines}); exactly one is allowed"
        )
    return _verify_one(root, signatures[0], _Check(sender_organ_id, trust, at, aside))


@dataclass(frozen=True)
class _Check:
    """What one verification is made against."""

    sender: str
    trust: TrustMaterial
    at: datetime
    aside: Aside | None


def _verify_one(root: etree._Element, signature: etree._Element, check: _Check) -> SignatureVerdict:
    if signature.tag == f"{{{DSIG_NS}}}Signature":
        return _verify_xmldsig(root, signature, check, "xmldsig")
    with _as_xmldsig(signature, None) as restored:
        verdict = _verify_xmldsig(root, restored, check, "edxml-namespace")
    if verdict.verdict is Verdict.INVALID and "does not match" in verdict.reason:
        with _as_xmldsig(signature, "ds") as restored:
            return _verify_xmldsig(root, restored, check, "edxml-namespace")
    return verdict


def _verify_xmldsig(
    root: etree._Element, signature: etree._Element, check: _Check, layout: str
) -> SignatureVerdict:
    reference_problem = _reference_problem(signature)
    if reference_problem:
        return _invalid(reference_problem, layout)
    certificate = _certificate(signature)
    if certificate is None:
        return _invalid("KeyInfo holds no readable X.509 certificate (a placeholder signature?)", layout)
    algorithm = _algorithm(signature)
    try:
        result = _Verifier(check.aside).verify(
            root,
            parser=make_parser(),
            x509_cert=certificate,
            expect_config=SignatureConfiguration(
                location=HEADER_PATH,
                expect_references=1,
                signature_methods=_allowed_methods(check.trust.allow_sha1),
                digest_algorithms=_allowed_digests(check.trust.allow_sha1),
            ),
        )
    except InvalidDigest:
        return _invalid(_DIGEST_MISMATCH, layout, algorithm)
    except InvalidSignature as exc:
        return _invalid(f"the signature value does not match: {exc}", layout, algorithm)
    except SignXMLException as exc:
        return _invalid(_explain(str(exc), algorithm), layout, algorithm)
    except (ValueError, etree.LxmlError) as exc:
        return _invalid(f"the signature cannot be processed: {exc}", layout, algorithm)
    assert not isinstance(result, list)
    return _judge(certificate, check.sender, check.trust, check.at, layout, algorithm, result.signed_xml)


class _Verifier(XMLVerifier):
    """signxml's verifier without its copies of the whole document.

    ``get_root`` serialises and re-parses the tree it is given, so that the verifier may change
    it and so that no namespace leaks in from a parent; the reference check makes two more
    copies to apply the enveloped-signature transform and to canonicalise. Here the tree is a
    document root (no parent) and the transform is applied to it and undone, so each copy (and
    the serialised bytes behind it) is a tree's worth of memory saved for a large package. DTDs
    and entities, which the copies would refuse, our parser refused already.
    """

    def __init__(self, aside: Aside | None = None) -> None:
        super().__init__()
        self._aside = aside

    def _check_cert_validity(self, cert: Any, cert_source: Any) -> None:
        """Nothing here: the certificate's dates are judged as trust (``_judge``), and signxml's own
        check described the certificate in words for every package only to find it in date."""

    def get_root(self, data: Any) -> Any:
        if isinstance(data, etree._Element) and data.getparent() is None:
            return data
        return super().get_root(data)  # type: ignore[no-untyped-call]

    def _verify_reference(
        self,
        reference: etree._Element,
        index: int,
        root: etree._Element,
        uri_resolver: Any,
        c14n_algorithm: Any,
        signature: etree._Element,
        signature_key_used: Any,
    ) -> VerifyResult:
        """signxml's reference check without its two copies of the whole document, its canonical
        bytes and its parse of them, for the shape edXML signs: the whole document (``URI=""``),
        the enveloped-signature transform, then at most one canonicalisation. The signature is
        taken out of the tree for the canonicalisation exactly as signxml takes it out of its
        copy, and put back as it was. Any other shape goes to signxml's own check."""
        transforms = reference.find(f"{{{DSIG_NS}}}Transforms")
        steps = list(transforms.iterfind(f"{{{DSIG_NS}}}Transform")) if transforms is not None else []
        algorithms = [step.get("Algorithm") for step in steps]
        c14n = [a for a in algorithms[1:] if a in _C14N_ALGORITHMS]
        if (
            reference.get("URI") != ""
            or root.getparent() is not None
            or algorithms[:1] != [_ENVELOPED]
            or len(algorithms) > 2
            or len(c14n) != len(algorithms) - 1
        ):
            return super()._verify_reference(  # type: ignore[no-untyped-call,no-any-return]
                reference, index, root, uri_resolver, c14n_algorithm, signature, signature_key_used
            )
        method = CanonicalizationMethod(c14n[0]) if c14n else self.config.default_reference_c14n_method
        # signxml's helpers are untyped.
        find: Any = self._find
        prefixes = self._get_inclusive_ns_prefixes(steps[1]) if c14n else None  # type: ignore[no-untyped-call]
        digest_value = find(reference, "DigestValue")
        digest_method = DigestAlgorithm(find(reference, "DigestMethod").get("Algorithm"))
        self.check_digest_alg_expected(digest_method)  # type: ignore[no-untyped-call]
        enveloped = self._get_signature(root)  # type: ignore[no-untyped-call]
        with _taken_out(enveloped):
            digest = _canonical_digest(root, method, prefixes, digest_method, self._aside)
            signed_xml = root if _plain(root) else _reparsed(self, root, method, prefixes)
        if b64decode(digest_value.text) != digest:
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        key = (
            signature_key_used
            if isinstance(signature_key_used, bytes)
            else signature_key_used.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
        # The canonical bytes were hashed as they were written, never held: a 100 MB package
        # costs no second copy. Nothing here reads ``signed_data``.
        return VerifyResult(b"", signed_xml, signature, signature_key=key)


class _Digesting:
    """A file that hashes what is written to it (lxml writes the canonical form in pieces), putting
    back in place of each marker the attachment text set aside for it, read again from the
    package's bytes and escaped as canonical XML escapes text (exchange.edxml.aside)."""

    def __init__(self, algorithm: DigestAlgorithm, aside: Aside | None) -> None:
        self._hash = Hash(digest_algorithm_implementations[algorithm]())
        self._aside = aside if aside is not None and aside.ordinals else None
        self._texts = self._aside.texts() if self._aside is not None else iter(())
        self._token = self._aside.token.encode() if self._aside is not None else b""
        self._spliced = 0
        self._held = b""  # the end of what was written, which may be the start of a marker

    def write(self, data: bytes) -> int:
        if self._aside is None:
            self._hash.update(data)
            return len(data)
        held, length = self._held + data, self._aside.marker_length
        while (at := held.find(self._token)) >= 0 and at + length <= len(held):
            self._hash.update(held[:at])
            self._splice(held[at : at + length])
            held = held[at + length :]
        cut = at if at >= 0 else max(0, len(held) - len(self._token) + 1)
        self._hash.update(held[:cut])
        self._held = held[cut:]
        return len(data)

    def _splice(self, marker: bytes) -> None:
        assert self._aside is not None
        if marker != self._aside.marker(self._spliced).encode():
            raise ValueError("an attachment text is out of place in the package")
        self._spliced += 1
        for piece in next(self._texts):
            self._hash.update(_canonical_text(piece))

    def digest(self) -> bytes:
        self._hash.update(self._held)
        return self._hash.finalize()


def _canonical_text(text: str) -> bytes:
    """Text as canonical XML writes it (C14N 1.0 and exclusive alike)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    return escaped.encode()


def _canonical_digest(
    root: etree._Element,
    method: CanonicalizationMethod,
    prefixes: Any,
    algorithm: DigestAlgorithm,
    aside: Aside | None,
) -> bytes:
    """The digest of the document's canonical form, as signxml's ``_c14n`` would write it (C14N 1.1
    as 1.0, as signxml does), hashed while lxml writes it."""
    sink = _Digesting(algorithm, aside)
    etree.ElementTree(root).write_c14n(
        sink,
        exclusive=method.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#"),
        with_comments=method.value.endswith("#WithComments"),
        inclusive_ns_prefixes=prefixes,
    )
    return sink.digest()


def _plain(root: etree._Element) -> bool:
    """Whether reading the tree reads exactly what was signed: no comment or processing instruction
    (which canonicalisation drops, and which split an element's text) anywhere in it."""
    return next(root.iter(etree.Comment, etree.ProcessingInstruction), None) is None


def _reparsed(
    verifier: XMLVerifier, root: etree._Element, method: CanonicalizationMethod, prefixes: Any
) -> etree._Element | None:
    """The signed document as signxml reads it back: its canonical form parsed again (only for a
    document with comments or processing instructions, where the tree says more than was signed)."""
    canonical: Any = verifier._c14n
    try:
        return verifier._fromstring(  # type: ignore[no-untyped-call]
            canonical(root, algorithm=method, inclusive_ns_prefixes=prefixes)
        )
    except etree.XMLSyntaxError:
        return None


@contextmanager
def _taken_out(signature: etree._Element) -> Iterator[None]:
    """The enveloped-signature transform applied to the tree itself (signxml's own removal, which
    keeps the signature's tail text in the document), undone afterwards: the tree is as before."""
    parent = signature.getparent()
    if parent is None:
        yield
        return
    position = parent.index(signature)
    previous = signature.getprevious()
    kept = previous.tail if previous is not None else parent.text
    _remove_sig(signature, idempotent=True)  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        parent.insert(position, signature)  # its tail comes back with it
        if previous is not None:
            previous.tail = kept
        else:
            parent.text = kept


def _judge(
    certificate: x509.Certificate,
    sender: str,
    trust: TrustMaterial,
    at: datetime,
    layout: str,
    algorithm: str | None,
    signed_root: etree._Element | None,
) -> SignatureVerdict:
    """The mathematics hold: decide whether the signer is one the axis accepts for this sender."""
    digest = fingerprint(certificate)
    named = _named(certificate, digest)
    signer, organ_id = named.signer, named.organ_id

    def verdict(kind: Verdict, reason: str) -> SignatureVerdict:
        return SignatureVerdict(
            kind,
            reason,
            layout,
            signer,
            organ_id,
            digest.hex(),
            algorithm,
            signed_root=signed_root if kind is Verdict.VALID else None,
        )

    if not named.signing:
        return verdict(Verdict.UNTRUSTED, f"the certificate of {signer} is not for signing (key usage)")
    if at < certificate.not_valid_before_utc:
        return verdict(
            Verdict.UNTRUSTED,
            f"the certificate of {signer} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
        )
    if at > certificate.not_valid_after_utc:
        return verdict(
            Verdict.UNTRUSTED,
            f"the certificate of {signer} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
        )
    if digest in trust.revoked:
        return verdict(Verdict.UNTRUSTED, f"the certificate of {signer} has been revoked")
    pinned = digest in trust.pinned
    if not pinned:
        chain_problem = _chain_problem(certificate, trust.trusted_cas, at)
        if chain_problem:
            return verdict(Verdict.UNTRUSTED, chain_problem)
        if organ_id is None:
            return verdict(
                Verdict.UNTRUSTED,
                f"the certificate of {signer} names no agency and is not pinned to the sender {sender}",
            )
        if organ_id != sender:
            return verdict(
                Verdict.UNTRUSTED, f"the certificate belongs to {organ_id}, not to the sender {sender}"
            )
    how = "pinned to the sender" if pinned else f"issued by {named.issuer}"
    return verdict(Verdict.VALID, f"signed by {signer} for {sender}; certificate {how}")


def describe_issuer(certificate: x509.Certificate) -> str:
    names = certificate.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.issuer.rfc4514_string()


def _chain_problem(
    certificate: x509.Certificate, cas: tuple[x509.Certificate, ...], at: datetime
) -> str | None:
    """None when ``certificate`` chains to one of ``cas`` through CA certificates valid at ``at``."""
    current = certificate
    for _ in range(_MAX_CHAIN):
        issuer = next((ca for ca in cas if _issued(current, ca)), None)
        if issuer is None:
            return (
                f"the certificate of {describe(certificate)} does not chain to a trusted CA "
                f"(issuer: {describe_issuer(current)})"
            )
        if (
            not is_ca_certificate(issuer)
            or not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc
        ):
            return f"the issuing CA {describe(issuer)} is not a valid CA at this time"
        if issuer.issuer == issuer.subject:
            return None  # reached a trusted root
        current = issuer
    return None  # a trusted intermediate is an anchor in its own right


# Whether an issuer's key signed a certificate is a fact of the two certificates alone, so it is kept:
# most packages come signed with a certificate seen before. By their fingerprints, never the
# certificates themselves: a sender's may be as large as a package, and a refused one must not stay.
_ISSUED: dict[tuple[bytes, bytes], bool] = {}
_ISSUED_KEPT = 4096  # facts kept at most; past this, all are dropped (a bound, not an eviction policy)


@dataclass(frozen=True)
class _Named:
    """What a signer's certificate says of it: read from its names and extensions once per certificate
    (by fingerprint), since reading them costs more than checking the signature."""

    signer: str
    organ_id: str | None
    signing: bool  # its key usage allows document signatures
    issuer: str


_NAMED: dict[bytes, _Named] = {}
# A certificate is the sender's to write: one whose names are longer than this is read every time
# rather than kept, so what is kept stays small (at most _ISSUED_KEPT entries of this size).
_NAMED_KEPT_CHARS = 1024


def _named(certificate: x509.Certificate, digest: bytes) -> _Named:
    known = _NAMED.get(digest)
    if known is None:
        known = _Named(
            describe(certificate),
            organ_id_of(certificate),
            is_signing_certificate(certificate),
            describe_issuer(certificate),
        )
        if len(_NAMED) >= _ISSUED_KEPT:
            _NAMED.clear()
        if len(known.signer) + len(known.issuer) + len(known.organ_id or "") <= _NAMED_KEPT_CHARS:
            _NAMED[digest] = known
    return known


def _issued(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = (fingerprint(child), fingerprint(issuer))
    known = _ISSUED.get(key)
    if known is None:
        if len(_ISSUED) >= _ISSUED_KEPT:
            _ISSUED.clear()
        known = _ISSUED[key] = _signed_by(child, issuer)
    return known


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignatureError):
        return False
    return True


def _signature_elements(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(f"{{{DSIG_NS}}}Signature", f"{{{NS}}}Signature"))


def _children(parent: etree._Element | None, tag: str) -> list[etree._Element]:
    return [] if parent is None else list(parent.iterfind(tag))


@contextmanager
def _as_xmldsig(signature: etree._Element, prefix: str | None) -> Iterator[etree._Element]:
    """The legacy signature put back in the XML-DSig namespace, in the document itself for the
    time of the check (a copy of a large document would cost its size again), then undone.

    The SDK signs a standard XML-DSig signature and then writes it without its namespace
    declaration. What was signed depends on how the signer spelled that namespace (as the
    default namespace, as Java does, or with the usual ``ds:`` prefix), so callers try both.
    """
    parent = signature.getparent()
    restored = _copy_into(signature, etree.Element(f"{{{DSIG_NS}}}Signature", nsmap={prefix: DSIG_NS}))
    parent.replace(signature, restored)
    try:
        yield restored
    finally:
        parent.replace(restored, signature)
        signature.tail = restored.tail


def _copy_into(source: etree._Element, target: etree._Element) -> etree._Element:
    target.text, target.tail = source.text, source.tail
    for name, value in source.attrib.items():
        target.set(name, value)
    for child in source:
        if isinstance(child.tag, str):
            _copy_into(child, etree.SubElement(target, f"{{{DSIG_NS}}}{etree.QName(child).localname}"))
    return target


def _reference_problem(signature: etree._Element) -> str | None:
    references = signature.findall(f"{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}Reference")
    if len(references) != 1:
        return f"the signature has {len(references)} references; edXML signs the whole document with one"
    uri = references[0].get("URI")
    if uri != "":
        return f'the signature covers URI="{uri}", not the whole document (URI="")'
    return None


def _certificate(signature: etree._Element) -> x509.Certificate | None:
    text = signature.findtext(f"{{{DSIG_NS}}}KeyInfo/{{{DSIG_NS}}}X509Data/{{{DSIG_NS}}}X509Certificate")
    if not text:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error):
        return None


def _algorithm(signature: etree._Element) -> str | None:
    method = signature.find(f"{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}SignatureMethod")
    uri = method.get("Algorithm") if method is not None else None
    return uri.rsplit("#", 1)[-1] if uri else None


def _allowed_methods(allow_sha1: bool) -> frozenset[SignatureMethod]:
    return _MODERN_METHODS | {SignatureMethod.RSA_SHA1} if allow_sha1 else _MODERN_METHODS


def _allowed_digests(allow_sha1: bool) -> frozenset[DigestAlgorithm]:
    return _MODERN_DIGESTS | {DigestAlgorithm.SHA1} if allow_sha1 else _MODERN_DIGESTS


def _explain(message: str, algorithm: str | None) -> str:
    if "forbidden by configuration" in message or "SHA1" in message:
        return (
            f"the signature uses {algorithm or 'SHA-1'}, a legacy algorithm this agency's policy does not "
            "accept (RSA-SHA256 is expected)"
        )
    if "Unable to find a ds:Signature" in message or "Expected to find" in message:
        return f"the signature is not where edXML puts it: {message}"
    return f"the signature cannot be checked: {message}"


def _invalid(reason: str, layout: str | None = None, algorithm: str | None = None) -> SignatureVerdict:
    return SignatureVerdict(Verdict.INVALID, reason, layout, algorithm=algorithm)
