"""Receipts: ES256 by a receipt key the axis certificate issued (default), or RS256 by the axis key.

Either way a reader needs only the axis certificate; anything not signed by the axis is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from exchange.receipts import RECEIPT_TYPE, derive_receipt_key, read_receipt, sign_receipt, with_receipt_key
from exchange.store.messages import MessageRow
from exchange.trust import devca
from exchange.trust.certificates import der
from exchange.trust.signing import Signer


@pytest.fixture(scope="module")
def axis(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    written = devca.write_dev_pki(tmp_path_factory.mktemp("pki"), [])
    return Signer.from_files(written["axis"], written["axis_key"])


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    written = devca.write_dev_pki(tmp_path_factory.mktemp("other"), [])
    return Signer.from_files(written["axis"], written["axis_key"])


def message() -> MessageRow:
    return MessageRow(
        id=uuid.uuid4(), kind="edoc", sender="000.00.01.H26", sender_system_id=1,
        document_id="000.00.01.H26,2026/11/30,1/R", business_type=0, status_code=None, code=None,
        subject=None, urgency=0, due_date=None, sha256=hashlib.sha256(b"package").digest(), size_bytes=7,
        signature={}, related_message_id=None, received_at=datetime(2026, 11, 30, tzinfo=UTC),
    )  # fmt: skip


def receipt(signer: Signer) -> tuple[str, MessageRow]:
    stored = message()
    return sign_receipt(signer, stored, ["000.00.02.H26"]), stored


def test_an_es256_receipt_verifies_with_the_axis_certificate_alone(axis: Signer) -> None:
    token, stored = receipt(with_receipt_key(axis, "ES256"))

    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    claims = read_receipt(token, axis.certificate.public_key())
    assert claims["message_id"] == str(stored.id)
    assert claims["recipients"] == ["000.00.02.H26"]
    assert claims["sha256"] == stored.sha256.hex()


def test_the_receipt_key_is_the_same_in_every_process_and_issued_by_the_axis(axis: Signer) -> None:
    first, second = derive_receipt_key(axis), derive_receipt_key(axis)

    assert der(first.certificate) == der(second.certificate)
    assert first.key.private_numbers() == second.key.private_numbers()
    first.certificate.verify_directly_issued_by(axis.certificate)
    assert isinstance(first.certificate.public_key(), ec.EllipticCurvePublicKey)


def test_rs256_stays_available_and_verifies_the_same_way(axis: Signer, stranger: Signer) -> None:
    token, stored = receipt(with_receipt_key(axis, "RS256"))

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert read_receipt(token, axis.certificate.public_key())["message_id"] == str(stored.id)
    with pytest.raises(jwt.InvalidSignatureError):
        read_receipt(token, stranger.certificate.public_key())


def test_a_receipt_from_another_axis_is_refused(axis: Signer, stranger: Signer) -> None:
    token, _ = receipt(with_receipt_key(stranger, "ES256"))

    with pytest.raises(jwt.InvalidSignatureError, match="not issued by the axis key"):
        read_receipt(token, axis.certificate.public_key())


def test_a_changed_receipt_is_refused(axis: Signer) -> None:
    token, _ = receipt(with_receipt_key(axis, "ES256"))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["recipients"] = ["000.00.99.H26"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(jwt.InvalidSignatureError):
        read_receipt(f"{header}.{forged_payload}.{signature}", axis.certificate.public_key())


def test_a_receipt_key_the_axis_did_not_issue_is_refused(axis: Signer) -> None:
    # A forger's own P-256 key and a certificate that claims the axis as issuer, signed by itself.
    forger = ec.generate_private_key(ec.SECP256R1())
    fake = (
        x509.CertificateBuilder()
        .subject_name(axis.certificate.subject)
        .issuer_name(axis.certificate.subject)
        .public_key(forger.public_key())
        .serial_number(1)
        .not_valid_before(axis.certificate.not_valid_before_utc)
        .not_valid_after(axis.certificate.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(forger, hashes.SHA256())
    )
    headers = {"typ": RECEIPT_TYPE, "x5c": [base64.b64encode(der(fake)).decode()]}
    token = jwt.PyJWS().encode(b'{"message_id": "x"}', forger, algorithm="ES256", headers=headers)

    with pytest.raises(jwt.InvalidSignatureError):
        read_receipt(token, axis.certificate.public_key())


@pytest.mark.parametrize("algorithm", ["HS256", "none", "ES384"])
def test_other_algorithms_are_refused(axis: Signer, algorithm: str) -> None:
    key: Any = {"HS256": "s" * 32, "none": None, "ES384": ec.generate_private_key(ec.SECP384R1())}[algorithm]
    token = jwt.PyJWS().encode(b'{"message_id": "x"}', key, algorithm=algorithm)

    with pytest.raises(jwt.InvalidAlgorithmError):
        read_receipt(token, axis.certificate.public_key())


def test_a_token_without_a_receipt_certificate_is_refused(axis: Signer) -> None:
    token = jwt.PyJWS().encode(b"{}", derive_receipt_key(axis).key, algorithm="ES256")

    with pytest.raises(jwt.InvalidTokenError, match="no readable receipt certificate"):
        read_receipt(token, axis.certificate.public_key())


def test_the_shipped_development_identity_signs_es256_receipts(tmp_path: Path) -> None:
    from exchange.axis_identity import load_axis_signer
    from exchange.settings import Settings

    signer = load_axis_signer(Settings(data_dir=tmp_path))
    assert signer.receipt_key is not None
    token, _ = receipt(signer)
    assert read_receipt(token, signer.certificate.public_key())
