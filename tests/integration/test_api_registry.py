import asyncpg
from aiohttp.test_utils import TestClient

from exchange.model import Role
from exchange.store.migrate import latest_version
from tests.integration.conftest import KeyMaker, bearer


async def test_health_and_readiness(client: TestClient, conn: asyncpg.Connection) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["schema_version"] == latest_version()

    await conn.execute("DELETE FROM schema_migrations WHERE version = $1", latest_version())
    behind = await client.get("/readyz")
    assert behind.status == 503
    assert (await behind.json())["error"]["code"] == "schema_outdated"


async def test_admin_registers_agencies_and_systems_over_http(
    client: TestClient, make_key: KeyMaker, conn: asyncpg.Connection
) -> None:
    admin = bearer(await make_key(Role.ADMIN))
    created = await client.post(
        "/v1/admin/agencies",
        headers=admin,
        json=[
            {"organ_id": "000.00.00.H26", "name": "City"},
            {"organ_id": "000.00.01.H26", "name": "Dept", "parent": "000.00.00.H26"},
        ],
    )
    assert created.status == 201
    assert (await created.json())["items"] == ["000.00.00.H26", "000.00.01.H26"]

    system = await client.post(
        "/v1/admin/systems",
        headers=admin,
        json={"name": "dept-dms", "role": "system", "organ_ids": ["000.00.01.H26"]},
    )
    assert system.status == 201
    body = await system.json()
    assert body["organ_ids"] == ["000.00.01.H26"]

    listing = await client.get("/v1/agencies", headers=bearer(body["api_key"]))
    assert listing.status == 200
    items = (await listing.json())["items"]
    assert [(a["organ_id"], a["parent"]) for a in items] == [
        ("000.00.00.H26", None),
        ("000.00.01.H26", "000.00.00.H26"),
    ]

    rotated = await client.post("/v1/admin/systems/dept-dms/rotate-key", headers=admin)
    assert rotated.status == 200
    assert (await client.get("/v1/agencies", headers=bearer(body["api_key"]))).status == 401
    new_key = (await rotated.json())["api_key"]
    assert (await client.get("/v1/agencies", headers=bearer(new_key))).status == 200

    systems = await client.get("/v1/admin/systems", headers=admin)
    assert "api_key" not in str(await systems.json())


async def test_bad_registrations_get_structured_errors_and_store_nothing(
    client: TestClient, make_key: KeyMaker, conn: asyncpg.Connection
) -> None:
    admin = bearer(await make_key(Role.ADMIN))
    bad = await client.post(
        "/v1/admin/agencies", headers=admin, json={"organ_id": "H26", "name": "x", "parent": "000.00.00.H26"}
    )
    assert bad.status == 422
    error = (await bad.json())["error"]
    assert error["code"] == "invalid_input"
    assert {d["reason"] for d in error["details"]} == {
        "OrganId 'H26' is not in the QCVN 102 shape NNN.NN.NN.LNN (e.g. 000.00.12.H26)",
    }

    not_json = await client.post("/v1/admin/agencies", headers=admin, data=b"{oops")
    assert not_json.status == 400
    assert (await not_json.json())["error"]["code"] == "bad_request"

    await client.post("/v1/admin/agencies", headers=admin, json={"organ_id": "000.00.00.H26", "name": "City"})
    again = await client.post(
        "/v1/admin/agencies", headers=admin, json={"organ_id": "000.00.00.H26", "name": "City"}
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "duplicate_agency"
    assert await conn.fetchval("SELECT count(*) FROM agencies") == 1


async def test_values_postgresql_cannot_store_are_refused_not_crashed(
    client: TestClient, make_key: KeyMaker, conn: asyncpg.Connection
) -> None:
    admin = bearer(await make_key(Role.ADMIN))
    nul_name = await client.post(
        "/v1/admin/agencies", headers=admin, json={"organ_id": "000.00.00.H26", "name": "City\u0000"}
    )
    assert nul_name.status == 422
    nul_organ = await client.post(
        "/v1/admin/systems",
        headers=admin,
        json={"name": "x", "role": "system", "organ_ids": ["000.00.00.H26\u0000"]},
    )
    assert nul_organ.status == 422
    search = await client.get("/v1/documents?document_id=a%00b", headers=admin)
    assert search.status == 422
    assert await conn.fetchval("SELECT count(*) FROM agencies") == 0
