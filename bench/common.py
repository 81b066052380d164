"""What the benchmarks share: a private database, a registry, and signed packages to send."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from exchange import cert_registry, registry
from exchange.audit_chain import ChainReport, seal_pending, verify_chain
from exchange.edxml.builder import build_edoc
from exchange.model import Role
from exchange.store.chain import lag as chain_lag
from exchange.store.embedded import embedded_cluster
from exchange.store.migrate import apply_migrations
from exchange.trust import devca
from exchange.trust.signing import Signer, sign_package
from tests.edxml_factories import small_edoc

SIZES = {"20k": 20 * 1024, "1m": 1024 * 1024, "20m": 20 * 1024 * 1024}
SENDERS = [f"000.00.{n:02d}.H26" for n in range(1, 6)]
PULL = [f"000.00.{n:02d}.H26" for n in range(11, 16)]
PUSH = [f"000.00.{n:02d}.H26" for n in range(21, 26)]


@dataclass
class World:
    """The registry a benchmark runs against, and the keys and certificates to act in it."""

    database_url: str
    pki: Path  # directory with ca.pem and agency-<OrganId>.pem/.key.pem
    keys: dict[str, str]  # OrganId -> API key of the system serving it


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """The given database, or a private PostgreSQL cluster in a temporary directory."""
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="exchange-bench-") as directory,
        embedded_cluster(Path(directory) / "pgdata") as cluster,
    ):
        yield cluster


async def prepare(url: str, pki: Path, push_endpoint: str | None) -> World:
    """Migrate, register senders and recipients (half pull, half push), trust the bench CA."""
    agencies = [*SENDERS, *PULL, *(PUSH if push_endpoint else [])]
    written = devca.write_dev_pki(pki, [(organ, organ) for organ in SENDERS])
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
        await registry.add_agencies(
            conn,
            [
                registry.AgencyInput(
                    {
                        "organ_id": organ,
                        "name": f"Bench {organ}",
                        "signature_policy": "required" if organ in SENDERS else None,
                        **({"mode": "push", "endpoint": push_endpoint} if organ in PUSH else {}),
                    }
                )
                for organ in agencies
            ],
            allow_private_endpoints=True,  # the benchmark's push endpoint runs on this machine
        )
        keys = {
            organ: (await registry.add_system(conn, f"bench-{organ}", Role.SYSTEM, [organ])).api_key
            for organ in agencies
        }
        ca = cert_registry.read_certificates(written["ca"].read_bytes(), "ca.pem")
        await cert_registry.import_certificates(conn, ca, organ_id=None)
    finally:
        await conn.close()
    return World(url, pki, keys)


def recipients_for(index: int, count: int, with_push: bool) -> tuple[str, ...]:
    """A realistic mix: pull and push recipients alternate."""
    pool = [agency for pair in zip(PULL, PUSH, strict=True) for agency in pair] if with_push else PULL * 2
    return tuple(dict.fromkeys(pool[(index + k) % len(pool)] for k in range(count)))


@functools.cache
def _signer(pki: str, sender: str) -> Signer:
    # Loading an RSA key checks it (tens of milliseconds): once per sender per worker process.
    return Signer.from_files(Path(pki) / f"agency-{sender}.pem", Path(pki) / f"agency-{sender}.key.pem")


def _make(args: tuple[str, int, int, tuple[str, ...], str]) -> bytes:
    pki, size, index, recipients, sender = args
    signer = _signer(pki, sender)
    document_id = f"{sender},2026/11/21,{index}-{uuid.uuid4().hex[:8]}/BENCH"
    header = len(
        build_edoc(small_edoc(sender=sender, recipients=recipients, document_id=document_id, body=b""))
    )
    body = os.urandom(max(0, (size - header - 3000) * 3 // 4))  # 3000: the signature
    return sign_package(
        build_edoc(small_edoc(sender=sender, recipients=recipients, document_id=document_id, body=body)),
        signer,
    )


def make_packages(
    pki: Path, size: int, count: int, recipients: int, with_push: bool
) -> list[tuple[str, bytes]]:
    """``count`` distinct signed packages (sender, bytes), built on every core before the clock starts."""
    jobs = [
        (str(pki), size, index, recipients_for(index, recipients, with_push), SENDERS[index % len(SENDERS)])
        for index in range(count)
    ]
    with ProcessPoolExecutor() as pool:
        built = list(pool.map(_make, jobs, chunksize=max(1, count // 64)))
    return [(job[4], package) for job, package in zip(jobs, built, strict=True)]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def unsettled_deliveries(conn: asyncpg.Connection, recipients: list[str] | None = None) -> int:
    """Deliveries not final yet: neither pushed with a 2xx nor downloaded (or acknowledged); of
    ``recipients`` only, when given."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM deliveries WHERE state NOT IN ('delivered', 'acked')"
        " AND ($1::text[] IS NULL OR recipient = ANY($1::text[]))",
        recipients,
    )
    return count


async def settle(url: str, recipients: list[str], within_s: float = 300.0) -> float:
    """Wait until the servers owe nothing (every delivery to ``recipients``, who must be at work, final;
    every audit entry sealed), so a run does not pay for what an earlier, heavier one left behind;
    how long that took."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        while time.perf_counter() - started < within_s:
            if not await unsettled_deliveries(conn, recipients) and not (await chain_lag(conn))[1]:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def sealed_chain(conn: asyncpg.Connection, pki: dict[str, Path]) -> ChainReport:
    """Seal what the servers left unsealed, then verify the whole audit chain."""
    axis = Signer.from_files(pki["axis"], pki["axis_key"])
    while (await seal_pending(conn, axis, force_checkpoint=True)).sealed:
        pass
    return await verify_chain(conn, axis.certificate)


async def endpoint_per_recipient(url: str, endpoint: str) -> None:
    """Each push agency its own URL (one DMS each), as in a real registry."""
    conn = await asyncpg.connect(url)
    try:
        for organ in PUSH:
            await conn.execute(
                "UPDATE agencies SET push_endpoint = $2 WHERE organ_id = $1", organ, f"{endpoint}?to={organ}"
            )
    finally:
        await conn.close()
