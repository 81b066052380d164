"""What intake keeps of the registry between packages: reused while nothing changes, never stale."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from exchange import cert_registry, registry
from exchange.model import AttachmentSignaturePolicy, Role, SignaturePolicy
from exchange.sender_facts import SenderFactsCache
from exchange.settings import TrustSettings
from exchange.trust import devca
from exchange.trust.certificates import fingerprint

SENDER = "000.00.01.H26"


class CountingConnection:
    """The connection, counting the queries made through it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn, self.queries = conn, 0

    def __getattr__(self, name: str) -> object:
        method = getattr(self._conn, name)
        if name.startswith("fetch") or name == "execute":
            self.queries += 1
        return method


async def test_a_registry_change_is_seen_by_the_next_lookup_and_nothing_else_is_read_again(
    conn: asyncpg.Connection,
) -> None:
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": "000.00.00.H26", "name": "City"}),
            registry.AgencyInput({"organ_id": SENDER, "name": "Dept", "signature_policy": "required"}),
        ],
    )
    ca = devca.make_ca()
    pinned = devca.issue_signing_cert(ca, organ_id=None, common_name="Dept clerk")
    await cert_registry.import_certificates(conn, [ca.certificate], organ_id=None)
    await cert_registry.import_certificates(conn, [pinned.certificate], organ_id=SENDER)
    cache = SenderFactsCache(TrustSettings())
    counting = CountingConnection(conn)

    first = await cache.facts(counting, SENDER)  # type: ignore[arg-type]
    assert first.agency is not None
    assert first.agency.in_service
    assert first.signature_policy is SignaturePolicy.REQUIRED
    assert first.envelope_trust.pinned == {fingerprint(pinned.certificate)}
    read_all = counting.queries
    counting.queries = 0
    assert await cache.facts(counting, SENDER) is first  # type: ignore[arg-type]
    assert counting.queries == 1 < read_all  # the version number only

    # Each kind of change, made the way an administrator makes it, is seen at once.
    await cert_registry.revoke_certificate(conn, fingerprint=fingerprint(pinned.certificate))
    facts = await cache.facts(conn, SENDER)
    assert facts.envelope_trust.pinned == frozenset()
    assert fingerprint(pinned.certificate) in facts.envelope_trust.revoked

    await conn.execute(
        "UPDATE agencies SET signature_policy = 'record', attachment_signature_policy = 'official-required'"
        " WHERE organ_id = $1",
        SENDER,
    )
    facts = await cache.facts(conn, SENDER)
    assert facts.signature_policy is SignaturePolicy.RECORD
    assert facts.attachment_policy is AttachmentSignaturePolicy.OFFICIAL_REQUIRED

    await conn.execute("UPDATE agencies SET active = false WHERE organ_id = $1", SENDER)
    facts = await cache.facts(conn, SENDER)
    assert facts.agency is not None
    assert not facts.agency.in_service
    await conn.execute("UPDATE agencies SET active = true WHERE organ_id = $1", SENDER)
    assert (await cache.facts(conn, SENDER)).agency.in_service  # type: ignore[union-attr]

    # The system serving it, disabled by hand: the agency's standing comes from it too.
    await registry.add_system(conn, "dms-dept", Role.SYSTEM, [SENDER])
    assert (await cache.facts(conn, SENDER)).agency.in_service  # type: ignore[union-attr]
    await conn.execute("UPDATE systems SET active = false WHERE name = 'dms-dept'")
    facts = await cache.facts(conn, SENDER)
    assert facts.agency is not None
    assert not facts.agency.in_service

    crl = cert_registry.read_crl(devca.make_crl(ca, [(pinned.certificate, datetime.now(UTC))]), "test")
    await cert_registry.import_crl(conn, crl)
    facts = await cache.facts(conn, SENDER)
    assert len(facts.document_trust.crls) == 1
