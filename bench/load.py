"""Load generator: signed packages over real HTTP against a real server, with recipients at work.

    .venv/bin/python bench/load.py --size 20k --recipients 3 --duration 30 [--rate N] [--json]
                                   [--url URL --database-url DSN] [--servers 1]

Without --url it starts its own PostgreSQL and `exchange serve` processes. Senders submit
signed packages (RSA-SHA256, policy "required") to 1-5 recipients, half pull and half push;
pull recipients poll their inbox, download, acknowledge and send a status 01 back for every
fifth document; push recipients are an HTTP endpoint in this process. Reported: accepted/s,
submit latency, submit-to-inbox and submit-to-pushed latency, errors, server CPU and peak
memory, and the ratio to bench/limit.py run on the same machine in the same run. A JSON
record and a PNG chart are written to bench/results/.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import psutil
from aiohttp import web

from bench.common import PULL, SIZES, World, database, make_packages, percentile, prepare
from exchange.edxml.builder import build_status
from exchange.edxml.codes import StatusCode
from exchange.edxml.package import parse_package
from tests.e2e.harness import Server, serve_post
from tests.edxml_factories import small_status

RESULTS = Path(__file__).resolve().parent / "results"


class Record:
    """When each document was submitted, answered, first seen in an inbox, and pushed."""

    def __init__(self) -> None:
        self.submitted: dict[str, float] = {}  # delivery id -> submit start
        self.submit_ms: list[tuple[float, float]] = []  # (time since start, latency)
        self.inbox_ms: list[float] = []
        self.pushed_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.accepted = 0
        self.started = time.perf_counter()
        self.elapsed = 0.0  # how long submitting took: the run's duration

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def push_endpoint(record: Record) -> tuple[web.AppRunner, str]:
    async def receive(request: web.Request) -> web.Response:
        await request.read()
        submitted = record.submitted.get(request.headers.get("X-Exchange-Delivery-Id", ""))
        if submitted is not None:
            record.pushed_ms.append((time.perf_counter() - submitted) * 1000)
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
) -> None:
    limit = asyncio.Semaphore(64)

    async def submit(index: int, sender: str, package: bytes) -> None:
        try:
            await send(index, sender, package)
        finally:
            limit.release()

    async def send(index: int, sender: str, package: bytes) -> None:
        started = time.perf_counter()
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
            record.submitted[delivery["delivery_id"]] = started

    tasks = []
    for index, (sender, package) in enumerate(packages):
        if time.perf_counter() - record.started > duration:
            break
        if rate:
            await asyncio.sleep(max(0.0, record.started + index / rate - time.perf_counter()))
        await limit.acquire()  # at most 64 submissions in flight: back-pressure, not an ever-growing queue
        tasks.append(asyncio.create_task(submit(index, sender, package)))
    await asyncio.gather(*tasks)


async def recipients_at_work(
    session: aiohttp.ClientSession, url: str, world: World, record: Record, stop: asyncio.Event
) -> None:
    """Each pull recipient: list, download, acknowledge; answer every fifth document with 01."""

    async def one(organ: str) -> None:
        headers = {"Authorization": f"Bearer {world.keys[organ]}"}
        seen = 0
        while not stop.is_set():
            async with session.get(f"{url}/v1/inbox?limit=200", headers=headers) as response:
                items = (await response.json()).get("items", [])
            if not items:
                await asyncio.sleep(0.05)  # an idle recipient polls again shortly
                continue
            now = time.perf_counter()
            for item in items:
                submitted = record.submitted.get(item["delivery_id"])
                if submitted is not None and item["kind"] == "edoc" and not item["downloaded"]:
                    record.inbox_ms.append((now - submitted) * 1000)
                async with session.get(
                    f"{url}/v1/deliveries/{item['delivery_id']}/package", headers=headers
                ) as response:
                    package = await response.read()
                async with session.post(
                    f"{url}/v1/deliveries/{item['delivery_id']}/ack", json={"result": "done"}, headers=headers
                ) as response:
                    await response.read()
                seen += 1
                if item["kind"] == "edoc" and seen % 5 == 0:
                    await answer(organ, headers, package)

    async def answer(organ: str, headers: dict[str, str], package: bytes) -> None:
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
            if response.status != 201:
                record.error(f"status_http_{response.status}")

    await asyncio.gather(*(one(organ) for organ in PULL))


class ServerWatch:
    """CPU seconds and peak memory of the server processes."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.cpu_start = sum(p.cpu_times().user + p.cpu_times().system for p in self.processes)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in self.processes) - self.cpu_start

    def peak_rss_mb(self) -> float:
        peaks = []
        for process in self.processes:
            with open(f"/proc/{process.pid}/status") as status:
                peaks += [int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM")]
        return round(max(peaks, default=0.0), 1)


async def start_servers(count: int, url: str, pki: Path, data_dir: Path) -> list[Server]:
    """``count`` servers with default settings (logging each request at info, as in production)."""
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
    return [await Server.start(*args) for _ in range(count)]


async def load(
    args: argparse.Namespace,
    world: World,
    urls: list[str],
    watch: ServerWatch | None,
    packages: list[tuple[str, bytes]],
    record: Record,
) -> None:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=120), connector=aiohttp.TCPConnector(limit=200)
    ) as session:
        stop = asyncio.Event()
        workers = asyncio.create_task(recipients_at_work(session, urls[0], world, record, stop))
        record.started = time.perf_counter()
        await submit_all(session, urls, world, packages, record, args.duration, args.rate)
        record.elapsed = time.perf_counter() - record.started
        await asyncio.sleep(2)  # let the last pushes and inbox reads land before counting them
        stop.set()
        await workers


def limit_run(args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "limit.py"),
            "--size",
            args.size,
            "--recipients",
            str(args.recipients),
            "--seconds",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=SIZES, default="20k")
    parser.add_argument("--recipients", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate", type=float, help="packages per second (default: as fast as possible)")
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument(
        "--url", help="an already running server (then --database-url and the bench registry)"
    )
    parser.add_argument("--database-url")
    parser.add_argument("--no-limit", action="store_true", help="skip the in-process ceiling run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # Enough distinct packages for the run, built beforehand (20 MB ones are held in memory).
    spare = {"20k": 50, "1m": 10, "20m": 2}[args.size]
    expected = int((args.rate or {"20k": 600, "1m": 60, "20m": 3}[args.size]) * args.duration * 1.2) + spare

    with tempfile.TemporaryDirectory(prefix="exchange-load-") as scratch, database(args.database_url) as url:
        scratch_dir = Path(scratch)
        record = Record()
        runner_loop = asyncio.new_event_loop()
        runner, endpoint = runner_loop.run_until_complete(push_endpoint(record))
        world = runner_loop.run_until_complete(prepare(url, scratch_dir / "pki", endpoint))
        packages = make_packages(
            scratch_dir / "pki", SIZES[args.size], expected, args.recipients, with_push=True
        )
        servers = (
            []
            if args.url
            else runner_loop.run_until_complete(
                start_servers(args.servers, url, scratch_dir / "pki", scratch_dir)
            )
        )
        urls = [args.url] if args.url else [server.url for server in servers]
        watch = ServerWatch([server.process.pid for server in servers]) if servers else None
        try:
            runner_loop.run_until_complete(load(args, world, urls, watch, packages, record))
            cpu = watch.cpu_seconds() if watch else 0.0
            peak = watch.peak_rss_mb() if watch else 0.0
        finally:
            for server in servers:
                runner_loop.run_until_complete(server.stop())
            runner_loop.run_until_complete(runner.cleanup())
            runner_loop.close()
    limit = {"limit_per_s": 0.0} if args.no_limit else limit_run(args)
    elapsed = record.elapsed or args.duration
    accepted_per_s = record.accepted / elapsed if elapsed else 0.0
    submit = [ms for _, ms in record.submit_ms]
    result = {
        "size": args.size,
        "recipients": args.recipients,
        "duration_s": round(elapsed, 1),
        "rate": args.rate,
        "servers": args.servers,
        "accepted": record.accepted,
        "accepted_per_s": round(accepted_per_s, 1),
        "submit_p50_ms": round(percentile(submit, 0.5), 1),
        "submit_p95_ms": round(percentile(submit, 0.95), 1),
        "submit_p99_ms": round(percentile(submit, 0.99), 1),
        "submit_max_ms": round(max(submit, default=0), 1),
        "inbox_p50_ms": round(percentile(record.inbox_ms, 0.5), 1),
        "inbox_p99_ms": round(percentile(record.inbox_ms, 0.99), 1),
        "pushed_p50_ms": round(percentile(record.pushed_ms, 0.5), 1),
        "pushed_p99_ms": round(percentile(record.pushed_ms, 0.99), 1),
        "errors": sum(record.errors.values()),
        "error_kinds": record.errors,
        "server_cpu_s": round(cpu, 1),
        "server_peak_rss_mb": peak,
        "limit_per_s": limit["limit_per_s"],
        "limit_ratio": round(accepted_per_s / limit["limit_per_s"], 2) if limit["limit_per_s"] else None,
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    pace = f"{args.rate:g}" if args.rate else "max"
    stem = f"load-{args.size}-r{args.recipients}-{pace}-{int(time.time())}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    chart(
        record,
        RESULTS / f"{stem}.png",
        f"{args.size}, {args.recipients} recipients, {'max rate' if not args.rate else f'{args.rate}/s'}",
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
