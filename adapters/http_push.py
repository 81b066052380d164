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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
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


class StreamedBody(Protocol):
    """A body sent as it is read (a stored package), never held whole."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def sha256(self) -> bytes: ...


def signed_text(delivery_id: UUID, body: bytes) -> bytes:
    """What X-Exchange-Signature signs."""
    return signed_digest_text(delivery_id, hashlib.sha256(body).digest())


def signed_digest_text(delivery_id: UUID, sha256: bytes) -> bytes:
    return f"{delivery_id}\n{sha256.hex()}".encode()


class HttpPush:
    """One shared HTTP client for every push of a server process.

    Connections are kept alive and pooled per endpoint host (at most ``total`` in all: one per
    push slot), so a busy endpoint is pushed to over a few reused connections instead of a new
    TCP (and TLS) handshake per document. How many pushes one endpoint gets at once is capped
    when they are claimed (``delivery.per_endpoint_concurrency``), not here: agencies on one host
    with different URLs must not wait for each other's connections.
    """

    def __init__(
        self, signer: Signer, timeout_s: float, total: int = 100, allow_private_endpoints: bool = False
    ) -> None:
        self._signer = signer
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._total = total
        self._session: aiohttp.ClientSession | None = None
        self._allow_private = allow_private_endpoints

    async def start(self) -> None:
        # Names resolve to public addresses only, and the connection goes to those very addresses.
        resolver = None if self._allow_private else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(limit=self._total, keepalive_timeout=60, resolver=resolver)
        self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def push(
        self, endpoint: str, delivery_id: UUID, message_id: UUID, body: bytes | StreamedBody
    ) -> PushResult:
        """POST ``body``; a StreamedBody is read twice (its SHA-256 for the signature, then the bytes
        as they are sent with a Content-Length), so no copy of it is held."""
        assert self._session is not None, "start() first"
        try:
            digest = hashlib.sha256(body).digest() if isinstance(body, bytes) else await body.sha256()
        except LookupError as exc:
            return PushResult(False, f"the package cannot be read: {exc}")
        signature = self._signer.key.sign(
            signed_digest_text(delivery_id, digest), padding.PKCS1v15(), hashes.SHA256()
        )
        headers = {
            "Content-Type": "application/xml",
            "Content-Length": str(len(body) if isinstance(body, bytes) else body.size),
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
            data = body if isinstance(body, bytes) else body.chunks()
            # A redirect is an answer other than 2xx, not an invitation to push somewhere else.
            async with self._session.post(
                endpoint, data=data, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return PushResult(True, f"HTTP {response.status}")
                return PushResult(False, f"HTTP {response.status} from {endpoint}")
        except TimeoutError:
            return PushResult(False, f"no answer from {endpoint} within {self._timeout.total} s")
        except (aiohttp.ClientError, OSError) as exc:
            return PushResult(False, f"{type(exc).__name__} talking to {endpoint}: {exc}")
        except LookupError as exc:  # the stored bytes went away while they were being sent
            return PushResult(False, f"the package cannot be read: {exc}")
