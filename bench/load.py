"""Load generator: signed packages over real HTTP against real servers, with recipients at work.

    .venv/bin/python bench/load.py --size 20k --recipients 3 --duration 30 [--rate N] [--json]
                                   [--servers 1] [--workers 0] [--url URL --database-url DSN]
    .venv/bin/python bench/load.py --find-max --recipients 1 [--duration 30] [--start-rate 50]

Without --url it starts its own PostgreSQL and `exchange serve` processes: ``--servers`` of
them (role ``all``; role ``api`` when ``--workers`` worker-only processes are added). Senders
submit signed packages (RSA-SHA256, policy "required") to 1-5 recipients, pull and push
alternating; pull recipients poll their inbox, download, check the answer, acknowledge (and
check that answer) and send a status 01 back for every fifth document, up to 8 items at once
(a DMS with several workers); push recipients are
an HTTP endpoint in this process (one URL per recipient agency).

Each run waits until the servers owe nothing from an earlier run (every delivery to the
recipients at work final, every audit entry sealed), then begins with 5 s of the same load that
is not measured (connections opened, statements prepared: a cold start is paid once in a
server's life). Latency of a submission is
measured from its scheduled send time at a fixed ``--rate`` (so a stalled server is not hidden by
the generator waiting for it: no coordinated omission), from its actual send time at full speed.
A delivery is *delivered* when it was pushed and answered 2xx, or downloaded and acknowledged;
every delivery is waited for after the run (up to ``--drain-s``), and those never delivered are
counted. Failed downloads and acks are errors.

Full speed (no ``--rate``) also runs bench/limit.py in the same run (same size, recipients and
concurrency) and reports the ratio. ``--find-max`` searches the highest rate at which, over
``--duration`` seconds, submit p99 < 200 ms and submit-to-delivered p99 < 1 s with no error
and nothing undelivered, and prints it as ``sustained_per_s`` with the latencies at that rate.
A JSON record and a PNG chart are written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import psutil
from aiohttp import web

from bench.common import (
    PULL,
    PUSH,
    SIZES,
    World,
    database,
    endpoint_per_recipient,
    make_packages,
    percentile,
    prepare,
    settle,
)
from exchange.edxml.builder import build_status
from exchange.edxml.codes import StatusCode
from exchange.edxml.package import parse_package
from tests.e2e.harness import Server, serve_post
from tests.edxml_factories import small_status

RESULTS = Path(__file__).resolve().parent / "results"
IN_FLIGHT = 64  # submissions in flight at most: back-pressure, not an ever-growing queue
SUBMIT_P99_MS, DELIVERED_P99_MS = 200.0, 1000.0
IDLE_S = 3.0  # recipients polling with nothing to deliver, to measure what polling alone costs
# Each run starts with this long of the same load, not measured: connections opened (client to server,
# server to database), statements prepared on them. A cold start is paid once in a server's life, and
# would otherwise decide the p99 of a 30 s run.
WARMUP_S = 5.0
PULL_HANDS = 8  # items of its inbox a pull recipient (a DMS with several workers) takes at once


class Record:
    """When each document was (scheduled to be) submitted, answered, and delivered to each recipient."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.sent_at: dict[str, float] = {}  # delivery id -> (scheduled) send time of its package
        self.mode: dict[str, str] = {}  # delivery id -> push or pull
        self.submit_ms: list[tuple[float, float]] = []  # (time since start, latency)
        self.pushed_at: dict[str, float] = {}  # delivery id -> first 2xx push received
        self.inbox_at: dict[str, float] = {}  # delivery id -> first seen in the inbox
        self.acked_at: dict[str, float] = {}  # delivery id -> acknowledgement answered 200
        self.errors: dict[str, int] = {}
        self.accepted = 0
        self.elapsed = 0.0  # how long submitting took: the run's duration
        self.drained = 0.0  # until the last delivery was delivered (or given up on)
        self.progress = asyncio.Event()  # set whenever a delivery is delivered

    def delivered(self, moments: dict[str, float], delivery_id: str) -> None:
        moments.setdefault(delivery_id, time.perf_counter())
        self.progress.set()

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def delivered_at(self, delivery_id: str) -> float | None:
        return self.pushed_at.get(delivery_id) or self.acked_at.get(delivery_id)

    def undelivered(self) -> int:
        return sum(1 for delivery in self.sent_at if self.delivered_at(delivery) is None)

    def latencies_ms(self, moments: dict[str, float]) -> list[float]:
        return [(at - self.sent_at[d]) * 1000 for d, at in moments.items() if d in self.sent_at]

    def delivered_ms(self) -> list[float]:
        return [
            (at - self.sent_at[d]) * 1000 for d in self.sent_at if (at := self.delivered_at(d)) is not None
        ]


async def push_endpoint(current: list[Record]) -> tuple[web.AppRunner, str]:
    """The push recipients' endpoint; it writes into the record of the run in progress (``current[0]``)."""

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        current[0].pushed_at.setdefault(
            request.headers.get("X-Exchange-Delivery-Id", ""), time.perf_counter()
        )
        return web.Response(status=204)

    return await serve_post(receive, "/push")


async def submit_all(
    session: aiohttp.ClientSession,
    urls: list[str],
    world: World,
    packages: list[tuple[str, bytes]],
    record: Record,
    duration: float,
    rate: float | None,
) -> int:
    """Submit ``packages`` at ``rate`` (or as fast as possible) for ``duration`` seconds; how many were."""
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def submit(index: int, sender: str, package: bytes, scheduled: float) -> None:
        try:
            await send(index, sender, package, scheduled)
        finally:
            limit.release()

    async def send(index: int, sender: str, package: bytes, scheduled: float) -> None:
        started = scheduled if rate else time.perf_counter()
        try:
            async with session.post(
                f"{urls[index % len(urls)]}/v1/packages",
                data=package,
                headers={"Authorization": f"Bearer {world.keys[sender]}"},
            ) as response:
                body = await response.json()
                if response.status != 201:
                    record.error(f"http_{response.status}_{body.get('error', {}).get('code')}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.error(type(exc).__name__)
            return
        record.submit_ms.append((started - record.started, (time.perf_counter() - started) * 1000))
        record.accepted += 1
        for delivery in body["deliveries"]:
            record.sent_at[delivery["delivery_id"]] = started
            record.mode[delivery["delivery_id"]] = "push" if delivery["recipient"] in PUSH else "pull"

    tasks = []
    for index, (sender, package) in enumerate(packages):
        scheduled = record.started + index / rate if rate else time.perf_counter()
        if scheduled - record.started > duration:
            break
        if rate:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        await limit.acquire()
        tasks.append(asyncio.create_task(submit(index, sender, package, scheduled)))
    await asyncio.gather(*tasks)
    return len(tasks)


async def recipients_at_work(
    session: aiohttp.ClientSession, urls: list[str], world: World, record: Record, stop: asyncio.Event
) -> None:
    """Each pull recipient: list, download, acknowledge (both answers checked); 01 for every fifth.
    A recipient works on up to PULL_HANDS items of its inbox at once, then lists it again."""
    answered: dict[str, int] = {}

    async def one(number: int, organ: str) -> None:
        url = urls[number % len(urls)]  # recipients spread over the servers, as behind a load balancer
        headers = {"Authorization": f"Bearer {world.keys[organ]}"}
        hands = asyncio.Semaphore(PULL_HANDS)
        while not stop.is_set():
            try:
                async with session.get(f"{url}/v1/inbox?limit=200", headers=headers) as response:
                    if response.status != 200:
                        record.error(f"inbox_http_{response.status}")
                        # As a DMS does: wait as long as the server asks (429, 503), or a moment.
                        await asyncio.sleep(float(response.headers.get("Retry-After", 0.1)))
                        continue
                    items = (await response.json()).get("items", [])
            except (aiohttp.ClientError, TimeoutError) as exc:
                record.error(f"inbox_{type(exc).__name__}")
                continue
            if not items:
                await asyncio.sleep(0.1)  # an idle recipient polls again shortly (10 times a second)
                continue
            now = time.perf_counter()
            for item in items:
                record.inbox_at.setdefault(item["delivery_id"], now)
            await asyncio.gather(*(handle(url, organ, headers, item, hands) for item in items))

    async def handle(
        url: str, organ: str, headers: dict[str, str], item: dict[str, Any], hands: asyncio.Semaphore
    ) -> None:
        async with hands:
            package = await take(url, headers, item["delivery_id"])
            answered[organ] = answered.get(organ, 0) + 1
            if package is not None and item["kind"] == "edoc" and answered[organ] % 5 == 0:
                await answer(url, organ, headers, package)

    async def take(url: str, headers: dict[str, str], delivery_id: str) -> bytes | None:
        try:
            async with session.get(f"{url}/v1/deliveries/{delivery_id}/package", headers=headers) as response:
                package = await response.read()
                if response.status != 200 or not package:
                    record.error(f"download_http_{response.status}")
                    return None
            async with session.post(
                f"{url}/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=headers
            ) as response:
                await response.read()
                if response.status != 200:
                    record.error(f"ack_http_{response.status}")
                    return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.error(f"take_{type(exc).__name__}")
            return None
        record.delivered(record.acked_at, delivery_id)
        return package

    async def answer(url: str, organ: str, headers: dict[str, str], package: bytes) -> None:
        edoc = parse_package(package).edoc
        status = build_status(
            small_status(
                sender=organ,
                original_sender=edoc.sender.organ_id,
                document_id=edoc.document_id,
                code=StatusCode.ARRIVED,
            )
        )
        async with session.post(f"{url}/v1/packages", data=status, headers=headers) as response:
            await response.read()
            if response.status != 201:
                record.error(f"status_http_{response.status}")

    await asyncio.gather(*(one(number, organ) for number, organ in enumerate(PULL)))


class ServerWatch:
    """CPU seconds and peak memory of the server processes."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.cpu_start = self._cpu()

    def _cpu(self) -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in self.processes)

    def restart(self) -> None:
        self.cpu_start = self._cpu()

    def cpu_seconds(self) -> float:
        return self._cpu() - self.cpu_start

    def peak_rss_mb(self) -> float:
        peaks = []
        for process in self.processes:
            with open(f"/proc/{process.pid}/status") as status:
                peaks += [int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM")]
        return round(max(peaks, default=0.0), 1)


async def start_servers(count: int, workers: int, url: str, pki: Path, data_dir: Path) -> list[Server]:
    """``count`` servers (API-only when there are ``workers``), default settings, request logs at info."""
    config = data_dir / "bench.toml"
    config.write_text(
        "\n".join(
            [
                "[trust]",
                f'axis_certificate = "{pki / "axis-signing.pem"}"',
                f'axis_key = "{pki / "axis-signing.key.pem"}"',
                "[database]",
                "pool_max_size = 20",
                "[delivery]",
                "allow_private_endpoints = true",  # the push endpoint runs in this process
            ]
        )
        + "\n"
    )
    args = ["--config", str(config), "--database-url", url, "--data-dir", str(data_dir)]
    api_role = ["--role", "api"] if workers else []
    servers = [await Server.start(*args, *api_role) for _ in range(count)]
    return servers + [await Server.start(*args, "--role", "worker") for _ in range(workers)]


async def run_once(
    args: argparse.Namespace,
    world: World,
    urls: list[str],
    packages: list[tuple[str, bytes]],
    rate: float | None,
    record: Record,
    watch: ServerWatch | None,
) -> float:
    """Run the load; return the server CPU seconds per second that idle inbox polling alone costs."""
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=120), connector=aiohttp.TCPConnector(limit=200)
    ) as session:
        stop = asyncio.Event()
        workers = asyncio.create_task(recipients_at_work(session, urls, world, record, stop))
        # What an earlier, heavier run left to deliver is delivered (and its audit sealed) first.
        await settle(world.database_url, [*PULL, *PUSH])
        # The recipients poll before any document is sent: what polling alone costs the servers.
        idle_cpu = watch.cpu_seconds() if watch else 0.0
        await asyncio.sleep(IDLE_S)
        idle_per_s = ((watch.cpu_seconds() if watch else 0.0) - idle_cpu) / IDLE_S
        warm = Record()
        used = await submit_all(session, urls, world, packages, warm, WARMUP_S, rate)
        if watch:
            watch.restart()
        record.started = time.perf_counter()
        await submit_all(session, urls, world, packages[used:], record, args.duration, rate)
        record.elapsed = time.perf_counter() - record.started
        # Every delivery is waited for (pushed, or downloaded and acknowledged), not a fixed time.
        deadline = time.perf_counter() + args.drain_s
        while record.undelivered() and (left := deadline - time.perf_counter()) > 0:
            record.progress.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(record.progress.wait(), left)
        stop.set()
        await workers
        record.drained = time.perf_counter() - record.started
    return idle_per_s


def summary(record: Record, rate: float | None, cpu_s: float, idle_per_s: float = 0.0) -> dict[str, Any]:
    elapsed = record.elapsed or 1.0
    submit = [ms for _, ms in record.submit_ms]
    delivered = record.delivered_ms()
    pushed = record.latencies_ms(record.pushed_at)
    inbox = record.latencies_ms({d: t for d, t in record.inbox_at.items() if record.mode.get(d) == "pull"})
    acked = record.latencies_ms(record.acked_at)
    deliveries = len(record.sent_at)
    return {
        "rate": rate,
        "duration_s": round(elapsed, 1),
        "accepted": record.accepted,
        "accepted_per_s": round(record.accepted / elapsed, 1),
        "submit_p50_ms": round(percentile(submit, 0.5), 1),
        "submit_p95_ms": round(percentile(submit, 0.95), 1),
        "submit_p99_ms": round(percentile(submit, 0.99), 1),
        "submit_max_ms": round(max(submit, default=0), 1),
        "deliveries": deliveries,
        "undelivered": record.undelivered(),
        "delivered_p50_ms": round(percentile(delivered, 0.5), 1),
        "delivered_p99_ms": round(percentile(delivered, 0.99), 1),
        "pushed_samples": len(pushed),
        "pushed_p50_ms": round(percentile(pushed, 0.5), 1),
        "pushed_p99_ms": round(percentile(pushed, 0.99), 1),
        "inbox_samples": len(inbox),
        "inbox_p50_ms": round(percentile(inbox, 0.5), 1),
        "inbox_p99_ms": round(percentile(inbox, 0.99), 1),
        "acked_samples": len(acked),
        "acked_p50_ms": round(percentile(acked, 0.5), 1),
        "acked_p99_ms": round(percentile(acked, 0.99), 1),
        "errors": sum(record.errors.values()),
        "error_kinds": dict(record.errors),
        "server_cpu_s": round(cpu_s, 1),
        "server_cpu_ms_per_document": round(cpu_s * 1000 / record.accepted, 2) if record.accepted else None,
        "server_cpu_ms_per_delivery": round(cpu_s * 1000 / deliveries, 2) if deliveries else None,
        # Idle inbox polling (recipients asking ten times a second) is paid whatever the traffic:
        # the same figure without it, as measured before the run.
        "server_cpu_idle_polling_per_s": round(idle_per_s, 3),
        "server_cpu_ms_per_document_without_polling": round(
            max(0.0, cpu_s - idle_per_s * record.drained) * 1000 / record.accepted, 2
        )
        if record.accepted
        else None,
    }


def sustained(result: dict[str, Any], rate: float, duration: float) -> bool:
    """The rate held: every package accepted on time, delivered on time, no error, nothing left over."""
    return (
        result["submit_p99_ms"] < SUBMIT_P99_MS
        and result["delivered_p99_ms"] < DELIVERED_P99_MS
        and result["errors"] == 0
        and result["undelivered"] == 0
        and result["accepted"] >= 0.98 * rate * duration
    )


def limit_run(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).parent / "limit.py"), "--size", args.size]
    command += ["--recipients", str(args.recipients), "--concurrency", str(IN_FLIGHT), "--seconds", "10"]
    out = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def chart(record: Record, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, rate) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    times = [t for t, _ in record.submit_ms]
    latency.plot(times, [ms for _, ms in record.submit_ms], ".", markersize=2)
    latency.set_ylabel("submit latency (ms)")
    latency.set_title(title)
    seconds = int(max(times, default=0)) + 1
    rate.bar(range(seconds), [sum(1 for t in times if int(t) == s) for s in range(seconds)])
    rate.set_ylabel("accepted per second")
    rate.set_xlabel("seconds since start")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


class Bench:
    """One database, its registry, the servers and the push endpoint, for one or several runs."""

    def __init__(self, args: argparse.Namespace, loop: asyncio.AbstractEventLoop, url: str, scratch: Path):
        self.args, self.loop, self.scratch = args, loop, scratch
        self.current = [Record()]
        self.runner, endpoint = loop.run_until_complete(push_endpoint(self.current))
        self.world = loop.run_until_complete(prepare(url, scratch / "pki", endpoint))
        loop.run_until_complete(endpoint_per_recipient(url, endpoint))
        self.servers = (
            []
            if args.url
            else loop.run_until_complete(
                start_servers(args.servers, args.workers, url, scratch / "pki", scratch)
            )
        )
        api = self.servers[: args.servers]
        self.urls = [args.url] if args.url else [server.url for server in api]
        self.watch = ServerWatch([server.process.pid for server in self.servers]) if self.servers else None

    def run(self, rate: float | None) -> tuple[dict[str, Any], Record]:
        seconds = WARMUP_S + self.args.duration
        expected = int((rate or {"20k": 600, "1m": 60, "20m": 3}[self.args.size]) * seconds * 1.2) + 10
        packages = make_packages(
            self.scratch / "pki", SIZES[self.args.size], expected, self.args.recipients, with_push=True
        )
        record = self.current[0] = Record()
        if self.watch:
            self.watch.restart()
        idle = self.loop.run_until_complete(
            run_once(self.args, self.world, self.urls, packages, rate, record, self.watch)
        )
        cpu = self.watch.cpu_seconds() if self.watch else 0.0
        return summary(record, rate, cpu, idle), record

    def close(self) -> float:
        peak = self.watch.peak_rss_mb() if self.watch else 0.0
        for server in self.servers:
            self.loop.run_until_complete(server.stop())
        self.loop.run_until_complete(self.runner.cleanup())
        return peak


def find_max(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """Double the rate until it does not hold, then bisect between the last that held and that."""
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    low, high, rate = 0.0, None, float(args.start_rate)
    for _ in range(args.max_trials):
        result, _ = bench.run(rate)
        held = sustained(result, rate, args.duration)
        trials.append({**result, "held": held})
        print(
            f"  {rate:7.1f}/s: {'held' if held else 'did not hold'} "
            f"(submit p99 {result['submit_p99_ms']} ms, delivered p99 {result['delivered_p99_ms']} ms, "
            f"errors {result['errors']}, "
            f"undelivered {result['undelivered']})",
            file=sys.stderr,
        )
        if held:
            low, best = rate, result
        else:
            high = rate
        if high is None:
            rate *= 2  # held: try twice as fast
        elif low == 0:
            if rate <= 1:
                break  # not even one package per second holds
            rate = max(1.0, round(rate / 2, 1))  # nothing held yet: halve
        elif high - low <= max(2.0, 0.1 * low):
            break
        else:
            rate = round((low + high) / 2, 1)
    return {
        "sustained_per_s": low,
        "at_sustained": best,
        "trials": [
            {k: t[k] for k in ("rate", "held", "submit_p99_ms", "delivered_p99_ms", "errors")} for t in trials
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=SIZES, default="20k")
    parser.add_argument("--recipients", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate", type=float, help="packages per second (default: as fast as possible)")
    parser.add_argument("--find-max", action="store_true", help="search the highest sustained rate")
    parser.add_argument("--start-rate", type=float, default=50.0, help="--find-max: the first rate tried")
    parser.add_argument("--max-trials", type=int, default=8, help="--find-max: at most this many runs")
    parser.add_argument("--servers", type=int, default=1, help="server processes taking requests")
    parser.add_argument(
        "--workers", type=int, default=0, help="worker-only processes (servers are then API-only)"
    )
    parser.add_argument(
        "--drain-s", type=float, default=60.0, help="how long to wait for the last deliveries"
    )
    parser.add_argument(
        "--url", help="an already running server (then --database-url and the bench registry)"
    )
    parser.add_argument("--database-url")
    parser.add_argument("--no-limit", action="store_true", help="skip the in-process ceiling run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="exchange-load-") as scratch, database(args.database_url) as url:
        bench = Bench(args, loop, url, Path(scratch))
        try:
            if args.find_max:
                result, record = find_max(bench, args), None
            else:
                result, record = bench.run(args.rate)
        finally:
            peak = bench.close()
            loop.close()
    if not args.find_max and not args.rate and not args.no_limit:
        limit = limit_run(args)
        result["limit_per_s"] = limit["limit_per_s"]
        result["limit_ratio"] = round(result["accepted_per_s"] / limit["limit_per_s"], 2)
    result = {
        "size": args.size,
        "recipients": args.recipients,
        "servers": args.servers,
        "workers": args.workers,
        **result,
        "server_peak_rss_mb": peak,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    pace = "findmax" if args.find_max else (f"{args.rate:g}" if args.rate else "max")
    stem = f"load-{args.size}-r{args.recipients}-{pace}-{int(time.time())}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    if record is not None:
        title = f"{args.size}, {args.recipients} recipients, {f'{args.rate}/s' if args.rate else 'max rate'}"
        chart(record, RESULTS / f"{stem}.png", title)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
