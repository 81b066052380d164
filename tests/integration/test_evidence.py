"""Evidence bundles verify offline; any change to them is found and explained."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiohttp.web import Application
from cryptography import x509

from exchange.app import create_app
from exchange.cli import run
from exchange.edxml.codes import StatusCode
from exchange.evidence import canonical_zip, verify_bundle
from exchange.settings import Settings
from exchange.store import audit
from exchange.store import chain as chain_store
from exchange.store.audit import Event
from tests.integration.conftest import DEPT, DOC, World, send_with_status, waiting_for_the_sealer


@pytest.fixture
async def bundle(client: TestClient, world: World) -> bytes:
    accepted = await send_with_status(client, world, StatusCode.ARRIVED)
    response = await client.get(f"/v1/messages/{accepted['message_id']}/evidence", headers=world.as_(DEPT))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/zip"
    return await response.read()


@asynccontextmanager
async def sealer_at_work(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another process's background sealer, holding the chain until the block ends."""
    sealer = await asyncpg.connect(database_url)
    try:
        async with sealer.transaction():
            assert await chain_store.try_become_sealer(sealer)
            yield sealer
    finally:
        await sealer.close()


def evidence_of(client: TestClient, world: World, accepted: dict[str, Any]) -> asyncio.Task[ClientResponse]:
    return asyncio.create_task(
        client.get(f"/v1/messages/{accepted['message_id']}/evidence", headers=world.as_(DEPT))
    )


async def assert_whole(response: ClientResponse, dev_pki: dict[str, Path]) -> None:
    assert response.status == 200  # not 409 "not sealed yet"
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    report = verify_bundle(await response.read(), axis)
    assert report.valid, report.problems


@pytest.mark.parametrize("backlog", [0, 12_000], ids=["nothing-ahead", "more-than-a-batch-ahead"])
async def test_a_bundle_asked_for_while_the_chain_is_being_sealed_waits_and_is_whole(
    client: TestClient,
    world: World,
    conn: asyncpg.Connection,
    database_url: str,
    dev_pki: dict[str, Path],
    backlog: int,
) -> None:
    async with sealer_at_work(database_url) as sealer:
        # Entries waiting to be sealed before the message's own: one seal takes 250 at most.
        await audit.append(conn, "dms-test", [Event("test.event", uuid.uuid4()) for _ in range(backlog)])
        accepted = await send_with_status(client, world, StatusCode.ARRIVED)
        asked = evidence_of(client, world, accepted)
        await waiting_for_the_sealer(sealer)
    await assert_whole(await asyncio.wait_for(asked, 60), dev_pki)


async def test_every_event_of_a_bundle_is_anchored_behind_a_backlog_to_seal(
    aiohttp_client: Callable[[Application], Awaitable[TestClient]],
    settings: Settings,
    database_url: str,
    world: World,
    conn: asyncpg.Connection,
    dev_pki: dict[str, Path],
) -> None:
    """More entries pending than one seal takes (250), none of them held by another sealer: the
    bundle seals them all, and anchors every event its trace shows, the newest included."""
    idle = settings.model_copy(update={"audit": settings.audit.model_copy(update={"seal_interval_s": 3600})})
    client = await aiohttp_client(create_app(idle, database_url))  # no background sealer to help
    accepted = await send_with_status(client, world, StatusCode.ARRIVED)
    await audit.append(conn, "dms-test", [Event("test.event", uuid.uuid4()) for _ in range(600)])
    message_id = uuid.UUID(accepted["message_id"])
    await audit.append(conn, "dms-test", [Event("test.late", message_id, details={"after": "the backlog"})])
    response = await evidence_of(client, world, accepted)
    data = await response.read()
    await assert_whole(response, dev_pki)
    files = unzip(data)
    traced = [event["id"] for event in json.loads(files["trace.json"])["events"]]
    assert "test.late" in {event["action"] for event in json.loads(files["trace.json"])["events"]}
    assert set(traced) <= set(json.loads(files["chain.json"])["message_entries"])


async def test_one_request_of_a_process_waits_for_the_sealer_and_the_others_ask_again(
    client: TestClient, world: World, database_url: str, dev_pki: dict[str, Path]
) -> None:
    """A waiter holds a pooled connection: a burst of bundle requests must not take the pool."""
    accepted = await send_with_status(client, world, StatusCode.ARRIVED)
    async with sealer_at_work(database_url) as sealer:
        first = evidence_of(client, world, accepted)
        await waiting_for_the_sealer(sealer)
        others = await asyncio.gather(*(evidence_of(client, world, accepted) for _ in range(5)))
        # Answered while the sealer still holds the chain: none of them joined the wait.
        assert [response.status for response in others] == [409] * 5
        assert {(await response.json())["error"]["code"] for response in others} == {"not_sealed_yet"}
        assert {response.headers["Retry-After"] for response in others} == {"2"}
        waiting = await sealer.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted",
            chain_store.SEALER_LOCK,
        )
        assert waiting == 1
        assert not first.done()
    await assert_whole(await asyncio.wait_for(first, 30), dev_pki)


def rezip(files: dict[str, bytes]) -> bytes:
    """What a careful forger would do: the canonical layout, so only the signatures can tell."""
    return canonical_zip(list(files.items()))


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_a_bundle_holds_everything_and_verifies(bundle: bytes, dev_pki: dict[str, Path]) -> None:
    files = unzip(bundle)
    assert set(files) == {
        "package.edxml",
        "receipt.jws",
        "trace.json",
        "trace.html",
        "chain.json",
        "axis-certificate.pem",
        "attachment-validation.json",
        "manifest.json",
        "manifest.jws",
    }
    trace = json.loads(files["trace.json"])
    assert trace["document_id"] == DOC
    assert "Đã đến" in files["trace.html"].decode()
    chain = json.loads(files["chain.json"])
    assert set(chain["message_entries"]) <= {entry["id"] for entry in chain["segment"]}
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    report = verify_bundle(bundle, axis)
    assert report.valid, report.problems
    assert report.checked == ["manifest", "signed manifest", "receipt", "chain", "trace", "attachments"]
    assert report.unproven == []


async def test_changing_any_byte_fails_with_a_reason(bundle: bytes, dev_pki: dict[str, Path]) -> None:
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    rng = random.Random(20261121)
    for position in [*sorted(rng.sample(range(len(bundle)), 60)), 0, len(bundle) - 1]:
        damaged = bytearray(bundle)
        damaged[position] ^= 0x01
        report = verify_bundle(bytes(damaged), axis)
        assert not report.valid, f"flipping byte {position} went unnoticed"
        assert report.problems
        assert all(problem.strip() for problem in report.problems)


async def test_consistent_forgeries_are_caught_by_the_signatures(
    bundle: bytes, dev_pki: dict[str, Path]
) -> None:
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    files = unzip(bundle)

    forged_package = dict(files, **{"package.edxml": files["package.edxml"].replace(b"SNV-VP", b"SNV-XX")})
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["package.edxml"] = hashlib.sha256(forged_package["package.edxml"]).hexdigest()
    forged_package["manifest.json"] = json.dumps(manifest).encode()
    report = verify_bundle(rezip(forged_package), axis)
    assert "package.edxml is not the package the receipt was signed for (SHA-256 differs)" in report.problems

    chain = json.loads(files["chain.json"])
    chain["segment"][0]["actor"] = "someone else"
    forged_chain = dict(files, **{"chain.json": json.dumps(chain).encode()})
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["chain.json"] = hashlib.sha256(forged_chain["chain.json"]).hexdigest()
    forged_chain["manifest.json"] = json.dumps(manifest).encode()
    report = verify_bundle(rezip(forged_chain), axis)
    assert any("was changed after it was sealed" in problem for problem in report.problems)

    # The trace is what an auditor reads: the axis signs the manifest that lists its hash...
    trace = json.loads(files["trace.json"])
    trace["events"][0]["actor"] = "someone else"
    forged_trace = dict(files, **{"trace.json": json.dumps(trace).encode()})
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["trace.json"] = hashlib.sha256(forged_trace["trace.json"]).hexdigest()
    forged_trace["manifest.json"] = json.dumps(manifest).encode()
    report = verify_bundle(rezip(forged_trace), axis)
    assert "manifest.json is not the manifest the axis signed" in report.problems
    # ...and stripped of that signature, the trace is not proven: each event that is not the
    # chain's entry, as sealed, is named.
    del forged_trace["manifest.jws"]
    report = verify_bundle(rezip(forged_trace), axis)
    assert not report.proven
    assert "signed manifest" not in report.checked
    assert report.unproven[0].startswith("the manifest is not signed")
    [event_id] = [event["id"] for event in trace["events"][:1]]
    assert f"trace event {event_id} differs from the chain entry of that id" in report.unproven

    stranger = x509.load_pem_x509_certificate(dev_pki["server"].read_bytes())
    report = verify_bundle(bundle, stranger)
    assert any("does not verify with the axis certificate" in problem for problem in report.problems)


async def test_the_cli_checks_a_bundle(
    bundle: bytes, tmp_path: Path, dev_pki: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evidence.zip"
    path.write_bytes(bundle)
    assert run(["evidence", "verify", str(path), "--certificate", str(dev_pki["axis"])]) == 0
    assert "valid evidence" in capsys.readouterr().out
    path.write_bytes(bundle[:-10])
    assert run(["evidence", "verify", str(path)]) == 1
    assert "INVALID" in capsys.readouterr().out
    # Stripped of the manifest's signature: not forged on that account, but not proven either.
    stripped = unzip(bundle)
    del stripped["manifest.jws"]
    path.write_bytes(rezip(stripped))
    assert run(["evidence", "verify", str(path), "--certificate", str(dev_pki["axis"])]) == 3
    out = capsys.readouterr().out
    assert "valid but NOT FULLY PROVEN evidence" in out
    assert "not proven: the manifest is not signed" in out
    # A member named twice: readers differ on which copy they show, so it is no bundle at all.
    doubled = io.BytesIO()
    with zipfile.ZipFile(doubled, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("trace.json", b'{"events": []}')  # in front of the genuine one
        for name, data in unzip(bundle).items():
            if name == "trace.json":
                with pytest.warns(UserWarning, match="Duplicate name"):
                    archive.writestr(name, data)
            else:
                archive.writestr(name, data)
    report = verify_bundle(doubled.getvalue(), x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes()))
    assert report.problems == [
        "the bundle is damaged or not a bundle: ValueError(\"members named twice: ['trace.json']\")"
    ]
