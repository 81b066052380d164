"""A development certificate authority: a root, document-signing and TLS certificates for tests and demos.

Nothing here is for production: keys are written unencrypted and the root trusts itself.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange.edxml.ids import is_organ_id
from exchange.trust.certificates import ORGAN_URI_PREFIX

DOCUMENT_SIGNING_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
DEV_ORGANIZATION = "Exchange development (not for production)"

_CA_LIFETIME = timedelta(days=3653)
_LEAF_LIFETIME = timedelta(days=731)
# Backdated so a certificate made now is valid on a machine whose clock runs a little behind.
_BACKDATE = timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def make_ca(
    common_name: str = "Exchange Development CA",
    *,
    key_size: int = 2048,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """A self-signed root that may sign end-entity certificates only (path length 0)."""
    return _issue(
        None,
        subject=_name(common_name),
        key_size=key_size,
        basic=x509.BasicConstraints(ca=True, path_length=0),
        usage=_key_usage(key_cert_sign=True, crl_sign=True),
        extensions=(),
        validity=_validity(not_before, not_after, _CA_LIFETIME),
    )


def issue_signing_cert(
    ca: Issued,
    *,
    organ_id: str | None,
    common_name: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_size: int = 2048,
    key_usage: str = "signing",
) -> Issued:
    """A document-signing certificate shaped like one a government CA issues to an agency.

    ``key_usage`` is "signing" (digitalSignature, nonRepudiation) or "encipherment" (no signing usage).
    """
    usage = _LEAF_USAGES.get(key_usage)
    if usage is None:
        raise ValueError(f"unknown key usage {key_usage!r}; known: {', '.join(_LEAF_USAGES)}")
    extensions: list[x509.ExtensionType] = [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_OID])
    ]
    if organ_id is not None:
        extensions.append(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ORGAN_URI_PREFIX + organ_id)])
        )
    return _issue(
        ca,
        subject=_name(common_name, organ_id),
        key_size=key_size,
        basic=x509.BasicConstraints(ca=False, path_length=None),
        usage=usage,
        extensions=extensions,
        validity=_validity(not_before, not_after, _LEAF_LIFETIME),
    )


def issue_tls_server_cert(
    ca: Issued,
    *,
    hostnames: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_size: int = 2048,
) -> Issued:
    """A TLS server certificate for the given DNS names and IP addresses (the first one is the CN)."""
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    if not names:
        raise ValueError("a server certificate needs at least one host name or IP address")
    return _issue(
        ca,
        subject=_name([*hostnames, *ip_addresses][0]),
        key_size=key_size,
        basic=x509.BasicConstraints(ca=False, path_length=None),
        usage=_key_usage(digital_signature=True, key_encipherment=True),
        extensions=(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            x509.SubjectAlternativeName(names),
        ),
        validity=_validity(not_before, not_after, _LEAF_LIFETIME),
    )


def issue_tls_client_cert(
    ca: Issued,
    *,
    system_name: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_size: int = 2048,
) -> Issued:
    """A TLS client certificate naming a document-management system (CN=system_name)."""
    return _issue(
        ca,
        subject=_name(system_name),
        key_size=key_size,
        basic=x509.BasicConstraints(ca=False, path_length=None),
        usage=_key_usage(digital_signature=True),
        extensions=(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),),
        validity=_validity(not_before, not_after, _LEAF_LIFETIME),
    )


def write_dev_pki(
    directory: Path, agencies: Iterable[tuple[str, str]], *, axis_name: str = "exchange-axis"
) -> dict[str, Path]:
    """Write a fresh CA, the axis's signing and TLS certificates, and a signing certificate per agency.

    ``agencies`` holds (OrganId, name) pairs. Existing files are overwritten; returns logical name -> path.
    """
    agencies = list(agencies)
    for organ_id, _ in agencies:
        # The OrganId becomes part of a file name, so it must not be able to name another directory.
        if not is_organ_id(organ_id):
            raise ValueError(f"{organ_id!r} is not a QCVN 102 OrganId")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    written: dict[str, Path] = {}

    def save(label: str, stem: str, issued: Issued) -> None:
        written[label] = _write(directory / f"{stem}.pem", issued.cert_pem(), private=False)
        written[_key_label(label)] = _write(directory / f"{stem}.key.pem", issued.key_pem(), private=True)

    save("ca", "ca", ca)
    save("axis", "axis-signing", issue_signing_cert(ca, organ_id=None, common_name=axis_name))
    save("server", "server", issue_tls_server_cert(ca))
    for organ_id, name in agencies:
        save(
            f"agency:{organ_id}",
            f"agency-{organ_id}",
            issue_signing_cert(ca, organ_id=organ_id, common_name=name),
        )
    return written


def _issue(
    issuer: Issued | None,
    *,
    subject: x509.Name,
    key_size: int,
    basic: x509.BasicConstraints,
    usage: x509.KeyUsage,
    extensions: Iterable[x509.ExtensionType],
    validity: tuple[datetime, datetime],
    critical_extensions: Iterable[x509.ExtensionType] = (),
) -> Issued:
    """Build and sign one certificate; ``issuer=None`` makes it self-signed."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    signer = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(basic, critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    for extension in critical_extensions:
        builder = builder.add_extension(extension, critical=True)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def _name(common_name: str, organizational_unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION))
    if organizational_unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


# "encipherment" exists so tests can hold a certificate that must be refused for signatures.
_LEAF_USAGES = {
    "signing": _key_usage(digital_signature=True, content_commitment=True),
    "encipherment": _key_usage(key_encipherment=True, data_encipherment=True),
}


def _validity(
    not_before: datetime | None, not_after: datetime | None, lifetime: timedelta
) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    start = now - _BACKDATE if not_before is None else not_before
    end = now + lifetime if not_after is None else not_after
    return start, end


def _key_label(label: str) -> str:
    """The logical name of a certificate's key: "ca" -> "ca_key", "agency:X" -> "agency_key:X"."""
    kind, sep, rest = label.partition(":")
    return f"{kind}_key{sep}{rest}"


def _write(path: Path, data: bytes, *, private: bool) -> Path:
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        # os.open's mode applies only to a new file; an overwritten key must lose wider permissions too.
        os.fchmod(file.fileno(), mode)
        file.write(data)
    return path


# --- document signing (PDF): a document CA, person and organisation certificates, signed PDFs ----


def issue_document_cert(
    ca: Issued,
    *,
    kind: str,
    common_name: str,
    organization: str,
    organ_id: str | None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_size: int = 2048,
    key_usage: str = "signing",
) -> Issued:
    """A PDF-signing certificate for a person ("person") or an agency's seal ("organization").

    Shaped so that ``exchange.trust.pdf_signatures.signer_kind`` can tell them apart (a policy OID,
    and CN = O for an organisation) and ``organ_id_in`` finds the OrganId (subjectAltName URI).
    """
    from exchange.trust.pdf_signatures import ORGANIZATION_POLICY_OID, PERSON_POLICY_OID

    if kind not in ("person", "organization"):
        raise ValueError(f"kind must be person or organization, not {kind!r}")
    usage = _LEAF_USAGES.get(key_usage)
    if usage is None:
        raise ValueError(f"unknown key usage {key_usage!r}; known: {', '.join(_LEAF_USAGES)}")
    policy = PERSON_POLICY_OID if kind == "person" else ORGANIZATION_POLICY_OID
    extensions: list[x509.ExtensionType] = [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_OID]),
        x509.CertificatePolicies([x509.PolicyInformation(policy, None)]),
    ]
    if organ_id is not None:
        extensions.append(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ORGAN_URI_PREFIX + organ_id)])
        )
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if organ_id is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organ_id))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return _issue(
        ca,
        subject=x509.Name(attributes),
        key_size=key_size,
        basic=x509.BasicConstraints(ca=False, path_length=None),
        usage=usage,
        extensions=extensions,
        validity=_validity(not_before, not_after, _LEAF_LIFETIME),
    )


def make_crl(
    ca: Issued, revoked: Iterable[tuple[x509.Certificate, datetime]], *, next_update_days: int = 7
) -> bytes:
    """A DER certificate revocation list by ``ca`` naming each (certificate, revocation time)."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=next_update_days))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    for certificate, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(when)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def make_pdf(text: str = "Văn bản thử nghiệm", *, pages: int = 1, padding: int = 0) -> bytes:
    """A small valid PDF with ``pages`` pages of one line of text; ``padding`` adds that many bytes
    (an uncompressed, unused stream) so benchmarks can have PDFs of a given size."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter()
    for number in range(pages):
        writer.insert_page(_page(writer, f"{text} - {number + 1}"))
    if padding > 0:
        filler = generic.StreamObject(stream_data=os.urandom(padding))
        writer.root[generic.pdf_name("/ExchangePadding")] = writer.add_object(filler)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def issue_tsa_cert(ca: Issued, *, common_name: str = "Exchange Development TSA") -> Issued:
    """A time-stamping authority certificate (critical extended key usage timeStamping)."""
    builder_extensions: list[x509.ExtensionType] = [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING])
    ]
    issued = _issue(
        ca,
        subject=_name(common_name),
        key_size=2048,
        basic=x509.BasicConstraints(ca=False, path_length=None),
        usage=_key_usage(digital_signature=True, content_commitment=True),
        extensions=(),
        validity=_validity(None, None, _LEAF_LIFETIME),
        critical_extensions=builder_extensions,
    )
    return issued


def sign_pdf(
    pdf: bytes,
    signer: Issued,
    *,
    field_name: str,
    chain: Sequence[Issued] = (),
    timestamp_by: Issued | None = None,
) -> bytes:
    """``pdf`` with a new signature by ``signer`` in field ``field_name``, as an incremental update.

    Sign with the person's certificate first and the organisation's second, as a document is
    signed then sealed. ``chain`` holds the CA certificates to embed beside the signer's;
    ``timestamp_by`` a TSA certificate (``issue_tsa_cert``) whose token then dates the signature.
    """
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key = asn1_keys.PrivateKeyInfo.load(
        signer.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pdf_signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(signer.cert_der()),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(ca.cert_der()) for ca in chain]
        ),
    )
    timestamper = None
    if timestamp_by is not None:
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

        timestamper = DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(timestamp_by.cert_der()),
            tsa_key=asn1_keys.PrivateKeyInfo.load(
                timestamp_by.key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ),
        )

    def sign() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        metadata = signers.PdfSignatureMetadata(field_name=field_name)
        data: bytes = signers.sign_pdf(
            writer, metadata, signer=pdf_signer, timestamper=timestamper
        ).getvalue()
        return data

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return sign()
    # pyHanko's synchronous API runs its own event loop, which cannot nest in a running one (a test
    # or the demo traffic calling from async code): sign in a thread then (a development helper).
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(sign).result()


def sign_official_pdf(pdf: bytes, person: Issued, organization: Issued, ca: Issued) -> bytes:
    """A PDF signed by a person and then sealed by the agency: what the official-document rule wants."""
    signed = sign_pdf(pdf, person, field_name="NguoiKy", chain=(ca,))
    return sign_pdf(signed, organization, field_name="CoQuan", chain=(ca,))


def write_dev_document_pki(directory: Path, agencies: Iterable[tuple[str, str]]) -> dict[str, Path]:
    """Write a document CA and, per agency, a person's and the agency's PDF-signing certificates."""
    agencies = list(agencies)
    for organ_id, _ in agencies:
        if not is_organ_id(organ_id):
            raise ValueError(f"{organ_id!r} is not a QCVN 102 OrganId")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca("Exchange Development Document CA")
    written: dict[str, Path] = {}

    def save(label: str, stem: str, issued: Issued) -> None:
        written[label] = _write(directory / f"{stem}.pem", issued.cert_pem(), private=False)
        written[_key_label(label)] = _write(directory / f"{stem}.key.pem", issued.key_pem(), private=True)

    save("document_ca", "document-ca", ca)
    for organ_id, name in agencies:
        save(
            f"document_person:{organ_id}",
            f"document-person-{organ_id}",
            issue_document_cert(
                ca, kind="person", common_name=f"Lãnh đạo {name}", organization=name, organ_id=organ_id
            ),
        )
        save(
            f"document_organization:{organ_id}",
            f"document-organization-{organ_id}",
            issue_document_cert(
                ca, kind="organization", common_name=name, organization=name, organ_id=organ_id
            ),
        )
    written["document_crl"] = _write(directory / "document-ca.crl", make_crl(ca, []), private=False)
    return written


def load_issued(certificate: Path, key: Path) -> Issued:
    """A certificate and its unencrypted PEM key, as written above."""
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{key} does not hold an RSA private key")
    return Issued(x509.load_pem_x509_certificate(certificate.read_bytes()), loaded)


def _page(writer: Any, text: str) -> Any:
    from pyhanko.pdf_utils import generic

    name = generic.pdf_name
    # Helvetica has no Vietnamese glyphs; the text is written in ASCII so the page stays readable.
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    content = generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (" + safe + b") Tj ET")
    font = generic.DictionaryObject(
        {
            name("/Type"): name("/Font"),
            name("/Subtype"): name("/Type1"),
            name("/BaseFont"): name("/Helvetica"),
        }
    )
    return generic.DictionaryObject(
        {
            name("/Type"): name("/Page"),
            name("/MediaBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)]),
            name("/Contents"): writer.add_object(content),
            name("/Resources"): generic.DictionaryObject(
                {name("/Font"): generic.DictionaryObject({name("/F1"): writer.add_object(font)})}
            ),
        }
    )
