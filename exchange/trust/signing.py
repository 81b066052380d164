"""Signing by the axis: enveloped XML-DSig (RSA-SHA256) over a whole edXML document.

What a DMS does before sending: the axis itself signs no XML (its receipts and
checkpoints are JWS, its pushes carry a header signature), so this serves tests,
benchmarks and the demo, which sign packages as a sender would. Anyone holding the
certificate can verify the result with this code or any XML-DSig tool (xmlsec1).
The signature is placed last in ``edXMLHeader``, where edXML puts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, SignatureConstructionMethod
from signxml.signer import XMLSigner

from exchange.edxml.parser import DSIG_NS, NS, make_parser, parse_xml


@dataclass(frozen=True)
class ReceiptKey:
    """The axis's receipt key (ECDSA P-256, for ES256) and its certificate, issued by the axis certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class Signer:
    """A private key with its certificate (and any intermediates to send along).

    ``receipt_key``: when set, receipts are signed with it (ES256) rather than with ``key`` (RS256).
    """

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    receipt_key: ReceiptKey | None = None

    @classmethod
    def from_files(cls, certificate_path: Path, key_path: Path) -> Signer:
        from exchange.trust.certificates import load_certificates

        certificates = load_certificates(certificate_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} does not hold an RSA private key")
        return cls(certificates[0], key, tuple(certificates[1:]))


class _Signer(XMLSigner):
    """signxml's signer, re-parsing with the axis's hardened parser (large attachments included)."""

    @property
    def parser(self) -> etree.XMLParser:
        return make_parser()


class _LegacySigner(_Signer):
    """Allows RSA-SHA1, which signxml refuses by default: only to imitate legacy DMS in tests."""

    def check_deprecated_methods(self) -> None:
        return None


def sign_xml(root: etree._Element, signer: Signer, *, legacy_sha1: bool = False) -> etree._Element:
    """Sign a document tree in place of a placeholder at the end of edXMLHeader; return the signed root."""
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    if header is None:
        raise ValueError("not an edXML document: edXMLEnvelope/edXMLHeader is missing")
    etree.SubElement(header, f"{{{DSIG_NS}}}Signature", Id="placeholder", nsmap={"ds": DSIG_NS})
    signer_class = _LegacySigner if legacy_sha1 else _Signer
    xml_signer = signer_class(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="rsa-sha1" if legacy_sha1 else "rsa-sha256",
        digest_algorithm="sha1" if legacy_sha1 else "sha256",
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed: etree._Element = xml_signer.sign(root, key=signer.key, cert=[signer.certificate, *signer.chain])
    return signed


def sign_package(
    data: bytes, signer: Signer, *, legacy_sha1: bool = False, legacy_layout: bool = False
) -> bytes:
    """Return ``data`` (an edXML package) with an enveloped signature by ``signer``.

    ``legacy_layout`` writes the signature as the national SDK does: unprefixed, in the
    edXML namespace (the XML-DSig signature with its namespace declaration dropped).
    """
    signed = sign_xml(parse_xml(data), signer, legacy_sha1=legacy_sha1)
    if legacy_layout:
        _move_to_edxml_namespace(signed)
    result: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    return result


def _move_to_edxml_namespace(root: etree._Element) -> None:
    signature = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/{{{DSIG_NS}}}Signature")
    assert signature is not None
    legacy = _copy_as(signature, etree.Element(f"{{{NS}}}Signature", nsmap={None: NS}))
    signature.getparent().replace(signature, legacy)
    etree.cleanup_namespaces(root)


def _copy_as(source: etree._Element, target: etree._Element) -> etree._Element:
    target.text, target.tail = source.text, source.tail
    for name, value in source.attrib.items():
        target.set(name, value)
    for child in source:
        _copy_as(child, etree.SubElement(target, f"{{{NS}}}{etree.QName(child).localname}"))
    return target
