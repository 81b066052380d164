"""Retention, alerts, overdue documents and metrics."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509

from exchange.alerts import Alerter
from exchange.api.keys import POOL
from exchange.cert_registry import import_certificates
from exchange.clock import now, today_in_vietnam
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import StatusCode
from exchange.evidence import verify_bundle
from exchange.retention import remove_old_bodies
from exchange.settings import AlertSettings, RetentionSettings
from exchange.trust import devca
from tests.edxml_factories import small_edoc, small_status
from tests.integration.conftest import CENTRAL, DEPT, DOC, FINANCE, World, bearer, inbox, receive, send


async def test_retention_removes_bodies_keeps_evidence_and_is_audited(
    client: TestClient, world: World, conn: asyncpg.Connection, dev_pki: dict[str, Path]
) -> None:
    accepted = await send(
        client, world, DEPT, build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    )
    [item] = await inbox(client, world, FINANCE)
    pool = client.server.app[POOL]
    await conn.execute("UPDATE messages SET received_at = now() - interval '40 days'")
    async with pool.acquire() as worker_conn:
        # Not yet: the finance department has not acknowledged its copy.
        assert await remove_old_bodies(worker_conn, RetentionSettings(body_max_age_days=30)) == 0
    await receive(client, world, FINANCE)  # only a downloaded copy can be acknowledged
    ack = await client.post(
        f"/v1/deliveries/{item['delivery_id']}/ack", json={"result": "done"}, headers=world.as_(FINANCE)
    )
    assert ack.status == 200
    async with pool.acquire() as worker_conn:
        assert await remove_old_bodies(worker_conn, RetentionSettings(body_max_age_days=0)) == 0  # never
        assert await remove_old_bodies(worker_conn, RetentionSettings(body_max_age_days=30)) == 1
    assert await conn.fetchval("SELECT count(*) FROM message_bodies") == 0
    assert (
        await conn.fetchval(
            "SELECT details->>'sha256' FROM audit_log WHERE action = 'retention.body_removed'"
        )
        == accepted["sha256"]
    )
    gone = await client.get(f"/v1/deliveries/{item['delivery_id']}/package", headers=world.as_(FINANCE))
    assert gone.status == 410

    bundle = await client.get(f"/v1/messages/{accepted['message_id']}/evidence", headers=world.as_(DEPT))
    report = verify_bundle(await bundle.read(), x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes()))
    assert report.valid, report.problems


async def test_overdue_documents_are_flagged_in_the_api(client: TestClient, world: World) -> None:
    late = replace(
        small_edoc(sender=DEPT, recipients=(FINANCE, CENTRAL), document_id=DOC),
        due_date=today_in_vietnam() - timedelta(days=3),
    )
    accepted = await send(client, world, DEPT, build_edoc(late))
    view = await (await client.get(f"/v1/messages/{accepted['message_id']}", headers=world.as_(DEPT))).json()
    assert view["overdue"] is True
    overdue = await (await client.get("/v1/documents?overdue=true", headers=world.as_(DEPT))).json()
    assert [item["document_id"] for item in overdue["items"]] == [DOC]

    for sender in (FINANCE, CENTRAL):
        await receive(client, world, sender)
        await send(
            client,
            world,
            sender,
            build_status(
                small_status(
                    sender=sender,
                    original_sender=DEPT,
                    document_id=DOC,
                    code=StatusCode.COMPLETED if sender == FINANCE else StatusCode.REFUSED,
                )
            ),
        )
    view = await (await client.get(f"/v1/messages/{accepted['message_id']}", headers=world.as_(DEPT))).json()
    assert view["overdue"] is False


async def test_alerts_go_to_the_webhook_once(
    client: TestClient, world: World, conn: asyncpg.Connection, aiohttp_server: Any
) -> None:
    received: list[dict[str, Any]] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    hook = web.Application()
    hook.router.add_post("/alerts", webhook)
    server = await aiohttp_server(hook)

    late = replace(
        small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC),
        due_date=today_in_vietnam() - timedelta(days=1),
    )
    accepted = await send(client, world, DEPT, build_edoc(late))
    ca = devca.make_ca()
    soon = devca.issue_signing_cert(
        ca, organ_id=DEPT, common_name="Sắp hết hạn", not_after=now() + timedelta(days=10)
    )
    await import_certificates(conn, [soon.certificate], organ_id=DEPT)
    await conn.execute("UPDATE deliveries SET state = 'failed', updated_at = now()")

    settings = AlertSettings(webhook_url=str(server.make_url("/alerts")), failing_agency_threshold=1)
    alerter = Alerter(client.server.app[POOL], settings, ca.certificate)
    await alerter.start()
    try:
        await alerter.sweep()
        await alerter.sweep()  # nothing new the second time
    finally:
        await alerter.close()
    kinds = sorted(alert["alert"] for alert in received)
    assert kinds == ["agency_failing", "certificate_expiring", "document_overdue"]
    overdue = next(a for a in received if a["alert"] == "document_overdue")
    assert overdue["details"]["message_id"] == accepted["message_id"]
    failing = next(a for a in received if a["alert"] == "agency_failing")
    assert failing["details"] == {"organ_id": FINANCE, "given_up_last_hour": 1}


async def test_metrics_report_traffic_and_queue(client: TestClient, world: World) -> None:
    await send(
        client, world, DEPT, build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC))
    )
    refused = await client.post("/v1/packages", data=b"<nope", headers=world.as_(DEPT))
    assert refused.status == 400
    assert (await client.get("/metrics", headers=world.as_(DEPT))).status == 403
    metrics = await client.get("/metrics", headers=bearer(world.keys["auditor"]))
    assert metrics.status == 200
    text = await metrics.text()
    assert 'exchange_packages_accepted_total{kind="edoc"} 1.0' in text
    assert 'exchange_packages_rejected_total{reason="not_well_formed"} 1.0' in text
    assert 'exchange_signature_verdicts_total{verdict="absent"} 1.0' in text
    assert 'exchange_deliveries{state="queued"} 1.0' in text
    assert "exchange_audit_seal_lag_seconds" in text
    assert (
        'exchange_http_request_duration_seconds_count{method="POST",route="/v1/packages",status="201"} 1.0'
        in text
    )
