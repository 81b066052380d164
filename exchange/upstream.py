"""Chained axes: forwarding to an upstream VXP axis, fetching from it, mirroring its registry.

For each configured upstream (``[[upstreams]]``), this axis is a VXP client with its own
systemid and secret there. Deliveries to agencies routed there (by OrganId prefix) are
forwarded with sendEdoc, the package carrying this axis's TraceHeader; packages and
statuses the upstream holds for our agencies are fetched, accepted here as coming from a
local relay system (which may speak only for agencies served elsewhere), and then
acknowledged there. Everything goes through the same intake, so a package fetched twice
(say, after a crash between accepting and acknowledging) is the same message.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Any

import aiohttp

from adapters.http_push import PushResult
from adapters.vxp_client import VxpClient
from exchange.credentials import hash_api_key, new_api_key
from exchange.edxml.ids import is_organ_id
from exchange.errors import DatabaseUnavailable, ExchangeError
from exchange.intake import Intake, Scope
from exchange.logs import get_logger
from exchange.model import System
from exchange.outgoing import PackageStream
from exchange.settings import Settings, UpstreamSettings
from exchange.store import agencies as agency_store
from exchange.store import systems as system_store
from exchange.store.db import Pool
from exchange.store.deliveries import Claimed
from exchange.store.messages import MessageRow

log = get_logger(__name__)


class Upstreams:
    def __init__(
        self, pool: Pool, settings: Settings, intake: Intake, session: aiohttp.ClientSession
    ) -> None:
        self._pool, self._settings, self._intake = pool, settings, intake
        self._clients = {
            upstream.name: VxpClient(
                session, upstream.url.rstrip("/"), upstream.system_id, upstream.secret, sdk_quirks=False
            )
            for upstream in settings.upstreams
        }
        self._relays: dict[str, System] = {}

    async def start(self) -> None:
        """Make sure each upstream has its local relay system (it never logs in: its key is discarded)."""
        async with self._pool.acquire() as conn:
            for upstream in self._settings.upstreams:
                relay = await system_store.ensure_relay(
                    conn, upstream.relay_system, hash_api_key(new_api_key())
                )
                # Kept for the process's life: the registry's version read now would soon be stale.
                self._relays[upstream.name] = replace(relay, registry_version=None)

    async def forward(self, claim: Claimed, message: MessageRow, package: PackageStream) -> PushResult:
        upstream = self._settings.upstream_for(claim.recipient)
        if upstream is None:
            return PushResult(False, f"no upstream axis is configured for {claim.recipient}")
        # A forward names only the recipient of the delivery being forwarded: naming the others would
        # hand them the package whatever their own delivery's fate (withdrawn by a revocation or an
        # update, already forwarded). The upstream's idempotency makes the forward for another of
        # them the same document, its scope widened by that recipient.
        to = [claim.recipient]
        try:
            answer = await self._clients[upstream.name].send_edoc(
                {"from": message.sender, "servicetype": "eDoc", "messagetype": message.kind, "to": to},
                package,
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return PushResult(False, f"{upstream.name} did not answer: {exc!r}")
        except LookupError as exc:  # the stored bytes went away while they were being sent
            return PushResult(False, f"the package cannot be read: {exc}")
        if answer.get("status") == "OK" and answer.get("ErrorCode") == "0":
            return PushResult(True, f"forwarded to {upstream.name}", str(answer.get("DocId") or ""))
        return PushResult(
            False, f"{upstream.name} refused: {answer.get('ErrorCode')} {answer.get('ErrorDesc')}"
        )

    async def poll(self) -> None:
        for upstream in self._settings.upstreams:
            for kind in ("edoc", "status"):
                try:
                    await self._fetch(upstream, kind)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning("upstream.poll_failed", upstream=upstream.name, kind=kind, error=repr(exc))

    async def _fetch(self, upstream: UpstreamSettings, kind: str) -> None:
        client = self._clients[upstream.name]
        listing = await client.call("getReceivedEdocList", {"servicetype": "eDoc", "messagetype": kind})
        for item in listing.get("data") or []:
            doc_id = str(item.get("docId", ""))
            got = await client.call("getEdoc", {"docId": doc_id})
            try:
                package = base64.b64decode(str(got.get("data", "")), validate=False)
            except (binascii.Error, ValueError):
                package = b""
            outcome = await self._accept(upstream, kind, package)
            if outcome is None:
                continue  # our own trouble: leave it upstream and try again later
            await client.call("updateStatus", {"status": "done", "docId": doc_id, "description": outcome})
            log.info("upstream.fetched", upstream=upstream.name, kind=kind, remote_id=doc_id, outcome=outcome)

    async def _accept(self, upstream: UpstreamSettings, kind: str, package: bytes) -> str | None:
        """Accept a fetched package here; None when it should be fetched again later."""
        scope = Scope(local_only=True) if kind == "edoc" else None
        try:
            accepted = await self._intake.submit(self._relays[upstream.name], package, scope=scope)
        except DatabaseUnavailable:
            return None
        except ExchangeError as error:
            # A package this axis will never accept: said once, in the log, and not fetched again.
            log.warning(
                "upstream.package_refused", upstream=upstream.name, code=error.code, reason=error.message
            )
            return f"refused: {error.code}"
        return f"accepted as {accepted.message.id}"

    async def sync_registry(self) -> None:
        """Mirror the upstream registry entries we route there (getSynchronizeUnit)."""
        for upstream in self._settings.upstreams:
            try:
                units = await self._clients[upstream.name].call("getSynchronizeUnit", {})
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("upstream.sync_failed", upstream=upstream.name, error=repr(exc))
                continue
            changed = 0
            async with self._pool.acquire() as conn:
                for unit in units.get("data") or []:
                    code = str(unit.get("code", ""))
                    if is_organ_id(code) and upstream.routes(code):
                        changed += await agency_store.sync_upstream(
                            conn, code, str(unit.get("name") or code), not _truthy(unit.get("deleted"))
                        )
            log.info("upstream.registry_synced", upstream=upstream.name, changed=changed)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
