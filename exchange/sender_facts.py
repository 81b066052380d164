"""What intake reads of the registry about a package's sender, kept between packages.

Each package needs its sender's agency (is it in service?), its signature policy with the
envelope trust material (trusted CAs, certificates pinned to it, revoked ones), and its
attachment policy with the document trust store (CAs, revocation lists): nine queries, and
the CA certificates parsed again each time. They change only by an administrator's act, so a
server process keeps them per sender and asks PostgreSQL one thing per package: the registry's
version number, which every change to the tables they come from moves on (migration 0015). A
new number drops everything kept, so a change is seen by the next package exactly as if all
were read again; what is read after the number is at least as new as the number says.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.cert_registry import document_trust_for_sender, trust_for_sender
from exchange.model import Agency, AttachmentSignaturePolicy, SignaturePolicy
from exchange.settings import TrustSettings
from exchange.store import agencies as agency_store
from exchange.store.db import Connection
from exchange.trust.pdf_signatures import DocumentTrust
from exchange.trust.signatures import TrustMaterial

# Senders kept at most; past this, everything kept is dropped (a bound, not an eviction policy:
# an axis has a few thousand senders, all of which fit).
MAX_SENDERS = 10_000


@dataclass(frozen=True)
class SenderFacts:
    agency: Agency | None  # None: not registered
    signature_policy: SignaturePolicy
    envelope_trust: TrustMaterial
    attachment_policy: AttachmentSignaturePolicy
    document_trust: DocumentTrust


class SenderFactsCache:
    def __init__(self, settings: TrustSettings) -> None:
        self._settings = settings
        self._version: int | None = None
        self._kept: dict[str, SenderFacts] = {}

    async def facts(self, conn: Connection, organ_id: str) -> SenderFacts:
        version = await agency_store.registry_version(conn)
        if version != self._version or len(self._kept) >= MAX_SENDERS:
            self._kept.clear()
            self._version = version
        kept = self._kept.get(organ_id)
        if kept is not None:
            return kept
        agency = (await agency_store.agencies_by_ids(conn, [organ_id])).get(organ_id)
        signature_policy, envelope_trust = await trust_for_sender(conn, organ_id, self._settings)
        attachment_policy, document_trust = await document_trust_for_sender(conn, organ_id, self._settings)
        facts = SenderFacts(agency, signature_policy, envelope_trust, attachment_policy, document_trust)
        if self._version == version:  # not dropped by a newer number meanwhile
            self._kept[organ_id] = facts
        return facts
