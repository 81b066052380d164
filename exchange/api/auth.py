"""Who is calling, and may they: API-key authentication and role checks.

Every route is closed unless its handler says otherwise: ``@public`` opens it to
anyone, ``@allow(Role...)`` to the listed roles. A handler with neither is refused
to everybody, so a forgotten declaration fails safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from exchange import registry, ui_sessions
from exchange.api.keys import CALLER, POOL, SETTINGS, VXP_PARAMS
from exchange.clock import now
from exchange.errors import Forbidden, Unauthenticated
from exchange.model import Role, System
from exchange.tls import peer_certificate_fingerprint
from exchange.vxp import auth as vxp_auth
from exchange.vxp.protocol import Operation

_ROLES_ATTRIBUTE = "__exchange_roles__"
# The auditor page keeps a session id (never the key) in this cookie (HttpOnly, SameSite=Strict, path /ui).
UI_COOKIE = "exchange_ui"
_PUBLIC = frozenset({"public"})

_H = Callable[..., Any]


def allow(*roles: Role) -> Callable[[_H], _H]:
    """Open a handler to callers with one of ``roles``."""

    def mark(handler: _H) -> _H:
        setattr(handler, _ROLES_ATTRIBUTE, frozenset(roles))
        return handler

    return mark


_VXP = frozenset({"vxp"})
_VXP_OPERATION = "__exchange_vxp_operation__"


def vxp(operation: Operation) -> Callable[[_H], _H]:
    """Authenticate a handler with the VXP HMAC headers, bound to ``operation``, instead of an API key."""

    def mark(handler: _H) -> _H:
        setattr(handler, _ROLES_ATTRIBUTE, _VXP)
        setattr(handler, _VXP_OPERATION, operation)
        return handler

    return mark


def public(handler: _H) -> _H:
    """Open a handler to anyone, authenticated or not (health checks only)."""
    setattr(handler, _ROLES_ATTRIBUTE, _PUBLIC)
    return handler


def is_vxp(handler: object) -> bool:
    """Whether a handler is a VXP facade operation (its answers, failures too, are VXP's)."""
    return allowed_roles(handler) == _VXP


def allowed_roles(handler: object) -> frozenset[Any]:
    """The roles a handler admits (empty: nobody); ``{"public"}`` for open handlers."""
    roles: frozenset[Any] = getattr(handler, _ROLES_ATTRIBUTE, frozenset())
    return roles


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.route.handler
    roles = allowed_roles(route_handler)
    if roles == _PUBLIC:
        return await handler(request)
    if roles == _VXP:
        caller, signed = await vxp_auth.admit(
            request.app[POOL],
            _raw_headers(request),
            request.read,
            request.app[SETTINGS].vxp,
            operation=getattr(route_handler, _VXP_OPERATION),
            now=now(),
        )
        request[CALLER], request[VXP_PARAMS] = caller, signed.values
        return await handler(request)
    caller = await _authenticate(request)
    if request.match_info.http_exception is not None:
        raise request.match_info.http_exception  # an unknown path, asked by a known caller
    if caller.role not in roles:
        raise Forbidden(f"role {caller.role.value!r} may not {request.method} {request.path}")
    request[CALLER] = caller
    return await handler(request)


def _raw_headers(request: web.Request) -> list[tuple[str, str]]:
    # The SDK sends Vietnamese header values as UTF-8 (spec/vxp-api.md 2.6): decode them so.
    return [(name.decode("latin-1"), value.decode("utf-8", "replace")) for name, value in request.raw_headers]


async def _authenticate(request: web.Request) -> System:
    """An API key if one is sent; otherwise a registered TLS client certificate."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if not key.strip() and request.path.startswith("/ui/") and request.cookies.get(UI_COOKIE):
        async with request.app[POOL].acquire() as conn:
            caller = await ui_sessions.session_caller(conn, request.cookies[UI_COOKIE])
        if caller is None:
            raise Unauthenticated("the session has ended; log in again")
        return caller
    if scheme.lower() == "bearer" and key.strip():
        async with request.app[POOL].acquire() as conn:
            caller = await registry.authenticate(conn, key.strip())
        if caller is None:
            raise Unauthenticated("the API key is not valid")
        return caller
    fingerprint = peer_certificate_fingerprint(
        request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    )
    if fingerprint is None:
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
    async with request.app[POOL].acquire() as conn:
        caller = await registry.authenticate_certificate(conn, fingerprint)
    if caller is None:
        raise Unauthenticated("the client certificate is not registered to any system")
    return caller
