"""A VXP client that speaks exactly as the national-axis SDK (SDKVXP 2.0.1) does.

Used to talk to an upstream VXP-compatible axis, and by the tests to prove that SDK
clients work against this one. Its quirks are the SDK's, on purpose:

- one header map per client: ``timestamp`` is fixed when the client is created, and
  keys from earlier calls stay in later requests (``sdk_quirks``);
- headers, the signed-key list and the signed JSON follow java.util.HashMap order;
- the signed JSON is compact, Gson-style (no escaping of ``/`` or non-ASCII);
- ``hash-file`` is SHA-256 hex without zero padding; the body of sendEdoc is the file
  plus ``\\r\\n``; a ``to`` value is sent as its JSON text; bodies are empty or ``{}``
  as each operation has them; POSTs with a body ask for ``Expect: 100-continue``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import aiohttp

from adapters.http_push import StreamedBody
from exchange.vxp.hashmap import hashmap_order
from exchange.vxp.protocol import hash_file, java_hex

USER_AGENT = "JAVASDKAgent/1.0.0 XRoad/VPCP"
VERSION = "3.0.201608"
# Operations and the body the SDK sends with them (None: no body at all).
_BODIES: dict[str, bytes | None] = {
    "getReceivedEdocList": b"",
    "getSentEdocList": b"",
    "getAgenciesList": b"",
    "getAgenciesListQD20": b"",
    "getSynchronizeUnit": b"",
    "getEdoc": b"{}",
    "updateStatus": b"{}",
    "countReceiveEdoc": b"{}",
    "countReceiveStatus": b"{}",
    "deleteAgency": b"{}",
}


def sdk_timestamp(moment: datetime) -> str:
    """``ddMMyyyy'T'HHmmss+SSSS``: the ``+`` is literal, SSSS is milliseconds padded to 4 digits."""
    return moment.strftime("%d%m%YT%H%M%S") + f"+{moment.microsecond // 1000:04d}"


def gson_json(values: Mapping[str, str]) -> str:
    """Gson's JsonObject.toString(): compact; escapes quotes, backslashes, controls, U+2028/9."""
    text = json.dumps(dict(values), separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _as_string(value: Any) -> str:
    """Gson's getAsString: text for scalars, the element of a one-element array."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise ValueError("the SDK cannot send an object or a multi-element array as a header")
    return str(value)


async def _with_crlf(file: StreamedBody) -> AsyncIterator[bytes]:
    async for chunk in file.chunks():
        yield chunk
    yield b"\r\n"


class VxpClient:
    """One SDK service object: endpoint, systemid, secret, and its lingering header map."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        system_id: str,
        secret: str,
        *,
        created_at: datetime | None = None,
        sdk_quirks: bool = True,
    ) -> None:
        """``sdk_quirks``: keep the timestamp and stale keys as the SDK does; off, every request is
        signed afresh with only its own parameters (how this axis talks to an upstream axis)."""
        self._session = session
        self._endpoint = endpoint
        self._secret = secret
        self._keep = sdk_quirks
        self._headers: dict[str, str] = {
            "timestamp": sdk_timestamp(created_at or datetime.now()),
            "systemid": system_id,
        }

    def signed_headers(
        self,
        content_type: str,
        parameters: Mapping[str, Any],
        *,
        send_edoc: bool = False,
        file_hash: str | None = None,
    ) -> list[tuple[str, str]]:
        """The headers of the next request, in the order the SDK writes them."""
        if not self._keep:
            self._headers = {
                "timestamp": sdk_timestamp(datetime.now()),
                "systemid": self._headers["systemid"],
            }
        self._headers["Content-Type"] = content_type
        for key, value in parameters.items():
            self._headers[key] = (
                json.dumps(value, ensure_ascii=False) if send_edoc and key == "to" else _as_string(value)
            )
        if file_hash is not None:
            self._headers["hash-file"] = file_hash
        order = hashmap_order(self._headers)
        signed = gson_json({f"XroadVnpt-{key}": self._headers[key] for key in order})
        digest = hmac.new(self._secret.encode("utf-8"), signed.encode("utf-8"), hashlib.sha256).hexdigest()
        return [
            ("Content-Type", content_type),
            *((f"XroadVnpt-{key}", self._headers[key]) for key in order),
            ("XroadVnpt-sign-header-key", ";".join(order)),
            ("XroadVnpt-sign-header", signed),
            ("XroadVnpt-hash-header", digest),
            ("User-Agent", USER_AGENT),
            ("XroadVnpt-version", VERSION),
        ]

    async def send_edoc(self, parameters: Mapping[str, Any], file: bytes | StreamedBody) -> dict[str, Any]:
        """sendEdoc; a StreamedBody is read twice (hash-file, then the bytes as they are sent)."""
        if isinstance(file, bytes):
            headers = self.signed_headers(
                "application/octet-stream", parameters, send_edoc=True, file_hash=hash_file(file)
            )
            return await self._post("sendEdoc", headers, file + b"\r\n")
        digest = java_hex(await file.sha256())
        headers = self.signed_headers(
            "application/octet-stream", parameters, send_edoc=True, file_hash=digest
        )
        headers.append(("Content-Length", str(file.size + 2)))
        return await self._post("sendEdoc", headers, _with_crlf(file))

    async def call(self, operation: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Any JSON operation but sendEdoc and registerAgency."""
        return await self._post(
            operation, self.signed_headers("application/json", parameters), _BODIES[operation] or b""
        )

    async def register_agency(self, parameters: Mapping[str, Any], data: str) -> dict[str, Any]:
        return await self._post(
            "registerAgency", self.signed_headers("application/json", parameters), data.encode("utf-8")
        )

    async def download_edoc(self, parameters: Mapping[str, Any]) -> tuple[int, bytes]:
        headers = self.signed_headers("application/json", parameters)
        async with self._session.get(f"{self._endpoint}/downloadEdoc", headers=headers) as response:
            return response.status, await response.read()

    async def _post(
        self, operation: str, headers: list[tuple[str, str]], body: bytes | AsyncIterator[bytes]
    ) -> dict[str, Any]:
        async with self._session.post(
            f"{self._endpoint}/{operation}", data=body, headers=headers, expect100=body != b""
        ) as response:
            text = await response.read()
        answer: dict[str, Any] = json.loads(text)
        return answer
