"""Run in a child process by test_package_bodies: the peak memory (VmHWM) one large package costs.

    python -m tests.integration.memory_probe parse|exchange PACKAGE DATABASE_URL AXIS_CERT AXIS_KEY

``parse``: only parse the package from its file (what the tree costs). ``exchange``: receive it
into a PackageBody, accept it through the intake (parse, store in chunks), then read what the
recipient gets from the database twice, as a push and a download do. Prints the growth of
VmHWM over the RSS before, in MiB, as JSON.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import sys
from pathlib import Path

import asyncpg

from exchange.axis_identity import load_axis_signer
from exchange.edxml.package import parse_package
from exchange.intake import Intake
from exchange.model import Role
from exchange.outgoing import load_package
from exchange.package_body import PackageBody
from exchange.registry import add_system, authenticate
from exchange.settings import load_settings
from exchange.store.db import create_pool

MiB = 1024 * 1024


def status(field: str) -> float:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def reset_peak() -> float:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from the current RSS
    return status("VmRSS")


async def exchange(package: Path, database_url: str, cert: str, key: str) -> float:
    settings = load_settings(
        None, database={"url": database_url}, trust={"axis_certificate": cert, "axis_key": key}
    )
    pool = await create_pool(database_url, settings.database)
    conn = await asyncpg.connect(database_url)
    try:
        api_key = (await add_system(conn, "probe", Role.SYSTEM, ["000.00.01.H26"])).api_key
        caller = await authenticate(conn, api_key)
        assert caller is not None
        intake = Intake(pool, settings, load_axis_signer(settings))
        before = reset_peak()
        with PackageBody(settings.limits.max_package_bytes) as body, package.open("rb") as source:
            while piece := source.read(64 * 1024):  # as the API receives it
                body.write(piece)
            body.finish()
            accepted = await intake.submit(caller, body)
        for _ in range(2):  # a push and a download
            outgoing = await load_package(conn, accepted.message.id, "")
            digest = hashlib.sha256()
            async for chunk in outgoing.stream(pool).chunks():
                digest.update(chunk)
        return status("VmHWM") - before
    finally:
        await conn.close()
        await pool.close()


def parse(package: Path) -> float:
    before = reset_peak()
    with package.open("rb") as source:
        parse_package(source)
    return status("VmHWM") - before


def main() -> None:
    mode, package = sys.argv[1], Path(sys.argv[2])
    growth = parse(package) if mode == "parse" else asyncio.run(exchange(package, *sys.argv[3:6]))
    print(json.dumps({"growth_mib": growth}))


if __name__ == "__main__":
    main()
