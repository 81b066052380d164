"""schemathesis against /v1/openapi.json of a real server: every route, with every role that may
call it, answers as its description says (status codes, content types, body schemas), never 5xx.

A system key with deliveries waiting is among the callers, and the generated requests are
mixed with ones that name real delivery and message ids and carry real packages, so intake,
the inbox, downloads and acknowledgements are exercised beyond their refusals.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from exchange import registry
from exchange.api.auth import allowed_roles
from exchange.api.routes import setup_routes
from exchange.edxml.builder import build_edoc
from exchange.model import Role
from tests.conftest import new_database, run_sync
from tests.e2e.conftest import running_server
from tests.edxml_factories import small_edoc

DATABASE = f"schemathesis_{os.getpid()}"
DEPT, FINANCE = "000.00.01.H26", "000.00.02.H26"
SEEDED = 12
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@dataclass
class Live:
    url: str
    keys: dict[Role, str]  # the system key is FINANCE's: it has deliveries waiting
    delivery_ids: list[str]
    message_ids: list[str]


def package(sender: str, recipient: str, number: int) -> bytes:
    edoc = small_edoc(sender=sender, recipients=(recipient,), document_id=f"{sender},2026/11/22,{number}/ST")
    return build_edoc(edoc)


@pytest.fixture(scope="module")
def live(cluster_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server on its own database: two agencies with a system each, an auditor, an admin, and
    documents from one to the other waiting in the inbox."""
    url = new_database(cluster_url, DATABASE)

    async def prepare() -> dict[Role | str, str]:
        conn = await asyncpg.connect(url)
        try:
            await registry.add_agencies(
                conn, [registry.AgencyInput({"organ_id": o, "name": f"Đơn vị {o}"}) for o in (DEPT, FINANCE)]
            )
            return {
                "dept": (await registry.add_system(conn, "fuzz-dept", Role.SYSTEM, [DEPT])).api_key,
                Role.SYSTEM: (
                    await registry.add_system(conn, "fuzz-finance", Role.SYSTEM, [FINANCE])
                ).api_key,
                Role.AUDITOR: (await registry.add_system(conn, "fuzz-auditor", Role.AUDITOR)).api_key,
                Role.ADMIN: (await registry.add_system(conn, "fuzz-admin", Role.ADMIN)).api_key,
            }
        finally:
            await conn.close()

    keys = run_sync(prepare)
    data_dir = tmp_path_factory.mktemp("schemathesis")
    with running_server(["--database-url", url, "--data-dir", str(data_dir)]) as server:
        delivery_ids, message_ids = _seed(server.url, keys["dept"])
        yield Live(
            server.url, {r: k for r, k in keys.items() if isinstance(r, Role)}, delivery_ids, message_ids
        )
        server.stop()


def _seed(url: str, dept_key: str) -> tuple[list[str], list[str]]:
    deliveries, messages = [], []
    for number in range(SEEDED):
        request = urllib.request.Request(
            f"{url}/v1/packages",
            data=package(DEPT, FINANCE, number),
            headers={"Authorization": f"Bearer {dept_key}", "Content-Type": "application/xml"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            accepted = json.loads(response.read())
        messages.append(accepted["message_id"])
        deliveries.append(accepted["deliveries"][0]["delivery_id"])
    return deliveries, messages


def roles_by_operation() -> dict[str, frozenset[Role]]:
    """Who may call each route, as the handlers declare it (the same declarations the server uses)."""
    app = web.Application()
    setup_routes(app)
    found = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        roles = allowed_roles(route.handler)
        if route.method == "HEAD" or path.startswith(("/ui/", "/public/")) or roles == {"vxp"}:
            continue  # aiohttp's twin of GET; pages for people and the public feed; the national protocol
        found[f"{route.method} {path}"] = frozenset(Role) if roles == {"public"} else frozenset(roles)
    return found


def strategy_for(operation: Any, live: Live, role: Role) -> Any:
    """Generated requests, and as many that name real ids or carry a real package."""
    generated = operation.as_strategy()
    path = operation.path

    def with_path(name: str, values: list[str]) -> Any:
        def put(pair: tuple[Any, str]) -> Any:
            case, value = pair
            case.path_parameters = {**(case.path_parameters or {}), name: value}
            return case

        return st.tuples(generated, st.sampled_from(values)).map(put)

    real: list[Any] = []
    if "{delivery_id}" in path:
        real.append(with_path("delivery_id", live.delivery_ids))
    if "{message_id}" in path:
        real.append(with_path("message_id", live.message_ids))
    if path == "/v1/packages" and role is Role.SYSTEM:

        def with_body(pair: tuple[Any, int]) -> Any:
            case, number = pair
            case.body = package(FINANCE, DEPT, number)
            case.media_type = "application/xml"
            return case

        real.append(st.tuples(generated, st.integers(0, 5)).map(with_body))
    return st.one_of(generated, *real) if real else generated


def test_every_route_answers_as_described_for_every_role(live: Live) -> None:
    api = schemathesis.openapi.from_url(
        f"{live.url}/v1/openapi.json", headers={"Authorization": f"Bearer {live.keys[Role.ADMIN]}"}
    )
    operations = [result.ok() for result in api.get_all_operations()]
    described = {
        f"{method.upper()} {path}" for path, item in api.raw_schema["paths"].items() for method in item
    }
    # schemathesis leaves out the operation that serves the schema it was loaded from.
    assert {operation.label for operation in operations} == described - {"GET /v1/openapi.json"}
    roles = roles_by_operation()
    assert set(roles) == described, "the spec and the router describe different routes"

    failures: list[str] = []
    statuses: dict[tuple[str, Role], list[int]] = {}
    for operation in operations:
        for role in sorted(roles[operation.label]):
            auth = {"Authorization": f"Bearer {live.keys[role]}"}
            seen = statuses.setdefault((operation.label, role), [])
            run(operation, strategy_for(operation, live, role), auth, seen, failures, role)
    assert not failures, "\n".join(failures[:20])

    # Every role reached its routes: no (route, role) pair was only ever refused for its role.
    refused_only = [pair for pair, seen in statuses.items() if seen and all(s in (401, 403) for s in seen)]
    assert not refused_only, refused_only
    # Intake, the inbox, downloads and acknowledgements did their work with the system key.
    succeeded = {label for (label, role), seen in statuses.items() if role is Role.SYSTEM and 200 in seen}
    for label in (
        "GET /v1/inbox",
        "GET /v1/deliveries/{delivery_id}/package",
        "POST /v1/deliveries/{delivery_id}/ack",
        "GET /v1/messages/{message_id}",
        "GET /v1/messages/{message_id}/trace",
        "GET /v1/messages/{message_id}/evidence",
        "GET /v1/documents",
    ):
        assert label in succeeded, f"{label} never succeeded with a system key"
    assert any(s in (200, 201) for s in statuses[("POST /v1/packages", Role.SYSTEM)])
    every = [s for seen in statuses.values() for s in seen]
    assert any(400 <= s < 500 for s in every), "the fuzzer should have found invalid inputs"


def run(
    operation: Any,
    strategy: Any,
    auth: dict[str, str],
    seen: list[int],
    failures: list[str],
    role: Role,
) -> None:
    @given(case=strategy)
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        response = case.call(headers=auth)
        seen.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except Exception as failure:  # collected: all are reported at the end
            failures.append(
                f"[{role.value}] {case.method} {case.formatted_path} -> {response.status_code}: "
                f"{str(failure)[:400]}"
            )

    check()
