"""Push delivery driven step by step: signature header, retries with backoff, giving up, re-queueing,
urgent first, and a lost lease."""

from __future__ import annotations

import asyncio
import base64
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from adapters.http_push import HttpPush, PushResult, signed_text
from exchange import delivery as delivery_module
from exchange import registry
from exchange.api.keys import POOL, SETTINGS, SIGNER
from exchange.app import create_app
from exchange.delivery import DeliveryWorker, GiveUp, Retry, RetryPolicy, expire_pull_deliveries
from exchange.edxml.builder import build_edoc
from exchange.edxml.codes import Priority
from exchange.edxml.model import OtherInfo
from exchange.edxml.package import parse_package
from exchange.model import Role
from exchange.settings import Settings
from exchange.store import deliveries as delivery_store
from exchange.store.audit import Event
from tests.edxml_factories import small_edoc
from tests.integration.conftest import bearer

DEPT, DISTRICT = "000.00.01.H26", "000.00.12.H26"


class Receiver:
    """A DMS endpoint that fails the first ``failures`` requests, then accepts."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"headers": dict(request.headers), "body": await request.read()})
        if len(self.requests) <= self.failures:
            return web.Response(status=503, text="down for maintenance")
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[Receiver, TestServer]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/edoc", receiver.handle)
    server = await aiohttp_server(app)
    return receiver, server


@pytest.fixture
async def push_client(aiohttp_client: Any, settings: Settings, database_url: str) -> TestClient:
    quiet = settings.model_copy(
        update={
            "delivery": settings.delivery.model_copy(
                update={"enabled": False, "max_attempts": 3, "base_delay_s": 1.0}
            )
        }
    )
    client: TestClient = await aiohttp_client(create_app(quiet, database_url))
    return client


async def setup_agencies(conn: asyncpg.Connection, endpoint: str) -> str:
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": DEPT, "name": "Sở"}),
            registry.AgencyInput(
                {"organ_id": DISTRICT, "name": "Quận", "mode": "push", "endpoint": endpoint}
            ),
        ],
        allow_private_endpoints=True,  # the receiver listens on 127.0.0.1
    )
    return (await registry.add_system(conn, "dept", Role.SYSTEM, [DEPT])).api_key


def worker_for(
    client: TestClient, name: str = "test-worker", outcomes: list[str] | None = None
) -> tuple[DeliveryWorker, HttpPush]:
    app = client.server.app
    pusher = HttpPush(app[SIGNER], 5, allow_private_endpoints=True)
    seen = outcomes if outcomes is not None else []
    worker = DeliveryWorker(
        app[POOL],
        app[SETTINGS].delivery,
        pusher,
        name,
        on_outcome=lambda outcome, claim: seen.append(outcome),
    )
    return worker, pusher


async def make_due(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE deliveries SET next_attempt_at = now() WHERE state = 'retry_wait'")


async def test_push_retries_then_delivers_with_a_checkable_signature(
    push_client: TestClient,
    receiver: tuple[Receiver, TestServer],
    conn: asyncpg.Connection,
    dev_pki: dict[str, Path],
) -> None:
    endpoint, server = receiver
    endpoint.failures = 1
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    response = await push_client.post(
        "/v1/packages", headers=bearer(key), data=build_edoc(small_edoc(sender=DEPT, recipients=(DISTRICT,)))
    )
    accepted = await response.json()
    delivery_id = accepted["deliveries"][0]["delivery_id"]
    accepted_id = UUID(delivery_id)
    worker, pusher = worker_for(push_client)
    await pusher.start()
    try:
        assert await worker.run_until_idle() == 1
        row = await delivery_store.delivery_by_id(conn, accepted_id)
        assert row is not None
        assert (row.state, row.attempts, row.last_error) == (
            "retry_wait",
            1,
            f"HTTP 503 from {server.make_url('/edoc')}",
        )
        assert row.next_attempt_at is not None
        assert await worker.run_until_idle() == 0  # not due yet

        await make_due(conn)
        assert await worker.run_until_idle() == 1
        row = await delivery_store.delivery_by_id(conn, accepted_id)
        assert row is not None
        assert (row.state, row.attempts) == ("delivered", 2)
    finally:
        await pusher.close()

    first, second = endpoint.requests
    assert (
        first["headers"]["X-Exchange-Delivery-Id"]
        == second["headers"]["X-Exchange-Delivery-Id"]
        == delivery_id
    )
    assert second["headers"]["X-Exchange-Message-Id"] == accepted["message_id"]
    assert len(parse_package(second["body"]).edoc.trace_headers) == 2
    scheme, _, value = second["headers"]["X-Exchange-Signature"].partition(";")
    assert scheme == "rsa-sha256"
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    axis.public_key().verify(
        base64.b64decode(value),
        signed_text(accepted_id, second["body"]),  # type: ignore[call-arg,union-attr]
        padding.PKCS1v15(),
        hashes.SHA256(),
    )

    trace = await (
        await push_client.get(f"/v1/messages/{accepted['message_id']}/trace", headers=bearer(key))
    ).json()
    assert [e["action"] for e in trace["events"] if e["action"].startswith("delivery.")] == [
        "delivery.created",
        "delivery.retry_scheduled",
        "delivery.pushed",
    ]


async def test_giving_up_and_requeueing(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    endpoint, server = receiver
    endpoint.failures = 3
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    await push_client.post(
        "/v1/packages", headers=bearer(key), data=build_edoc(small_edoc(sender=DEPT, recipients=(DISTRICT,)))
    )
    outcomes: list[str] = []
    worker, pusher = worker_for(push_client, outcomes=outcomes)
    await pusher.start()
    try:
        for _ in range(3):
            await make_due(conn)
            assert await worker.run_until_idle() == 1
        [failed] = await delivery_store.list_deliveries(conn, "failed", 10)
        assert failed.attempts == 3
        assert failed.last_error is not None
        assert "gave up after 3 attempts" in failed.last_error

        admin = (await registry.add_system(conn, "ops", Role.ADMIN)).api_key
        requeued = await push_client.post(
            "/v1/admin/deliveries/requeue", headers=bearer(admin), json={"delivery_ids": [str(failed.id)]}
        )
        assert (await requeued.json())["requeued"] == [str(failed.id)]
        assert await worker.run_until_idle() == 1
        row = await delivery_store.delivery_by_id(conn, failed.id)
        assert row is not None
        assert row.state == "delivered"
        assert outcomes == [
            "retry_scheduled",
            "retry_scheduled",
            "failed",
            "pushed",
        ]  # what metrics and alerts see
    finally:
        await pusher.close()


async def test_an_attempt_is_stopped_at_the_push_timeout_even_while_the_package_is_read(
    push_client: TestClient,
    receiver: tuple[Receiver, TestServer],
    conn: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lease outlasts the attempt only if the whole attempt is bounded, not the request alone."""
    endpoint, server = receiver
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    response = await push_client.post(
        "/v1/packages", headers=bearer(key), data=build_edoc(small_edoc(sender=DEPT, recipients=(DISTRICT,)))
    )
    delivery_id = UUID((await response.json())["deliveries"][0]["delivery_id"])
    never = asyncio.Event()

    async def stalled_read(*args: object) -> None:
        await never.wait()  # the stored package never comes

    monkeypatch.setattr(delivery_module, "load_package", stalled_read)
    app = push_client.server.app
    settings = app[SETTINGS].delivery.model_copy(update={"push_timeout_s": 0.3, "lease_s": 1.3})
    pusher = HttpPush(app[SIGNER], 0.3, allow_private_endpoints=True)
    await pusher.start()
    try:
        worker = DeliveryWorker(app[POOL], settings, pusher, "stalled-worker")
        assert await asyncio.wait_for(worker.run_until_idle(), 30) == 1
    finally:
        await pusher.close()
    row = await delivery_store.delivery_by_id(conn, delivery_id)
    assert row is not None
    assert (row.state, row.attempts, row.last_error) == (
        "retry_wait",
        1,
        "the attempt took longer than 0.3 s (push_timeout_s); stopped",
    )
    assert endpoint.requests == []


async def test_urgent_documents_are_claimed_first(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    _, server = receiver
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    for index, priority in enumerate(
        [Priority.NORMAL, Priority.URGENT, Priority.FLASH_SCHEDULED, Priority.VERY_URGENT]
    ):
        edoc = replace(
            small_edoc(sender=DEPT, recipients=(DISTRICT,), document_id=f"{DEPT},2026/11/20,{index}/X"),
            other_info=OtherInfo(priority=priority),
        )
        assert (
            await push_client.post("/v1/packages", headers=bearer(key), data=build_edoc(edoc))
        ).status == 201
    order = []
    for _ in range(4):
        [claim] = await delivery_store.claim_due(conn, 1, 60, "w")
        order.append(await conn.fetchval("SELECT urgency FROM deliveries WHERE id = $1", claim.id))
    assert order == [3, 2, 1, 0]


async def test_a_late_outcome_never_ends_a_newer_claim_but_a_copy_taken_is_recorded(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    """A worker whose outcome comes after its lease ran out must not end the claim that followed,
    whose push may still be in flight: neither another worker's, nor its own later one, nor one
    made after an admin's requeue started the attempts again."""
    _, server = receiver
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    await push_client.post(
        "/v1/packages", headers=bearer(key), data=build_edoc(small_edoc(sender=DEPT, recipients=(DISTRICT,)))
    )
    [first] = await delivery_store.claim_due(conn, 10, 60, "worker-a")
    assert await delivery_store.claim_due(conn, 10, 60, "worker-b") == []  # leased
    await expire_leases(conn)
    [second] = await delivery_store.claim_due(conn, 10, 60, "worker-b")
    assert (second.id, second.attempts) == (first.id, 2)
    assert await record(conn, "worker-a", first, "retry_wait") == set()  # another worker's claim

    await expire_leases(conn)
    [third] = await delivery_store.claim_due(conn, 10, 60, "worker-a")
    assert await record(conn, "worker-a", first, "retry_wait") == set()  # its own, later claim
    assert await record(conn, "worker-a", third, "failed") == {first.id}
    assert await delivery_store.requeue(conn, [first.id]) == [first.id]
    [fourth] = await delivery_store.claim_due(conn, 10, 60, "worker-a")
    assert (fourth.attempts, third.attempts) == (1, 3)
    assert fourth.attempts == first.attempts  # same worker, same attempt number: not the same claim
    assert await record(conn, "worker-a", first, "retry_wait") == set()
    assert await state_of(conn, first.id) == ("sending", 1)

    # The recipient took the copy, but the answer came after the lease: recorded as delivered
    # (nothing claims it again), and the claim in flight then changes nothing.
    assert await record(conn, "worker-a", first, "delivered") == {first.id}
    assert await record(conn, "worker-a", fourth, "retry_wait") == set()
    assert await state_of(conn, first.id) == ("delivered", 1)
    outcomes = await conn.fetch(
        "SELECT action, details->>'attempt' AS attempt FROM audit_log"
        " WHERE action LIKE 'delivery.%' AND action <> 'delivery.created' ORDER BY id"
    )
    # Only the outcomes written are audited.
    assert [(row["action"], row["attempt"]) for row in outcomes] == [
        ("delivery.failed", "3"),
        ("delivery.pushed", "1"),
    ]


async def test_two_outcomes_of_one_delivery_that_come_together_are_written_in_turn(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    """A late 2xx and the next claim's failure reach the writer together: one statement would
    apply one of them and audit the other. Written in turn, state and audit agree."""
    _, server = receiver
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    await push_client.post(
        "/v1/packages", headers=bearer(key), data=build_edoc(small_edoc(sender=DEPT, recipients=(DISTRICT,)))
    )
    worker, _ = worker_for(push_client, name="worker-a")
    [late] = await delivery_store.claim_due(conn, 10, 60, "worker-a")
    await expire_leases(conn)
    [current] = await delivery_store.claim_due(conn, 10, 60, "worker-a")
    await asyncio.gather(
        worker._record(late, PushResult(True, "HTTP 204")),
        worker._record(current, PushResult(False, "HTTP 503")),
    )
    assert await state_of(conn, late.id) == ("delivered", 2)
    actions = await conn.fetch("SELECT action FROM audit_log WHERE delivery_id = $1 ORDER BY id", late.id)
    assert [row["action"] for row in actions] == ["delivery.created", "delivery.pushed"]


async def expire_leases(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE deliveries SET lease_until = now() - interval '1 second'")


async def state_of(conn: asyncpg.Connection, delivery_id: UUID) -> tuple[str, int]:
    row = await delivery_store.delivery_by_id(conn, delivery_id)
    assert row is not None
    return row.state, row.attempts


async def record(
    conn: asyncpg.Connection, worker: str, claim: delivery_store.Claimed, state: str
) -> set[UUID]:
    """Record the outcome of ``claim``'s attempt as ``worker``, with its audit entry; the ids changed."""
    outcome = delivery_store.Outcome(
        claim.id, claim.lease_id, state, None if state == "delivered" else "HTTP 503"
    )
    action = "delivery.pushed" if state == "delivered" else f"delivery.{state}"
    event = Event(action, claim.message_id, claim.id, {"attempt": claim.attempts})
    return await delivery_store.record_outcomes(conn, worker, [outcome], [event])


def test_retry_policy_backs_off_with_jitter_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=5, max_age=timedelta(hours=1), base_delay_s=10, max_delay_s=60)
    created = now = datetime(2026, 11, 21, tzinfo=UTC)
    rng = random.Random(7)
    delays = []
    for attempt in range(1, 5):
        decision = policy.after_failure(attempt, created, now, rng)
        assert isinstance(decision, Retry)
        delays.append((decision.at - now).total_seconds())
    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert 30 <= delays[3] <= 60  # capped at max_delay_s, then jittered
    assert policy.after_failure(5, created, now, rng) == GiveUp("failed", "gave up after 5 attempts")
    old = policy.after_failure(1, created, created + timedelta(hours=1), rng)
    assert isinstance(old, GiveUp)
    assert old.state == "expired"


async def test_an_agencys_own_retry_limit_applies(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    endpoint, server = receiver
    endpoint.failures = 5
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": DEPT, "name": "Sở"}),
            registry.AgencyInput(
                {
                    "organ_id": DISTRICT,
                    "name": "Quận",
                    "mode": "push",
                    "endpoint": str(server.make_url("/edoc")),
                    "max_attempts": "1",
                }
            ),
        ],
        allow_private_endpoints=True,  # the receiver listens on 127.0.0.1
    )
    key = (await registry.add_system(conn, "dept", Role.SYSTEM, [DEPT])).api_key
    await push_client.post(
        "/v1/packages", headers=bearer(key), data=build_edoc(small_edoc(sender=DEPT, recipients=(DISTRICT,)))
    )
    worker, pusher = worker_for(push_client)
    await pusher.start()
    try:
        assert await worker.run_until_idle() == 1
    finally:
        await pusher.close()
    [failed] = await delivery_store.list_deliveries(conn, None, 10)
    assert (failed.state, failed.attempts) == ("failed", 1)


async def test_a_claim_takes_expired_leases_first_and_never_more_than_asked(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    _, server = receiver
    key = await setup_agencies(conn, str(server.make_url("/edoc")))
    for index in range(3):
        edoc = small_edoc(sender=DEPT, recipients=(DISTRICT,), document_id=f"{DEPT},2026/11/20,{index}/L")
        await push_client.post("/v1/packages", headers=bearer(key), data=build_edoc(edoc))
    [abandoned] = await delivery_store.claim_due(conn, 1, 60, "worker-a")
    await conn.execute(
        "UPDATE deliveries SET lease_until = now() - interval '1 second' WHERE id = $1", abandoned.id
    )

    claimed = await delivery_store.claim_due(conn, 2, 60, "worker-b")

    assert len(claimed) == 2
    assert abandoned.id in {claim.id for claim in claimed}
    assert len(await delivery_store.claim_due(conn, 5, 60, "worker-c")) == 1  # the last one still due


HANGING, FAST = "000.00.31.H26", "000.00.32.H26"


async def test_a_hanging_endpoint_gets_its_share_of_slots_and_never_blocks_another(
    push_client: TestClient, aiohttp_server: Any, conn: asyncpg.Connection
) -> None:
    release = asyncio.Event()
    held: list[str] = []
    fast = Receiver()
    fast_got_all = asyncio.Event()
    hanging_got_two = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        held.append(request.headers["X-Exchange-Delivery-Id"])
        if len(held) == 2:
            hanging_got_two.set()
        await release.wait()  # an endpoint that accepts the connection and never answers
        return web.Response(status=204)

    async def quick(request: web.Response) -> web.Response:
        answer = await fast.handle(request)  # type: ignore[arg-type]
        if len(fast.requests) == 3:
            fast_got_all.set()
        return answer

    hanging_app, fast_app = web.Application(), web.Application()
    hanging_app.router.add_post("/edoc", hang)
    fast_app.router.add_post("/edoc", quick)
    hanging_server, fast_server = await aiohttp_server(hanging_app), await aiohttp_server(fast_app)
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": DEPT, "name": "Sở"}),
            registry.AgencyInput(
                {
                    "organ_id": HANGING,
                    "name": "Treo",
                    "mode": "push",
                    "endpoint": str(hanging_server.make_url("/edoc")),
                }
            ),
            registry.AgencyInput(
                {
                    "organ_id": FAST,
                    "name": "Nhanh",
                    "mode": "push",
                    "endpoint": str(fast_server.make_url("/edoc")),
                }
            ),
        ],
        allow_private_endpoints=True,  # both endpoints listen on loopback
    )
    key = (await registry.add_system(conn, "dept", Role.SYSTEM, [DEPT])).api_key
    # The hanging endpoint's deliveries are older: claimed oldest first, they would take every slot.
    # More of them than one claim looks at (4 x its slots), so the fast ones lie beyond that window.
    for index, recipient in enumerate([HANGING] * 20 + [FAST] * 3):
        edoc = small_edoc(sender=DEPT, recipients=(recipient,), document_id=f"{DEPT},2026/11/30,{index}/F")
        response = await push_client.post("/v1/packages", headers=bearer(key), data=build_edoc(edoc))
        assert response.status == 201
    app = push_client.server.app
    settings = app[SETTINGS].delivery.model_copy(update={"concurrency": 4, "per_endpoint_concurrency": 2})
    pusher = HttpPush(app[SIGNER], 60, allow_private_endpoints=True)
    await pusher.start()
    worker = DeliveryWorker(app[POOL], settings, pusher, "fair-worker")
    serving = asyncio.create_task(worker.serve())
    try:
        worker.wake()
        await asyncio.wait_for(fast_got_all.wait(), 20)
        # The second request to the hanging endpoint may still be on its way when the fast ones are done.
        await asyncio.wait_for(hanging_got_two.wait(), 20)
        # Every fast delivery went through while the hanging endpoint held only its share.
        assert len(held) == 2
        states = await conn.fetch(
            "SELECT recipient, state::text, count(*) AS n FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2"
        )
        by_recipient = {(row["recipient"], row["state"]): row["n"] for row in states}
        assert by_recipient[(HANGING, "sending")] == 2
        assert by_recipient[(HANGING, "queued")] == 18
        await _wait_state(conn, FAST, "delivered", 3)
    finally:
        release.set()
        worker.stop()
        await asyncio.wait_for(serving, 30)
        await pusher.close()


async def _wait_state(conn: asyncpg.Connection, recipient: str, state: str, count: int) -> None:
    """The outcome is committed just after the endpoint answers; poll the row, not the clock."""
    for _ in range(200):
        n = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE recipient = $1 AND state::text = $2", recipient, state
        )
        if n == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{recipient}: not {count} deliveries {state}")


async def test_a_claim_passes_over_an_endpoint_that_is_full(
    push_client: TestClient, receiver: tuple[Receiver, TestServer], conn: asyncpg.Connection
) -> None:
    _, server = receiver
    endpoint = str(server.make_url("/edoc"))
    key = await setup_agencies(conn, endpoint)
    for index in range(4):
        edoc = small_edoc(sender=DEPT, recipients=(DISTRICT,), document_id=f"{DEPT},2026/11/30,{index}/P")
        await push_client.post("/v1/packages", headers=bearer(key), data=build_edoc(edoc))

    assert await delivery_store.claim_due(conn, 10, 60, "w", per_endpoint=2, in_flight={endpoint: 2}) == []
    assert (
        len(await delivery_store.claim_due(conn, 10, 60, "w", per_endpoint=2, in_flight={endpoint: 1})) == 1
    )
    assert len(await delivery_store.claim_due(conn, 10, 60, "w", per_endpoint=2)) == 2  # room for two
    assert len(await delivery_store.claim_due(conn, 10, 60, "w")) == 1  # no cap: the rest


async def test_pull_deliveries_nobody_downloads_expire_like_push_ones(
    push_client: TestClient, conn: asyncpg.Connection
) -> None:
    outcomes: list[str] = []
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": DEPT, "name": "Sở"}),
            registry.AgencyInput({"organ_id": DISTRICT, "name": "Quận"}),
        ],
    )
    sender = (await registry.add_system(conn, "dept", Role.SYSTEM, [DEPT])).api_key
    reader = (await registry.add_system(conn, "district", Role.SYSTEM, [DISTRICT])).api_key
    ids = []
    for index in range(3):
        edoc = small_edoc(sender=DEPT, recipients=(DISTRICT,), document_id=f"{DEPT},2026/11/30,{index}/E")
        response = await push_client.post("/v1/packages", headers=bearer(sender), data=build_edoc(edoc))
        ids.append(UUID((await response.json())["deliveries"][0]["delivery_id"]))
    old, downloaded, fresh = ids
    assert (
        await push_client.get(f"/v1/deliveries/{downloaded}/package", headers=bearer(reader))
    ).status == 200
    # Two of them were queued longer ago than the maximum age (3 days by default).
    await conn.execute(
        "UPDATE deliveries SET created_at = now() - interval '4 days', "
        "updated_at = now() - interval '4 days' "
        "WHERE id = ANY($1::uuid[])",
        [old, downloaded],
    )
    app = push_client.server.app

    assert (
        await expire_pull_deliveries(app[POOL], app[SETTINGS].delivery, lambda o, c: outcomes.append(o)) == 1
    )

    states = {row.id: row.state for row in await delivery_store.list_deliveries(conn, None, 10)}
    assert states == {old: "expired", downloaded: "delivered", fresh: "queued"}
    assert outcomes == ["expired"]
    inbox = await (await push_client.get("/v1/inbox", headers=bearer(reader))).json()
    assert {item["delivery_id"] for item in inbox["items"]} == {str(downloaded), str(fresh)}
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'delivery.expired' AND delivery_id = $1", old
        )
        == 1
    )
    # Re-queued, it has its full age again: the next sweep leaves it in the inbox.
    assert await delivery_store.requeue(conn, [old]) == [old]
    assert await expire_pull_deliveries(app[POOL], app[SETTINGS].delivery) == 0
    assert (await delivery_store.delivery_by_id(conn, old)).state == "queued"  # type: ignore[union-attr]
