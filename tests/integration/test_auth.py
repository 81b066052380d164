"""Every route but the health checks needs a key (401) of an allowed role (403)."""

import re

from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from exchange.api.auth import allowed_roles
from exchange.model import Role
from tests.integration.conftest import KeyMaker, bearer

# The public progress routes are anonymous by contract, and answer 404 unless [public] enabled
# (tests/integration/test_oversight_pages.py).
PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/ui/login",
    "/public/",
    "/public/progress.json",
    "/public/progress.csv",
}


def routes(app: Application) -> list[tuple[str, str, frozenset[object]]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        assert template, f"route without a path: {route}"
        path = re.sub(r"\{[^}]+\}", "x", template)
        found.append((route.method, path, allowed_roles(route.handler)))
    return found


async def test_every_route_declares_who_may_call_it(app: Application) -> None:
    for method, path, roles in routes(app):
        assert roles, f"{method} {path} declares no roles: nobody could call it"
        assert (roles == {"public"}) == (path in PUBLIC_PATHS), f"{method} {path}"


async def test_every_route_refuses_a_missing_or_wrong_key_and_a_wrong_role(
    client: TestClient, app: Application, make_key: KeyMaker
) -> None:
    keys = {role: await make_key(role) for role in Role}
    checked = 0
    for method, path, roles in routes(app):
        if path in PUBLIC_PATHS:
            continue  # the health checks, the login form and public progress: open on purpose
        if roles == {"vxp"}:  # the national-axis protocol: HMAC headers, never API keys
            for headers in ({}, bearer(keys[Role.ADMIN])):
                response = await client.request(method, path, headers=headers)
                assert response.status == 401, f"{method} {path}"
                if method != "HEAD":
                    body = await response.json()
                    assert (body["status"], body["ErrorCode"]) == ("FAIL", "401")
                    assert body["ErrorDesc"].isascii()
            continue
        for headers in ({}, bearer("exk_not-a-real-key"), {"Authorization": "Basic dXNlcjpwYXNz"}):
            response = await client.request(method, path, headers=headers)
            assert response.status == 401, f"{method} {path} {headers}"
            if method != "HEAD" and not path.startswith("/ui/"):
                assert (await response.json())["error"]["code"] == "unauthenticated"
            elif method != "HEAD":
                assert 'name="key"' in await response.text()  # a person gets the login form
        for role in Role:
            if role in roles:
                continue
            response = await client.request(method, path, headers=bearer(keys[role]))
            assert response.status == 403, f"{method} {path} as {role}"
            checked += 1
    assert checked >= 10


async def test_unknown_paths_need_a_key_before_they_say_404(client: TestClient, make_key: KeyMaker) -> None:
    assert (await client.get("/nowhere")).status == 401
    response = await client.get("/nowhere", headers=bearer(await make_key(Role.AUDITOR)))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_wrong_method_is_405_with_allow_header(client: TestClient, make_key: KeyMaker) -> None:
    response = await client.delete("/v1/agencies", headers=bearer(await make_key(Role.ADMIN)))
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
