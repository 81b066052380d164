"""What intake keeps of the registry between packages: reused while nothing changes, never stale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from exchange import cert_registry, registry
from exchange.axis_identity import load_axis_signer
from exchange.edxml.builder import build_edoc
from exchange.errors import AgencyDisabled, Unauthenticated, UnknownRecipient
from exchange.intake import Intake
from exchange.model import AttachmentSignaturePolicy, Role, SignaturePolicy, System
from exchange.registry_cache import RegistryCache, SenderFacts
from exchange.settings import Settings, TrustSettings
from exchange.store import systems as system_store
from exchange.store.db import create_pool
from exchange.trust import devca
from exchange.trust.certificates import fingerprint
from tests.edxml_factories import small_edoc
from tests.integration.conftest import DEPT, FINANCE, World

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
    cache = RegistryCache(TrustSettings())
    counting = CountingConnection(conn)

    async def read_facts(connection: object) -> SenderFacts:
        view = await cache.at(connection, None)  # type: ignore[arg-type]
        return await view.sender(connection, SENDER)  # type: ignore[arg-type]

    first = await read_facts(counting)
    assert first.agency is not None
    assert first.agency.in_service
    assert first.signature_policy is SignaturePolicy.REQUIRED
    assert first.envelope_trust.pinned == {fingerprint(pinned.certificate)}
    read_all = counting.queries
    counting.queries = 0
    assert await read_facts(counting) is first
    assert counting.queries == 1 < read_all  # the version number only (a caller brings it when authenticated)

    # Each kind of change, made the way an administrator makes it, is seen at once.
    await cert_registry.revoke_certificate(conn, fingerprint=fingerprint(pinned.certificate))
    facts = await read_facts(conn)
    assert facts.envelope_trust.pinned == frozenset()
    assert fingerprint(pinned.certificate) in facts.envelope_trust.revoked

    await conn.execute(
        "UPDATE agencies SET signature_policy = 'record', attachment_signature_policy = 'official-required'"
        " WHERE organ_id = $1",
        SENDER,
    )
    facts = await read_facts(conn)
    assert facts.signature_policy is SignaturePolicy.RECORD
    assert facts.attachment_policy is AttachmentSignaturePolicy.OFFICIAL_REQUIRED

    await conn.execute("UPDATE agencies SET active = false WHERE organ_id = $1", SENDER)
    facts = await read_facts(conn)
    assert facts.agency is not None
    assert not facts.agency.in_service
    await conn.execute("UPDATE agencies SET active = true WHERE organ_id = $1", SENDER)
    assert (await read_facts(conn)).agency.in_service  # type: ignore[union-attr]

    # The system serving it, disabled by hand: the agency's standing comes from it too.
    await registry.add_system(conn, "dms-dept", Role.SYSTEM, [SENDER])
    assert (await read_facts(conn)).agency.in_service  # type: ignore[union-attr]
    await conn.execute("UPDATE systems SET active = false WHERE name = 'dms-dept'")
    facts = await read_facts(conn)
    assert facts.agency is not None
    assert not facts.agency.in_service

    crl = cert_registry.read_crl(devca.make_crl(ca, [(pinned.certificate, datetime.now(UTC))]), "test")
    await cert_registry.import_crl(conn, crl)
    facts = await read_facts(conn)
    assert len(facts.document_trust.crls) == 1


async def test_registered_agencies_are_kept_under_the_version_they_were_read_at(
    conn: asyncpg.Connection,
) -> None:
    await registry.add_agencies(conn, [registry.AgencyInput({"organ_id": SENDER, "name": "Dept"})])
    cache = RegistryCache(TrustSettings())
    counting = CountingConnection(conn)
    view = await cache.at(counting, None)  # type: ignore[arg-type]
    other = "000.00.02.H26"
    assert set(await view.agencies(counting, [SENDER, other])) == {SENDER}  # type: ignore[arg-type]
    counting.queries = 0
    assert set(await view.agencies(counting, [SENDER])) == {SENDER}  # type: ignore[arg-type]
    assert counting.queries == 0  # kept
    # An unregistered OrganId is read again each time: a package may name any number of them, and
    # keeping them would let one caller crowd out what is kept for everybody.
    assert set(await view.agencies(counting, [other, SENDER])) == {SENDER}  # type: ignore[arg-type]
    assert counting.queries == 1
    await view.agencies(counting, [f"000.00.{n:02}.X99" for n in range(50)])  # type: ignore[arg-type]
    assert set(cache._agencies) == {SENDER}

    # Registered now: a caller authenticated after it brings the new version, which reads it.
    await registry.add_agencies(conn, [registry.AgencyInput({"organ_id": other, "name": "Other"})])
    system = await registry.add_system(conn, "dms-dept", Role.SYSTEM, [SENDER])
    assert system.system.registry_version is not None
    view = await cache.at(counting, system.system.registry_version)  # type: ignore[arg-type]
    assert set(await view.agencies(counting, [SENDER, other])) == {SENDER, other}  # type: ignore[arg-type]

    # A view of an older version neither reads from nor adds to what the newer one keeps.
    stale = replace(view, version=view.version - 1)
    await conn.execute("UPDATE agencies SET active = false WHERE organ_id = $1", other)
    assert not (await stale.agencies(conn, [other]))[other].in_service
    assert (await view.agencies(conn, [other]))[other].in_service  # kept under its version


@pytest.fixture
async def intake(settings: Settings, database_url: str, world: World) -> AsyncIterator[Intake]:
    pool = await create_pool(database_url, settings.database)
    try:
        yield Intake(pool, settings, load_axis_signer(settings))
    finally:
        await pool.close()


def _document(number: int) -> bytes:
    document_id = f"{DEPT},2026/11/30,{number}/RC"
    return build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=document_id))


async def _authenticated(conn: asyncpg.Connection) -> System:
    """DEPT's system as its authentication reads it: with the registry's version now."""
    return await system_store.system_by_name(conn, f"dms-{DEPT}")


async def test_a_package_checked_under_a_registry_since_changed_is_checked_again_and_stored_once(
    intake: Intake, conn: asyncpg.Connection
) -> None:
    dept = await _authenticated(conn)
    await intake.submit(dept, _document(1))  # the sender's facts and the recipient's agency kept

    # The recipient is disabled after the caller authenticated (its upload still under way):
    # the package, checked from what was kept, is not stored under the registry it was checked by.
    await conn.execute("UPDATE agencies SET active = false WHERE organ_id = $1", FINANCE)
    with pytest.raises(AgencyDisabled):
        await intake.submit(dept, _document(2))
    assert await _stored(conn, 2) == 0

    # A change that does not concern the package: checked again and stored, once.
    await conn.execute("UPDATE agencies SET active = true WHERE organ_id = $1", FINANCE)
    accepted = await intake.submit(dept, _document(3))
    assert accepted.created
    assert await _stored(conn, 3) == 1
    assert [d.recipient for d in accepted.deliveries] == [FINANCE]
    actions = await conn.fetch(
        "SELECT action FROM audit_log WHERE message_id = $1 ORDER BY id", accepted.message.id
    )
    assert [row["action"] for row in actions] == [
        "message.accepted",
        "signature.checked",
        "attachments.checked",
        "delivery.created",
    ]

    # Sent again by the stale caller: the same answer, from what is stored.
    again = await intake.submit(dept, _document(3))
    assert not again.created
    assert (again.message.id, again.receipt) == (accepted.message.id, accepted.receipt)


async def test_registry_changes_during_a_request_are_judged_as_the_registry_is_now(
    intake: Intake, conn: asyncpg.Connection
) -> None:
    # A resubmission is answered as before even once a recipient has left service: the DMS lost
    # the answer, and sending the same bytes again must give it, not a refusal.
    package = _document(1)
    first = await intake.submit(await _authenticated(conn), package)
    await conn.execute("UPDATE agencies SET active = false WHERE organ_id = $1", FINANCE)
    with pytest.raises(AgencyDisabled):
        await intake.submit(await _authenticated(conn), _document(2))  # (FINANCE's standing now kept)
    again = await intake.submit(await _authenticated(conn), package)
    assert (again.created, again.message.id, again.receipt) == (False, first.message.id, first.receipt)

    # A recipient back in service while a package was uploading: it is not refused from what
    # was kept under the registry the caller authenticated with.
    uploading = await _authenticated(conn)
    await conn.execute("UPDATE agencies SET active = true WHERE organ_id = $1", FINANCE)
    assert (await intake.submit(uploading, _document(3))).created

    # The sender itself back in service during the upload: its refusal, from what was kept, is
    # judged again under the registry as it is now.
    await conn.execute("UPDATE agencies SET active = false WHERE organ_id = $1", DEPT)
    with pytest.raises(AgencyDisabled):
        await intake.submit(await _authenticated(conn), _document(5))
    uploading = await _authenticated(conn)
    await conn.execute("UPDATE agencies SET active = true WHERE organ_id = $1", DEPT)
    assert (await intake.submit(uploading, _document(6))).created

    # The sender's agency moved to another system, the old one disabled, during the upload:
    # the old system sends nothing more.
    uploading = await _authenticated(conn)
    successor = await registry.add_system(conn, "dms-dept-successor", Role.SYSTEM)
    await conn.execute("UPDATE agencies SET system_id = $1 WHERE organ_id = $2", successor.system.id, DEPT)
    await conn.execute("UPDATE systems SET active = false WHERE id = $1", uploading.id)
    with pytest.raises(Unauthenticated):
        await intake.submit(uploading, _document(4))
    assert await _stored(conn, 4) == 0


async def _stored(conn: asyncpg.Connection, number: int) -> int:
    document_id = f"{DEPT},2026/11/30,{number}/RC"
    return int(await conn.fetchval("SELECT count(*) FROM messages WHERE document_id = $1", document_id))


async def test_only_refusals_the_registry_decides_are_checked_again(
    intake: Intake, conn: asyncpg.Connection
) -> None:
    checks = 0
    check = intake._check_and_store

    async def counted(*args: Any, **options: Any) -> Any:
        nonlocal checks
        checks += 1
        return await check(*args, **options)

    intake._check_and_store = counted  # type: ignore[method-assign]
    uploading = await _authenticated(conn)
    await registry.add_agencies(conn, [registry.AgencyInput({"organ_id": "000.00.07.H26", "name": "New"})])
    # A recipient nobody registered: refused from fresh reads, whatever the registry did meanwhile,
    # and not checked a second time (a second check costs as much as the first).
    unknown = small_edoc(sender=DEPT, recipients=("000.00.08.H26",), document_id=f"{DEPT},2026/11/30,9/RC")
    with pytest.raises(UnknownRecipient):
        await intake.submit(uploading, build_edoc(unknown))
    assert checks == 1
