"""The CLI against a real database: what it prints, what it stores, what it refuses."""

import json
from pathlib import Path

import asyncpg
import pytest

from exchange.agency_files import read_agency_file
from exchange.cli import run
from exchange.demo import AGENCIES, OVERSIGHT
from tests.conftest import run_sync


def count(database_url: str, table: str) -> int:
    async def query() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    return run_sync(query)


def cli(capsys: pytest.CaptureFixture[str], database_url: str, *argv: str) -> tuple[int, str, str]:
    status = run([*argv, "--database-url", database_url])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_import_is_all_or_nothing_and_names_line_and_reason(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("organ_id,name,parent\n000.00.00.H26,UBND Thành phố,\n")
    assert cli(capsys, database_url, "agency", "import", str(good))[0] == 0

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "organ_id,name,parent,mode\n"
        "000.00.01.H26,Sở Nội vụ,000.00.00.H26,pull\n"
        "000.00.01.H26,Sở Nội vụ again,000.00.00.H26,pull\n"
        "H26.000,Bad shape,,pull\n"
        "000.00.00.H26,The city twice,,pull\n"
        "000.00.02.H26,Sở Tài chính,000.00.00.H26,carrier-pigeon\n"
    )
    status, out, err = cli(capsys, database_url, "agency", "import", str(bad))
    assert status == 1
    assert out == ""
    assert "line 3: duplicate OrganId 000.00.01.H26 (first on line 2)" in err
    assert "line 4: OrganId 'H26.000' is not in the QCVN 102 shape" in err
    assert "line 5: agency 000.00.00.H26 is already registered" in err
    assert "line 6: mode 'carrier-pigeon' is not one of pull, push, upstream" in err
    assert "Traceback" not in err
    assert count(database_url, "agencies") == 1

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("organ_id,name\n000.00.01.H26,Sở Nội vụ\n000.00.02.H26\n")
    status, _, err = cli(capsys, database_url, "agency", "import", str(ragged))
    assert status == 1
    assert "line 3: 1 cells where the header has 2" in err
    assert count(database_url, "agencies") == 1


def test_json_import_and_listing(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "registry.json"
    source.write_text(
        json.dumps(
            {
                "agencies": [
                    {"organ_id": "000.00.00.H26", "name": "City"},
                    {
                        "organ_id": "000.00.12.H26",
                        "name": "District",
                        "parent": "000.00.00.H26",
                        "mode": "push",
                        "endpoint": "https://district.example/edoc",
                    },
                ]
            },
            indent=1,
        )
    )
    status, out, _ = cli(capsys, database_url, "agency", "import", str(source), "--json")
    assert status == 0
    assert json.loads(out) == {"imported": ["000.00.00.H26", "000.00.12.H26"]}

    status, out, _ = cli(capsys, database_url, "agency", "list", "--json")
    listed = json.loads(out)["agencies"]
    assert [(a["organ_id"], a["mode"], a["endpoint"]) for a in listed] == [
        ("000.00.00.H26", "pull", None),
        ("000.00.12.H26", "push", "https://district.example/edoc"),
    ]

    # What list prints can be imported elsewhere: the export reads back as the same entries.
    export = tmp_path / "export.json"
    export.write_text(out)
    assert [dict(i.values) for i in read_agency_file(export)] == listed


def test_agency_add_and_system_add_with_json(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, database_url, "agency", "add", "000.00.00.H26", "--name", "City", "--json")
    assert (status, json.loads(out)) == (0, {"organ_id": "000.00.00.H26"})
    status, _, err = cli(capsys, database_url, "agency", "add", "000.00.00.H26", "--name", "City")
    assert status == 1
    assert "already registered" in err

    status, out, _ = cli(
        capsys,
        database_url,
        "system",
        "add",
        "city-dms",
        "--role",
        "system",
        "--organ",
        "000.00.00.H26",
        "--json",
    )
    assert status == 0
    created = json.loads(out)
    assert set(created) >= {"system_id", "api_key"}
    assert created["api_key"].startswith("exk_")

    status, out, _ = cli(capsys, database_url, "system", "list", "--json")
    assert json.loads(out)["systems"][0]["organ_ids"] == ["000.00.00.H26"]
    assert created["api_key"] not in out

    status, out, _ = cli(capsys, database_url, "system", "rotate-key", "city-dms", "--json")
    assert status == 0
    assert json.loads(out)["api_key"] != created["api_key"]
    status, _, err = cli(capsys, database_url, "system", "rotate-key", "nobody")
    assert (status, err.strip()) == (1, "exchange: no system named 'nobody'")


def test_demo_loads_the_registry_and_keeps_its_keys(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(tmp_path / "data")
    status, out, _ = cli(capsys, database_url, "demo", "--json", "--data-dir", data_dir)
    assert status == 0
    first = {s["name"]: s for s in json.loads(out)["systems"]}
    assert len(first) == len(AGENCIES) + len(OVERSIGHT)
    assert first["vpcp"]["organ_ids"] == ["000.00.00.G22"]
    kept = json.loads((tmp_path / "data" / "demo" / "keys.json").read_text())
    assert kept == {name: s["api_key"] for name, s in first.items()}
    assert (tmp_path / "data" / "demo" / "keys.json").stat().st_mode & 0o077 == 0

    # Run again (as `make run` does at each start): the same keys, still working, nothing duplicated.
    status, out, _ = cli(capsys, database_url, "demo", "--json", "--data-dir", data_dir)
    second = {s["name"]: s for s in json.loads(out)["systems"]}
    assert all(second[name]["api_key"] == first[name]["api_key"] for name in first)
    assert count(database_url, "agencies") == len(AGENCIES)
    assert count(database_url, "systems") == len(first)

    # --rotate: fresh keys; the earlier ones stop working.
    status, out, _ = cli(capsys, database_url, "demo", "--json", "--rotate", "--data-dir", data_dir)
    third = {s["name"]: s for s in json.loads(out)["systems"]}
    assert all(third[name]["api_key"] != first[name]["api_key"] for name in first)

    async def opens(key: str) -> bool:
        from exchange import registry

        conn = await asyncpg.connect(database_url)
        try:
            return await registry.authenticate(conn, key) is not None
        finally:
            await conn.close()

    assert not run_sync(lambda: opens(first["auditor"]["api_key"]))
    assert run_sync(lambda: opens(third["auditor"]["api_key"]))


def test_db_migrate_reports_the_version(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from exchange.store.migrate import latest_version

    status, out, _ = cli(capsys, database_url, "db", "migrate", "--json")
    assert (status, json.loads(out)) == (0, {"schema_version": latest_version()})


def test_deliveries_list_and_requeue(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import uuid

    async def failed_delivery() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            from exchange import registry
            from exchange.model import Role

            await registry.add_agencies(
                conn, [registry.AgencyInput({"organ_id": "000.00.00.H26", "name": "C"})]
            )
            system = (await registry.add_system(conn, "s", Role.SYSTEM, ["000.00.00.H26"])).system
            message_id, delivery_id = uuid.uuid4(), uuid.uuid4()
            await conn.execute(
                "INSERT INTO messages (id, kind, sender, sender_system_id, document_id, sha256, size_bytes, "
                "signature) VALUES ($1, 'edoc', '000.00.00.H26', $2, 'doc', $3, 1, '{}')",
                message_id,
                system.id,
                b"\0" * 32,
            )
            await conn.execute(
                "INSERT INTO deliveries (id, message_id, recipient, mode, state, attempts, last_error) "
                "VALUES ($1, $2, '000.00.00.H26', 'push', 'failed', 12, 'HTTP 503')",
                delivery_id,
                message_id,
            )
            return str(delivery_id)
        finally:
            await conn.close()

    delivery_id = run_sync(failed_delivery)
    status, out, _ = cli(capsys, database_url, "deliveries", "list", "--state", "failed", "--json")
    assert status == 0
    [listed] = json.loads(out)["deliveries"]
    assert (listed["delivery_id"], listed["attempts"], listed["last_error"]) == (delivery_id, 12, "HTTP 503")

    status, out, _ = cli(capsys, database_url, "deliveries", "requeue", delivery_id, "--json")
    assert (status, json.loads(out)) == (0, {"requeued": [delivery_id], "not_requeued": []})
    status, out, _ = cli(capsys, database_url, "deliveries", "list", "--state", "queued", "--json")
    assert [d["attempts"] for d in json.loads(out)["deliveries"]] == [0]
    status, _, err = cli(capsys, database_url, "deliveries", "requeue", delivery_id)
    assert status == 1
    assert "not requeued" in err


def test_the_document_id_tolerance_is_set_by_add_and_import(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cli(
        capsys, database_url, "agency", "add", "000.00.00.H26", "--name", "City", "--foreign-document-ids"
    )
    assert status == 0, err
    rows = tmp_path / "agencies.csv"
    rows.write_text("organ_id,name,foreign_document_ids\n000.00.01.H26,Dept,\n000.00.02.H26,Legacy,yes\n")
    assert cli(capsys, database_url, "agency", "import", str(rows))[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("organ_id,name,foreign_document_ids\n000.00.03.H26,Bad,sometimes\n")
    status, _, err = cli(capsys, database_url, "agency", "import", str(bad))
    assert status == 1
    assert "foreign_document_ids 'sometimes' is not true or false" in err

    status, out, _ = cli(capsys, database_url, "agency", "list", "--json")
    tolerant = {a["organ_id"]: a["foreign_document_ids"] for a in json.loads(out)["agencies"]}
    assert tolerant == {"000.00.00.H26": True, "000.00.01.H26": False, "000.00.02.H26": True}
