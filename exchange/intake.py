"""The submission pipeline: bytes in, an accepted message with its deliveries out.

parse (hardened) -> schema -> signature under the sender's policy -> the signatures inside the
attached PDFs under the sender's attachment policy (exchange.attachment_check) -> policy checks
(the caller acts for the sender, recipients are known, statuses and business types
name documents that exist) -> the receipt signed -> stored with the message, its original
bytes, one delivery per recipient and the audit entries by one statement (a new document in
one chunk) or in one transaction with its business effects (the rest). The answer is given
only after COMMIT. CPU-heavy steps of large packages run off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeGuard

from exchange import bounds, standing
from exchange.attachment_check import attachment_events, check_attachments
from exchange.edxml.aside import Aside
from exchange.edxml.codes import BusinessType, Priority, StatusCode
from exchange.edxml.errors import SchemaInvalid
from exchange.edxml.hidden import refuse_hidden_markup
from exchange.edxml.ids import document_id_organ, is_organ_id
from exchange.edxml.model import Edoc, Status
from exchange.edxml.package import ParsedPackage, parse_package
from exchange.edxml.parser import DEFAULT_LIMITS, Limits
from exchange.edxml.reader import read_edoc, read_status
from exchange.edxml.schema import explain_invalid
from exchange.errors import (
    AgencyDisabled,
    AgencyPending,
    Conflict,
    DocumentIdNotSender,
    DocumentNotOfficial,
    DuplicateDocument,
    ErrorDetail,
    InvalidInput,
    NoRecipients,
    NotFound,
    SenderNotOwned,
    SignatureRejected,
    Unauthenticated,
    UnknownDocument,
    UnknownRecipient,
)
from exchange.model import Agency, AgencyState, DeliveryMode, System
from exchange.package_body import CHUNK_BYTES, PackageBody
from exchange.receipts import sign_receipt
from exchange.registry_cache import RegistryCache, RegistryView, SenderFacts
from exchange.settings import LimitsSettings, Settings
from exchange.statuses import check_reportable, route_status, transition_flag
from exchange.store import agencies as agency_store
from exchange.store import audit
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store import statuses as status_store
from exchange.store import systems as system_store
from exchange.store.agencies import RegistryChanged
from exchange.store.audit import Event
from exchange.store.db import Connection, Pool, UniqueViolation
from exchange.store.deliveries import DeliveryRow, NewDelivery
from exchange.store.messages import MessageRow
from exchange.trust.pdf_signatures import AttachmentReport
from exchange.trust.policy import Decision, check_signature
from exchange.trust.signing import Signer
from exchange.turns import Turns

# How a plan reads agencies: from the registry as kept (exchange.registry_cache) or straight from it.
AgencyLookup = Callable[[Connection, Sequence[str]], Awaitable[dict[str, Agency]]]
# Refusals that depend on what the registry says of the caller and the sender (its systems, the
# sender's standing, its signature and attachment policies and trust): judged again when the
# registry has changed since the caller authenticated, and only those (a second check costs as
# much as the first).
_SENDER_STANDING = (SenderNotOwned, AgencyPending, AgencyDisabled, SignatureRejected, DocumentNotOfficial)


@dataclass(frozen=True)
class Accepted:
    """The answer to a submission: new (201) or the same as before (200)."""

    created: bool
    message: MessageRow
    deliveries: list[DeliveryRow]
    receipt: str
    attachments: AttachmentReport | None = None  # judged now (None when the package was known already)

    def as_dict(self) -> dict[str, Any]:
        signature = self.message.signature
        return {
            "message_id": str(self.message.id),
            "kind": self.message.kind,
            "document_id": self.message.document_id,
            "sender": self.message.sender,
            "received_at": self.message.received_at.isoformat(),
            "sha256": self.message.sha256.hex(),
            "signature": {
                "verdict": signature["verdict"],
                "signer": signature.get("signer"),
                "reason": signature.get("reason"),
            },
            "deliveries": [
                {"delivery_id": str(d.id), "recipient": d.recipient, "state": d.state}
                for d in self.deliveries
            ],
            "receipt": self.receipt,
        }


@dataclass(frozen=True)
class Scope:
    """Which of a package's recipients a submission is for.

    ``only``: the ones a protocol named beside the package (VXP's ``to``); ``local_only``: a
    package relayed from an upstream axis is delivered to the agencies served here and no further.
    """

    only: frozenset[str] | None = None
    local_only: bool = False


async def _in_scope(
    conn: Connection,
    recipients: list[str],
    scope: Scope,
    agencies: AgencyLookup = agency_store.agencies_by_ids,
) -> list[str]:
    if scope.only is not None:
        stray = sorted(scope.only - set(recipients))
        if stray:
            raise UnknownRecipient(f"the request names recipients the package does not address: {stray}")
        recipients = [r for r in recipients if r in scope.only]
    if scope.local_only:
        registered = await agencies(conn, recipients)
        recipients = [
            r
            for r in recipients
            if r in registered
            and registered[r].mode is not DeliveryMode.UPSTREAM
            and registered[r].in_service  # a pending or disabled agency is not served here now
        ]
        if not recipients:
            raise UnknownRecipient("none of the package's recipients is served by this axis")
    return recipients


@dataclass
class _Plan:
    """What one accepted package will write, decided inside the transaction."""

    recipients: list[Agency]
    related: MessageRow | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class _Checked:
    """A package as checked: its model, the verdicts, and the registry it was checked under."""

    model: Edoc | Status
    decision: Decision
    attachments: AttachmentReport | None
    registry: RegistryView
    on_condition: bool  # stored only while the registry is still at the version checked under

    @property
    def condition(self) -> int | None:
        """The registry version the store is made on condition of (None: none)."""
        return self.registry.version if self.on_condition else None


def package_limits(settings: LimitsSettings) -> Limits:
    """The parser's limits for packages up to ``limits.max_package_bytes`` (an attachment is one
    text node, so a text node may be as long as the largest package)."""
    return replace(
        DEFAULT_LIMITS,
        max_bytes=settings.max_package_bytes,
        max_text_chars=max(DEFAULT_LIMITS.max_text_chars, settings.max_package_bytes),
    )


class Intake:
    def __init__(self, pool: Pool, settings: Settings, signer: Signer, limits: Limits | None = None) -> None:
        self._pool = pool
        self._settings = settings
        self._signer = signer
        self._limits = limits or package_limits(settings.limits)
        self._registry = RegistryCache(settings.trust)
        self._turns = Turns(settings.limits.intake_concurrency, settings.limits.intake_wait_s)

    @property
    def limits(self) -> Limits:
        """What the parser allows a package (the API parses bodies as they arrive with these)."""
        return self._limits

    async def submit(
        self,
        caller: System,
        data: bytes | PackageBody,
        *,
        expected_sender: str | None = None,
        expected_kind: str | None = None,
        scope: Scope | None = None,
    ) -> Accepted:
        """Accept a package; ``expected_*`` are what a protocol said beside it (VXP from, messagetype),
        ``scope`` which of its recipients this submission is for. A PackageBody stays the caller's
        to close (parsed already as it arrived, or parsed here)."""
        scope = scope or Scope()
        if scope.only is not None and not scope.only:
            raise NoRecipients(
                "the request names no recipient (an empty 'to'): nothing would be delivered",
                [ErrorDetail("name at least one of the package's recipients, or leave 'to' out for all")],
            )
        if isinstance(data, PackageBody):
            return await self._submit(caller, data, expected_sender, expected_kind, scope)
        with PackageBody.of(data, self._limits.max_bytes) as body:
            return await self._submit(caller, body, expected_sender, expected_kind, scope)

    async def _submit(
        self,
        caller: System,
        body: PackageBody,
        expected_sender: str | None,
        expected_kind: str | None,
        scope: Scope,
    ) -> Accepted:
        async with self._turns.take(caller.name):  # a few packages at once (exchange.turns)
            try:
                return await self._check_and_store(
                    caller, body, expected_sender, expected_kind, scope, caller.registry_version
                )
            except RegistryChanged:
                pass  # accepted under a registry that changed before the package could be stored
            except _SENDER_STANDING:
                # Recipients are judged afresh in _store already; these come from what was kept.
                if not await self._registry_moved(caller.registry_version):
                    raise  # refused under the registry as it is
            # The registry changed since the caller authenticated (an administrator's act, during a
            # long upload perhaps): the package is checked again from its bytes (the first check may
            # have changed the tree: a legacy signature layout is converted in place), for the caller
            # and under the registry as they are now, and stored whatever happens to them meanwhile.
            body.root = None
            caller = await self._caller_now(caller)
            return await self._check_and_store(
                caller, body, expected_sender, expected_kind, scope, None, on_condition=False
            )

    async def _registry_moved(self, version: int | None) -> bool:
        if version is None:
            return False  # read during the check: as it is
        async with self._pool.acquire() as conn:
            return await agency_store.registry_version(conn) != version

    async def _caller_now(self, caller: System) -> System:
        """The caller as registered now: a system disabled (or removed) while its request was under way
        sends nothing, and acts only for the agencies it serves now."""
        async with self._pool.acquire() as conn:
            try:
                current = await system_store.system_by_name(conn, caller.name)
            except NotFound:
                current = None
        if current is None or current.id != caller.id or not current.active:
            raise Unauthenticated(f"system {caller.name!r} was disabled while its request was under way")
        return current

    async def _check_and_store(
        self,
        caller: System,
        body: PackageBody,
        expected_sender: str | None,
        expected_kind: str | None,
        scope: Scope,
        registry_version: int | None,
        on_condition: bool = True,
    ) -> Accepted:
        """Check the package under the registry as of ``registry_version`` (None: as read now) and store
        it, ``on_condition`` that the registry is still at that version (else RegistryChanged)."""
        parsed = await _parsed(body, self._limits)
        bounds.check_package(parsed.model)
        sender = parsed.model.sender.organ_id
        if expected_sender is not None and expected_sender != sender:
            raise SenderNotOwned(f"the request says it is from {expected_sender}, the package from {sender}")
        if expected_kind is not None and expected_kind != parsed.kind:
            raise InvalidInput(f"messagetype is {expected_kind} but the package is a {parsed.kind} package")
        relayed = caller.relay and await self._served_elsewhere(caller, sender)
        if sender not in caller.organ_ids and not relayed:
            raise SenderNotOwned(
                f"system {caller.name!r} does not act for the sender {sender}",
                [
                    ErrorDetail(
                        f"From/OrganId is {sender}; {caller.name} acts for "
                        f"{', '.join(caller.organ_ids) or 'no agency'}",
                        path="/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId",
                    )
                ],
            )
        async with self._pool.acquire() as conn:
            registry = await self._registry.at(conn, registry_version)
            facts = await registry.sender(conn, sender)
        standing.check_sender(sender, facts.agency)
        if any(not slot.empty for slot in parsed.signatures):
            refuse_hidden_markup(parsed.root)
        decision = await self._check_signature(parsed, facts, body)
        model = _signed_model(parsed, decision, body.aside)
        # The trees are not needed to store the package: let them go before the bytes move.
        del parsed
        decision = replace(decision, verdict=replace(decision.verdict, signed_root=None))
        attachments = await check_attachments(
            self._settings.trust, model, body, facts.attachment_policy, facts.document_trust
        )
        checked = _Checked(model, decision, attachments, registry, on_condition)
        try:
            return await self._store(caller, body, scope, checked)
        except UniqueViolation:
            # The same package was sent before (a resubmission) or raced in through another request
            # that won: answered from the transaction, which reads what is stored.
            try:
                return await self._store(caller, body, scope, checked, one_statement=False)
            except UniqueViolation as again:
                # Not a race (it would be resolved by now): the package asks for something stored
                # once only twice over. Refused in words, never a 500.
                raise Conflict(
                    "the package would store something twice that is stored once only; nothing was kept",
                    [ErrorDetail(f"constraint {again.constraint_name or 'unique'}")],
                ) from None

    async def _served_elsewhere(self, relay: System, organ_id: str) -> bool:
        """A relay (an upstream axis) speaks only for the OrganIds its upstream is configured to route,
        and of those only for agencies no local system serves. Never for an unregistered OrganId of
        this axis's own namespace: a system could register it later and inherit what was said."""
        upstream = self._settings.upstream_for(organ_id)
        if upstream is None or upstream.relay_system != relay.name:
            return False
        async with self._pool.acquire() as conn:
            agency = (await agency_store.agencies_by_ids(conn, [organ_id])).get(organ_id)
        return agency is None or agency.mode is DeliveryMode.UPSTREAM

    async def _check_signature(
        self, parsed: ParsedPackage, facts: SenderFacts, body: PackageBody
    ) -> Decision:
        sender, policy, material = parsed.model.sender.organ_id, facts.signature_policy, facts.envelope_trust
        now = datetime.now(UTC)
        decision = await body.work(
            lambda: check_signature(parsed.root, sender, policy, material, now, body.aside)
        )
        if not decision.accepted:
            raise SignatureRejected(
                f"the signature is {decision.verdict.verdict.value} and {sender}'s policy is {policy.value}",
                [ErrorDetail(decision.reason, path="/edXML/edXMLEnvelope/edXMLHeader/Signature")],
            )
        return decision

    async def _store(
        self, caller: System, body: PackageBody, scope: Scope, checked: _Checked, one_statement: bool = True
    ) -> Accepted:
        model, condition = checked.model, checked.condition
        async with self._pool.acquire() as conn:
            if one_statement and _one_statement(model, body):
                # Most packages: planned from the registry as kept and stored by one statement,
                # atomic on its own, if the registry is still as checked. A twin (a resubmission, or
                # one racing in) is stopped by the unique index: UniqueViolation, retried below.
                try:
                    plan = await _plan_edoc(
                        conn,
                        model,
                        scope,
                        self._settings,
                        may_register=False,
                        agencies=checked.registry.agencies,
                    )
                except _RegistrationNeeded:
                    pass  # a recipient to register first: a refusal after it must undo it
                except InvalidInput:
                    pass  # judged again below from what is stored: a resubmission is answered first
                else:
                    if plan.recipients:
                        return await self._accept(conn, caller, body, checked, plan, condition)
            async with conn.transaction():
                # Read first: registering an upstream agency below moves the version on itself.
                moved = condition is not None and await agency_store.registry_version(conn) != condition
                existing = await _existing(conn, model, body.sha256)
                if existing is not None:
                    return await self._resubmitted(conn, caller, model, existing, scope)
                if isinstance(model, Edoc):
                    plan = await _plan_edoc(conn, model, scope, self._settings)
                else:
                    plan = await _plan_status(conn, model, self._settings)
                if moved:  # planned from what is stored now, but checked under a registry since changed
                    raise RegistryChanged(condition)
                return await self._accept(conn, caller, body, checked, plan, None)

    async def _accept(
        self,
        conn: Connection,
        caller: System,
        body: PackageBody,
        checked: _Checked,
        plan: _Plan,
        registry_version: int | None,
    ) -> Accepted:
        """Store a new package, its deliveries and audit entries, then apply its effects. The receipt
        is signed first and stored with the message: evidence never lacks it. ``registry_version``:
        stored only if the registry is still at it (else RegistryChanged, nothing written)."""
        model, decision, attachments = checked.model, checked.decision, checked.attachments
        message_id = uuid.uuid4()
        unsigned = _new_message(message_id, caller, model, body.sha256, body.size, decision, plan)
        new = [
            NewDelivery(
                uuid.uuid4(), message_id, agency.organ_id, agency.mode.value, "queued", unsigned.urgency
            )
            for agency in plan.recipients
        ]
        receipt = sign_receipt(self._signer, unsigned, [d.recipient for d in new])
        message = replace(unsigned, receipt=receipt)
        events = [
            Event(
                "message.accepted",
                message_id,
                details={
                    "kind": message.kind,
                    "document_id": message.document_id,
                    "sha256": message.sha256.hex(),
                    "size_bytes": message.size_bytes,
                    "business_type": message.business_type,
                    "status_code": message.status_code,
                },
            ),
            Event("signature.checked", message_id, details=decision.verdict.as_dict()),
            *attachment_events(message_id, attachments),
            *[
                Event("delivery.created", message_id, d.id, {"recipient": d.recipient, "mode": d.mode})
                for d in new
            ],
            *plan.events,
        ]
        report = None if attachments is None else (attachments.official, attachments.as_dict())
        deliveries = await message_store.insert_accepted(
            conn, message, body.chunks(), new, caller.name, events, report, registry_version
        )
        written = len(plan.events)
        await _apply_effects(conn, model, message, plan)  # on earlier messages, never this one
        await audit.append(conn, caller.name, plan.events[written:])
        return Accepted(True, message, deliveries, receipt, attachments)

    async def _resubmitted(
        self, conn: Connection, caller: System, model: Edoc | Status, existing: MessageRow, scope: Scope
    ) -> Accepted:
        """The same package again: the same answer, plus a delivery for each recipient in its scope
        that has none yet (a resubmission with a wider scope). A recipient never gets two."""
        deliveries = await delivery_store.deliveries_of(conn, existing.id)
        if isinstance(model, Status):
            return Accepted(False, existing, deliveries, existing.receipt or "")
        held = {d.recipient for d in deliveries}
        asked = await _in_scope(conn, _recipients_of(model), scope)
        missing = frozenset(asked) - held
        if not missing:
            return Accepted(False, existing, deliveries, existing.receipt or "")
        plan = await _plan_edoc(conn, model, Scope(missing, scope.local_only), self._settings)
        new = [
            NewDelivery(uuid.uuid4(), existing.id, a.organ_id, a.mode.value, "queued", existing.urgency)
            for a in plan.recipients
        ]
        if not new and not plan.events:
            return Accepted(False, existing, deliveries, existing.receipt or "")
        await delivery_store.insert_deliveries(conn, new)
        reason = "added by a resubmission with a wider scope"
        await audit.append(
            conn,
            caller.name,
            [
                *[
                    Event(
                        "delivery.created",
                        existing.id,
                        d.id,
                        {"recipient": d.recipient, "mode": d.mode, "reason": reason},
                    )
                    for d in new
                ],
                *plan.events,
            ],
        )
        deliveries = await delivery_store.deliveries_of(conn, existing.id)
        # The receipt now vouches for every recipient, as it would have had they all been named at once.
        receipt = sign_receipt(self._signer, existing, [d.recipient for d in deliveries])
        await message_store.set_receipt(conn, existing.id, receipt)
        return Accepted(False, existing, deliveries, receipt)


def _one_statement(model: Edoc | Status, body: PackageBody) -> TypeGuard[Edoc]:
    """A new document in one chunk has no effect on earlier messages: one statement stores it."""
    return isinstance(model, Edoc) and model.business_type is BusinessType.NEW and body.size <= CHUNK_BYTES


def _recipients_of(edoc: Edoc) -> list[str]:
    return list(dict.fromkeys(recipient.organ_id for recipient in edoc.recipients))


async def _parsed(body: PackageBody, limits: Limits) -> ParsedPackage:
    """Check a package parsed as it arrived (``body.root``), or parse it from the body's file a chunk
    at a time (the tree is held, its attachment texts and the bytes are not); a schema refusal is
    explained (the slow part) off the loop."""

    def parsed() -> ParsedPackage:
        root = body.root if body.root is not None else body.parse(limits)
        return parse_package(b"", limits, root=root, explain=body.large, aside=body.aside)

    try:
        return await body.work(parsed)
    except SchemaInvalid as invalid:
        if invalid.unexplained is None:
            raise
        raise await asyncio.to_thread(explain_invalid, invalid) from None


def _signed_model(parsed: ParsedPackage, decision: Decision, aside: Aside | None) -> Edoc | Status:
    """After a valid signature, read only what it covers: the tree as received when it is exactly
    what was signed (most packages), else the signed document the verifier gave back. Attachment
    texts set aside stay in the bytes (``check_attachments`` decodes them from there, as signed)."""
    signed_root = decision.verdict.signed_root
    if signed_root is None or signed_root is parsed.root:
        return parsed.model
    if parsed.kind == "status":
        return read_status(signed_root)
    edoc = read_edoc(signed_root)
    return aside.left_out(edoc) if aside is not None else edoc


async def _existing(conn: Connection, model: Edoc | Status, sha256: bytes) -> MessageRow | None:
    """The message this package was already accepted as; a different package under its identity is 409."""
    if isinstance(model, Status):
        return await message_store.status_by_hash(conn, model.sender.organ_id, sha256)
    existing = await message_store.edoc_by_identity(
        conn, model.sender.organ_id, model.document_id, int(model.business_type)
    )
    if existing is not None and existing.sha256 != sha256:
        raise DuplicateDocument(
            f"{model.sender.organ_id} already sent document {model.document_id!r} "
            f"(business type {int(model.business_type)}) with different content",
            [
                ErrorDetail(
                    f"accepted before as message {existing.id} with sha256 {existing.sha256.hex()}",
                    path="/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/DocumentId",
                )
            ],
        )
    return existing


class _RegistrationNeeded(Exception):
    """An agency must be registered before the package can be planned (only in a transaction)."""


async def _registered(
    conn: Connection,
    organ_ids: Sequence[str],
    settings: Settings | None,
    may_register: bool = True,
    agencies: AgencyLookup = agency_store.agencies_by_ids,
) -> dict[str, Agency]:
    """The agencies of ``organ_ids`` registered here, registering first those an upstream axis routes.

    An agency registered this way is named by its code alone: the name a package gives it is the
    sender's word, not the registry's, and would show in every agency list as if verified. The
    upstream's registry sync (getSynchronizeUnit) gives it its name.
    """
    registered = await agencies(conn, organ_ids)
    routable = [
        o
        for o in organ_ids
        if o not in registered and settings is not None and settings.upstream_for(o) and is_organ_id(o)
    ]
    if routable and not may_register:
        raise _RegistrationNeeded(routable)
    if routable:  # served by an upstream axis: registered here as such, on first use
        await agency_store.register_upstream(conn, [(o, o) for o in routable])
        registered = await agency_store.agencies_by_ids(conn, organ_ids)
    return registered


async def _known_recipients(
    conn: Connection,
    organ_ids: Sequence[str],
    settings: Settings | None = None,
    may_register: bool = True,
    agencies: AgencyLookup = agency_store.agencies_by_ids,
) -> list[Agency]:
    registered = await _registered(conn, organ_ids, settings, may_register, agencies)
    standing.check_recipients(organ_ids, registered)
    return [registered[organ_id] for organ_id in organ_ids]


async def _check_document_id(conn: Connection, edoc: Edoc, agencies: AgencyLookup) -> None:
    """A DocumentId belongs to the agency it names: another agency's id could capture its statuses."""
    sender = edoc.sender.organ_id
    named = document_id_organ(edoc.document_id)
    if named is None or named == sender:
        return
    agency = (await agencies(conn, [sender])).get(sender)
    if agency is not None and agency.foreign_document_ids:
        return  # a legacy producer, tolerated by the registry
    raise DocumentIdNotSender(
        f"DocumentId {edoc.document_id!r} names agency {named}, but the package is from {sender}",
        [
            ErrorDetail(
                f"the OrganId part of the DocumentId must be the sender's ({sender})",
                path="/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/DocumentId",
            )
        ],
    )


async def _plan_edoc(
    conn: Connection,
    edoc: Edoc,
    scope: Scope,
    settings: Settings,
    may_register: bool = True,
    agencies: AgencyLookup = agency_store.agencies_by_ids,
) -> _Plan:
    """Who gets the document; ``may_register``: register recipients an upstream axis routes (in a
    transaction), else raise _RegistrationNeeded when there are any."""
    await _check_document_id(conn, edoc, agencies)
    recipients = await _in_scope(conn, _recipients_of(edoc), scope, agencies)
    plan = _Plan(await _known_recipients(conn, recipients, settings, may_register, agencies))
    if edoc.business_type is not BusinessType.NEW:
        target_id = _target_document_id(edoc)
        plan.related = await message_store.edoc_by_document(conn, edoc.sender.organ_id, target_id or "")
        if plan.related is None or plan.related.business_type != BusinessType.NEW:
            raise UnknownDocument(
                f"{edoc.business_type.label} ({int(edoc.business_type)}) of document {target_id!r}, which "
                f"{edoc.sender.organ_id} never sent",
                [
                    ErrorDetail(
                        "the target document must be one this sender sent before",
                        path="/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/DocumentId",
                    )
                ],
            )
    if edoc.business_type is BusinessType.REVOKE:
        assert plan.related is not None
        plan.recipients = await _revoke(conn, plan, plan.related, plan.recipients)
    return plan


def _target_document_id(edoc: Edoc) -> str | None:
    """Which document a revoke/update/replace acts on; producers name it in different places."""
    bussiness = edoc.bussiness
    if bussiness is not None and bussiness.document_id:
        return bussiness.document_id
    if bussiness is not None and bussiness.replacements:
        return bussiness.replacements[0].document_id
    return next((r.document_id for r in edoc.response_for if r.document_id), None)


async def _revoke(
    conn: Connection, plan: _Plan, target: MessageRow, recipients: list[Agency]
) -> list[Agency]:
    """Withdraw copies not yet downloaded; only recipients who already hold one get the notice."""
    copies = {d.recipient: d for d in await delivery_store.deliveries_of(conn, target.id)}
    concerned = [copies[a.organ_id].id for a in recipients if a.organ_id in copies]
    withdrawn = await delivery_store.withdraw_undelivered(conn, concerned)
    plan.events += [
        Event("delivery.withdrawn", target.id, delivery_id, {"reason": "revoked before download"})
        for delivery_id in withdrawn
    ]
    # Told: those without a copy of the target, and those whose copy reached them.
    return [
        a
        for a in recipients
        if a.organ_id not in copies
        or (copies[a.organ_id].id not in withdrawn and copies[a.organ_id].state != "withdrawn")
        or copies[a.organ_id].received
    ]


async def _plan_status(conn: Connection, status: Status, settings: Settings) -> _Plan:
    """Where a status goes: never accepted to go nowhere. The document's sender (or, for 13, its
    recipients) must be registered, or routed to an upstream axis (then registered as for a
    recipient). One pending approval never sent anything itself (a pending agency cannot send): a
    status to it is refused. One disabled after sending gets it held, as its other deliveries are."""
    route = await route_status(conn, status)
    registered = await _registered(conn, route.recipients, settings)
    unknown = [o for o in route.recipients if o not in registered]
    if unknown:
        raise UnknownRecipient(
            "the status cannot be delivered: its addressee is not a registered agency",
            [ErrorDetail(f"{o} is not registered, nor routed to an upstream axis") for o in unknown],
        )
    pending = [registered[o] for o in route.recipients if registered[o].state is AgencyState.PENDING]
    if pending:
        raise AgencyPending(
            "the status is addressed to an agency pending approval, which cannot have sent the document",
            [ErrorDetail(f"{a.organ_id} is pending an admin's approval") for a in pending],
        )
    return _Plan([registered[o] for o in route.recipients], related=route.document)


async def _apply_effects(conn: Connection, model: Edoc | Status, message: MessageRow, plan: _Plan) -> None:
    if isinstance(model, Status):
        await _record_status(conn, model, message, plan)
    elif model.business_type is BusinessType.UPDATE and plan.related is not None:
        await _update_recipients(conn, model, plan.related, plan)


async def _record_status(conn: Connection, status: Status, message: MessageRow, plan: _Plan) -> None:
    assert plan.related is not None
    reporter = status.sender.organ_id
    concerned = _concerned(status, await delivery_store.deliveries_of(conn, plan.related.id), plan)
    # Two statuses about one copy decide from its history one after the other, never both from the
    # same history: lock the copies, then read them (and their history) afresh.
    await delivery_store.lock(conn, [d.id for d in concerned])
    concerned = _concerned(status, await delivery_store.deliveries_of(conn, plan.related.id), plan)
    staff = status.staff_info.staff if status.staff_info is not None else None
    for delivery in concerned:
        if status.status_code is not StatusCode.TAKE_BACK:
            check_reportable(status, delivery)  # a concurrent take-back may have withdrawn it
        # Judged against the statuses that took effect: a flagged one never became current.
        history = [row.code for row in await status_store.history(conn, delivery.id) if row.flag is None]
        flag = transition_flag(history, status.status_code)
        await status_store.record(
            conn,
            delivery.id,
            message.id,
            status.status_code.value,
            status.description,
            staff,
            status.timestamp,
            flag,
        )
        plan.events.append(
            Event(
                "status.recorded",
                plan.related.id,
                delivery.id,
                {
                    "code": status.status_code.value,
                    "label": status.status_code.label,
                    "by": reporter,
                    "status_message_id": str(message.id),
                    "flag": flag,
                },
            )
        )
        agreed = status.status_code is StatusCode.CHANGE_AGREED and flag is None
        if agreed and await delivery_store.withdraw(conn, delivery.id):
            plan.events.append(
                Event("delivery.withdrawn", plan.related.id, delivery.id, {"reason": "take-back agreed (15)"})
            )


def _concerned(status: Status, deliveries: list[DeliveryRow], plan: _Plan) -> list[DeliveryRow]:
    """The copies a status is about: the reporter's own, or (13) those it asks back."""
    if status.status_code is not StatusCode.TAKE_BACK:
        return [d for d in deliveries if d.recipient == status.sender.organ_id]
    return [d for d in deliveries if d.recipient in {a.organ_id for a in plan.recipients}]


async def _update_recipients(conn: Connection, edoc: Edoc, target: MessageRow, plan: _Plan) -> None:
    """Apply a ReceiverList: added agencies get the original document, removed ones lose it if unread."""
    info = edoc.bussiness.document_info if edoc.bussiness is not None else None
    receivers = info.receivers or () if info is not None else ()
    copies = {d.recipient: d for d in await delivery_store.deliveries_of(conn, target.id)}
    # An agency listed twice is one agency: it gets one copy (and loses it once).
    added = list(
        dict.fromkeys(r.organ_id for r in receivers if r.receiver_type == 1 and r.organ_id not in copies)
    )
    removed = list(
        dict.fromkeys(
            copies[r.organ_id].id for r in receivers if r.receiver_type == 0 and r.organ_id in copies
        )
    )
    agencies = await _known_recipients(conn, added) if added else []
    new = [
        NewDelivery(uuid.uuid4(), target.id, a.organ_id, a.mode.value, "queued", target.urgency)
        for a in agencies
    ]
    await delivery_store.insert_deliveries(conn, new)
    plan.events += [
        Event(
            "delivery.created",
            target.id,
            d.id,
            {"recipient": d.recipient, "mode": d.mode, "reason": "added by an update (2)"},
        )
        for d in new
    ]
    for delivery_id in await delivery_store.withdraw_undelivered(conn, removed):
        plan.events.append(
            Event("delivery.withdrawn", target.id, delivery_id, {"reason": "removed by an update (2)"})
        )


def _new_message(
    message_id: uuid.UUID,
    caller: System,
    model: Edoc | Status,
    sha256: bytes,
    size: int,
    decision: Decision,
    plan: _Plan,
) -> MessageRow:
    signature = decision.verdict.as_dict()
    received_at = datetime.now(UTC)  # the receipt, signed before the message is stored, tells it
    if isinstance(model, Status):
        return MessageRow(
            message_id,
            "status",
            model.sender.organ_id,
            caller.id,
            model.document_id,
            0,
            model.status_code.value,
            model.response_for.code,
            model.description,
            0,
            None,
            sha256,
            size,
            signature,
            plan.related.id if plan.related else None,
            received_at,
        )
    return MessageRow(
        message_id,
        "edoc",
        model.sender.organ_id,
        caller.id,
        model.document_id,
        int(model.business_type),
        None,
        str(model.code),
        model.subject,
        _urgency(model.priority),
        model.due_date,
        sha256,
        size,
        signature,
        plan.related.id if plan.related else None,
        received_at,
    )


def _urgency(priority: Priority) -> int:
    """Flash (3) and scheduled flash (4) go first, then very urgent (2), urgent (1), ordinary (0)."""
    return min(int(priority), 3)
