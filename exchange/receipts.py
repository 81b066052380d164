"""Receipts: the axis's signed word that it accepted a package.

A receipt is a compact JWS (RFC 7515, RS256) signed with the axis certificate, which
travels in the ``x5c`` header. Anyone holding the axis certificate can check it offline:
``jwt.PyJWS().decode_complete(receipt, key=axis_public_key, algorithms=["RS256"])``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import jwt

from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow
from exchange.trust.certificates import der
from exchange.trust.signing import Signer

RECEIPT_TYPE = "exchange-receipt+jws"


def receipt_claims(message: MessageRow, deliveries: Sequence[DeliveryRow]) -> dict[str, Any]:
    return {
        "iss": "exchange-axis",
        "message_id": str(message.id),
        "kind": message.kind,
        "document_id": message.document_id,
        "sender": message.sender,
        "recipients": sorted(delivery.recipient for delivery in deliveries),
        "sha256": message.sha256.hex(),
        "received_at": message.received_at.isoformat(),
    }


def sign_receipt(signer: Signer, message: MessageRow, deliveries: Sequence[DeliveryRow]) -> str:
    payload = json.dumps(receipt_claims(message, deliveries), sort_keys=True, ensure_ascii=False).encode()
    headers = {"typ": RECEIPT_TYPE, "x5c": [base64.b64encode(der(signer.certificate)).decode()]}
    token: str = jwt.PyJWS().encode(payload, signer.key, algorithm="RS256", headers=headers)
    return token


def read_receipt(token: str, certificate_public_key: Any) -> dict[str, Any]:
    """The claims of a receipt, after checking its signature; raises jwt.InvalidSignatureError."""
    decoded = jwt.PyJWS().decode_complete(token, key=certificate_public_key, algorithms=["RS256"])
    claims: dict[str, Any] = json.loads(decoded["payload"])
    return claims
