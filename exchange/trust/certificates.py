"""X.509 helpers shared by signature checking and the certificate registry.

How a certificate names its agency: a ``urn:qcvn102:organ:<OrganId>`` URI in its
subjectAltName (what the development CA writes). Real government certificates
usually do not carry it; those are pinned to their agency in the registry instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

ORGAN_URI_PREFIX = "urn:qcvn102:organ:"
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def fingerprint(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the DER encoding: how the registry names a certificate."""
    return certificate.fingerprint(hashes.SHA256())


def describe(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def organ_id_of(certificate: x509.Certificate) -> str | None:
    """The OrganId carried as a ``urn:qcvn102:organ:`` URI in the certificate's SAN, or None."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(ORGAN_URI_PREFIX):
            return uri.removeprefix(ORGAN_URI_PREFIX)
    return None


def is_signing_certificate(certificate: x509.Certificate) -> bool:
    """Key usage allows document signatures (digitalSignature or nonRepudiation)."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no restriction stated
    return usage.digital_signature or usage.content_commitment


def is_ca_certificate(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return constraints.ca
    return constraints.ca and usage.key_cert_sign


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (one or a chain) or a single DER certificate."""
    blocks = _PEM_BLOCK.findall(data)
    if blocks:
        return [x509.load_pem_x509_certificate(block) for block in blocks]
    return [x509.load_der_x509_certificate(data)]


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class CertificateFacts:
    """What the registry records of a certificate."""

    fingerprint: bytes
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    organ_id: str | None

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateFacts:
        return cls(
            fingerprint=fingerprint(certificate),
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            serial=format(certificate.serial_number, "x"),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            organ_id=organ_id_of(certificate),
        )


def import_problem(certificate: x509.Certificate, as_ca: bool, at: datetime) -> str | None:
    """Why a certificate may not enter the registry (as a CA or an agency's), or None."""
    if at > certificate.not_valid_after_utc:
        return f"it expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
    if at < certificate.not_valid_before_utc:
        return f"it is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
    if as_ca and not is_ca_certificate(certificate):
        return "it is not a CA certificate (basicConstraints CA:TRUE with keyCertSign)"
    if not as_ca and not is_signing_certificate(certificate):
        return "it is not a signing certificate (key usage lacks digitalSignature and nonRepudiation)"
    return None
