"""``exchange serve --role``: API processes never push, worker processes never accept."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import asyncpg

from exchange.edxml.builder import build_edoc
from tests.e2e.harness import Client, Receiver, Server, start_receiver, write_config
from tests.e2e.test_exchange_flow import register
from tests.edxml_factories import small_edoc

SENDER, PUSHED, PULLED = "000.00.01.H26", "000.00.03.H26", "000.00.02.H26"
PACKAGES = 12


def _pushes_logged(server: Server) -> list[str]:
    return [str(e["delivery_id"]) for e in server.events if e.get("event") == "delivery.pushed"]


async def test_api_processes_never_push_and_workers_push_everything(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    receiver = Receiver()
    runner, endpoint = await start_receiver(receiver)
    keys = await register(
        database_url,
        [
            {"organ_id": SENDER, "name": "Sở Nội vụ"},
            {"organ_id": PULLED, "name": "Sở Tài chính"},
            {"organ_id": PUSHED, "name": "Sở Xây dựng", "mode": "push", "endpoint": endpoint},
        ],
    )
    config = str(write_config(tmp_path / "exchange.toml", dev_pki))
    common = ("--config", config, "--database-url", database_url)
    apis = [await Server.start(*common, "--role", "api") for _ in range(2)]
    worker = await Server.start(*common, "--role", "worker")
    try:
        async with aiohttp.ClientSession() as session:
            sent = []
            for n in range(PACKAGES):
                api = apis[n % 2]
                package = build_edoc(
                    small_edoc(
                        sender=SENDER, recipients=(PUSHED, PULLED), document_id=f"{SENDER},2026/11/30,{n}/R"
                    )
                )
                status, accepted = await Client(session, api.url, keys[SENDER]).post_package(package)
                assert status == 201, accepted
                sent.append(
                    next(d["delivery_id"] for d in accepted["deliveries"] if d["recipient"] == PUSHED)
                )

            await receiver.wait_for(lambda: set(receiver.counts()) >= set(sent))
            # The worker logs a push once its outcome is committed: wait for that record.
            await worker.wait_for(lambda: set(_pushes_logged(worker)) >= set(sent))
            # Every push was made by the worker, each once; the API processes logged none.
            assert sorted(_pushes_logged(worker)) == sorted(sent)
            assert receiver.counts() == {delivery: 1 for delivery in sent}
            for api in apis:
                assert _pushes_logged(api) == []
                assert not [
                    e for e in api.events if str(e.get("event", "")).startswith(("delivery.", "audit."))
                ]
            # The worker leased every push delivery; an API process leased none.
            conn = await asyncpg.connect(database_url)
            try:
                leased = await conn.fetch("SELECT DISTINCT leased_by FROM deliveries WHERE mode = 'push'")
            finally:
                await conn.close()
            assert [row["leased_by"].split(":")[1] for row in leased] == [str(worker.process.pid)]

            # The pull recipient reads its inbox through an API process.
            status, inbox = await Client(session, apis[1].url, keys[PULLED]).get_json("/v1/inbox?limit=100")
            assert status == 200
            assert len(inbox["items"]) == PACKAGES
    finally:
        for server in (*apis, worker):
            await server.stop()
        await runner.cleanup()


async def test_a_worker_process_accepts_nothing_and_answers_health(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await register(
        database_url,
        [{"organ_id": SENDER, "name": "Sở Nội vụ"}, {"organ_id": PULLED, "name": "Sở Tài chính"}],
    )
    config = str(write_config(tmp_path / "exchange.toml", dev_pki))
    worker = await Server.start("--config", config, "--database-url", database_url, "--role", "worker")
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, worker.url, keys[SENDER])
            package = build_edoc(
                small_edoc(sender=SENDER, recipients=(PULLED,), document_id=f"{SENDER},2026/11/30,1/W")
            )
            status, body = await client.post_package(package)
            assert (status, body["error"]["code"]) == (404, "not_found")
            async with session.post(f"{worker.url}/sendEdoc", data=b"{}", headers=client.headers) as response:
                assert response.status == 404
            for path in ("/v1/inbox", "/v1/agencies", "/ui/login", "/v1/openapi.json"):
                assert (await client.get_json(path))[0] == 404, path
            assert (await client.get_json("/healthz")) == (200, {"status": "ok"})
            status, ready = await client.get_json("/readyz")
            assert (status, ready["status"]) == (200, "ready")
            async with session.get(
                f"{worker.url}/metrics", headers={"Authorization": f"Bearer {keys['auditor']}"}
            ) as response:
                assert response.status == 200
                assert "exchange_" in await response.text()
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM messages") == 0
            assert await conn.fetchval("SELECT count(*) FROM deliveries") == 0
        finally:
            await conn.close()
    finally:
        await worker.stop()
    listening = next(e for e in worker.events if e.get("event") == "server.listening")
    assert listening["role"] == "worker"
