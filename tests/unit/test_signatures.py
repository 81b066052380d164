"""Signature verdicts, each case with its own fixture made by the development CA (certs/)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.package import parse_package
from exchange.edxml.parser import DSIG_NS, NS
from exchange.model import SignaturePolicy
from exchange.trust import devca, signatures
from exchange.trust.certificates import fingerprint
from exchange.trust.policy import check_signature
from exchange.trust.signatures import SignatureVerdict, TrustMaterial, Verdict, verify_signature
from exchange.trust.signing import Signer, sign_package
from tests.edxml_factories import sample, small_edoc, small_status

SENDER = "000.00.01.H26"
NOW = datetime.now(UTC)


class Pki:
    def __init__(self) -> None:
        self.ca = devca.make_ca()
        self.rogue_ca = devca.make_ca("Rogue CA")
        self.sender = devca.issue_signing_cert(self.ca, organ_id=SENDER, common_name="Sở Nội vụ")
        self.other = devca.issue_signing_cert(self.ca, organ_id="000.00.02.H26", common_name="Sở Tài chính")
        self.expired = devca.issue_signing_cert(
            self.ca,
            organ_id=SENDER,
            common_name="Sở Nội vụ (2020)",
            not_before=NOW - timedelta(days=800),
            not_after=NOW - timedelta(days=70),
        )
        self.untrusted = devca.issue_signing_cert(self.rogue_ca, organ_id=SENDER, common_name="Impostor")
        self.no_organ = devca.issue_signing_cert(self.ca, organ_id=None, common_name="Văn thư Sở Nội vụ")
        self.encipher = devca.issue_signing_cert(
            self.ca, organ_id=SENDER, common_name="TLS only", key_usage="encipherment"
        )
        self.trust = TrustMaterial(trusted_cas=(self.ca.certificate,))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def signed(issued: devca.Issued, **options: bool) -> bytes:
    return sign_package(
        build_edoc(small_edoc(sender=SENDER)), Signer(issued.certificate, issued.key), **options
    )


def verdict_of(data: bytes, trust: TrustMaterial, sender: str = SENDER) -> SignatureVerdict:
    return verify_signature(parse_package(data).root, sender, trust, NOW)


def test_a_valid_signature(pki: Pki) -> None:
    verdict = verdict_of(signed(pki.sender), pki.trust)
    assert verdict.verdict is Verdict.VALID
    assert verdict.reason == (
        "signed by Sở Nội vụ for 000.00.01.H26; certificate issued by Exchange Development CA"
    )
    assert (verdict.signer, verdict.organ_id, verdict.algorithm) == ("Sở Nội vụ", SENDER, "rsa-sha256")
    assert verdict.fingerprint == fingerprint(pki.sender.certificate).hex()
    assert verdict.signed_root is not None


def test_what_is_signed_is_what_is_read_afterwards(pki: Pki) -> None:
    # A plain document is read as received: the tree is exactly what was signed, and no copy is made.
    root = parse_package(signed(pki.sender)).root
    verdict = verify_signature(root, SENDER, pki.trust, NOW)
    assert verdict.signed_root is root
    assert verdict.signed_root.findtext(f".//{{{NS}}}Subject") == "V/v thử nghiệm trục liên thông"
    # A comment added after signing is outside the signature (canonicalisation drops it), yet it
    # splits the text around it: what is read must be the signed text, not the part before it.
    commented = signed(pki.sender).replace("thử nghiệm".encode(), "thử <!-- -->nghiệm".encode())
    root = parse_package(commented).root
    assert root.findtext(f".//{{{NS}}}Subject") == "V/v thử "
    verdict = verify_signature(root, SENDER, pki.trust, NOW)
    assert verdict.verdict is Verdict.VALID
    assert verdict.signed_root is not None
    assert verdict.signed_root is not root
    assert verdict.signed_root.find(f".//{{{DSIG_NS}}}Signature") is None
    assert verdict.signed_root.findtext(f".//{{{NS}}}Subject") == "V/v thử nghiệm trục liên thông"


def test_one_changed_text_node(pki: Pki) -> None:
    data = signed(pki.sender).replace("thử nghiệm".encode(), "thử-nghiệm".encode())
    verdict = verdict_of(data, pki.trust)
    assert verdict.verdict is Verdict.INVALID
    assert verdict.reason == "the signed content was changed after signing (digest mismatch)"


def test_a_changed_attachment(pki: Pki) -> None:
    original = base64.b64encode(b"%PDF-1.7 test")
    forged = base64.b64encode(b"%PDF-1.7 TEST")
    data = signed(pki.sender).replace(original, forged)
    assert data != signed(pki.sender)
    assert verdict_of(data, pki.trust).verdict is Verdict.INVALID


def test_a_signature_by_another_agency(pki: Pki) -> None:
    verdict = verdict_of(signed(pki.other), pki.trust)
    assert verdict.verdict is Verdict.UNTRUSTED
    assert verdict.reason == "the certificate belongs to 000.00.02.H26, not to the sender 000.00.01.H26"


def test_an_expired_certificate(pki: Pki) -> None:
    verdict = verdict_of(signed(pki.expired), pki.trust)
    assert verdict.verdict is Verdict.UNTRUSTED
    assert verdict.reason.startswith("the certificate of Sở Nội vụ (2020) expired on ")


def test_a_revoked_certificate(pki: Pki) -> None:
    trust = replace(pki.trust, revoked=frozenset({fingerprint(pki.sender.certificate)}))
    verdict = verdict_of(signed(pki.sender), trust)
    assert verdict.verdict is Verdict.UNTRUSTED
    assert verdict.reason == "the certificate of Sở Nội vụ has been revoked"


def test_an_untrusted_ca(pki: Pki) -> None:
    verdict = verdict_of(signed(pki.untrusted), pki.trust)
    assert verdict.verdict is Verdict.UNTRUSTED
    assert verdict.reason == ("the certificate of Impostor does not chain to a trusted CA (issuer: Rogue CA)")


def test_a_certificate_not_for_signing(pki: Pki) -> None:
    verdict = verdict_of(signed(pki.encipher), pki.trust)
    assert verdict.verdict is Verdict.UNTRUSTED
    assert verdict.reason == "the certificate of TLS only is not for signing (key usage)"


def test_a_pinned_certificate_needs_no_organ_in_it(pki: Pki) -> None:
    data = signed(pki.no_organ)
    unpinned = verdict_of(data, pki.trust)
    assert unpinned.verdict is Verdict.UNTRUSTED
    assert "names no agency and is not pinned" in unpinned.reason
    pinned = verdict_of(data, replace(pki.trust, pinned=frozenset({fingerprint(pki.no_organ.certificate)})))
    assert pinned.verdict is Verdict.VALID
    assert pinned.reason.endswith("certificate pinned to the sender")


def _rewrap(data: bytes, move) -> bytes:  # type: ignore[no-untyped-def]
    root = etree.fromstring(data)
    move(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_a_signature_moved_under_a_wrapper_element(pki: Pki) -> None:
    def wrap(root: etree._Element) -> None:
        header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
        signature = header.find(f"{{{DSIG_NS}}}Signature")
        wrapper = etree.SubElement(header, f"{{{NS}}}Wrapper")
        wrapper.append(signature)

    data = _rewrap(signed(pki.sender), wrap)
    root = etree.fromstring(data)  # the schema refuses this too; the verdict must stand on its own
    verdict = verify_signature(root, SENDER, pki.trust, NOW)
    assert verdict.verdict is Verdict.INVALID
    assert "signature-wrapping" in verdict.reason
    assert "/edXMLHeader/Wrapper/Signature" in verdict.reason


def test_a_signed_document_wrapped_inside_a_forged_one(pki: Pki) -> None:
    genuine = etree.fromstring(signed(pki.sender))
    forged = etree.fromstring(build_edoc(small_edoc(sender=SENDER, recipients=("000.00.99.H26",))))
    forged.append(genuine)  # XSW: the valid signature travels inside, the forged header outside
    verdict = verify_signature(forged, SENDER, pki.trust, NOW)
    assert verdict.verdict is Verdict.INVALID
    assert "signature-wrapping" in verdict.reason


def test_two_signatures(pki: Pki) -> None:
    def duplicate(root: etree._Element) -> None:
        header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
        header.append(etree.fromstring(etree.tostring(header.find(f"{{{DSIG_NS}}}Signature"))))

    verdict = verdict_of(_rewrap(signed(pki.sender), duplicate), pki.trust)
    assert verdict.verdict is Verdict.INVALID
    assert verdict.reason.startswith("the package carries 2 signatures (lines ")


def test_sha1_under_both_policies(pki: Pki) -> None:
    data = signed(pki.sender, legacy_sha1=True)
    refused = verdict_of(data, pki.trust)
    assert refused.verdict is Verdict.INVALID
    assert refused.reason == (
        "the signature uses rsa-sha1, a legacy algorithm this agency's policy does not "
        "accept (RSA-SHA256 is expected)"
    )
    allowed = verdict_of(data, replace(pki.trust, allow_sha1=True))
    assert allowed.verdict is Verdict.VALID
    assert allowed.algorithm == "rsa-sha1"


def test_a_legacy_namespace_signature(pki: Pki) -> None:
    data = signed(pki.sender, legacy_layout=True)
    parsed = parse_package(data)
    assert [slot.layout for slot in parsed.signatures] == ["edxml-namespace"]
    verdict = verify_signature(parsed.root, SENDER, pki.trust, NOW)
    assert verdict.verdict is Verdict.VALID
    assert verdict.layout == "edxml-namespace"
    tampered = data.replace("thử nghiệm".encode(), b"thu nghiem")
    assert verdict_of(tampered, pki.trust).verdict is Verdict.INVALID


def test_the_published_samples_carry_placeholder_signatures(pki: Pki) -> None:
    verdict = verdict_of(sample("edoc_new.edxml"), pki.trust, sender="002.00.20.H13")
    assert verdict.verdict is Verdict.INVALID
    assert verdict.reason == "KeyInfo holds no readable X.509 certificate (a placeholder signature?)"


@pytest.mark.parametrize(
    ("policy", "accepted"),
    [
        (SignaturePolicy.REQUIRED, False),
        (SignaturePolicy.IF_PRESENT, True),
        (SignaturePolicy.RECORD, True),
        (SignaturePolicy.OFF, True),
    ],
)
def test_an_absent_signature_under_each_policy(pki: Pki, policy: SignaturePolicy, accepted: bool) -> None:
    root = parse_package(build_edoc(small_edoc(sender=SENDER))).root
    decision = check_signature(root, SENDER, policy, pki.trust, NOW)
    assert decision.accepted is accepted
    expected = Verdict.NOT_CHECKED if policy is SignaturePolicy.OFF else Verdict.ABSENT
    assert decision.verdict.verdict is expected


@pytest.mark.parametrize(
    ("policy", "accepted"),
    [
        (SignaturePolicy.REQUIRED, False),
        (SignaturePolicy.IF_PRESENT, False),
        (SignaturePolicy.RECORD, True),
        (SignaturePolicy.OFF, True),
    ],
)
def test_a_bad_signature_under_each_policy(pki: Pki, policy: SignaturePolicy, accepted: bool) -> None:
    root = parse_package(sample("edoc_new.edxml")).root
    decision = check_signature(root, "002.00.20.H13", policy, pki.trust, NOW)
    assert decision.accepted is accepted


def test_an_empty_digital_signature_element_counts_as_absent(pki: Pki) -> None:
    data = build_edoc(small_edoc(sender=SENDER)).replace(
        b"</edXML:TraceHeaderList>", b"</edXML:TraceHeaderList><edXML:DigitalSignature/>"
    )
    parsed = parse_package(data)
    assert parsed.signatures[0].empty
    assert verify_signature(parsed.root, SENDER, pki.trust, NOW).verdict is Verdict.ABSENT


def test_axis_signed_status_packages_verify_with_the_axis_certificate(pki: Pki, tmp_path: Path) -> None:
    axis = devca.issue_signing_cert(pki.ca, organ_id=None, common_name="exchange-axis")
    data = sign_package(build_status(small_status()), Signer(axis.certificate, axis.key))
    pinned = replace(pki.trust, pinned=frozenset({fingerprint(axis.certificate)}))
    assert verdict_of(data, pinned, sender="000.00.00.G22").verdict is Verdict.VALID
    assert _xmlsec1_verifies(data, axis.cert_pem(), tmp_path, option="--pubkey-cert-pem")


def _xmlsec1_verifies(data: bytes, pem: bytes, directory: Path, option: str = "--trusted-pem") -> bool:
    """Ask xmlsec1 (libxmlsec1, an independent implementation) whether the signature holds."""
    (directory / "package.edxml").write_bytes(data)
    (directory / "trusted.pem").write_bytes(pem)
    xmlsec1 = shutil.which("xmlsec1")
    assert xmlsec1 is not None, "xmlsec1 is installed by `make test` (Debian package xmlsec1)"
    result = subprocess.run(
        [xmlsec1, "--verify", option, str(directory / "trusted.pem"), str(directory / "package.edxml")],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def test_an_independent_implementation_agrees(pki: Pki, tmp_path: Path) -> None:
    data = signed(pki.sender)
    assert verdict_of(data, pki.trust).verdict is Verdict.VALID
    assert _xmlsec1_verifies(data, pki.ca.cert_pem(), tmp_path)
    tampered = data.replace("thử nghiệm".encode(), "thử-nghiệm".encode())
    assert not _xmlsec1_verifies(tampered, pki.ca.cert_pem(), tmp_path)


def test_issuance_is_kept_by_fingerprints_never_by_the_certificates(pki: Pki) -> None:
    """A refused sender's certificate (as large as a package allows) must not stay in memory."""
    signatures._ISSUED.clear()
    verdict = verdict_of(signed(pki.untrusted), pki.trust)
    assert verdict.verdict is Verdict.UNTRUSTED
    assert signatures._ISSUED
    assert all(len(child) == len(issuer) == 32 for child, issuer in signatures._ISSUED)
    assert not any(isinstance(value, x509.Certificate) for key in signatures._ISSUED for value in key)


def test_issuance_facts_are_kept_up_to_the_bound_then_dropped(pki: Pki) -> None:
    signatures._ISSUED.clear()
    filler = {(n.to_bytes(32, "big"), bytes(32)): False for n in range(signatures._ISSUED_KEPT - 1)}
    signatures._ISSUED.update(filler)
    verdict_of(signed(pki.sender), pki.trust)  # one fact more: at the bound, all kept
    assert len(signatures._ISSUED) == signatures._ISSUED_KEPT
    verdict_of(signed(pki.untrusted), pki.trust)  # past it: dropped, then the new fact kept
    assert 1 <= len(signatures._ISSUED) < signatures._ISSUED_KEPT
    assert not filler.keys() & signatures._ISSUED.keys()


def test_what_a_certificate_names_is_read_once_and_kept_only_when_short(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    signatures._NAMED.clear()
    first = verdict_of(signed(pki.sender), pki.trust)
    digest = fingerprint(pki.sender.certificate)
    assert signatures._NAMED[digest].signer == first.signer == "Sở Nội vụ"
    # Kept facts are what later verdicts say: one planted here shows in the next reason.
    signatures._NAMED[digest] = replace(signatures._NAMED[digest], issuer="Planted CA")
    assert verdict_of(signed(pki.sender), pki.trust).reason.endswith("certificate issued by Planted CA")

    # Names up to the bound are kept; one character past it (the sender writes its certificate),
    # they are read each time instead.
    names = len("Sở Nội vụ") + len("Exchange Development CA") + len(SENDER)
    signatures._NAMED.clear()
    monkeypatch.setattr(signatures, "_NAMED_KEPT_CHARS", names)
    verdict_of(signed(pki.sender), pki.trust)
    assert digest in signatures._NAMED
    signatures._NAMED.clear()
    monkeypatch.setattr(signatures, "_NAMED_KEPT_CHARS", names - 1)
    verdict = verdict_of(signed(pki.sender), pki.trust)
    assert (verdict.verdict, verdict.signer) == (Verdict.VALID, "Sở Nội vụ")
    assert not signatures._NAMED
