"""Control of the registry: what a system may register or delete itself, approval, disabling,
and new VXP secrets. Shared by the CLI, the admin API and the VXP facade; each change is audited.

A system (through the facade) acts only inside its own subtree: a unit directly under an
agency it serves and that is in service, by the registry and by the OrganId shape; never an
OrganId routed to an upstream axis. What it registers waits for an admin's approval unless
``vxp.register_agency = "auto"``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from exchange import registry
from exchange.edxml.ids import is_child_organ, organ_id_problem
from exchange.errors import Conflict, Forbidden, InvalidInput, NotFound
from exchange.model import Agency, AgencySpec, Role, System
from exchange.settings import Settings
from exchange.store import agencies as agency_store
from exchange.store import audit
from exchange.store import deliveries as delivery_store
from exchange.store import systems as system_store
from exchange.store.audit import Event
from exchange.store.db import Connection


async def register_child(
    conn: Connection, caller: System, values: Mapping[str, object], settings: Settings
) -> AgencySpec:
    """A system registers a unit under one of its agencies; pending unless configured "auto"."""
    organ_id, parent = str(values.get("organ_id") or "").strip(), str(values.get("parent") or "").strip()
    await _check_subtree(conn, caller, organ_id, parent, settings)
    pending = settings.vxp.register_agency == "pending"
    async with conn.transaction():
        [spec] = await registry.add_agencies(
            conn, [registry.AgencyInput({**values, "system": caller.name, "pending": pending})]
        )
        await audit.append(
            conn,
            caller.name,
            [
                Event(
                    "agency.registered",
                    details={"organ_id": spec.organ_id, "parent": parent, "pending": pending},
                )
            ],
        )
    return spec


async def delete_child(conn: Connection, caller: System, organ_id: str, settings: Settings) -> None:
    """A system takes a unit it registered (one of its own, under another of its own) out of service."""
    agency = await _agency(conn, organ_id)
    if agency is None or agency.system != caller.name or not agency.active:
        raise NotFound(f"{organ_id} is not an active agency of {caller.name}")
    await _check_subtree(conn, caller, organ_id, agency.parent or "", settings)
    async with conn.transaction():
        await agency_store.set_standing(conn, organ_id, active=False, pending=None)
        await audit.append(conn, caller.name, [Event("agency.deleted", details={"organ_id": organ_id})])


async def _check_subtree(
    conn: Connection, caller: System, organ_id: str, parent: str, settings: Settings
) -> None:
    if (problem := organ_id_problem(organ_id)) is not None:
        raise InvalidInput(problem)
    if (upstream := settings.upstream_for(organ_id)) is not None:
        raise Forbidden(
            f"{organ_id} is routed to the upstream axis {upstream.name!r}; it is registered there"
        )
    if not parent:
        raise Forbidden(f"{organ_id} needs a parent (pcode): one of the agencies {caller.name} serves")
    parent_agency = await _agency(conn, parent)
    if parent_agency is None or parent_agency.system != caller.name:
        raise Forbidden(f"the parent {parent} is not an agency {caller.name} serves")
    if not parent_agency.in_service:
        raise Forbidden(f"the parent {parent} is {parent_agency.state.value}")
    if not is_child_organ(organ_id, parent):
        raise Forbidden(
            f"{organ_id} is not directly under {parent} by the OrganId hierarchy "
            "(a child keeps its parent's codes and sets the next level: 000.46.24.H44 under 000.00.24.H44)"
        )


async def _agency(conn: Connection, organ_id: str) -> Agency | None:
    return (await agency_store.agencies_by_ids(conn, [organ_id])).get(organ_id)


# ---- operators ------------------------------------------------------------------------------


async def approve_agency(conn: Connection, actor: str, organ_id: str) -> Agency:
    """An admin lets a pending agency send and receive (nothing changes if it was not pending)."""
    return await _set_agency(conn, actor, organ_id, "agency.approved", active=None, pending=False)


async def set_agency_enabled(conn: Connection, actor: str, organ_id: str, enabled: bool) -> Agency:
    """Disable an agency (its deliveries are held) or enable it again (they resume)."""
    action = "agency.enabled" if enabled else "agency.disabled"
    return await _set_agency(conn, actor, organ_id, action, active=enabled, pending=None)


async def _set_agency(
    conn: Connection, actor: str, organ_id: str, action: str, *, active: bool | None, pending: bool | None
) -> Agency:
    async with conn.transaction():
        if not await agency_store.set_standing(conn, organ_id, active=active, pending=pending):
            raise NotFound(f"no agency {organ_id}")
        await audit.append(conn, actor, [Event(action, details={"organ_id": organ_id})])
        agency = await _agency(conn, organ_id)
    assert agency is not None
    return agency


async def set_system_enabled(
    conn: Connection, actor: str, name: str, enabled: bool, *, caller: System | None = None
) -> System:
    """Disable a system (its credentials are refused, its agencies' deliveries held) or enable it."""
    if caller is not None and caller.name == name and not enabled:
        raise Conflict(f"{name} cannot disable itself; ask another admin or use the command line")
    async with conn.transaction():
        await system_store.set_active(conn, name, enabled)
        await delivery_store.wake_workers(conn)
        await audit.append(
            conn, actor, [Event("system.enabled" if enabled else "system.disabled", details={"system": name})]
        )
        return await system_store.system_by_name(conn, name)


async def rotate_vxp_secret(
    conn: Connection, actor: str, name: str, secret: str | None = None
) -> tuple[System, str]:
    """A new VXP HMAC secret for a document system; the old one stops working at once."""
    if secret is not None and not secret.strip():
        raise InvalidInput("the VXP secret cannot be empty")
    new_secret = secret or secrets.token_urlsafe(32)
    async with conn.transaction():
        system = await system_store.system_by_name(conn, name)
        if system.role is not Role.SYSTEM:
            raise InvalidInput(
                f"{name} has role {system.role.value!r}; only document systems have a VXP secret"
            )
        await system_store.set_vxp_secret(conn, name, new_secret)
        await audit.append(conn, actor, [Event("system.secret_rotated", details={"system": name})])
    return system, new_secret
