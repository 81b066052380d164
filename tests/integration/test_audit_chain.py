"""The audit hash chain: sealing, signed checkpoints, and tampering found by `exchange audit verify`."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import jwt
import pytest

from exchange.audit_chain import GENESIS, axis_signed, axis_signed_claims, seal_pending, verify_chain
from exchange.cli import run
from exchange.store import audit
from exchange.store import chain as chain_store
from exchange.store.audit import Event
from exchange.trust.signing import Signer
from tests.integration.conftest import waiting_for_the_sealer


@pytest.fixture
def signer(dev_pki: dict[str, Path]) -> Signer:
    return Signer.from_files(dev_pki["axis"], dev_pki["axis_key"])


async def write_entries(conn: asyncpg.Connection, count: int) -> None:
    message_id = uuid.uuid4()
    await audit.append(
        conn,
        "dms-test",
        [Event("test.event", message_id, details={"n": n, "text": "Văn bản"}) for n in range(count)],
    )


async def sealed_chain(conn: asyncpg.Connection, signer: Signer, count: int = 30) -> list[asyncpg.Record]:
    await write_entries(conn, count)
    result = await seal_pending(conn, signer, force_checkpoint=True)
    assert result.sealed == count
    assert result.checkpoint is not None
    assert result.checkpoint.seq == count
    return await conn.fetch("SELECT id, seq, prev_hash, hash FROM audit_log ORDER BY seq")


async def tamper(conn: asyncpg.Connection, statement: str, *args: object) -> None:
    """Change the table the way someone with database access could, bypassing the append-only trigger."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(statement, *args)


async def test_sealing_links_every_entry_and_signs_the_head(conn: asyncpg.Connection, signer: Signer) -> None:
    rows = await sealed_chain(conn, signer)
    assert [r["seq"] for r in rows] == list(range(1, 31))
    assert rows[0]["prev_hash"] == GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, len(rows)))
    report = await verify_chain(conn, signer.certificate)
    assert report.intact, report.problems
    assert (report.entries, report.checkpoints) == (30, 1)

    await write_entries(conn, 5)  # more entries later: they continue the same chain
    assert (await seal_pending(conn, signer)).sealed == 5
    assert (await verify_chain(conn, signer.certificate)).entries == 35


async def test_a_seal_that_may_wait_waits_for_the_sealer_at_work_and_seals_after_it(
    conn: asyncpg.Connection, signer: Signer, database_url: str
) -> None:
    await write_entries(conn, 3)
    sealer = await asyncpg.connect(database_url)  # another process's sealer, at work
    try:
        work = sealer.transaction()
        await work.start()
        assert await chain_store.try_become_sealer(sealer)
        # The background sealer gives way at once...
        assert (await seal_pending(conn, signer)).sealed == 0
        # ...one who needs the head anchored now (an evidence bundle) waits, then seals.
        forced = asyncio.create_task(seal_pending(conn, signer, force_checkpoint=True, wait_s=30))
        await waiting_for_the_sealer(sealer)
        assert not forced.done()
        await work.commit()
        result = await asyncio.wait_for(forced, 30)
    finally:
        await sealer.close()
    assert result.sealed == 3
    assert result.checkpoint is not None
    assert result.checkpoint.seq == 3


async def test_a_seal_that_waits_too_long_gives_up_and_leaves_the_connection_usable(
    conn: asyncpg.Connection, signer: Signer, database_url: str
) -> None:
    await write_entries(conn, 3)
    sealer = await asyncpg.connect(database_url)
    try:
        async with sealer.transaction():
            assert await chain_store.try_become_sealer(sealer)
            gave_up = await seal_pending(conn, signer, force_checkpoint=True, wait_s=0.2)
    finally:
        await sealer.close()
    assert (gave_up.sealed, gave_up.checkpoint) == (0, None)
    # The wait's own time limit did not stay with the connection, and the next seal goes through.
    assert await conn.fetchval("SHOW lock_timeout") == "0"
    assert (await seal_pending(conn, signer, force_checkpoint=True, wait_s=0.2)).sealed == 3


async def test_sealed_entries_cannot_be_changed_through_sql(conn: asyncpg.Connection, signer: Signer) -> None:
    await sealed_chain(conn, signer)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("DELETE FROM audit_log WHERE seq = 3")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("UPDATE audit_log SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 30")


async def test_an_edited_entry_is_named(conn: asyncpg.Connection, signer: Signer) -> None:
    rows = await sealed_chain(conn, signer)
    victim = rows[9]["id"]
    await tamper(
        conn, "UPDATE audit_log SET details = $2::jsonb WHERE id = $1", victim, json.dumps({"n": 999})
    )
    report = await verify_chain(conn, signer.certificate)
    assert report.first_bad_entry == victim
    assert report.problems[0] == f"entry {victim} (position 10) was changed after it was sealed"


async def test_a_deleted_entry_is_named(conn: asyncpg.Connection, signer: Signer) -> None:
    rows = await sealed_chain(conn, signer)
    await tamper(conn, "DELETE FROM audit_log WHERE id = $1", rows[14]["id"])
    report = await verify_chain(conn, signer.certificate)
    assert report.first_bad_entry == rows[15]["id"]
    assert report.problems[0] == (
        f"chain position 15 is missing before entry {rows[15]['id']} (position 16): an entry was deleted"
    )


async def test_the_last_entries_deleted_contradict_the_signed_checkpoint(
    conn: asyncpg.Connection, signer: Signer
) -> None:
    rows = await sealed_chain(conn, signer)
    await tamper(conn, "DELETE FROM audit_log WHERE seq > 27")
    report = await verify_chain(conn, signer.certificate)
    assert not report.intact
    assert "beyond the end of the chain" in report.problems[-1]
    assert rows[-1]["seq"] == 30


async def test_an_inserted_entry_is_named(conn: asyncpg.Connection, signer: Signer) -> None:
    rows = await sealed_chain(conn, signer)
    forged_id = await conn.fetchval(
        "INSERT INTO audit_log (actor, action, details, seq, prev_hash, hash, sealed_at) "
        "VALUES ('intruder', 'message.accepted', '{}', 31, $1, $1, now()) RETURNING id",
        bytes(32),
    )
    report = await verify_chain(conn, signer.certificate)
    assert report.first_bad_entry == forged_id
    assert report.problems[0] == (
        f"entry {forged_id} (position 31) does not link to the entry before it: "
        "entries were inserted or reordered"
    )
    assert rows


async def test_a_backdated_entry_sealed_late_is_named(conn: asyncpg.Connection, signer: Signer) -> None:
    await sealed_chain(conn, signer)
    late_id = await conn.fetchval(
        "INSERT INTO audit_log (actor, action, at) VALUES ('intruder', 'delivery.ack_done', "
        "now() - interval '2 days') RETURNING id"
    )
    await seal_pending(conn, signer)
    report = await verify_chain(conn, signer.certificate, max_seal_delay=timedelta(minutes=5))
    assert report.first_bad_entry == late_id
    assert "inserted late or backdated" in report.problems[0]


async def test_reordered_entries_are_named(conn: asyncpg.Connection, signer: Signer) -> None:
    rows = await sealed_chain(conn, signer)
    first, second = rows[4]["id"], rows[5]["id"]
    await tamper(conn, "UPDATE audit_log SET seq = -seq WHERE id = ANY($1::bigint[])", [first, second])
    await tamper(conn, "UPDATE audit_log SET seq = 6 WHERE id = $1", first)
    await tamper(conn, "UPDATE audit_log SET seq = 5 WHERE id = $1", second)
    report = await verify_chain(conn, signer.certificate)
    assert report.first_bad_entry == second
    assert "does not link to the entry before it" in report.problems[0]


def test_the_cli_verifies_and_fails_with_a_name(
    database_url: str, dev_pki: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import run_sync

    async def prepare() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await sealed_chain(conn, Signer.from_files(dev_pki["axis"], dev_pki["axis_key"]))
            return int(rows[2]["id"])
        finally:
            await conn.close()

    victim = run_sync(prepare)
    certificate = ["--certificate", str(dev_pki["axis"]), "--database-url", database_url]
    assert run(["audit", "verify", *certificate, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intact"] is True

    async def edit() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await tamper(conn, "UPDATE audit_log SET actor = 'forger' WHERE id = $1", victim)
        finally:
            await conn.close()

    run_sync(edit)
    assert run(["audit", "verify", *certificate]) == 1
    out = capsys.readouterr().out
    assert "audit chain TAMPERED" in out
    assert f"first bad entry: {victim}" in out


def test_what_the_axis_key_signs_reads_back_only_as_a_json_object(signer: Signer) -> None:
    token = axis_signed(signer, {"seq": 3, "hash": "ab"}, "test+jws")
    assert axis_signed_claims(token, signer.certificate) == {"seq": 3, "hash": "ab"}
    # Validly signed, but not an object: a reader would fail on it, so it is refused as unreadable.
    for payload, refusal in ((b"[1, 2]", "not a JSON object"), (b"not json", "not JSON")):
        odd = jwt.PyJWS().encode(payload, signer.key, algorithm="RS256")
        with pytest.raises(jwt.DecodeError, match=refusal):
            axis_signed_claims(odd, signer.certificate)
