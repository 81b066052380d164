"""Who is calling the VXP facade: the HMAC scheme of the national-axis SDK.

The scheme signs a JSON of the request's ``XroadVnpt-*`` headers: not the path, not the
body, with no nonce, and the SDK keeps one timestamp (and every key it ever set) for the
life of its service object. What the axis adds, without breaking the SDK:

- the signed Content-Type must be the one the SDK signs for this kind of operation, so a
  sendEdoc signature is never good for anything else and the other way round;
- an operation that acts on its body needs ``hash-file`` over that body;
- a signature spent on a state-changing operation is spent for every state-changing
  operation, for as long as its timestamp can be accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from exchange.model import Role, System
from exchange.settings import TIMESTAMP_ZONE_SLACK_S, VxpSettings
from exchange.store import systems as system_store
from exchange.store.db import Connection, Pool
from exchange.vxp.protocol import (
    Operation,
    SignedHeaders,
    Use,
    VxpFailure,
    check_body,
    check_signed_for,
    parse_timestamp,
    read_headers,
    verify,
)


async def admit(
    pool: Pool,
    headers: Iterable[tuple[str, str]],
    read_body: Callable[[], Awaitable[bytes]],
    settings: VxpSettings,
    *,
    operation: Operation,
    now: datetime,
) -> tuple[System, SignedHeaders]:
    """The system behind a signed request for ``operation``, and the parameters its signature covers.

    The body is read only once the signature holds, and no connection is held meanwhile.
    """
    async with pool.acquire() as conn:
        system, signed = await _authenticate(conn, headers, settings, operation, now)
    # sendEdoc's body streams to a spool file; its handler checks hash-file against the SHA-256
    # taken while it arrived (check_digest), so a large package is never read whole here.
    if operation.reads_body and operation.use is not Use.SEND:
        check_body(signed, operation, await read_body())
    if operation.use is Use.CHANGE:
        async with pool.acquire() as conn:
            # Spent before the operation runs, whatever its outcome: a signature changes state once.
            spent_on = await system_store.spend_signature(
                conn, system.id, signed.hash_header, operation.name, settings.replay_retention_s
            )
        if spent_on is not None:
            raise VxpFailure(
                409,
                "409",
                f"this signed request was already used for {spent_on or 'a change'} (replay refused)",
            )
    return system, signed


async def _authenticate(
    conn: Connection,
    headers: Iterable[tuple[str, str]],
    settings: VxpSettings,
    operation: Operation,
    now: datetime,
) -> tuple[System, SignedHeaders]:
    params, sign_header, hash_header = read_headers(list(headers))
    name = params.get("systemid", "")
    if not name or not sign_header or not hash_header:
        raise VxpFailure(
            401, "401", "XroadVnpt-systemid, XroadVnpt-sign-header and XroadVnpt-hash-header are required"
        )
    secret = await system_store.vxp_secret(conn, name)
    if secret is None:
        raise VxpFailure(401, "401", f"unknown or disabled systemid {name}")
    signed = verify(params, sign_header, hash_header, secret)
    _check_timestamp(signed.get("timestamp"), settings, now)
    system = await system_store.system_by_name(conn, name)
    if system.role is not Role.SYSTEM:
        raise VxpFailure(403, "403", f"{name} is not a document system")
    check_signed_for(signed, operation)
    return system, signed


def _check_timestamp(text: str | None, settings: VxpSettings, now: datetime) -> None:
    """The SDK's timestamp has no zone and is fixed per service object: only far-off values are refused."""
    moment = parse_timestamp(text or "")
    if moment is None:
        raise VxpFailure(401, "401", "XroadVnpt-timestamp is missing or not ddMMyyyy'T'HHmmss+SSSS")
    slack = timedelta(seconds=TIMESTAMP_ZONE_SLACK_S)
    local_now = now.replace(tzinfo=None)
    if moment < local_now - timedelta(seconds=settings.max_timestamp_age_s) - slack:
        raise VxpFailure(401, "401", "XroadVnpt-timestamp is too old; create a new service object")
    if moment > local_now + timedelta(seconds=settings.max_future_skew_s) + slack:
        raise VxpFailure(401, "401", "XroadVnpt-timestamp is in the future")
