"""What intake reads of the registry, kept between packages under the registry's version number.

Each package needs its sender's facts (is the agency in service? its signature policy with the
envelope trust material: trusted CAs, certificates pinned to it, revoked ones; its attachment
policy with the document trust store: CAs, revocation lists: nine queries, and the CA
certificates parsed again each time) and its recipients' agencies. They change only by an
administrator's act or the upstream registry sync, and every change to the tables they come from
moves the registry's version number on (migration 0015). A server process keeps what it read
under the number it read it at; the number itself comes with the caller's authentication
(exchange.store.systems). So a package from a known sender to known recipients reads nothing of
the registry: it is checked from memory and stored by one statement.

What is kept is at least as new as its number (a read after the number may see a later change),
and a package may take a while to arrive after its caller authenticated. So a package checked
under a number is stored only if the number is still the registry's when it is written
(exchange.store.messages.insert_accepted); otherwise it is checked again under the new one
(exchange.intake); and a refusal given from what was kept is judged again from fresh reads when
the registry has moved on since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exchange.cert_registry import document_trust_for_sender, trust_for_sender
from exchange.model import Agency, AttachmentSignaturePolicy, SignaturePolicy
from exchange.settings import TrustSettings
from exchange.store import agencies as agency_store
from exchange.store.db import Connection
from exchange.trust.pdf_signatures import DocumentTrust
from exchange.trust.signatures import TrustMaterial

# Senders and agencies kept at most; past this, everything kept is dropped (a bound, not an eviction
# policy: an axis has a few thousand agencies, all of which fit).
MAX_KEPT = 10_000


@dataclass(frozen=True)
class SenderFacts:
    agency: Agency | None  # None: not registered
    signature_policy: SignaturePolicy
    envelope_trust: TrustMaterial
    attachment_policy: AttachmentSignaturePolicy
    document_trust: DocumentTrust


class RegistryCache:
    def __init__(self, settings: TrustSettings) -> None:
        self._settings = settings
        self._version: int | None = None
        self._senders: dict[str, SenderFacts] = {}
        # Registered agencies only: an unregistered OrganId is any string a package cares to name.
        self._agencies: dict[str, Agency] = {}

    async def at(self, conn: Connection, version: int | None) -> RegistryView:
        """The registry as of ``version`` (the caller's, read at its authentication; None: read it now)."""
        if version is None:
            version = await agency_store.registry_version(conn)
        if version != self._version or len(self._senders) + len(self._agencies) >= MAX_KEPT:
            self._senders.clear()
            self._agencies.clear()
            self._version = version
        return RegistryView(version, self)

    async def sender(self, conn: Connection, version: int, organ_id: str) -> SenderFacts:
        kept = self._senders.get(organ_id) if self._keeps(version) else None
        if kept is not None:
            return kept
        agency = (await self.agencies(conn, version, [organ_id])).get(organ_id)
        signature_policy, envelope_trust = await trust_for_sender(conn, organ_id, self._settings)
        attachment_policy, document_trust = await document_trust_for_sender(conn, organ_id, self._settings)
        facts = SenderFacts(agency, signature_policy, envelope_trust, attachment_policy, document_trust)
        if self._keeps(version):
            self._senders[organ_id] = facts
        return facts

    async def agencies(self, conn: Connection, version: int, organ_ids: Sequence[str]) -> dict[str, Agency]:
        """The registered agencies among ``organ_ids``, by OrganId (as agency_store.agencies_by_ids)."""
        kept = self._agencies if self._keeps(version) else {}
        found = {organ_id: kept[organ_id] for organ_id in organ_ids if organ_id in kept}
        missing = [organ_id for organ_id in organ_ids if organ_id not in kept]
        if missing:
            read = await agency_store.agencies_by_ids(conn, missing)
            found.update(read)
            if self._keeps(version):
                self._agencies.update(read)
        return found

    def _keeps(self, version: int) -> bool:
        # Not when another request has since seen a different number: what is read is kept under
        # the number it is at least as new as, and only there.
        return self._version == version


@dataclass(frozen=True)
class RegistryView:
    """The registry for one package: what is kept under ``version``, read (and kept) when missing."""

    version: int
    cache: RegistryCache

    async def sender(self, conn: Connection, organ_id: str) -> SenderFacts:
        return await self.cache.sender(conn, self.version, organ_id)

    async def agencies(self, conn: Connection, organ_ids: Sequence[str]) -> dict[str, Agency]:
        return await self.cache.agencies(conn, self.version, organ_ids)
