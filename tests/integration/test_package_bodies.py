"""Package bodies in chunks: stored and read back exactly, removed whole by retention, migrated from
the single-row layout, and costing no more memory than parsing does."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient
from cryptography import x509

from exchange import registry
from exchange.api.keys import POOL
from exchange.edxml.builder import build_edoc
from exchange.evidence import verify_bundle
from exchange.retention import remove_old_bodies
from exchange.settings import RetentionSettings
from exchange.store import messages as message_store
from exchange.store.migrate import apply_migrations, available_migrations
from tests.conftest import REPO, database_url_for
from tests.edxml_factories import small_edoc
from tests.integration.conftest import DEPT, DOC, FINANCE, World, inbox, send

MiB = 1024 * 1024
CHUNKS_VERSION = 14


async def send_large(client: TestClient, world: World, organ: str, data: bytes) -> dict[str, str]:
    response = await client.post("/v1/packages", data=io.BytesIO(data), headers=world.as_(organ))
    answer: dict[str, str] = await response.json()
    assert response.status == 201, answer
    return answer


def package_of(size: int) -> bytes:
    attachment = bytes(range(256)) * (size * 3 // 4 // 256)
    return build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC, body=attachment))


async def test_a_body_is_stored_in_chunks_and_read_back_exactly(
    client: TestClient, world: World, conn: asyncpg.Connection
) -> None:
    package = package_of(3 * MiB)
    accepted = await send_large(client, world, DEPT, package)
    message_id = uuid.UUID(accepted["message_id"])
    sizes = [
        row["n"]
        for row in await conn.fetch(
            "SELECT octet_length(data) AS n FROM message_body_chunks WHERE message_id = $1 ORDER BY seq",
            message_id,
        )
    ]
    assert sizes == [MiB] * (len(package) // MiB) + [len(package) % MiB]
    assert await message_store.body_chunks(conn, message_id) == len(sizes)
    assert await message_store.body(conn, message_id) == package


async def test_retention_removes_every_chunk_and_evidence_still_verifies(
    client: TestClient, world: World, conn: asyncpg.Connection, dev_pki: dict[str, Path]
) -> None:
    accepted = await send_large(client, world, DEPT, package_of(3 * MiB))
    kept = await send(
        client,
        world,
        DEPT,
        build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=f"{DEPT},2026/11/30,2/KEPT")),
    )
    [item, _] = await inbox(client, world, FINANCE)
    # A DMS acknowledges what it downloaded (an ack of a copy never downloaded is 409 not_received).
    download = await client.get(f"/v1/deliveries/{item['delivery_id']}/package", headers=world.as_(FINANCE))
    assert download.status == 200
    ack = await client.post(
        f"/v1/deliveries/{item['delivery_id']}/ack", json={"result": "done"}, headers=world.as_(FINANCE)
    )
    assert ack.status == 200
    await conn.execute("UPDATE messages SET received_at = now() - interval '40 days'")
    async with client.server.app[POOL].acquire() as worker_conn:
        assert await remove_old_bodies(worker_conn, RetentionSettings(body_max_age_days=30)) == 1
    left = await conn.fetch("SELECT DISTINCT message_id FROM message_body_chunks")
    # Only the package whose copy is still unread keeps its bytes; the other lost every chunk.
    assert [row["message_id"] for row in left] == [uuid.UUID(kept["message_id"])]
    assert await message_store.body(conn, uuid.UUID(accepted["message_id"])) is None

    bundle = await client.get(f"/v1/messages/{accepted['message_id']}/evidence", headers=world.as_(DEPT))
    assert bundle.status == 200
    report = verify_bundle(await bundle.read(), x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes()))
    assert report.valid, report.problems


async def test_an_evidence_bundle_carries_the_large_package_whole(
    client: TestClient, world: World, dev_pki: dict[str, Path]
) -> None:
    package = package_of(3 * MiB)
    accepted = await send_large(client, world, DEPT, package)
    bundle = await client.get(f"/v1/messages/{accepted['message_id']}/evidence", headers=world.as_(DEPT))
    assert bundle.status == 200
    data = await bundle.read()
    report = verify_bundle(data, x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes()))
    assert report.valid, report.problems
    assert package in data  # stored (no compression): the original bytes, whole and in order


async def test_the_migration_cuts_bodies_stored_before_into_chunks(cluster_url: str) -> None:
    admin = await asyncpg.connect(cluster_url)
    await admin.execute("CREATE DATABASE chunks_migration")
    url = database_url_for(cluster_url, "chunks_migration")
    conn = await asyncpg.connect(url)
    try:
        # The schema as it was before bodies were chunked.
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in available_migrations():
            if migration.version < CHUNKS_VERSION:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
        # Written as that schema's rows (today's queries read tables it did not have yet).
        system_id = await conn.fetchval(
            "INSERT INTO systems (name, role, api_key_hash) VALUES ('old', 'system', $1) RETURNING id",
            hashlib.sha256(b"old").digest(),
        )
        bodies = {}
        for size in (1, MiB - 1, MiB, MiB + 1, 5 * MiB // 2):
            message_id = uuid.uuid4()
            bodies[message_id] = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            await conn.execute(
                "INSERT INTO messages (id, kind, sender, sender_system_id, document_id, sha256, size_bytes, "
                "signature) VALUES ($1, 'edoc', $2, $3, $4, $5, $6, '{}')",
                message_id,
                DEPT,
                system_id,
                f"{DEPT},2026/11/30,{size}/OLD",
                hashlib.sha256(bodies[message_id]).digest(),
                size,
            )
            await conn.execute(
                "INSERT INTO message_bodies (message_id, body) VALUES ($1, $2)",
                message_id,
                bodies[message_id],
            )

        applied = await apply_migrations(conn)
        assert CHUNKS_VERSION in [migration.version for migration in applied]
        for message_id, body in bodies.items():
            assert await message_store.body(conn, message_id) == body
            assert await message_store.body_chunks(conn, message_id) == max(1, -(-len(body) // MiB))
    finally:
        await conn.close()
        await admin.execute("DROP DATABASE chunks_migration WITH (FORCE)")
        await admin.close()


def probe(mode: str, *args: str) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.memory_probe", mode, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=REPO,
    )
    growth: float = json.loads(done.stdout.splitlines()[-1])["growth_mib"]
    return growth


async def test_a_20_mb_package_costs_little_more_memory_than_parsing_it(
    tmp_path: Path, database_url: str, conn: asyncpg.Connection, dev_pki: dict[str, Path]
) -> None:
    """VmHWM in child processes: accepting, storing and reading a 20 MB package twice (push and
    download) may cost at most half its size more than parsing it alone (measured: a few MB)."""
    await registry.add_agencies(
        conn,
        [registry.AgencyInput({"organ_id": organ, "name": organ}) for organ in (DEPT, FINANCE)],
    )
    package = tmp_path / "large.edxml"
    package.write_bytes(package_of(20 * MiB))
    size_mib = package.stat().st_size / MiB

    parsing = probe("parse", str(package))
    exchanging = probe("exchange", str(package), database_url, str(dev_pki["axis"]), str(dev_pki["axis_key"]))
    assert parsing > size_mib / 2  # the measure sees the tree
    assert exchanging - parsing < size_mib / 2, (parsing, exchanging)
