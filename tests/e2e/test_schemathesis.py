"""schemathesis against /v1/openapi.json of a real server: no input makes it fail with a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from exchange import registry
from exchange.model import Role
from tests.conftest import new_database, run_sync
from tests.e2e.conftest import running_server

DATABASE = f"schemathesis_{os.getpid()}"


@pytest.fixture(scope="module")
def live(
    cluster_url: str, dev_pki: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A server on its own database, with an admin key and a small registry."""

    url = new_database(cluster_url, DATABASE)

    async def prepare() -> str:
        conn = await asyncpg.connect(url)
        try:
            await registry.add_agencies(
                conn, [registry.AgencyInput({"organ_id": "000.00.00.H26", "name": "City"})]
            )
            return (await registry.add_system(conn, "fuzz-admin", Role.ADMIN)).api_key
        finally:
            await conn.close()

    key = run_sync(prepare)
    data_dir = tmp_path_factory.mktemp("schemathesis")
    args = ["--database-url", url, "--data-dir", str(data_dir)]
    with running_server(args) as server:
        yield server.url, key
        server.stop()


def test_no_request_gets_a_server_error(live: tuple[str, str]) -> None:
    url, key = live
    auth = {"Authorization": f"Bearer {key}"}
    api = schemathesis.openapi.from_url(f"{url}/v1/openapi.json", headers=auth)
    operations = [result.ok() for result in api.get_all_operations()]
    described = {
        f"{method.upper()} {path}" for path, item in api.raw_schema["paths"].items() for method in item
    }
    # schemathesis leaves out the operation that serves the schema it was loaded from.
    assert {operation.label for operation in operations} == described - {"GET /v1/openapi.json"}
    failures: list[str] = []
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            response = case.call(headers=auth)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                )

        check()
    assert not failures, "\n".join(failures)
    assert len(statuses) >= 5 * len(operations)
    assert any(400 <= status < 500 for status in statuses), "the fuzzer should have found invalid inputs"
