"""Hostile load: what misbehaving clients cost a real server, and what honest clients see meanwhile.

    .venv/bin/python bench/hostile.py [--phases bomb,slow,flood,big] [--slow-connections 5000]

Starts its own PostgreSQL and one `exchange serve` process (default limits, request log at
info), then runs four phases, each bounded in time, and prints one JSON object:

- ``bomb_rss_growth_mb``: the server's peak RSS (VmHWM, reset before the phase) above its RSS
  before, while 4 clients each send 50 MB of empty elements at once, 3 times over;
  ``bomb_rss_retained_mb``: its RSS after, above before (released or not).
- ``slow_conn_healthz_p99_ms``: /healthz p99 (a new connection each time, from 127.0.0.1)
  while 5,000 idle and slow connections are held, from 127.0.0.2-51 (100 each, under the
  per-address cap); a connection the server closes is opened again at once.
- ``baseline_submit_p99_ms`` and ``invalid_flood_submit_p99_ms``: an honest client's submit
  p99 (20 KB signed, 10/s) alone, then while 8 clients (in a process of their own) send 6 MB
  schema-invalid packages in a loop.
- ``big_package_rss_growth_mb``: for one 20 MB and one 100 MB signed package, accepted,
  pushed to 1 push recipient and downloaded by 1 pull recipient: peak RSS above RSS before
  (VmHWM reset before each). It measures the server whatever its body storage is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import yarl
from lxml import etree

from bench.common import PULL, PUSH, SENDERS, World, _make, database, percentile, prepare
from exchange.edxml.builder import build_edoc
from exchange.edxml.parser import DEFAULT_LIMITS, parse_xml
from exchange.trust.signing import Signer, sign_xml
from tests.e2e.harness import HashingEndpoint, serve_post
from tests.edxml_factories import small_edoc

MB = 1024 * 1024
NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
HONEST = SENDERS[0]
FLOODER = SENDERS[1]


class LoggedServer:
    """``exchange serve`` writing its log to a file.

    Not to a pipe read by this process: its event loop is busy being the attackers, and a
    server whose stderr pipe is full blocks on every log line, which would be measured as
    the server's own slowness.
    """

    def __init__(self, process: subprocess.Popen[bytes], log: Path, url: str) -> None:
        self.process, self.log, self.url = process, log, url

    @classmethod
    async def start(cls, log: Path, *args: str) -> LoggedServer:
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: ASYNC220 (started once; its output goes to the file)
                [sys.executable, "-m", "exchange", "serve", "--port", "0", *args],
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        async with asyncio.timeout(120):
            while True:
                listening = [e for e in read_events(log) if e.get("event") == "server.listening"]
                if listening:
                    return cls(process, log, str(listening[0]["url"]))
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited: {read_events(log)[-5:]}")
                await asyncio.sleep(0.2)

    @property
    def events(self) -> list[dict[str, Any]]:
        return read_events(self.log)

    async def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.process.wait, 60)


def read_events(log: Path) -> list[dict[str, Any]]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    return events


def memory_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith(field))


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


async def measured(pid: int, phase: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """(peak growth, RSS retained after, the phase's own result), in MB, above the RSS before."""
    reset_peak(pid)
    before = memory_mb(pid, "VmRSS")
    result = await phase()
    return (
        round(memory_mb(pid, "VmHWM") - before, 1),
        round(memory_mb(pid, "VmRSS") - before, 1),
        result,
    )


async def bomb_phase(session: aiohttp.ClientSession, url: str, key: str) -> dict[str, int]:
    bomb = f'<edXML xmlns="{NS}">'.encode() + b"<a/>" * (50 * MB // 4) + b"</edXML>"
    answers: Counter[str] = Counter()

    async def send() -> None:
        try:
            async with session.post(
                f"{url}/v1/packages", data=io.BytesIO(bomb), headers={"Authorization": f"Bearer {key}"}
            ) as response:
                body = await response.json()
                answers[f"{response.status} {body['error']['code']}"] += 1
        except aiohttp.ClientError as error:
            answers[type(error).__name__] += 1

    for _ in range(3):
        await asyncio.gather(*(send() for _ in range(4)))
    return dict(answers)


async def slow_phase(url: str, connections: int, seconds: float) -> dict[str, Any]:
    target = yarl.URL(url)
    host, port = str(target.host), int(target.port or 80)
    stop = asyncio.Event()
    state = {"open": 0, "closed_by_server": 0, "refused": 0}

    async def attacker(source: str, slow: bool) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
            except OSError:
                state["refused"] += 1
                await asyncio.sleep(1)
                continue
            state["open"] += 1
            try:
                if slow:  # headers a byte at a time, one a second
                    writer.write(b"POST /v1/packages HTTP/1.1\r\n")
                while not stop.is_set():
                    if slow:
                        writer.write(b"X")
                        await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                            state["closed_by_server"] += 1
                            break
                    except TimeoutError:
                        continue
            except OSError:
                state["closed_by_server"] += 1
            finally:
                state["open"] -= 1
                writer.close()

    per_address = 100
    tasks = []
    for index in range(connections):
        source = f"127.0.0.{2 + index // per_address}"
        tasks.append(asyncio.create_task(attacker(source, slow=index % 2 == 1)))
        if index % 200 == 199:
            await asyncio.sleep(0.05)  # opening 5,000 at once would only test the accept queue
    async with asyncio.timeout(60):
        while state["open"] < connections * 0.95:  # noqa: ASYNC110 (a count, polled while it rises)
            await asyncio.sleep(0.2)
    held = []
    # The monitor runs in a process of its own: this one is busy being 5,000 attackers.
    with ProcessPoolExecutor(1) as monitor:
        probing = asyncio.get_running_loop().run_in_executor(monitor, probe_health, url, seconds)
        while not probing.done():
            held.append(state["open"])
            await asyncio.wait([probing], timeout=0.5)
        latencies = probing.result()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "slow_conn_healthz_p50_ms": round(percentile(latencies, 0.5), 1),
        "slow_conn_healthz_p99_ms": round(percentile(latencies, 0.99), 1),
        "slow_conn_healthz_requests": len(latencies),
        "slow_conn_held_min": min(held, default=0),
        "slow_conn_closed_by_server": state["closed_by_server"],
    }


def probe_health(url: str, seconds: float) -> list[float]:
    """GET /healthz 20 times a second, a new connection each time: the latencies (ms)."""
    target = yarl.URL(url)
    latencies = []
    ended = time.perf_counter() + seconds
    while time.perf_counter() < ended:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(str(target.host), target.port, timeout=30)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200, response.status
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(max(0.0, 0.05 - (time.perf_counter() - started)))
    return latencies


async def honest_submits(
    session: aiohttp.ClientSession, url: str, world: World, packages: list[bytes], seconds: float
) -> tuple[list[float], Counter[int]]:
    """Submit at 10/s for ``seconds``: latencies of accepted submissions (ms), and every answer."""
    latencies: list[float] = []
    answers: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {world.keys[HONEST]}"}

    async def one(data: bytes) -> None:
        started = time.perf_counter()
        async with session.post(f"{url}/v1/packages", data=data, headers=headers) as response:
            await response.read()
            answers[response.status] += 1
            if response.status == 201:
                latencies.append((time.perf_counter() - started) * 1000)

    begun = time.perf_counter()
    pending = []
    for index in range(int(seconds * 10)):
        await asyncio.sleep(max(0.0, begun + index / 10 - time.perf_counter()))
        pending.append(asyncio.create_task(one(packages.pop())))
    await asyncio.gather(*pending)
    return latencies, answers


async def flood_phase(
    session: aiohttp.ClientSession, url: str, world: World, packages: list[bytes], seconds: float
) -> dict[str, Any]:
    baseline, baseline_answers = await honest_submits(session, url, world, packages, seconds)
    invalid = build_edoc(small_edoc(sender=FLOODER, recipients=(PULL[0],), body=b"%PDF" * (6 * MB // 4)))
    invalid = invalid.replace(b"<edXML:Code>", b"<edXML:Surprise/><edXML:Code>", 1)
    # The flooders run in a process of their own, as an attacker's machine would: sending 48 MB at
    # once from the honest client's event loop would delay that client itself, not the server.
    with ProcessPoolExecutor(1) as attacker:
        flooding = asyncio.get_running_loop().run_in_executor(
            attacker, run_flooders, url, world.keys[FLOODER], invalid, seconds + 1
        )
        flooded, flooded_answers = await honest_submits(session, url, world, packages, seconds)
        answers = await flooding
    return {
        "baseline_submit_p50_ms": round(percentile(baseline, 0.5), 1),
        "baseline_submit_p95_ms": round(percentile(baseline, 0.95), 1),
        "baseline_submit_p99_ms": round(percentile(baseline, 0.99), 1),
        "invalid_flood_submit_p50_ms": round(percentile(flooded, 0.5), 1),
        "invalid_flood_submit_p95_ms": round(percentile(flooded, 0.95), 1),
        "invalid_flood_submit_p99_ms": round(percentile(flooded, 0.99), 1),
        "baseline_honest_answers": {str(status): count for status, count in baseline_answers.items()},
        "invalid_flood_honest_answers": {str(status): count for status, count in flooded_answers.items()},
        "invalid_flood_answers": {str(status): count for status, count in answers.items()},
    }


def run_flooders(url: str, key: str, invalid: bytes, seconds: float) -> Counter[int]:
    """8 clients sending ``invalid`` in a loop for ``seconds`` (in the attacker's process): every answer."""
    answers: Counter[int] = Counter()

    async def flooder(session: aiohttp.ClientSession, until: float) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        while time.monotonic() < until:
            try:
                async with session.post(
                    f"{url}/v1/packages", data=io.BytesIO(invalid), headers=headers
                ) as response:
                    await response.read()
                    answers[response.status] += 1
            except aiohttp.ClientError:  # a refused upload may see the connection closed first
                answers[0] += 1

    async def flood() -> None:
        until = time.monotonic() + seconds
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            await asyncio.gather(*(flooder(session, until) for _ in range(8)))

    asyncio.run(flood())
    return answers


async def big_package(
    session: aiohttp.ClientSession, url: str, world: World, pusher: HashingEndpoint, data: bytes
) -> dict[str, Any]:
    """Accepted, pushed to its push recipient, downloaded by its pull recipient (sizes in bytes)."""
    headers = {"Authorization": f"Bearer {world.keys[HONEST]}"}
    async with session.post(f"{url}/v1/packages", data=io.BytesIO(data), headers=headers) as response:
        answer = await response.json()
        assert response.status == 201, answer
    deliveries = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}
    [pull] = [organ for organ in deliveries if organ in PULL]
    [push] = [organ for organ in deliveries if organ in PUSH]
    downloaded = 0
    async with session.get(
        f"{url}/v1/deliveries/{deliveries[pull]}/package",
        headers={"Authorization": f"Bearer {world.keys[pull]}"},
    ) as response:
        assert response.status == 200, response.status
        async for piece in response.content.iter_chunked(256 * 1024):
            downloaded += len(piece)
    _, pushed = await pusher.wait_for(deliveries[push], 120)
    return {"downloaded": downloaded, "pushed": pushed}


def big_signed(pki: Path, size: int) -> bytes:
    """A signed package of about ``size`` bytes to one pull and one push recipient.

    Signed here rather than with sign_package, whose parser keeps the default 50 MB limit.
    """
    document_id = f"{HONEST},2026/11/21,{size}/BIG"
    body = os.urandom((size - 6000) * 3 // 4)
    data = build_edoc(
        small_edoc(sender=HONEST, recipients=(PULL[0], PUSH[0]), document_id=document_id, body=body)
    )
    signer = Signer.from_files(pki / f"agency-{HONEST}.pem", pki / f"agency-{HONEST}.key.pem")
    roomy = replace(DEFAULT_LIMITS, max_bytes=2 * len(data), max_text_chars=2 * len(data))
    signed: bytes = etree.tostring(
        sign_xml(parse_xml(data, roomy), signer), xml_declaration=True, encoding="UTF-8"
    )
    return signed


async def run(args: argparse.Namespace, url: str, scratch: Path) -> dict[str, Any]:
    pusher = HashingEndpoint()
    push_runner, endpoint = await serve_post(pusher.handle, "/push")
    world = await prepare(url, scratch / "pki", endpoint)
    config = scratch / "hostile.toml"
    config.write_text(
        "[trust]\n"
        f'axis_certificate = "{scratch / "pki" / "axis-signing.pem"}"\n'
        f'axis_key = "{scratch / "pki" / "axis-signing.key.pem"}"\n'
        "[limits]\n"
        f"max_package_bytes = {128 * MB}\n"  # room for the 100 MB package; every limit else is default
        "[database]\npool_max_size = 20\n"
        "[delivery]\nallow_private_endpoints = true\n"  # the push endpoint runs in this process
    )
    server = await LoggedServer.start(
        scratch / "server.log", "--config", str(config), "--database-url", url, "--data-dir", str(scratch)
    )
    pid = server.process.pid
    result: dict[str, Any] = {}
    phases = set(args.phases.split(","))
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=300), connector=aiohttp.TCPConnector(limit=100)
        ) as session:
            if "bomb" in phases:
                growth, retained, answers = await measured(
                    pid, lambda: bomb_phase(session, server.url, world.keys[FLOODER])
                )
                result |= {
                    "bomb_rss_growth_mb": growth,
                    "bomb_rss_retained_mb": retained,
                    "bomb_answers": answers,
                }
            if "slow" in phases:
                result |= await slow_phase(server.url, args.slow_connections, args.seconds)
            if "flood" in phases:
                mark = len(server.events)
                pki = str(scratch / "pki")
                honest = [
                    _make((pki, 20 * 1024, n, (PULL[n % len(PULL)],), HONEST))
                    for n in range(int(args.seconds * 10) * 2 + 10)
                ]
                result |= await flood_phase(session, server.url, world, honest, args.seconds)
                # The server's own view (its request log), apart from the client's event loop.
                served = [
                    float(e["duration_ms"])
                    for e in server.events[mark:]
                    if e.get("event") == "http.request" and e.get("status") == 201
                ]
                result["flood_phases_server_submit_p99_ms"] = round(percentile(served, 0.99), 1)
            if "big" in phases:
                growth_by_size = {}
                for size in (20, 100):
                    data = big_signed(scratch / "pki", size * MB)
                    growth, _, moved = await measured(
                        pid, lambda data=data: big_package(session, server.url, world, pusher, data)
                    )
                    assert moved["downloaded"] >= len(data), moved
                    assert moved["pushed"] >= len(data), moved
                    growth_by_size[f"{size}m"] = growth
                    del data
                result["big_package_rss_growth_mb"] = growth_by_size
        result["server_log_lines"] = len(server.events)
        result["server_log_errors"] = sum(1 for e in server.events if e.get("level") in ("error", "critical"))
    except Exception:
        print(json.dumps(server.events[-5:]), file=sys.stderr)  # what the server said last
        raise
    finally:
        await server.stop()
        await push_runner.cleanup()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phases", default="bomb,slow,flood,big")
    parser.add_argument("--slow-connections", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the timed phases")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    # 5,000 held connections and their reconnections need descriptors beyond the usual 1,024.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with (
        tempfile.TemporaryDirectory(prefix="exchange-hostile-") as scratch,
        database(args.database_url) as url,
    ):
        result = asyncio.run(run(args, url, Path(scratch)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
