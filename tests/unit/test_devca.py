import ipaddress
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange.trust.certificates import organ_id_of
from exchange.trust.devca import (
    DOCUMENT_SIGNING_OID,
    Issued,
    issue_signing_cert,
    issue_tls_client_cert,
    issue_tls_server_cert,
    load_issued,
    make_ca,
    make_pdf,
    sign_official_pdf,
    write_dev_pki,
)
from exchange.trust.pdf_signatures import DocumentTrust, PdfLimits, validate_pdf

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca()


def ext(cert: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return cert.extensions.get_extension_for_class(kind)


def assert_issued_by(cert: x509.Certificate, ca: Issued) -> None:
    public_key = ca.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    public_key.verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
    )
    assert cert.issuer == ca.certificate.subject


def test_ca_is_a_self_signed_certificate_authority(ca: Issued) -> None:
    cert = ca.certificate
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert_issued_by(cert, ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "VN"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > timedelta(days=3650)


def test_signing_cert_chains_to_the_ca_and_carries_the_organ_id(ca: Issued) -> None:
    issued = issue_signing_cert(ca, organ_id="000.00.01.H26", common_name="Sở Nội vụ")
    cert = issued.certificate
    assert_issued_by(cert, ca)
    assert not ext(cert, x509.BasicConstraints).value.ca
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert set(ext(cert, x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        DOCUMENT_SIGNING_OID,
    }
    aki = ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ext(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert organ_id_of(cert) == "000.00.01.H26"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "000.00.01.H26"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Sở Nội vụ"
    assert issued.key.public_key() == cert.public_key()


def test_signing_cert_without_organ_id_has_no_san(ca: Issued) -> None:
    cert = issue_signing_cert(ca, organ_id=None, common_name="exchange-axis").certificate
    assert organ_id_of(cert) is None
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)


def test_encipherment_cert_cannot_sign(ca: Issued) -> None:
    cert = issue_signing_cert(
        ca, organ_id="000.00.02.H26", common_name="Sở Tài chính", key_usage="encipherment"
    ).certificate
    usage = ext(cert, x509.KeyUsage).value
    assert not usage.digital_signature
    assert not usage.content_commitment
    assert usage.key_encipherment
    assert usage.data_encipherment


def test_unknown_key_usage_is_refused(ca: Issued) -> None:
    with pytest.raises(ValueError, match="unknown key usage"):
        issue_signing_cert(ca, organ_id=None, common_name="x", key_usage="everything")


def test_expired_cert_with_explicit_dates(ca: Issued) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    end = datetime(2021, 1, 1, tzinfo=UTC)
    cert = issue_signing_cert(
        ca, organ_id="000.00.03.H26", common_name="Sở Xây dựng", not_before=start, not_after=end
    ).certificate
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc == end
    assert cert.not_valid_after_utc < datetime.now(UTC)
    assert_issued_by(cert, ca)


def test_tls_server_cert_names_its_hosts(ca: Issued) -> None:
    cert = issue_tls_server_cert(
        ca, hostnames=("localhost", "axis.example"), ip_addresses=("127.0.0.1", "::1")
    ).certificate
    assert_issued_by(cert, ca)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "axis.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_tls_client_cert_names_its_system(ca: Issued) -> None:
    cert = issue_tls_client_cert(ca, system_name="so-noi-vu").certificate
    assert_issued_by(cert, ca)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_encipherment
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "so-noi-vu"


def test_write_dev_pki_writes_loadable_files_with_private_keys(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    paths = write_dev_pki(out, [("000.00.00.G22", "Văn phòng Chính phủ")], axis_name="axis-test")
    assert {label: path.name for label, path in paths.items()} == {
        "ca": "ca.pem",
        "ca_key": "ca.key.pem",
        "axis": "axis-signing.pem",
        "axis_key": "axis-signing.key.pem",
        "server": "server.pem",
        "server_key": "server.key.pem",
        "agency:000.00.00.G22": "agency-000.00.00.G22.pem",
        "agency_key:000.00.00.G22": "agency-000.00.00.G22.key.pem",
    }
    ca_cert = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    for label, path in paths.items():
        assert path.parent == out
        if "_key" in label:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(paths[label.replace("_key", "")].read_bytes())
            assert isinstance(key, rsa.RSAPrivateKey)
            assert key.public_key() == cert.public_key()
        else:
            assert x509.load_pem_x509_certificate(path.read_bytes()).issuer == ca_cert.subject
    agency = x509.load_pem_x509_certificate(paths["agency:000.00.00.G22"].read_bytes())
    assert organ_id_of(agency) == "000.00.00.G22"
    axis = x509.load_pem_x509_certificate(paths["axis"].read_bytes())
    assert axis.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "axis-test"


def test_write_dev_pki_tightens_an_existing_key_file(tmp_path: Path) -> None:
    stale = tmp_path / "ca.key.pem"
    stale.write_text("old")
    stale.chmod(0o644)
    write_dev_pki(tmp_path, [])
    assert stat.S_IMODE(stale.stat().st_mode) == 0o600
    serialization.load_pem_private_key(stale.read_bytes(), password=None)


def test_write_dev_pki_refuses_an_organ_id_that_is_not_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a QCVN 102 OrganId"):
        write_dev_pki(tmp_path / "pki", [("../escape", "Bad")])
    assert not (tmp_path / "pki").exists()


def test_make_dev_ca_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "certs/make_dev_ca.py", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    agency = tmp_path / "agency-000.00.00.G22.pem"
    assert agency.is_file()
    assert organ_id_of(x509.load_pem_x509_certificate(agency.read_bytes())) == "000.00.00.G22"
    assert str(agency) in result.stdout
    assert len(result.stdout.splitlines()) == len([p for p in tmp_path.rglob("*") if p.is_file()])
    # The document PKI: a person's and the agency's PDF-signing certificates, which sign official PDFs.
    documents = tmp_path / "documents"
    ca = load_issued(documents / "document-ca.pem", documents / "document-ca.key.pem")
    person, seal = (
        load_issued(
            documents / f"document-{kind}-000.00.01.H26.pem",
            documents / f"document-{kind}-000.00.01.H26.key.pem",
        )
        for kind in ("person", "organization")
    )
    pdf = sign_official_pdf(make_pdf(), person, seal, ca)
    signatures = validate_pdf(pdf, DocumentTrust((ca.cert_der(),)), datetime.now(UTC), PdfLimits())
    assert [(s.verdict, s.kind, s.organ_id) for s in signatures] == [
        ("valid", "person", "000.00.01.H26"),
        ("valid", "organization", "000.00.01.H26"),
    ]
    assert (documents / "document-ca.crl").is_file()
