"""The second security review (issue 11): each confirmed finding, refused or done right, and nothing
wrong stored, delivered or shown. One section per finding, numbered as in SECURITY.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application

from adapters.http_push import HttpPush
from adapters.vxp_client import VxpClient
from exchange import registry, registry_control
from exchange.api.keys import INTAKE, POOL, SETTINGS, SIGNER
from exchange.app import create_app
from exchange.credentials import hash_api_key, new_api_key
from exchange.delivery import DeliveryWorker
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, StatusCode
from exchange.edxml.model import Bussiness, BussinessDocumentInfo, Organization, Receiver
from exchange.errors import SenderNotOwned, UnknownRecipient
from exchange.intake import Intake, Scope
from exchange.model import Role, System
from exchange.settings import Settings, UpstreamSettings
from exchange.statuses import transition_flag
from exchange.store import agencies as agency_store
from exchange.store import deliveries as delivery_store
from exchange.store import statuses as status_store
from exchange.store import systems as system_store
from exchange.upstream import Upstreams
from exchange.vxp.protocol import hash_file, parse_to_header
from tests.edxml_factories import small_edoc, small_status
from tests.integration.conftest import CENTRAL, DEPT, FINANCE, OTHER, World, count, inbox, receive, send

# Routed to the upstream axis "national" (prefix 000.00.00.G): never registered here beforehand.
ROUTED, ROUTED_2, ROUTED_3 = "000.00.00.G07", "000.00.00.G08", "000.00.00.G09"
LOCAL_UNREGISTERED = "000.00.04.H26"  # this province's namespace, no agency yet
VXP_SECRET = "vxp-secret-of-finance"


def doc_id(number: int, sender: str = DEPT) -> str:
    return f"{sender},2026/11/20,{number}/RV"


def edoc(number: int, recipients: tuple[str, ...], sender: str = DEPT, **changes: Any) -> bytes:
    document = small_edoc(sender=sender, recipients=recipients, document_id=doc_id(number, sender))
    return build_edoc(replace(document, **changes))


def status(reporter: str, original: str, document_id: str, code: StatusCode) -> bytes:
    return build_status(
        small_status(sender=reporter, original_sender=original, document_id=document_id, code=code)
    )


def revoke(number: int, target: str, recipients: tuple[str, ...]) -> bytes:
    return edoc(
        number, recipients, bussiness=Bussiness(BusinessType.REVOKE, document_id=target, reason="rút lại")
    )


def copy_of(accepted: dict[str, Any], organ: str) -> str:
    return next(d["delivery_id"] for d in accepted["deliveries"] if d["recipient"] == organ)


class Upstream:
    """The national axis as this one's VXP client sees it: records each sendEdoc's ``to``."""

    def __init__(self) -> None:
        self.down = False
        self.sent: list[tuple[frozenset[str], bool]] = []  # (to, accepted)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        operation = request.path.strip("/").split("/")[-1]
        ok = {"status": "OK", "ErrorCode": "0", "ErrorDesc": "ok"}
        if operation == "sendEdoc":
            self.sent.append((parse_to_header(request.headers.get("XroadVnpt-to")), not self.down))
            if self.down:
                return web.json_response(
                    {"status": "FAIL", "ErrorCode": "503", "ErrorDesc": "down", "DocId": ""}
                )
            return web.json_response({**ok, "DocId": "up-1"})
        return web.json_response({**ok, "data": []})


@pytest.fixture
async def upstream(
    aiohttp_server: Callable[[Application], Awaitable[TestServer]],
) -> tuple[Upstream, TestServer]:
    upstream = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    return upstream, await aiohttp_server(app)


@pytest.fixture
def relay_settings(settings: Settings, upstream: tuple[Upstream, TestServer]) -> Settings:
    """An axis with the national one upstream (for 000.00.00.G...), its workers driven by the tests."""
    national = UpstreamSettings(
        name="national",
        url=str(upstream[1].make_url("")).rstrip("/"),
        system_id="city",
        secret="city-secret",
        prefixes=["000.00.00.G"],
        poll_interval_s=3600,
    )
    return settings.model_copy(
        update={
            "upstreams": [national],
            "delivery": settings.delivery.model_copy(update={"enabled": False}),
        }
    )


@pytest.fixture
async def relay_client(
    aiohttp_client: Callable[[Application], Awaitable[TestClient]],
    relay_settings: Settings,
    database_url: str,
) -> TestClient:
    return await aiohttp_client(create_app(relay_settings, database_url))


@pytest.fixture
async def relay(relay_client: TestClient, conn: asyncpg.Connection) -> System:
    """The local system standing for the national axis (as Upstreams.start makes it)."""
    return await system_store.ensure_relay(conn, "upstream-national", hash_api_key(new_api_key()))


@pytest.fixture
async def forwarder(relay_client: TestClient) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker forwarding to the upstream, as the scheduler builds it."""
    app = relay_client.server.app
    pusher = HttpPush(app[SIGNER], 5, allow_private_endpoints=True)
    await pusher.start()
    async with aiohttp.ClientSession() as session:
        upstreams = Upstreams(app[POOL], app[SETTINGS], app[INTAKE], session)
        yield DeliveryWorker(app[POOL], app[SETTINGS].delivery, pusher, "review-worker", forwarder=upstreams)
    await pusher.close()


async def history(conn: asyncpg.Connection, delivery_id: str) -> list[tuple[str, str | None]]:
    return [(row.code, row.flag) for row in await status_store.history(conn, UUID(delivery_id))]


async def current_status(conn: asyncpg.Connection, delivery_id: str) -> str | None:
    row = await delivery_store.delivery_by_id(conn, UUID(delivery_id))
    assert row is not None
    return row.business_status


# 1. Concurrent statuses about one copy are decided one after the other.


async def test_concurrent_statuses_never_move_the_current_status_back(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    pairs = [(StatusCode.COMPLETED, StatusCode.ACCEPTED), (StatusCode.COMPLETED, StatusCode.REFUSED)] * 6
    for number, (first, second) in enumerate(pairs, start=1):
        accepted = await send(client, world, DEPT, edoc(number, (FINANCE,)))
        copy = copy_of(accepted, FINANCE)
        await receive(client, world, FINANCE)
        await send(client, world, FINANCE, status(FINANCE, DEPT, doc_id(number), StatusCode.ARRIVED))
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/packages",
                    data=status(FINANCE, DEPT, doc_id(number), code),
                    headers=world.as_(FINANCE),
                )
                for code in (first, second)
            )
        )
        assert [answer.status for answer in answers] == [201, 201]
        recorded = await history(conn, copy)
        effective = [code for code, flag in recorded if flag is None]
        # What took effect follows, step by step, from what took effect before it.
        for index, code in enumerate(effective):
            assert transition_flag(effective[:index], StatusCode(code)) is None, recorded
        assert sum(code in ("02", "06") for code in effective) <= 1, recorded
        assert len(recorded) == 3
        if second is StatusCode.REFUSED:  # 02 and 06 are both final: one of them is flagged
            assert len(effective) == 2, recorded
        assert await current_status(conn, copy) == effective[-1]


# 2. A forward to the upstream names only the recipient of the delivery being forwarded.


async def test_a_withdrawn_upstream_recipient_is_never_named_to_the_upstream(
    relay_client: TestClient,
    world: World,
    conn: asyncpg.Connection,
    upstream: tuple[Upstream, TestServer],
    forwarder: DeliveryWorker,
) -> None:
    national, _ = upstream
    national.down = True
    accepted = await send(relay_client, world, DEPT, edoc(1, (ROUTED, ROUTED_2)))
    assert await forwarder.run_until_idle() == 2  # both refused upstream: retry_wait
    await send(relay_client, world, DEPT, revoke(2, doc_id(1), (ROUTED,)))
    withdrawn = await delivery_store.delivery_by_id(conn, UUID(copy_of(accepted, ROUTED)))
    assert withdrawn is not None
    assert withdrawn.state == "withdrawn"

    national.down = False
    await conn.execute("UPDATE deliveries SET next_attempt_at = now() WHERE state = 'retry_wait'")
    await forwarder.run_until_idle()
    delivered = [sorted(to) for to, ok in national.sent if ok]
    assert delivered == [[ROUTED_2]]  # the withdrawn ROUTED is named in no forward that went through
    assert all(len(to) == 1 for to, _ in national.sent)  # each forward names its own recipient only
    kept = await delivery_store.delivery_by_id(conn, UUID(copy_of(accepted, ROUTED_2)))
    assert kept is not None
    assert kept.state == "delivered"


# 3. A relay speaks only for what its upstream routes; a system sees only through agencies in service.


async def test_a_relay_cannot_speak_for_an_organ_id_of_this_axis(
    relay_client: TestClient, world: World, relay: System, conn: asyncpg.Connection
) -> None:
    intake: Intake = relay_client.server.app[INTAKE]
    before = await count(conn, "messages")
    with pytest.raises(SenderNotOwned):
        await intake.submit(relay, edoc(1, (DEPT,), sender=LOCAL_UNREGISTERED), scope=Scope(local_only=True))
    assert await count(conn, "messages") == before
    assert await inbox(relay_client, world, DEPT) == []
    # What its upstream does route is accepted, as before.
    accepted = await intake.submit(relay, edoc(2, (DEPT,), sender=ROUTED), scope=Scope(local_only=True))
    assert accepted.created
    assert [d.recipient for d in accepted.deliveries] == [DEPT]


async def test_a_disabled_agency_gives_its_system_no_view_until_enabled(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    accepted = await send(client, world, OTHER, edoc(1, (FINANCE,), sender=OTHER))
    message = accepted["message_id"]
    await registry_control.set_agency_enabled(conn, "ops", OTHER, False)
    for path in (
        f"/v1/messages/{message}",
        f"/v1/messages/{message}/evidence",
        f"/v1/messages/{message}/trace",
    ):
        response = await client.get(path, headers=world.as_(OTHER))
        assert response.status == 404, path
    found = await client.get(f"/v1/documents?sender={OTHER}", headers=world.as_(OTHER))
    assert found.status == 200
    assert (await found.json())["items"] == []
    await registry_control.set_agency_enabled(conn, "ops", OTHER, True)
    assert (await client.get(f"/v1/messages/{message}", headers=world.as_(OTHER))).status == 200


async def test_a_status_to_a_pending_sender_is_refused_and_to_a_disabled_one_held(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    await send(client, world, OTHER, edoc(1, (FINANCE,), sender=OTHER))
    await send(client, world, OTHER, edoc(2, (FINANCE,), sender=OTHER))
    await receive(client, world, FINANCE)
    await conn.execute("UPDATE agencies SET pending = true WHERE organ_id = $1", OTHER)
    before = await count(conn, "messages")
    refused = await send(
        client, world, FINANCE, status(FINANCE, OTHER, doc_id(1, OTHER), StatusCode.ACCEPTED), status=422
    )
    assert refused["error"]["code"] == "agency_pending"
    assert await count(conn, "messages") == before

    await conn.execute("UPDATE agencies SET pending = false, active = false WHERE organ_id = $1", OTHER)
    held = await send(client, world, FINANCE, status(FINANCE, OTHER, doc_id(2, OTHER), StatusCode.ACCEPTED))
    assert [d["recipient"] for d in held["deliveries"]] == [OTHER]
    assert await inbox(client, world, OTHER, "status") == []  # held while disabled
    await registry_control.set_agency_enabled(conn, "ops", OTHER, True)
    assert [i["message_id"] for i in await inbox(client, world, OTHER, "status")] == [held["message_id"]]


# 4. Only a downloaded copy is acknowledged; a revocation withdraws every copy not received.


async def test_ack_done_of_a_copy_never_downloaded_is_refused_and_the_revoke_withdraws_it(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    accepted = await send(client, world, DEPT, edoc(1, (FINANCE, CENTRAL)))
    copy = copy_of(accepted, FINANCE)
    response = await client.post(
        f"/v1/deliveries/{copy}/ack", json={"result": "done"}, headers=world.as_(FINANCE)
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "not_received"
    row = await delivery_store.delivery_by_id(conn, UUID(copy))
    assert row is not None
    assert (row.state, row.acked_at, row.last_ack) == ("queued", None, None)

    # A copy some older path left "acked" without a download is still not received: withdrawn too.
    other = copy_of(accepted, CENTRAL)
    await conn.execute("UPDATE deliveries SET state = 'acked', last_ack = 'done' WHERE id = $1", UUID(other))
    await send(client, world, DEPT, revoke(2, doc_id(1), (FINANCE, CENTRAL)))
    for organ, delivery in ((FINANCE, copy), (CENTRAL, other)):
        row = await delivery_store.delivery_by_id(conn, UUID(delivery))
        assert row is not None
        assert row.state == "withdrawn"
        download = await client.get(f"/v1/deliveries/{delivery}/package", headers=world.as_(organ))
        assert download.status == 410
        assert b"%PDF" not in await download.read()
    assert all(item["message_id"] != accepted["message_id"] for item in await inbox(client, world, FINANCE))


# 5. A status never goes nowhere.


async def test_a_status_to_an_unregistered_upstream_sender_registers_it_or_is_refused(
    relay_client: TestClient, world: World, relay: System, conn: asyncpg.Connection, settings: Settings
) -> None:
    app = relay_client.server.app
    intake: Intake = app[INTAKE]
    for number in (1, 2):
        await intake.submit(relay, edoc(number, (DEPT,), sender=ROUTED), scope=Scope(local_only=True))
    await receive(relay_client, world, DEPT)
    assert await agency_store.agencies_by_ids(conn, [ROUTED]) == {}

    # The upstream routes it: registered (under its code), and the status goes there.
    told = await send(relay_client, world, DEPT, status(DEPT, ROUTED, doc_id(1, ROUTED), StatusCode.ACCEPTED))
    assert [(d["recipient"], d["state"]) for d in told["deliveries"]] == [(ROUTED, "queued")]
    registered = (await agency_store.agencies_by_ids(conn, [ROUTED]))[ROUTED]
    assert (registered.name, registered.mode.value) == (ROUTED, "upstream")

    # Routed nowhere (the upstream gone from the configuration): refused, nothing stored.
    dept = await system_store.system_by_name(conn, f"dms-{DEPT}")
    no_upstream = Intake(app[POOL], settings, app[SIGNER])
    await conn.execute("DELETE FROM deliveries WHERE recipient = $1", ROUTED)
    await conn.execute("DELETE FROM agencies WHERE organ_id = $1", ROUTED)
    before = await count(conn, "messages")
    with pytest.raises(UnknownRecipient):
        await no_upstream.submit(dept, status(DEPT, ROUTED, doc_id(2, ROUTED), StatusCode.ACCEPTED))
    assert await count(conn, "messages") == before
    assert await agency_store.agencies_by_ids(conn, [ROUTED]) == {}


async def test_a_refused_new_document_registers_no_upstream_agency(
    relay_client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    """A new document is stored by one statement, outside a transaction, unless a recipient must be
    registered first: a refusal after that registration must undo it."""
    before = await count(conn, "messages")
    await send(relay_client, world, DEPT, edoc(1, (ROUTED, LOCAL_UNREGISTERED)), status=422)
    assert await count(conn, "messages") == before
    assert await agency_store.agencies_by_ids(conn, [ROUTED]) == {}

    told = await send(relay_client, world, DEPT, edoc(2, (ROUTED,)))
    assert [(d["recipient"], d["state"]) for d in told["deliveries"]] == [(ROUTED, "queued")]
    assert (await agency_store.agencies_by_ids(conn, [ROUTED]))[ROUTED].mode.value == "upstream"


# 6. "processing" hands out nothing; nothing is reported on a withdrawn copy.


@pytest.fixture
async def vxp_finance(client: TestClient, world: World, conn: asyncpg.Connection) -> tuple[VxpClient, str]:
    """FINANCE served by a system with a VXP secret: its facade client and its API key."""
    await conn.execute("UPDATE agencies SET system_id = NULL WHERE organ_id = $1", FINANCE)
    new = await registry.add_system(conn, "vxp-finance", Role.SYSTEM, [FINANCE], VXP_SECRET)
    url = str(client.make_url("")).rstrip("/")
    return VxpClient(client.session, url, "vxp-finance", VXP_SECRET, sdk_quirks=False), new.api_key


async def test_processing_marks_nothing_downloaded_and_a_withdrawn_copy_takes_no_report(
    client: TestClient, world: World, conn: asyncpg.Connection, vxp_finance: tuple[VxpClient, str]
) -> None:
    facade, key = vxp_finance
    finance = {"Authorization": f"Bearer {key}"}
    accepted = await send(client, world, DEPT, edoc(1, (FINANCE,)))
    copy = copy_of(accepted, FINANCE)
    answer = await facade.call("updateStatus", {"status": "processing", "docId": copy})
    assert answer["status"] == "OK", answer
    row = await delivery_store.delivery_by_id(conn, UUID(copy))
    assert row is not None
    assert (row.state, row.downloaded_at, row.delivered_at) == ("queued", None, None)
    refused = await client.post(
        "/v1/packages", data=status(FINANCE, DEPT, doc_id(1), StatusCode.COMPLETED), headers=finance
    )
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "not_received"

    await send(client, world, DEPT, revoke(2, doc_id(1), (FINANCE,)))
    answer = await facade.call("updateStatus", {"status": "processing", "docId": copy})
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "410"), answer
    refused = await client.post(
        "/v1/packages", data=status(FINANCE, DEPT, doc_id(1), StatusCode.COMPLETED), headers=finance
    )
    assert refused.status == 409
    assert await history(conn, copy) == []

    # Taken back (13, agreed 15): the copy is withdrawn, and 06 on it is refused, not recorded.
    accepted = await send(client, world, DEPT, edoc(3, (FINANCE,)))
    copy = copy_of(accepted, FINANCE)
    assert (await client.get(f"/v1/deliveries/{copy}/package", headers=finance)).status == 200
    for reporter, code in (
        (FINANCE, StatusCode.ACCEPTED),
        (DEPT, StatusCode.TAKE_BACK),
        (FINANCE, StatusCode.CHANGE_AGREED),
    ):
        headers = finance if reporter == FINANCE else world.as_(DEPT)
        sent = await client.post(
            "/v1/packages", data=status(reporter, DEPT, doc_id(3), code), headers=headers
        )
        assert sent.status == 201, await sent.text()
    before = await current_status(conn, copy)
    refused = await client.post(
        "/v1/packages", data=status(FINANCE, DEPT, doc_id(3), StatusCode.COMPLETED), headers=finance
    )
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "not_received"
    assert [code for code, _ in await history(conn, copy)] == ["03", "13", "15"]
    assert await current_status(conn, copy) == before


# 7. An upstream OrganId is registered under its code, named by the upstream's registry only.


async def test_a_package_cannot_name_an_upstream_agency(
    relay_client: TestClient, world: World, conn: asyncpg.Connection, upstream: tuple[Upstream, TestServer]
) -> None:
    document = small_edoc(sender=DEPT, recipients=(ROUTED_3,), document_id=doc_id(1))
    named = replace(document, recipients=(Organization(ROUTED_3, organ_name="Văn phòng Chính phủ"),))
    await send(relay_client, world, DEPT, build_edoc(named))
    listed = await relay_client.get("/v1/agencies", headers=world.as_(DEPT))
    [entry] = [a for a in (await listed.json())["items"] if a["organ_id"] == ROUTED_3]
    assert entry["name"] == ROUTED_3
    assert "Văn phòng Chính phủ" not in json.dumps((await listed.json())["items"], ensure_ascii=False)
    # The upstream's registry names it.
    assert await agency_store.sync_upstream(conn, ROUTED_3, "Bộ Ngoại giao", True)
    assert (await agency_store.agencies_by_ids(conn, [ROUTED_3]))[ROUTED_3].name == "Bộ Ngoại giao"


# 8. An update listing an agency twice gives it one copy.


async def test_an_update_listing_a_receiver_twice_adds_it_once(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    accepted = await send(client, world, DEPT, edoc(1, (CENTRAL,)))
    info = BussinessDocumentInfo(
        document_info=0, document_receiver=1, receivers=(Receiver(FINANCE, 1), Receiver(FINANCE, 1))
    )
    update = Bussiness(BusinessType.UPDATE, document_id=doc_id(1), reason="cập nhật", document_info=info)
    await send(client, world, DEPT, edoc(2, (CENTRAL, FINANCE), bussiness=update))
    copies = await delivery_store.deliveries_of(conn, UUID(accepted["message_id"]))
    assert sorted(d.recipient for d in copies) == sorted([CENTRAL, FINANCE])


# 9. The facade answers in VXP fields whatever fails; control characters never reach the database.


async def test_the_facade_refuses_control_characters_in_its_own_terms(
    client: TestClient, world: World, conn: asyncpg.Connection, vxp_finance: tuple[VxpClient, str]
) -> None:
    facade, _ = vxp_finance
    accepted = await send(client, world, DEPT, edoc(1, (FINANCE,)))
    copy = copy_of(accepted, FINANCE)
    agencies, audit_entries = await count(conn, "agencies"), await count(conn, "audit_log")
    for operation, params in (
        ("updateStatus", {"status": "processing", "docId": copy, "description": "x\u0000y"}),
        ("updateStatus", {"status": "fail", "docId": copy, "description": "x\u0001y"}),
        ("deleteAgency", {"AgencyCode": "000.00.02.H26\u0000"}),
        ("getEdoc", {"docId": copy + "\u0000"}),
    ):
        answer = await raw_call(client, facade, operation, params)
        assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "422"), (operation, answer)
        assert "error" not in answer
    for name in ("x\u0000y", "\u200b", " \u200b\u2060 "):
        body = json.dumps({"code": "000.21.02.H26", "pcode": FINANCE, "name": name})
        answer = await facade.register_agency({"hash-file": hash_file(body.encode())}, body)
        assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "422"), (name, answer)
    assert (await count(conn, "agencies"), await count(conn, "audit_log")) == (agencies, audit_entries)
    body = json.dumps(
        {"code": "000.21.02.H26", "pcode": FINANCE, "name": "Phòng Tư pháp"}, ensure_ascii=False
    )
    answer = await facade.register_agency({"hash-file": hash_file(body.encode())}, body)
    assert answer["status"] == "OK", answer  # a name that shows something is taken
    assert await count(conn, "agencies") == agencies + 1


async def raw_call(
    client: TestClient, facade: VxpClient, operation: str, params: dict[str, str]
) -> dict[str, Any]:
    """A facade call whose parameters travel only in the signed header (JSON escapes a NUL there),
    as a client can send them; the plain copies of those holding control characters are left out."""
    headers = [
        (name, value)
        for name, value in facade.signed_headers("application/json", params)
        if not any(ord(c) < 32 for c in value)
    ]
    response = await client.post(f"/{operation}", data=b"{}", headers=headers)
    answer: dict[str, Any] = await response.json()
    return answer


# 10. A relayed document for an agency in service and one pending reaches the one in service.


async def test_a_relayed_document_reaches_the_recipient_in_service_beside_a_pending_one(
    relay_client: TestClient, world: World, relay: System, conn: asyncpg.Connection
) -> None:
    await conn.execute("UPDATE agencies SET pending = true WHERE organ_id = $1", OTHER)
    intake: Intake = relay_client.server.app[INTAKE]
    accepted = await intake.submit(relay, edoc(1, (DEPT, OTHER), sender=ROUTED), scope=Scope(local_only=True))
    assert [d.recipient for d in accepted.deliveries] == [DEPT]
    assert [i["message_id"] for i in await inbox(relay_client, world, DEPT)] == [str(accepted.message.id)]
