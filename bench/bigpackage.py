"""Server memory for large packages: one package accepted, pushed to one push recipient and
downloaded by one pull recipient, against a real server process started for it.

    .venv/bin/python bench/bigpackage.py [--sizes 20m,100m] [--unsigned] [--json]

For each size a fresh ``exchange serve`` process (default settings, its own PostgreSQL
unless --database-url) warms up with a 20 KB package, then gets one signed package of that
size (RSA-SHA256, sender policy "required"; --unsigned: policy "if-present" and no
signature, which skips signxml's copies of the tree) for one pull and one push recipient.
The push endpoint and the download hash what they receive without holding it. Printed per
size: the server's RSS before (VmRSS after the warm-up), its peak (VmHWM) once the package
was accepted, pushed and downloaded, the growth (peak - before) and growth / package size.
Targets (issue 12): growth under 2x the size for 20 MB, under 1.5x for 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from lxml import etree

from bench.common import PULL, PUSH, SENDERS, World, database, prepare
from bench.load import start_servers
from exchange.edxml.builder import build_edoc
from exchange.edxml.parser import Limits, parse_xml
from exchange.trust.signing import Signer, sign_xml
from tests.e2e.harness import HashingEndpoint, Server, serve_post
from tests.edxml_factories import small_edoc

MB = 1024 * 1024
SIZES = {"20m": 20 * MB, "50m": 50 * MB, "100m": 100 * 1000 * 1000}  # 100 MB: under the 100 MiB limit


def memory_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


async def unsigned_senders(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE agencies SET signature_policy = 'if-present' WHERE organ_id = ANY($1)", SENDERS
        )
    finally:
        await conn.close()


def signed_package(pki: Path, size: int, index: int) -> bytes:
    """Signed by the sender's bench certificate (RSA-SHA256); parsed with room for 100 MB."""
    room = Limits(max_bytes=2 * size + MB, max_text_chars=2 * size + MB)
    data = unsigned_package(size - 3000, index)  # 3000: the signature
    signer = Signer.from_files(pki / f"agency-{SENDERS[0]}.pem", pki / f"agency-{SENDERS[0]}.key.pem")
    signed: bytes = etree.tostring(
        sign_xml(parse_xml(data, room), signer), xml_declaration=True, encoding="UTF-8"
    )
    return signed


def unsigned_package(size: int, index: int) -> bytes:
    sender = SENDERS[0]
    document_id = f"{sender},2026/11/21,{index}-big/BENCH"
    recipients = (PULL[0], PUSH[0])
    header = len(
        build_edoc(small_edoc(sender=sender, recipients=recipients, document_id=document_id, body=b""))
    )
    body = bytes(range(256)) * ((size - header) * 3 // 4 // 256)
    return build_edoc(small_edoc(sender=sender, recipients=recipients, document_id=document_id, body=body))


async def download(session: aiohttp.ClientSession, base: str, key: str, delivery_id: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    headers = {"Authorization": f"Bearer {key}"}
    async with session.get(f"{base}/v1/deliveries/{delivery_id}/package", headers=headers) as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_chunked(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
    async with session.post(
        f"{base}/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=headers
    ) as response:
        assert response.status == 200, response.status
    return digest.hexdigest(), size


async def one_size(
    world: World, scratch: Path, endpoint: HashingEndpoint, name: str, package: bytes, warmup: bytes
) -> dict[str, Any]:
    data_dir = scratch / f"server-{name}"
    data_dir.mkdir()
    (server,) = await start_servers(1, 0, world.database_url, world.pki, data_dir)
    pid = server.process.pid
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
            sender_key = world.keys[SENDERS[0]]
            for data in (warmup,):  # load every code path once, so that the baseline includes it
                await exchange(session, server, world, endpoint, sender_key, data)
            before = memory_mb(pid, "VmRSS")
            started = time.perf_counter()
            outcome = await exchange(session, server, world, endpoint, sender_key, package)
            seconds = time.perf_counter() - started
            peak = memory_mb(pid, "VmHWM")
    finally:
        await server.stop()
    size_mb = len(package) / MB
    return {
        "size": name,
        "package_mb": round(size_mb, 1),
        "rss_before_mb": round(before, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - before, 1),
        "growth_per_size": round((peak - before) / size_mb, 2),
        "seconds": round(seconds, 1),
        **outcome,
    }


async def exchange(
    session: aiohttp.ClientSession,
    server: Server,
    world: World,
    endpoint: HashingEndpoint,
    key: str,
    package: bytes,
) -> dict[str, Any]:
    """Submit, wait for the push, download as the pull recipient; check every byte arrived."""
    async with session.post(
        f"{server.url}/v1/packages", data=package, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        answer = await response.json()
        assert response.status == 201, answer
    sha256 = answer["sha256"]
    assert sha256 == hashlib.sha256(package).hexdigest()
    by_recipient = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}
    pushed = await endpoint.wait_for(by_recipient[PUSH[0]], within_s=900)
    pulled = await download(session, server.url, world.keys[PULL[0]], by_recipient[PULL[0]])
    # Both got the original bytes plus the axis's TraceHeader: the same bytes, a little longer.
    assert pushed == pulled, (pushed, pulled)
    assert pulled[1] > len(package), (pulled, len(package))
    return {"pushed_bytes": pushed[1], "downloaded_bytes": pulled[1], "identical": pushed == pulled}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    endpoint = HashingEndpoint()
    runner, push_url = await serve_post(endpoint.handle, "/push")
    try:
        with database(args.database_url) as url, tempfile.TemporaryDirectory(prefix="bigpackage-") as scratch:
            scratch_dir = Path(scratch)
            world = await prepare(url, scratch_dir / "pki", push_url)
            if args.unsigned:
                await unsigned_senders(url)
            results = []
            for index, name in enumerate(args.sizes.split(",")):
                make = unsigned_package if args.unsigned else partial(signed_package, scratch_dir / "pki")
                package, warmup = make(SIZES[name], index), make(20 * 1024, 100 + index)
                results.append(await one_size(world, scratch_dir, endpoint, name, package, warmup))
                del package
            return results
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20m,100m", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--unsigned", action="store_true", help="unsigned packages, sender policy if-present")
    parser.add_argument("--database-url", help="an existing database (default: a private PostgreSQL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    record = {
        "signed": not args.unsigned,
        "big_package_rss_growth_mb": {r["size"]: r["growth_mb"] for r in results},
        "runs": results,
    }
    if args.json:
        print(json.dumps(record))
        return
    for r in results:
        print(
            f"{r['size']:>5} ({r['package_mb']} MiB, {'signed' if record['signed'] else 'unsigned'}): "
            f"RSS {r['rss_before_mb']} MB -> peak {r['peak_mb']} MB, growth {r['growth_mb']} MB "
            f"= {r['growth_per_size']}x the package; accepted, pushed and downloaded in {r['seconds']} s"
        )


if __name__ == "__main__":
    main()
