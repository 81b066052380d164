"""Registering systems and agencies: checks every rule, then writes in one transaction.

Shared by the CLI and the admin API, so both refuse the same input with the same
reasons. A batch (an import file) is all or nothing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import yarl

from exchange import bounds
from exchange.credentials import hash_api_key, new_api_key
from exchange.edxml.ids import organ_id_problem
from exchange.endpoints import endpoint_refusal
from exchange.errors import DuplicateAgency, ErrorDetail, InvalidInput
from exchange.model import AgencySpec, AttachmentSignaturePolicy, DeliveryMode, Role, SignaturePolicy, System
from exchange.store import agencies as agency_store
from exchange.store import sessions as session_store
from exchange.store import systems as system_store
from exchange.store.db import Connection

AGENCY_FIELDS = (
    "organ_id",
    "name",
    "parent",
    "system",
    "mode",
    "endpoint",
    "signature_policy",
    "active",
    "allow_sha1",
    "max_attempts",
    "max_age_s",
    "pending",
    "foreign_document_ids",
    "attachment_signature_policy",
)
# Shown by `agency list --json` but derived, not set: ignored when such a listing is imported.
_DERIVED_FIELDS = ("state",)
_SYSTEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


@dataclass(frozen=True)
class AgencyInput:
    """One agency as given by a person: raw values, and the line they came from (if any)."""

    values: Mapping[str, object]
    line: int | None = None


@dataclass(frozen=True)
class NewSystem:
    system: System
    api_key: str
    vxp_secret: str | None = None  # the HMAC secret for the VXP facade (systems of role "system")


# ---- systems -------------------------------------------------------------------------------


async def add_system(
    conn: Connection, name: str, role: Role, organ_ids: Sequence[str] = (), vxp_secret: str | None = None
) -> NewSystem:
    """Register a system and make it serve ``organ_ids``; the key is returned once, here.

    A system of role "system" also gets a VXP secret (the given one, or a generated one) so
    that DMS built on the national-axis SDK can connect with its name as ``systemid``.
    """
    if _SYSTEM_NAME.fullmatch(name) is None:
        raise InvalidInput(
            f"system name {name!r} must be 1-100 letters, digits or . _ : @ -, "
            "starting with a letter or digit"
        )
    bad_ids = [problem for organ_id in organ_ids if (problem := organ_id_problem(organ_id)) is not None]
    if bad_ids:
        raise InvalidInput("the system would act for malformed OrganIds", [ErrorDetail(p) for p in bad_ids])
    if organ_ids and role is not Role.SYSTEM:
        raise InvalidInput(f"only a system with role 'system' can act for agencies, not {role.value!r}")
    api_key = new_api_key()
    async with conn.transaction():
        system = await system_store.insert_system(conn, name, role, hash_api_key(api_key))
        if organ_ids:
            found = await system_store.serve_agencies(conn, system.id, organ_ids)
            missing = [organ_id for organ_id in organ_ids if organ_id not in found]
            if missing:
                raise InvalidInput(
                    "unknown agencies; register them first with 'exchange agency add'",
                    [ErrorDetail(f"agency {organ_id} is not registered") for organ_id in missing],
                )
        if role is Role.SYSTEM:
            vxp_secret = vxp_secret or secrets.token_urlsafe(32)
            await system_store.set_vxp_secret(conn, name, vxp_secret)
        system = await system_store.system_by_name(conn, name)
    return NewSystem(system, api_key, vxp_secret if role is Role.SYSTEM else None)


async def rotate_key(conn: Connection, name: str) -> NewSystem:
    """Give a system a new API key; the old one, and every web session opened with it, stop at once."""
    api_key = new_api_key()
    async with conn.transaction():
        await system_store.set_api_key(conn, name, hash_api_key(api_key))
        system = await system_store.system_by_name(conn, name)
        await session_store.revoke_all(conn, system.id)
    return NewSystem(system, api_key)


async def authenticate(conn: Connection, api_key: str) -> System | None:
    """The active system holding this key, or None."""
    return await system_store.system_by_key_hash(conn, hash_api_key(api_key))


async def authenticate_certificate(conn: Connection, fingerprint: bytes) -> System | None:
    """The active system a TLS client certificate (by SHA-256 fingerprint) is registered to."""
    return await system_store.system_by_client_certificate(conn, fingerprint)


async def set_client_certificate(conn: Connection, name: str, fingerprint: bytes | None) -> System:
    """Let a system authenticate with a TLS client certificate (mutual TLS) besides its key."""
    async with conn.transaction():
        await system_store.set_client_certificate(conn, name, fingerprint)
        return await system_store.system_by_name(conn, name)


# ---- agencies ------------------------------------------------------------------------------


async def add_agencies(
    conn: Connection, inputs: Sequence[AgencyInput], *, allow_private_endpoints: bool = False
) -> list[AgencySpec]:
    """Check every input against the rules and the registry, then insert them all or none.

    ``allow_private_endpoints`` is ``delivery.allow_private_endpoints``: push endpoints on
    loopback, private or link-local addresses are refused unless it is true (exchange.endpoints).
    """
    specs: list[AgencySpec] = []
    problems: list[ErrorDetail] = []
    first_line: dict[str, int | None] = {}
    for item in inputs:
        spec, item_problems = _agency_spec(item.values, allow_private_endpoints)
        problems += [ErrorDetail(reason, line=item.line) for reason in item_problems]
        if spec is None:
            continue
        if spec.organ_id in first_line:
            earlier = first_line[spec.organ_id]
            where = f" (first on line {earlier})" if earlier else ""
            problems.append(ErrorDetail(f"duplicate OrganId {spec.organ_id}{where}", line=item.line))
            continue
        first_line[spec.organ_id] = item.line
        specs.append(spec)

    async with conn.transaction():
        duplicates, reference_problems, system_ids = await _check_references(conn, specs, first_line)
        problems += reference_problems
        if problems or duplicates:
            _refuse(problems, duplicates)
        await agency_store.insert_agencies(conn, specs, system_ids)
    return specs


async def _check_references(
    conn: Connection, specs: Sequence[AgencySpec], first_line: Mapping[str, int | None]
) -> tuple[list[ErrorDetail], list[ErrorDetail], dict[str, int]]:
    """Duplicates of registered agencies, unknown parents and systems; and the systems' ids."""
    registered = await agency_store.existing_organ_ids(conn, [spec.organ_id for spec in specs])
    parents = [spec.parent for spec in specs if spec.parent is not None]
    known = registered | set(first_line) | await agency_store.existing_organ_ids(conn, parents)
    system_ids = await agency_store.system_ids(
        conn, sorted({spec.system for spec in specs if spec.system is not None})
    )
    duplicates = [
        ErrorDetail(f"agency {spec.organ_id} is already registered", line=first_line[spec.organ_id])
        for spec in specs
        if spec.organ_id in registered
    ]
    problems = [
        ErrorDetail(
            f"parent {spec.parent} is neither registered nor in this import", line=first_line[spec.organ_id]
        )
        for spec in specs
        if spec.parent is not None and spec.parent not in known
    ]
    problems += [
        ErrorDetail(f"system {spec.system!r} is not registered", line=first_line[spec.organ_id])
        for spec in specs
        if spec.system is not None and spec.system not in system_ids
    ]
    return duplicates, problems, system_ids


def _refuse(problems: list[ErrorDetail], duplicates: list[ErrorDetail]) -> None:
    everything = sorted(problems + duplicates, key=lambda detail: detail.line or 0)
    count = f"{len(everything)} problem{'s' if len(everything) != 1 else ''}"
    if not problems:
        raise DuplicateAgency(f"nothing registered: {count}", everything)
    raise InvalidInput(f"nothing registered: {count}", everything)


def _agency_spec(
    values: Mapping[str, object], allow_private_endpoints: bool
) -> tuple[AgencySpec | None, list[str]]:
    """Turn raw values into a spec, or say everything that is wrong with them."""
    problems = [
        f"unknown field {key!r}" for key in values if key not in AGENCY_FIELDS and key not in _DERIVED_FIELDS
    ]
    text = {key: _text(values.get(key)) for key in AGENCY_FIELDS}

    organ_id = text["organ_id"] or ""
    if (problem := organ_id_problem(organ_id)) is not None:
        problems.append(problem)
    problems += [
        f"{key} {problem}"
        for key, value in text.items()
        if (problem := bounds.control_problem(value)) is not None
    ]
    name = text["name"] or ""
    if not name:
        problems.append("name is empty")
    elif len(name) > bounds.AGENCY_NAME:
        problems.append(f"name is longer than {bounds.AGENCY_NAME} characters")
    elif not bounds.shows_something(name):
        problems.append("name shows nothing: only spaces or invisible characters")
    parent = text["parent"]
    if parent is not None and (problem := organ_id_problem(parent)) is not None:
        problems.append(f"parent: {problem}")
    if parent is not None and parent == organ_id:
        problems.append("an agency cannot be its own parent")

    mode = _choice(DeliveryMode, text["mode"], DeliveryMode.PULL, "mode", problems)
    policy = _choice(SignaturePolicy, text["signature_policy"], None, "signature_policy", problems)
    endpoint = text["endpoint"]
    problems += _endpoint_problems(mode, endpoint, allow_private_endpoints)
    active = _flag(text["active"], "active", problems)
    allow_sha1 = None if text["allow_sha1"] is None else _flag(text["allow_sha1"], "allow_sha1", problems)
    max_attempts = _positive(text["max_attempts"], "max_attempts", problems)
    max_age_s = _positive(text["max_age_s"], "max_age_s", problems)
    pending = text["pending"] is not None and _flag(text["pending"], "pending", problems)
    foreign = text["foreign_document_ids"] is not None and _flag(
        text["foreign_document_ids"], "foreign_document_ids", problems
    )
    attachment_policy = _choice(
        AttachmentSignaturePolicy,
        text["attachment_signature_policy"],
        None,
        "attachment_signature_policy",
        problems,
    )
    if problems:
        return None, problems
    assert mode is not None
    return (
        AgencySpec(
            organ_id,
            name,
            parent,
            text["system"],
            mode,
            endpoint,
            policy,
            active,
            allow_sha1,
            max_attempts,
            max_age_s,
            pending,
            foreign,
            attachment_policy,
        ),
        [],
    )


def _text(value: object) -> str | None:
    """Strip strings; treat empty as absent (a blank CSV cell means 'not given')."""
    if value is None:
        return None
    cleaned = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    return cleaned or None


_Choice = TypeVar("_Choice", DeliveryMode, SignaturePolicy, AttachmentSignaturePolicy)


def _choice(
    kind: type[_Choice], value: str | None, default: _Choice | None, field: str, problems: list[str]
) -> _Choice | None:
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        problems.append(f"{field} {value!r} is not one of {allowed}")
        return default


def _flag(value: str | None, field: str, problems: list[str]) -> bool:
    if value is None or value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    problems.append(f"{field} {value!r} is not true or false")
    return True


def _positive(value: str | None, field: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) == 0:
        problems.append(f"{field} {value!r} is not a positive whole number")
        return None
    return int(value)


def _endpoint_problems(mode: DeliveryMode | None, endpoint: str | None, allow_private: bool) -> list[str]:
    if endpoint is None:
        return ["mode push needs an endpoint URL"] if mode is DeliveryMode.PUSH else []
    if mode is not DeliveryMode.PUSH:
        return [f"endpoint given but mode is {mode.value if mode else 'unknown'}; only push uses one"]
    if len(endpoint) > bounds.ENDPOINT:
        return [f"endpoint is longer than {bounds.ENDPOINT} characters"]
    url = yarl.URL(endpoint)
    if url.scheme not in ("http", "https") or not url.host:
        return [f"endpoint {endpoint!r} is not an http(s) URL"]
    refusal = None if allow_private else endpoint_refusal(endpoint)
    if refusal is not None:
        return [f"{refusal}; push endpoints must be public unless delivery.allow_private_endpoints is true"]
    return []
