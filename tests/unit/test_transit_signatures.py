"""The envelope signature survives transit: each hop's TraceHeader is undone, nothing else is forgiven;
and packages signed by xmlsec1 (another implementation) verify here."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from exchange.edxml.builder import build_edoc
from exchange.edxml.package import parse_package
from exchange.edxml.parser import DSIG_NS, NS
from exchange.edxml.trace import append_trace_header
from exchange.trust import devca
from exchange.trust.signatures import TrustMaterial, Verdict, verify_signature
from exchange.trust.signing import Signer, sign_package
from tests.edxml_factories import small_edoc

SENDER = "000.00.01.H26"
CITY, NATIONAL = "000.00.00.H26", "000.00.00.G22"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pki() -> tuple[devca.Issued, devca.Issued, TrustMaterial]:
    ca = devca.make_ca()
    sender = devca.issue_signing_cert(ca, organ_id=SENDER, common_name="Sở Nội vụ")
    return ca, sender, TrustMaterial(trusted_cas=(ca.certificate,))


def hop(data: bytes, organ_id: str, minutes: int) -> bytes:
    return append_trace_header(data, organ_id, NOW + timedelta(minutes=minutes))


def verdict_of(data: bytes, trust: TrustMaterial):  # type: ignore[no-untyped-def]
    return verify_signature(parse_package(data).root, SENDER, trust, NOW)


@pytest.mark.parametrize("legacy_layout", [False, True])
def test_a_signed_package_verifies_after_each_hop(pki, legacy_layout: bool) -> None:  # type: ignore[no-untyped-def]
    _, sender, trust = pki
    signed = sign_package(
        build_edoc(small_edoc(sender=SENDER)),
        Signer(sender.certificate, sender.key),
        legacy_layout=legacy_layout,
    )
    assert verdict_of(signed, trust).transit_hops == 0
    once = hop(signed, CITY, 1)
    verdict = verdict_of(once, trust)
    assert (verdict.verdict, verdict.transit_hops) == (Verdict.VALID, 1)
    assert verdict.reason.endswith("; signed before 1 transit hop")
    twice = hop(once, NATIONAL, 2)
    verdict = verdict_of(twice, trust)
    assert (verdict.verdict, verdict.transit_hops) == (Verdict.VALID, 2)
    assert verdict.reason.endswith("; signed before 2 transit hops")
    assert verdict.as_dict()["transit_hops"] == 2


def test_content_changed_in_transit_is_still_invalid(pki) -> None:  # type: ignore[no-untyped-def]
    _, sender, trust = pki
    signed = sign_package(build_edoc(small_edoc(sender=SENDER)), Signer(sender.certificate, sender.key))
    moved = hop(signed, CITY, 1)
    for tampered in (
        moved.replace("thử nghiệm".encode(), "thử-nghiệm".encode()),  # the subject, after a hop
        hop(signed.replace("thử nghiệm".encode(), "thử-nghiệm".encode()), CITY, 1),  # before the hop
        moved.replace(
            b"</edXML:TraceHeader>\n", b"</edXML:TraceHeader> \n", 1
        ),  # a space in the sender's part
    ):
        verdict = verdict_of(tampered, trust)
        assert verdict.verdict is Verdict.INVALID
        assert verdict.reason == "the signed content was changed after signing (digest mismatch)"
        assert verdict.transit_hops == 0


def test_a_trace_header_inserted_anywhere_but_the_end_is_not_undone(pki) -> None:  # type: ignore[no-untyped-def]
    _, sender, trust = pki
    signed = sign_package(build_edoc(small_edoc(sender=SENDER)), Signer(sender.certificate, sender.key))
    # Two hops, then the first hop's TraceHeader moved in front of the sender's.
    root = etree.fromstring(hop(hop(signed, CITY, 1), NATIONAL, 2))
    traces = root.findall(f".//{{{NS}}}TraceHeader")
    traces[0].addprevious(traces[1])
    verdict = verify_signature(root, SENDER, trust, NOW)
    assert verdict.verdict is Verdict.INVALID


def _xmlsec1() -> str:
    found = shutil.which("xmlsec1")
    assert found is not None, "xmlsec1 is installed by `make test` (Debian package xmlsec1)"
    return found


def xmlsec1_signed(data: bytes, issued: devca.Issued, directory: Path) -> bytes:
    """Sign a package with xmlsec1: an enveloped RSA-SHA256 signature over the whole document, last in
    edXMLHeader, as a DMS using libxmlsec1 would write it."""
    root = etree.fromstring(data)
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert header is not None
    ds = f"{{{DSIG_NS}}}"
    signature = etree.SubElement(header, f"{ds}Signature", nsmap={"ds": DSIG_NS})
    info = etree.SubElement(signature, f"{ds}SignedInfo")
    etree.SubElement(
        info, f"{ds}CanonicalizationMethod", Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    etree.SubElement(
        info, f"{ds}SignatureMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    )
    reference = etree.SubElement(info, f"{ds}Reference", URI="")
    transforms = etree.SubElement(reference, f"{ds}Transforms")
    etree.SubElement(
        transforms, f"{ds}Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    )
    etree.SubElement(reference, f"{ds}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    etree.SubElement(reference, f"{ds}DigestValue")
    etree.SubElement(signature, f"{ds}SignatureValue")
    etree.SubElement(
        etree.SubElement(etree.SubElement(signature, f"{ds}KeyInfo"), f"{ds}X509Data"), f"{ds}X509Certificate"
    )
    template = directory / "template.edxml"
    template.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    (directory / "key.pem").write_bytes(issued.key_pem())
    (directory / "cert.pem").write_bytes(issued.cert_pem())
    out = directory / "signed.edxml"
    subprocess.run(
        [
            _xmlsec1(),
            "--sign",
            "--privkey-pem",
            f"{directory / 'key.pem'},{directory / 'cert.pem'}",
            "--output",
            str(out),
            str(template),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def test_a_package_signed_by_xmlsec1_verifies_here_and_after_transit(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, sender, trust = pki
    signed = xmlsec1_signed(build_edoc(small_edoc(sender=SENDER)), sender, tmp_path)
    assert b"<ds:SignatureValue>" in signed
    assert b"<ds:SignatureValue/>" not in signed
    verdict = verdict_of(signed, trust)
    assert verdict.verdict is Verdict.VALID, verdict.reason
    assert verdict.signer == "Sở Nội vụ"
    verdict = verdict_of(hop(signed, CITY, 1), trust)
    assert (verdict.verdict, verdict.transit_hops) == (Verdict.VALID, 1)
    tampered = signed.replace("thử nghiệm".encode(), "thử-nghiệm".encode())
    assert verdict_of(tampered, trust).verdict is Verdict.INVALID
