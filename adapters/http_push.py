"""Pushing a package to a DMS endpoint over HTTP(S).

The request carries the delivery id (so the receiver can recognise a retry of the
same delivery), the message id, and ``X-Exchange-Signature``: the axis's RSA-SHA256
signature over ``<delivery id>\\n<sha256 of the body, hex>``, base64, which the
receiver checks with the axis certificate (``GET /v1/axis/certificate``). Any 2xx
answer means delivered; anything else, or no answer in time, is a failed attempt.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from uuid import UUID

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from exchange.endpoints import PublicOnlyResolver, literal_address_refusal
from exchange.trust.signing import Signer


@dataclass(frozen=True)
class PushResult:
    ok: bool
    detail: str
    remote_id: str | None = None  # the id the receiving side gave it, when it says (an upstream axis)


def signed_text(delivery_id: UUID, body: bytes) -> bytes:
    """What X-Exchange-Signature signs."""
    return f"{delivery_id}\n{hashlib.sha256(body).hexdigest()}".encode()


class HttpPush:
    """One shared HTTP client for every push of a server process."""

    def __init__(self, signer: Signer, timeout_s: float, allow_private_endpoints: bool = False) -> None:
        self._signer = signer
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._allow_private = allow_private_endpoints

    async def start(self) -> None:
        # Names resolve to public addresses only, and the connection goes to those very addresses.
        connector = None if self._allow_private else aiohttp.TCPConnector(resolver=PublicOnlyResolver())
        self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def push(self, endpoint: str, delivery_id: UUID, message_id: UUID, body: bytes) -> PushResult:
        assert self._session is not None, "start() first"
        signature = self._signer.key.sign(signed_text(delivery_id, body), padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": "application/xml",
            "X-Exchange-Delivery-Id": str(delivery_id),
            "X-Exchange-Message-Id": str(message_id),
            "X-Exchange-Signature": "rsa-sha256;" + base64.b64encode(signature).decode(),
        }
        refusal = None if self._allow_private else literal_address_refusal(endpoint)
        if refusal is not None:
            return PushResult(
                False, f"not pushed to {endpoint}: {refusal} (delivery.allow_private_endpoints)"
            )
        try:
            # A redirect is an answer other than 2xx, not an invitation to push somewhere else.
            async with self._session.post(
                endpoint, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return PushResult(True, f"HTTP {response.status}")
                return PushResult(False, f"HTTP {response.status} from {endpoint}")
        except TimeoutError:
            return PushResult(False, f"no answer from {endpoint} within {self._timeout.total} s")
        except (aiohttp.ClientError, OSError) as exc:
            return PushResult(False, f"{type(exc).__name__} talking to {endpoint}: {exc}")
