"""Visibility end to end: who sees which deliveries, statuses, events and bytes (real server, real HTTP)."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from adapters.vxp_client import VxpClient
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, StatusCode
from exchange.edxml.model import Bussiness
from exchange.evidence import verify_bundle
from tests.e2e.world import CENTRAL, DEPT, FINANCE, OTHER, World, open_world
from tests.edxml_factories import small_edoc, small_status

DOC = "000.00.01.H26,2026/11/22,7/SNV-VP"
# The attachment's bytes: if they show up base64-encoded in an answer, the body was readable.
SECRET_PDF = b"%PDF-1.7 noi dung mat cua van ban"
SECRET_B64 = base64.b64encode(SECRET_PDF)
VXP_SECRET = "vxp-secret-of-finance-0123456789"


@pytest.fixture
async def world(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> AsyncIterator[World]:
    async with open_world(tmp_path, database_url, dev_pki, vxp_secrets={FINANCE: VXP_SECRET}) as opened:
        yield opened


async def send_document(world: World, document_id: str = DOC) -> dict[str, Any]:
    edoc = small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=document_id, body=SECRET_PDF)
    status, accepted = await world.client(DEPT).post_package(build_edoc(edoc))
    assert status == 201, accepted
    return accepted


def delivery_of(accepted: dict[str, Any], organ: str) -> str:
    return next(str(d["delivery_id"]) for d in accepted["deliveries"] if d["recipient"] == organ)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def evidence(world: World, who: str, message_id: str) -> dict[str, bytes]:
    status, data = await world.client(who).get_bytes(f"/v1/messages/{message_id}/evidence")
    assert status == 200, data[:300]
    return unzip(data)


def assert_withheld(files: dict[str, bytes]) -> None:
    assert files["package.edxml"] == b""
    assert json.loads(files["manifest.json"])["package_withheld"]
    for name, content in files.items():
        assert SECRET_B64 not in content, f"the withdrawn content is readable in {name}"


async def assert_vxp_refused(world: World, delivery_id: str) -> None:
    finance = VxpClient(world.session, world.server.url, f"dms-{FINANCE}", VXP_SECRET)
    answer = await finance.call("getEdoc", {"docId": delivery_id})
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "410"), answer
    status, body = await finance.download_edoc({"docId": delivery_id})
    assert status == 410
    assert SECRET_B64 not in body


async def test_a_revoked_copy_is_unreadable_on_every_route(world: World, dev_pki: dict[str, Path]) -> None:
    accepted = await send_document(world)
    message_id, copy = accepted["message_id"], delivery_of(accepted, FINANCE)
    revoke = replace(
        small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC + "/TH"),
        bussiness=Bussiness(BusinessType.REVOKE, document_id=DOC),
    )
    status, revoked = await world.client(DEPT).post_package(build_edoc(revoke))
    assert status == 201, revoked

    finance = world.client(FINANCE)
    status, body = await finance.get_bytes(f"/v1/deliveries/{copy}/package")
    assert status == 410
    assert SECRET_B64 not in body
    assert json.loads(body)["error"]["code"] == "withdrawn"
    status, bundle = await finance.get_bytes(f"/v1/messages/{message_id}/evidence")
    assert status == 200
    assert_withheld(unzip(bundle))
    # Without the package the rest still verifies (the receipt's hash is not compared to nothing).
    report = verify_bundle(bundle, x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes()))
    assert report.valid, report.problems
    await assert_vxp_refused(world, copy)
    # Nothing was recorded as downloaded by the refused attempts.
    _, trace = await finance.get_json(f"/v1/messages/{message_id}/trace")
    assert "delivery.downloaded" not in [event["action"] for event in trace["events"]]

    # The sender and the auditor still read the original (evidence of what was sent).
    for who in (DEPT, "auditor"):
        files = await evidence(world, who, message_id)
        assert SECRET_B64 in files["package.edxml"]
        assert "package_withheld" not in json.loads(files["manifest.json"])


async def test_a_copy_taken_back_after_download_becomes_unreadable(world: World) -> None:
    accepted = await send_document(world)
    message_id, copy = accepted["message_id"], delivery_of(accepted, FINANCE)
    finance = world.client(FINANCE)
    status, package = await finance.get_bytes(f"/v1/deliveries/{copy}/package")
    assert status == 200
    assert SECRET_B64 in package
    take_back = small_status(sender=DEPT, original_sender=FINANCE, document_id=DOC, code=StatusCode.TAKE_BACK)
    assert (await world.client(DEPT).post_package(build_status(take_back)))[0] == 201
    agreed = small_status(
        sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode.CHANGE_AGREED
    )
    assert (await finance.post_package(build_status(agreed)))[0] == 201

    status, body = await finance.get_bytes(f"/v1/deliveries/{copy}/package")
    assert status == 410
    assert SECRET_B64 not in body
    assert_withheld(await evidence(world, FINANCE, message_id))
    await assert_vxp_refused(world, copy)
    # CENTRAL's copy is untouched by FINANCE's take-back.
    status, package = await world.client(CENTRAL).get_bytes(
        f"/v1/deliveries/{delivery_of(accepted, CENTRAL)}/package"
    )
    assert status == 200
    assert SECRET_B64 in package


async def test_recipients_see_only_their_own_copy(world: World, dev_pki: dict[str, Path]) -> None:
    accepted = await send_document(world)
    message_id = accepted["message_id"]
    finance_copy, central_copy = delivery_of(accepted, FINANCE), delivery_of(accepted, CENTRAL)
    finance, central = world.client(FINANCE), world.client(CENTRAL)
    assert (await finance.get_bytes(f"/v1/deliveries/{finance_copy}/package"))[0] == 200
    secret_reason = "ly do rieng cua So Tai chinh"
    status, _ = await finance.post_json(
        f"/v1/deliveries/{finance_copy}/ack", {"result": "fail", "reason": secret_reason}
    )
    assert status == 200
    accepted_status = replace(
        small_status(sender=FINANCE, original_sender=DEPT, document_id=DOC, code=StatusCode.ARRIVED),
        description="mo ta rieng cua So Tai chinh",
    )
    status, finance_status = await finance.post_package(build_status(accepted_status))
    assert status == 201, finance_status
    finance_secrets = [finance_copy, secret_reason, "mo ta rieng", finance_status["message_id"]]

    # CENTRAL sees the message and its own copy, nothing of FINANCE's.
    for path in (f"/v1/messages/{message_id}", f"/v1/messages/{message_id}/trace"):
        status, view = await central.get_json(path)
        assert status == 200
        assert [d["delivery_id"] for d in view["deliveries"]] == [central_copy]
        text = json.dumps(view, ensure_ascii=False)
        for secret in finance_secrets:
            assert secret not in text, f"{path} shows {secret!r} to another recipient"
    assert {"message.accepted", "delivery.created"} <= {e["action"] for e in view["events"]}
    files = await evidence(world, CENTRAL, message_id)
    assert SECRET_B64 in files["package.edxml"]  # its own copy is live
    for name, content in files.items():
        for secret in finance_secrets:
            assert secret.encode() not in content, f"{name} of CENTRAL's bundle shows {secret!r}"
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    bundle = (await central.get_bytes(f"/v1/messages/{message_id}/evidence"))[1]
    report = verify_bundle(bundle, axis)
    assert report.valid, report.problems
    assert report.redacted_entries > 0
    # Searching by another recipient or by its status finds nothing.
    for query in (f"recipient={FINANCE}", "status=01", "status=queued&recipient=" + FINANCE):
        status, found = await central.get_json(f"/v1/documents?{query}")
        assert (status, found["items"]) == (200, []), query

    # FINANCE sees its own copy, its fail reason and its status.
    _, trace = await finance.get_json(f"/v1/messages/{message_id}/trace")
    [own] = trace["deliveries"]
    assert own["delivery_id"] == finance_copy
    assert own["statuses"][0]["code"] == "01"
    assert central_copy not in json.dumps(trace)

    # The sender and the auditor see both recipients and every event; an outsider sees nothing.
    for who in (DEPT, "auditor"):
        _, trace = await world.client(who).get_json(f"/v1/messages/{message_id}/trace")
        assert {d["delivery_id"] for d in trace["deliveries"]} == {finance_copy, central_copy}
        assert secret_reason in json.dumps(trace, ensure_ascii=False)
    status, found = await world.client(DEPT).get_json("/v1/documents?status=01")
    assert [item["message_id"] for item in found["items"]] == [message_id]
    for path in ("", "/trace", "/evidence"):
        status, refused = await world.client(OTHER).get_json(f"/v1/messages/{message_id}{path}")
        assert (status, refused["error"]["code"]) == (404, "not_found")
