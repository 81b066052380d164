"""The ceiling for the server: the same intake work in process, without HTTP.

    .venv/bin/python bench/limit.py --size 20k --recipients 3 [--seconds 15] [--concurrency 4] [--json]

Parse, schema, signature check, policy, and one commit per package with its deliveries,
receipt and audit entries, through exchange.intake.Intake exactly as the server calls it.
The same packages as bench/load.py (size, signed, the same mix of pull and push recipients)
with as many in flight as load.py keeps (its --concurrency passes load.py's 64). What it does
NOT do, unlike a load run: HTTP (parsing requests, authentication, access logs), pushing the
push deliveries (they are created and announced, no worker runs), and recipients listing,
downloading and acknowledging, with their status 01 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SIZES, World, database, make_packages, prepare
from exchange.intake import Intake
from exchange.receipts import with_receipt_key
from exchange.settings import load_settings
from exchange.store import systems as system_store
from exchange.store.db import create_pool
from exchange.trust.signing import Signer


async def run(
    world: World, packages: list[tuple[str, bytes]], seconds: float, concurrency: int
) -> dict[str, float]:
    settings = load_settings(None, database={"url": world.database_url, "pool_max_size": concurrency + 2})
    pool = await create_pool(world.database_url, settings.database)
    # The axis identity as a server loads it (receipts signed as configured: the same cuts).
    signer = with_receipt_key(
        Signer.from_files(world.pki / "axis-signing.pem", world.pki / "axis-signing.key.pem"),
        settings.trust.receipt_algorithm,
    )
    intake = Intake(pool, settings, signer)
    async with pool.acquire() as conn:
        callers = {organ: await system_store.system_by_name(conn, f"bench-{organ}") for organ in world.keys}
    queue = iter(packages)
    done = 0
    started = time.perf_counter()

    async def work() -> None:
        nonlocal done
        for sender, package in queue:
            if time.perf_counter() - started > seconds:
                return
            await intake.submit(callers[sender], package)
            done += 1

    await asyncio.gather(*(work() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"limit_per_s": round(done / elapsed, 1), "packages": done, "seconds": round(elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=SIZES, default="20k")
    parser.add_argument("--recipients", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64, help="packages in flight (load.py keeps 64)")
    parser.add_argument("--packages", type=int, default=0, help="how many to prepare (default: enough)")
    parser.add_argument("--database-url")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    count = args.packages or {"20k": 6000, "1m": 600, "20m": 20}[args.size]
    with tempfile.TemporaryDirectory() as pki, database(args.database_url) as url:
        # Push agencies exist (as in a load run) but nothing listens there: no worker runs here.
        world = asyncio.run(prepare(url, Path(pki), "http://127.0.0.1:9/push"))
        packages = make_packages(Path(pki), SIZES[args.size], count, args.recipients, with_push=True)
        result = asyncio.run(run(world, packages, args.seconds, args.concurrency))
    result.update(size=args.size, recipients=args.recipients)
    print(
        json.dumps(result)
        if args.json
        else f"in-process intake: {result['limit_per_s']} packages/s "
        f"({result['packages']} in {result['seconds']} s)"
    )


if __name__ == "__main__":
    main()
