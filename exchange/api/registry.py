"""The registry over HTTP: agencies for every caller, systems and changes for admins."""

from __future__ import annotations

from aiohttp import web

from exchange import registry, registry_control
from exchange.api.auth import allow
from exchange.api.common import read_json
from exchange.api.keys import CALLER, POOL, SETTINGS, SIGNER
from exchange.errors import InvalidInput
from exchange.model import Role
from exchange.store import agencies as agency_store
from exchange.store import systems as system_store
from exchange.trust.certificates import pem


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def list_agencies(request: web.Request) -> web.Response:
    """The registry as every caller may see it: who exists and how they are reached."""
    async with request.app[POOL].acquire() as conn:
        agencies = await agency_store.list_agencies(conn)
    # "active": whether it sends and receives now; "state" says why not (pending, disabled).
    items = [
        {
            "organ_id": a.organ_id,
            "name": a.name,
            "parent": a.parent,
            "mode": a.mode.value,
            "active": a.in_service,
            "state": a.state.value,
        }
        for a in agencies
    ]
    return web.json_response({"items": items})


@allow(Role.SYSTEM, Role.AUDITOR, Role.ADMIN)
async def axis_certificate(request: web.Request) -> web.Response:
    """The axis certificate (PEM), to verify what the axis signs (receipts, audit checkpoints, pushes);
    then its receipt certificate, if any.

    The axis certificate comes first (a reader taking one certificate gets it); the receipt
    certificate after it is issued by it (see exchange.receipts), so trusting the first suffices.
    """
    signer = request.app[SIGNER]
    body = pem(signer.certificate)
    if signer.receipt_key is not None:
        body += pem(signer.receipt_key.certificate)
    return web.Response(body=body, content_type="application/x-pem-file")


@allow(Role.ADMIN)
async def admin_list_agencies(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        agencies = await agency_store.list_agencies(conn)
    return web.json_response({"items": [agency.as_dict() for agency in agencies]})


@allow(Role.ADMIN)
async def admin_add_agencies(request: web.Request) -> web.Response:
    """Register one agency (an object) or several at once (an array): all or nothing."""
    body = await read_json(request)
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(item, dict) for item in items):
        raise InvalidInput("the body must be an agency object or an array of them")
    inputs = [registry.AgencyInput(item) for item in items]
    async with request.app[POOL].acquire() as conn:
        specs = await registry.add_agencies(
            conn, inputs, allow_private_endpoints=request.app[SETTINGS].delivery.allow_private_endpoints
        )
    return web.json_response({"items": [spec.organ_id for spec in specs]}, status=201)


@allow(Role.ADMIN)
async def admin_list_systems(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        systems = await system_store.list_systems(conn)
    return web.json_response({"items": [system.as_dict() for system in systems]})


@allow(Role.ADMIN)
async def admin_add_system(request: web.Request) -> web.Response:
    """Register a caller; the answer holds its API key, which is never shown again."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise InvalidInput('the body must be {"name": ..., "role": ..., "organ_ids": [...]}')
    try:
        role = Role(body.get("role", Role.SYSTEM.value))
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(Role)}") from None
    organ_ids = body.get("organ_ids", [])
    if not isinstance(organ_ids, list) or not all(isinstance(o, str) for o in organ_ids):
        raise InvalidInput("organ_ids must be an array of OrganIds")
    async with request.app[POOL].acquire() as conn:
        new = await registry.add_system(conn, body["name"], role, organ_ids)
    return web.json_response({**new.system.as_dict(), "api_key": new.api_key}, status=201)


@allow(Role.ADMIN)
async def admin_rotate_key(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        new = await registry.rotate_key(conn, request.match_info["name"])
    return web.json_response({**new.system.as_dict(), "api_key": new.api_key})


@allow(Role.ADMIN)
async def admin_approve_agency(request: web.Request) -> web.Response:
    """Let an agency registered through the VXP facade send and receive."""
    async with request.app[POOL].acquire() as conn:
        agency = await registry_control.approve_agency(
            conn, request[CALLER].name, request.match_info["organ_id"]
        )
    return web.json_response(agency.as_dict())


@allow(Role.ADMIN)
async def admin_disable_agency(request: web.Request) -> web.Response:
    """Stop an agency sending and receiving; its queued deliveries are held until it is enabled."""
    return await _set_agency_enabled(request, False)


@allow(Role.ADMIN)
async def admin_enable_agency(request: web.Request) -> web.Response:
    return await _set_agency_enabled(request, True)


async def _set_agency_enabled(request: web.Request, enabled: bool) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        agency = await registry_control.set_agency_enabled(
            conn, request[CALLER].name, request.match_info["organ_id"], enabled
        )
    return web.json_response(agency.as_dict())


@allow(Role.ADMIN)
async def admin_rotate_secret(request: web.Request) -> web.Response:
    """A new VXP secret for a document system; the answer holds it, and it is never shown again."""
    async with request.app[POOL].acquire() as conn:
        system, secret = await registry_control.rotate_vxp_secret(
            conn, request[CALLER].name, request.match_info["name"]
        )
    return web.json_response({**system.as_dict(), "vxp_secret": secret})


@allow(Role.ADMIN)
async def admin_disable_system(request: web.Request) -> web.Response:
    """Refuse every credential of a system; its agencies' deliveries are held until it is enabled."""
    return await _set_system_enabled(request, False)


@allow(Role.ADMIN)
async def admin_enable_system(request: web.Request) -> web.Response:
    return await _set_system_enabled(request, True)


async def _set_system_enabled(request: web.Request, enabled: bool) -> web.Response:
    caller = request[CALLER]
    async with request.app[POOL].acquire() as conn:
        system = await registry_control.set_system_enabled(
            conn, caller.name, request.match_info["name"], enabled, caller=caller
        )
    return web.json_response(system.as_dict())
