"""The exchange through the native API, in process: intake rules, inbox, download, ack, statuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509

from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, StatusCode
from exchange.edxml.model import Bussiness, Organization
from exchange.edxml.package import parse_package
from exchange.receipts import read_receipt
from tests.edxml_factories import small_edoc, small_status
from tests.integration.conftest import (
    CENTRAL,
    DEPT,
    DOC,
    FINANCE,
    OTHER,
    World,
    bearer,
    count,
    inbox,
    receive,
    send,
)


async def test_a_document_reaches_every_recipient_with_a_signed_receipt(
    client: TestClient, world: World, conn: asyncpg.Connection, dev_pki: dict[str, Path]
) -> None:
    data = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC))
    accepted = await send(client, world, DEPT, data)
    assert accepted["kind"] == "edoc"
    assert accepted["document_id"] == DOC
    assert accepted["signature"]["verdict"] == "absent"
    assert sorted((d["recipient"], d["state"]) for d in accepted["deliveries"]) == [
        (CENTRAL, "queued"),
        (FINANCE, "queued"),
    ]

    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    claims = read_receipt(accepted["receipt"], axis.public_key())
    assert claims["message_id"] == accepted["message_id"]
    assert claims["recipients"] == [CENTRAL, FINANCE]
    assert claims["sha256"] == accepted["sha256"]

    again = await send(client, world, DEPT, data, status=200)
    assert again == accepted
    assert await count(conn, "messages") == 1
    assert await count(conn, "deliveries") == 2

    [item] = await inbox(client, world, FINANCE)
    assert (item["sender"], item["document_id"], item["kind"]) == (DEPT, DOC, "edoc")
    package = await client.get(f"/v1/deliveries/{item['delivery_id']}/package", headers=world.as_(FINANCE))
    assert package.status == 200
    received = await package.read()
    assert len(parse_package(received).edoc.trace_headers) == 2  # the sender's and the axis's
    assert (await inbox(client, world, FINANCE))[0]["downloaded"] is True

    ack = await client.post(
        f"/v1/deliveries/{item['delivery_id']}/ack", json={"result": "done"}, headers=world.as_(FINANCE)
    )
    assert ack.status == 200
    assert (await ack.json())["state"] == "acked"
    assert await inbox(client, world, FINANCE) == []
    assert len(await inbox(client, world, CENTRAL)) == 1


async def test_refusals_store_nothing(client: TestClient, world: World, conn: asyncpg.Connection) -> None:
    data = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    wrong_sender = await client.post("/v1/packages", data=data, headers=world.as_(FINANCE))
    assert wrong_sender.status == 422
    assert (await wrong_sender.json())["error"]["code"] == "sender_not_owned"

    unknown = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, "000.00.99.H26"), document_id=DOC))
    refused = await client.post("/v1/packages", data=unknown, headers=world.as_(DEPT))
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert error["code"] == "unknown_recipient"
    assert error["details"][0]["reason"] == "recipient 000.00.99.H26 is not a registered agency"

    never_received = build_status(small_status(sender=OTHER, original_sender=DEPT, document_id=DOC))
    status = await client.post("/v1/packages", data=never_received, headers=world.as_(OTHER))
    assert status.status == 422
    assert (await status.json())["error"]["code"] == "unknown_document"

    malformed = await client.post("/v1/packages", data=b"<edXML", headers=world.as_(DEPT))
    assert malformed.status == 400
    assert (await malformed.json())["error"]["code"] == "not_well_formed"

    revoke = build_edoc(
        replace(
            small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC + "-R"),
            bussiness=Bussiness(BusinessType.REVOKE, document_id="no-such-doc"),
        )
    )
    assert (await client.post("/v1/packages", data=revoke, headers=world.as_(DEPT))).status == 422

    assert await count(conn, "messages") == 0
    assert await count(conn, "audit_log") == 0

    await send(client, world, DEPT, data)
    changed = build_edoc(
        replace(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC), subject="Khác")
    )
    conflict = await client.post("/v1/packages", data=changed, headers=world.as_(DEPT))
    assert conflict.status == 409
    assert (await conflict.json())["error"]["code"] == "duplicate_document"
    assert await count(conn, "messages") == 1


async def test_a_large_attachment_the_schema_never_sees_is_held_to_base64_all_the_same(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    """A large attachment's text is set aside while parsing (the schema checks a marker), so it is
    checked as it is read from the bytes: not base64, or base64 cut up by character references,
    is refused as the schema refuses a small one, and nothing is stored."""
    data = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC, body=b"%PDF" * 100_000))
    start = data.index(b">", data.index(b"<edXML:ContentTransferEncoded")) + 1
    end = data.index(b"</edXML:ContentTransferEncoded>")
    for text, reason in [
        (b"QUJD" * 100_000 + b"QUI", "short of a group of 4"),
        (b"QUJD&#68;" * 50_000, "not plain base64"),
    ]:
        refused = await client.post(
            "/v1/packages", data=data[:start] + text + data[end:], headers=world.as_(DEPT)
        )
        assert refused.status == 422
        error = (await refused.json())["error"]
        assert error["code"] == "bad_attachment"
        assert reason in error["message"] + error["details"][0]["reason"]
    assert await count(conn, "messages") == 0
    await send(client, world, DEPT, data)  # the same package with its base64 as written: accepted
    assert await count(conn, "messages") == 1


async def test_nobody_sees_another_systems_deliveries(client: TestClient, world: World) -> None:
    accepted = await send(
        client, world, DEPT, build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    )
    delivery_id = accepted["deliveries"][0]["delivery_id"]
    for path in (f"/v1/deliveries/{delivery_id}/package", f"/v1/messages/{accepted['message_id']}"):
        assert (await client.get(path, headers=world.as_(CENTRAL))).status == 404
    ack = await client.post(
        f"/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=world.as_(CENTRAL)
    )
    assert ack.status == 404
    assert (await client.get(f"/v1/inbox?recipient={FINANCE}", headers=world.as_(CENTRAL))).status == 404
    assert (
        await client.get(f"/v1/messages/{accepted['message_id']}", headers=world.as_(FINANCE))
    ).status == 200
    assert (await client.get(f"/v1/messages/{accepted['message_id']}", headers=world.as_(DEPT))).status == 200
    assert (
        await client.get(f"/v1/messages/{accepted['message_id']}", headers=bearer(world.keys["auditor"]))
    ).status == 200


async def test_statuses_flow_back_and_a_take_back_withdraws(client: TestClient, world: World) -> None:
    accepted = await send(
        client,
        world,
        DEPT,
        build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC)),
    )
    await receive(client, world, FINANCE)
    for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED):
        await send(
            client,
            world,
            FINANCE,
            build_status(small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=code)),
        )
    back = await inbox(client, world, DEPT, kind="status")
    assert [item["status_code"] for item in back] == ["01", "03"]

    take_back = small_status(sender=DEPT, original_sender=CENTRAL, document_id=DOC, code=StatusCode.TAKE_BACK)
    await send(client, world, DEPT, build_status(take_back))
    assert [i["status_code"] for i in await inbox(client, world, CENTRAL, kind="status")] == ["13"]
    await send(
        client,
        world,
        CENTRAL,
        build_status(
            small_status(sender=CENTRAL, original_sender=DEPT, document_id=DOC, code=StatusCode.CHANGE_AGREED)
        ),
    )

    view = await (await client.get(f"/v1/messages/{accepted['message_id']}", headers=world.as_(DEPT))).json()
    states = {d["recipient"]: (d["state"], d["business_status"]) for d in view["deliveries"]}
    assert states == {FINANCE: ("delivered", "03"), CENTRAL: ("withdrawn", "15")}

    late = small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode.ARRIVED)
    await send(client, world, FINANCE, build_status(replace(late, description="sent again, late")))
    trace = await (
        await client.get(f"/v1/messages/{accepted['message_id']}/trace", headers=world.as_(DEPT))
    ).json()
    finance = next(d for d in trace["deliveries"] if d["recipient"] == FINANCE)
    assert [(s["code"], s["flag"], s["out_of_order"]) for s in finance["statuses"]] == [
        ("01", None, False),
        ("03", None, False),
        ("01", "01 after 03: the status goes back", True),
    ]
    assert finance["business_status"] == "03"  # the late 01 is history, not the current status
    actions = [event["action"] for event in trace["events"]]
    assert actions[:2] == ["message.accepted", "signature.checked"]
    assert actions.count("status.recorded") == 5
    assert "delivery.withdrawn" in actions


async def test_a_revocation_withdraws_undownloaded_copies(client: TestClient, world: World) -> None:
    original = small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC)
    await send(client, world, DEPT, build_edoc(original))
    [finance_copy] = await inbox(client, world, FINANCE)
    assert (
        await client.get(f"/v1/deliveries/{finance_copy['delivery_id']}/package", headers=world.as_(FINANCE))
    ).status == 200
    [central_copy] = await inbox(client, world, CENTRAL)

    revoke = replace(
        original, document_id=DOC + "/TH", bussiness=Bussiness(BusinessType.REVOKE, document_id=DOC)
    )
    accepted = await send(client, world, DEPT, build_edoc(revoke))
    assert [d["recipient"] for d in accepted["deliveries"]] == [FINANCE]  # only the one who had it is told

    gone = await client.get(
        f"/v1/deliveries/{central_copy['delivery_id']}/package", headers=world.as_(CENTRAL)
    )
    assert gone.status == 410
    assert await inbox(client, world, CENTRAL) == []
    assert [i["document_id"] for i in await inbox(client, world, FINANCE)] == [DOC, DOC + "/TH"]


async def test_search_is_limited_to_a_systems_own_traffic(client: TestClient, world: World) -> None:
    await send(
        client, world, DEPT, build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    )
    other = small_edoc(sender=OTHER, recipients=(CENTRAL,), document_id="000.00.03.H26,2026/11/20,1/X")
    await send(client, world, OTHER, build_edoc(replace(other, sender=Organization(OTHER))))

    async def search(who: dict[str, str], query: str = "") -> list[str]:
        response = await client.get(f"/v1/documents{query}", headers=who)
        assert response.status == 200
        return [item["document_id"] for item in (await response.json())["items"]]

    assert await search(world.as_(FINANCE)) == [DOC]
    assert sorted(await search(bearer(world.keys["auditor"]))) == sorted([DOC, other.document_id])
    assert await search(bearer(world.keys["auditor"]), f"?recipient={CENTRAL}") == [other.document_id]
    assert await search(bearer(world.keys["auditor"]), "?status=queued&limit=1") != []
    bad = await client.get("/v1/documents?since=yesterday", headers=world.as_(DEPT))
    assert bad.status == 422


async def test_an_update_applies_its_receiver_list_and_a_replacement_links_its_target(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    from exchange.edxml.model import BussinessDocumentInfo, Receiver, ReplacementInfo

    original = small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC)
    first = await send(client, world, DEPT, build_edoc(original))
    update = replace(
        original,
        document_id=DOC + "/CN",
        bussiness=Bussiness(
            BusinessType.UPDATE,
            document_id=DOC,
            document_info=BussinessDocumentInfo(
                document_receiver=1, receivers=(Receiver(CENTRAL, 0), Receiver(OTHER, 1))
            ),
        ),
    )
    await send(client, world, DEPT, build_edoc(update))
    view = await (await client.get(f"/v1/messages/{first['message_id']}", headers=world.as_(DEPT))).json()
    assert {d["recipient"]: d["state"] for d in view["deliveries"]} == {
        FINANCE: "queued",
        CENTRAL: "withdrawn",
        OTHER: "queued",
    }
    assert [i["document_id"] for i in await inbox(client, world, OTHER)] == [DOC]

    replacement = replace(
        original,
        document_id=DOC + "/TT",
        bussiness=Bussiness(BusinessType.REPLACE, replacements=(ReplacementInfo(DOC, (FINANCE,)),)),
    )
    replaced = await send(client, world, DEPT, build_edoc(replacement))
    message = await (
        await client.get(f"/v1/messages/{replaced['message_id']}", headers=world.as_(DEPT))
    ).json()
    assert message["related_message_id"] == first["message_id"]
    assert message["business_type"] == 3


async def test_a_status_is_routed_by_its_named_sender_and_never_guessed(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    from exchange.errors import AmbiguousDocument
    from exchange.statuses import route_status

    # A UUID names no agency, so two senders may both use it; CENTRAL receives both documents.
    shared = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    sent = {
        organ: await send(
            client,
            world,
            organ,
            build_edoc(
                replace(small_edoc(sender=organ, recipients=(CENTRAL,), document_id=shared), subject=organ)
            ),
        )
        for organ in (DEPT, OTHER)
    }
    await receive(client, world, CENTRAL)
    status = small_status(sender=CENTRAL, original_sender=OTHER, document_id=shared, code=StatusCode.ACCEPTED)
    route = await route_status(conn, status)
    assert str(route.document.id) == sent[OTHER]["message_id"]
    assert route.recipients == (OTHER,)

    # Without a named sender (the schema requires one; this is the rule behind it) the axis refuses.
    unnamed = replace(status, response_for=replace(status.response_for, organ_id=None))
    with pytest.raises(AmbiguousDocument) as refused:
        await route_status(conn, unnamed)
    assert refused.value.status == 409
    candidates = {detail.reason for detail in refused.value.details}
    assert candidates == {f"candidate: message {sent[o]['message_id']} from {o}" for o in (DEPT, OTHER)}

    answered = await send(client, world, CENTRAL, build_status(status))
    assert [d["recipient"] for d in answered["deliveries"]] == [OTHER]
    assert await inbox(client, world, DEPT, kind="status") == []
