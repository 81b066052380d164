"""Who is calling the VXP facade: the HMAC scheme of the national-axis SDK."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from exchange.model import Role, System
from exchange.settings import VxpSettings
from exchange.store import systems as system_store
from exchange.store.db import Connection
from exchange.vxp.protocol import SignedHeaders, VxpFailure, parse_timestamp, read_headers, verify


async def authenticate(
    conn: Connection,
    headers: Iterable[tuple[str, str]],
    settings: VxpSettings,
    *,
    state_changing: bool,
    now: datetime,
) -> tuple[System, SignedHeaders]:
    """The system behind a signed request, and the parameters its signature covers."""
    params, sign_header, hash_header = read_headers(list(headers))
    name = params.get("systemid", "")
    if not name or not sign_header or not hash_header:
        raise VxpFailure(
            401, "401", "XroadVnpt-systemid, XroadVnpt-sign-header and XroadVnpt-hash-header are required"
        )
    secret = await system_store.vxp_secret(conn, name)
    if secret is None:
        raise VxpFailure(401, "401", f"unknown systemid {name}")
    signed = verify(params, sign_header, hash_header, secret)
    _check_timestamp(signed.get("timestamp"), settings, now)
    system = await system_store.system_by_name(conn, name)
    if system.role is not Role.SYSTEM:
        raise VxpFailure(403, "403", f"{name} is not a document system")
    if state_changing and not await system_store.remember_request(
        conn, system.id, signed.hash_header, settings.replay_window_s
    ):
        raise VxpFailure(409, "409", "this signed request was already received (replay refused)")
    return system, signed


def _check_timestamp(text: str | None, settings: VxpSettings, now: datetime) -> None:
    """The SDK's timestamp has no zone and is fixed per service object: only far-off values are refused."""
    moment = parse_timestamp(text or "")
    if moment is None:
        raise VxpFailure(401, "401", "XroadVnpt-timestamp is missing or not ddMMyyyy'T'HHmmss+SSSS")
    # The client's zone is unknown: allow a day either way on top of the configured limits.
    local_now = now.replace(tzinfo=None)
    if moment < local_now - timedelta(seconds=settings.max_timestamp_age_s) - timedelta(days=1):
        raise VxpFailure(401, "401", "XroadVnpt-timestamp is too old; create a new service object")
    if moment > local_now + timedelta(seconds=settings.max_future_skew_s) + timedelta(days=1):
        raise VxpFailure(401, "401", "XroadVnpt-timestamp is in the future")
