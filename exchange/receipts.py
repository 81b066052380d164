"""Receipts: the axis's signed word that it accepted a package.

A receipt is a compact JWS (RFC 7515) over the claims below. By default it is signed with
ES256 (ECDSA P-256: a signature costs tens of microseconds where RSA-2048 costs about a
millisecond) by the axis's receipt key, whose certificate travels in the ``x5c`` header
(receipt certificate, then the axis certificate) and is itself issued and signed by the axis
certificate. So the one certificate a reader trusts stays the axis certificate
(``GET /v1/axis/certificate``, which also publishes the receipt certificate after it):
``read_receipt(token, axis_public_key)`` checks that the receipt certificate was signed by
the axis key, then the receipt with the receipt certificate. With
``trust.receipt_algorithm = "RS256"`` receipts are signed with the axis key itself (as
before; ``x5c`` is the axis certificate) and read the same way.

The receipt key is derived from the axis private key (HKDF-SHA256), and its certificate is
built from fixed fields and signed with deterministic RSA PKCS#1 v1.5: every process with the
same axis key has the same receipt key and byte-identical certificate, with nothing more to
store, configure or distribute; rotating the axis key rotates it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from exchange.store.messages import MessageRow
from exchange.trust.certificates import der
from exchange.trust.signing import ReceiptKey, Signer

RECEIPT_TYPE = "exchange-receipt+jws"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_DERIVATION = b"exchange axis receipt key, ECDSA P-256, v1"


def receipt_claims(message: MessageRow, recipients: Sequence[str]) -> dict[str, Any]:
    return {
        "iss": "exchange-axis",
        "message_id": str(message.id),
        "kind": message.kind,
        "document_id": message.document_id,
        "sender": message.sender,
        "recipients": sorted(recipients),
        "sha256": message.sha256.hex(),
        "received_at": message.received_at.isoformat(),
    }


def with_receipt_key(signer: Signer, algorithm: str) -> Signer:
    """The axis signer as configured for receipts: ES256 adds the derived receipt key; RS256 does not."""
    if algorithm == "RS256":
        return replace(signer, receipt_key=None)
    return replace(signer, receipt_key=derive_receipt_key(signer))


def derive_receipt_key(signer: Signer) -> ReceiptKey:
    secret = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    material = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=_DERIVATION).derive(secret)
    # 384 bits reduced modulo the 256-bit group order: uniform enough (bias below 2^-128), never 0.
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    return ReceiptKey(key, _receipt_certificate(signer, key))


def _receipt_certificate(signer: Signer, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    axis = signer.certificate
    public = key.public_key()
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    names = axis.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    axis_name = names[0].value if names else "exchange axis"
    if isinstance(axis_name, bytes):
        axis_name = axis_name.decode(errors="replace")
    common_name = f"{axis_name} (receipts)"
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(common_name))]))
        .issuer_name(axis.subject)
        .public_key(public)
        .serial_number(int.from_bytes(hashlib.sha256(point).digest()[:16], "big") >> 1)
        .not_valid_before(axis.not_valid_before_utc)
        .not_valid_after(axis.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key()), critical=False
        )
        .sign(signer.key, hashes.SHA256())
    )


def sign_receipt(signer: Signer, message: MessageRow, recipients: Sequence[str]) -> str:
    """The receipt for a message delivered to ``recipients`` (signed before the message is stored,
    which stores it with the message)."""
    payload = json.dumps(receipt_claims(message, recipients), sort_keys=True, ensure_ascii=False).encode()
    axis_der = _x5c(signer.certificate)
    if signer.receipt_key is None:
        headers = {"typ": RECEIPT_TYPE, "x5c": [axis_der]}
        token: str = jwt.PyJWS().encode(payload, signer.key, algorithm="RS256", headers=headers)
        return token
    headers = {"typ": RECEIPT_TYPE, "x5c": [_x5c(signer.receipt_key.certificate), axis_der]}
    token = jwt.PyJWS().encode(payload, signer.receipt_key.key, algorithm="ES256", headers=headers)
    return token


@functools.lru_cache(maxsize=8)
def _x5c(certificate: x509.Certificate) -> str:
    """A certificate as a JWS header carries it (the axis's own few: encoded once)."""
    return base64.b64encode(der(certificate)).decode()


def read_receipt(token: str, certificate_public_key: Any) -> dict[str, Any]:
    """The claims of a receipt, after checking its signature against the axis's public key.

    RS256: signed by the axis key itself. ES256: signed by the receipt key whose certificate
    (``x5c[0]``) the axis key signed. Anything else, or any mismatch, raises a
    ``jwt.InvalidTokenError`` (``jwt.InvalidSignatureError`` for a wrong signature).
    """
    algorithm = jwt.get_unverified_header(token).get("alg")
    if algorithm == "RS256":
        decoded = jwt.PyJWS().decode_complete(token, key=certificate_public_key, algorithms=["RS256"])
    elif algorithm == "ES256":
        key = _receipt_public_key(jwt.get_unverified_header(token), certificate_public_key)
        decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=["ES256"])
    else:
        raise jwt.InvalidAlgorithmError(f"receipts are signed with RS256 or ES256, not {algorithm!r}")
    claims: dict[str, Any] = json.loads(decoded["payload"])
    return claims


def _receipt_public_key(header: dict[str, Any], axis_public_key: Any) -> ec.EllipticCurvePublicKey:
    """The receipt certificate's key, once the axis key is shown to have issued that certificate."""
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0], validate=True))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise jwt.InvalidTokenError(f"the receipt carries no readable receipt certificate: {exc}") from None
    hash_algorithm = certificate.signature_hash_algorithm
    if hash_algorithm is None:
        raise jwt.InvalidSignatureError("the receipt certificate names no signature hash")
    try:
        if isinstance(axis_public_key, rsa.RSAPublicKey):
            axis_public_key.verify(
                certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), hash_algorithm
            )
        elif isinstance(axis_public_key, ec.EllipticCurvePublicKey):
            axis_public_key.verify(
                certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hash_algorithm)
            )
        else:
            raise jwt.InvalidSignatureError("the axis key is neither RSA nor EC")
    except InvalidSignature:
        raise jwt.InvalidSignatureError("the receipt certificate was not issued by the axis key") from None
    public = certificate.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        raise jwt.InvalidKeyError("the receipt certificate does not hold a P-256 key")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise jwt.InvalidKeyError(f"the receipt certificate lacks an extension: {exc}") from None
    if constraints.ca or not usage.digital_signature:
        raise jwt.InvalidKeyError("the receipt certificate is not for signing receipts")
    return public
