"""The registry-control commands against a real database: approve, disable and enable agencies,
disable and enable systems, rotate a VXP secret; what they print, store and refuse."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from exchange import registry
from exchange.model import Role
from tests.conftest import run_sync
from tests.integration.test_cli_registry import cli

CITY, UNIT = "000.00.00.H26", "000.00.12.H26"


def query(database_url: str, sql: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return run_sync(run)


def populate(database_url: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await registry.add_agencies(
                conn,
                [
                    registry.AgencyInput({"organ_id": CITY, "name": "City"}),
                    registry.AgencyInput({"organ_id": UNIT, "name": "Unit", "parent": CITY, "pending": True}),
                ],
            )
            await registry.add_system(conn, "city-dms", Role.SYSTEM, [CITY], "old-secret")
            await registry.add_system(conn, "ops", Role.ADMIN)
        finally:
            await conn.close()

    run_sync(run)


def test_agency_approve_disable_enable(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    populate(database_url)
    status, out, _ = cli(capsys, database_url, "agency", "list")
    assert "pending" in out

    status, out, _ = cli(capsys, database_url, "agency", "approve", UNIT, "--json")
    assert status == 0
    assert (json.loads(out)["state"], json.loads(out)["pending"]) == ("active", False)
    assert query(database_url, "SELECT pending FROM agencies WHERE organ_id = $1", UNIT) is False

    status, out, _ = cli(capsys, database_url, "agency", "disable", UNIT)
    assert (status, out.strip()) == (0, f"agency {UNIT} Unit: disabled")
    assert query(database_url, "SELECT active FROM agencies WHERE organ_id = $1", UNIT) is False
    status, out, _ = cli(capsys, database_url, "agency", "enable", UNIT, "--json")
    assert (status, json.loads(out)["state"]) == (0, "active")

    for command in ("approve", "disable", "enable"):
        status, out, err = cli(capsys, database_url, "agency", command, "000.00.99.H26")
        assert (status, out, err.strip()) == (1, "", "exchange: no agency 000.00.99.H26")
    assert query(database_url, "SELECT count(*) FROM agencies") == 2
    actions = "SELECT array_agg(action ORDER BY id) FROM audit_log WHERE actor = 'cli'"
    assert query(database_url, actions) == ["agency.approved", "agency.disabled", "agency.enabled"]


def test_system_disable_enable_and_rotate_secret(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(database_url)
    status, out, _ = cli(capsys, database_url, "system", "disable", "city-dms")
    assert (status, out.strip()) == (0, "system city-dms disabled")
    assert query(database_url, "SELECT active FROM systems WHERE name = 'city-dms'") is False
    status, out, _ = cli(capsys, database_url, "agency", "list", "--json")
    city = next(a for a in json.loads(out)["agencies"] if a["organ_id"] == CITY)
    assert (city["active"], city["state"]) == (True, "disabled")  # its system is disabled
    status, out, _ = cli(capsys, database_url, "system", "enable", "city-dms", "--json")
    assert (status, json.loads(out)["active"]) == (0, True)

    status, out, _ = cli(capsys, database_url, "system", "rotate-secret", "city-dms", "--json")
    assert status == 0
    secret = json.loads(out)["vxp_secret"]
    assert secret
    assert secret != "old-secret"
    assert query(database_url, "SELECT vxp_secret FROM systems WHERE name = 'city-dms'") == secret
    status, out, _ = cli(
        capsys, database_url, "system", "rotate-secret", "city-dms", "--vxp-secret", "chosen"
    )
    assert status == 0
    assert "secret: chosen" in out

    status, _, err = cli(capsys, database_url, "system", "rotate-secret", "ops")
    assert status == 1
    assert "only document systems have a VXP secret" in err
    assert query(database_url, "SELECT vxp_secret FROM systems WHERE name = 'ops'") is None
    for argv in (("rotate-secret", "nobody"), ("disable", "nobody"), ("enable", "nobody")):
        status, _, err = cli(capsys, database_url, "system", *argv)
        assert (status, err.strip()) == (1, "exchange: no system named 'nobody'")
    assert query(database_url, "SELECT vxp_secret FROM systems WHERE name = 'city-dms'") == "chosen"
