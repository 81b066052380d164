"""A demo registry: a city with departments, districts and communes, and the central office.

OrganIds follow QCVN 102 (V1V2V3.Z1Z2.Y1Y2.MX1X2): the city is 000.00.00.H26, a
department 000.00.0N.H26, a district 000.00.1N.H26, and a commune of district 12
000.0N.12.H26. Names are illustrative.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from exchange import cert_registry, registry
from exchange.model import Role
from exchange.store import agencies as agency_store
from exchange.store import systems as system_store
from exchange.store.db import Connection
from exchange.trust.devca import write_dev_document_pki, write_dev_pki

CITY = "000.00.00.H26"
CENTRAL_OFFICE = "000.00.00.G22"

# (OrganId, name, parent, system that serves it)
AGENCIES: tuple[tuple[str, str, str | None, str], ...] = (
    (CENTRAL_OFFICE, "Văn phòng Chính phủ", None, "vpcp"),
    (CITY, "Ủy ban nhân dân Thành phố", None, "city-office"),
    ("000.00.01.H26", "Sở Nội vụ", CITY, "so-noi-vu"),
    ("000.00.02.H26", "Sở Tài chính", CITY, "so-tai-chinh"),
    ("000.00.03.H26", "Sở Xây dựng", CITY, "so-xay-dung"),
    ("000.00.12.H26", "Ủy ban nhân dân quận Trung Tâm", CITY, "quan-trung-tam"),
    ("000.00.13.H26", "Ủy ban nhân dân huyện Ven Sông", CITY, "huyen-ven-song"),
    ("000.05.12.H26", "Ủy ban nhân dân phường Bến Thành", "000.00.12.H26", "phuong-ben-thanh"),
    ("000.06.12.H26", "Ủy ban nhân dân phường Tân Định", "000.00.12.H26", "phuong-tan-dinh"),
    ("000.05.13.H26", "Ủy ban nhân dân xã Bình An", "000.00.13.H26", "xa-binh-an"),
)
# Callers that act for no agency.
OVERSIGHT: tuple[tuple[str, Role], ...] = (("auditor", Role.AUDITOR), ("admin", Role.ADMIN))
# One commune's DMS takes pushes at an address where nothing answers: the demo's failing endpoint.
DOWN_AGENCY = "000.05.13.H26"
DOWN_ENDPOINT = "http://127.0.0.1:9/edoc"
DOWN_MAX_ATTEMPTS = 3


def demo_directory(data_dir: Path) -> Path:
    """Where the demo keeps its keys, its development certificates and ready-to-send packages."""
    return data_dir.resolve() / "demo"


def load_kept_keys(data_dir: Path) -> dict[str, str]:
    path = demo_directory(data_dir) / "keys.json"
    if not path.is_file():
        return {}
    kept = json.loads(path.read_text())
    return {str(name): str(key) for name, key in kept.items()} if isinstance(kept, dict) else {}


def keep_keys(data_dir: Path, systems: list[registry.NewSystem]) -> Path:
    """Write the demo keys where the next run (and ``exchange send --as``) finds them; owner-only."""
    directory = demo_directory(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "keys.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({s.system.name: s.api_key for s in systems}, file, indent=2)
    return path


def demo_pki(data_dir: Path) -> dict[str, Path]:
    """The demo's development CAs, made once: the envelope CA with a signing certificate per demo
    agency, and the document CA with a person's and the agency's PDF-signing certificates."""
    directory = demo_directory(data_dir) / "pki"
    agencies = [(organ_id, name) for organ_id, name, *_ in AGENCIES]
    return {**_envelope_pki(directory, agencies), **_document_pki(directory / "documents", agencies)}


def _envelope_pki(directory: Path, agencies: list[tuple[str, str]]) -> dict[str, Path]:
    expected = [directory / "ca.pem", *(directory / f"agency-{organ_id}.pem" for organ_id, _ in agencies)]
    if all(path.is_file() for path in expected):
        written = {"ca": directory / "ca.pem", "ca_key": directory / "ca.key.pem"}
        for organ_id, _ in agencies:
            written[f"agency:{organ_id}"] = directory / f"agency-{organ_id}.pem"
            written[f"agency_key:{organ_id}"] = directory / f"agency-{organ_id}.key.pem"
        return written
    return write_dev_pki(directory, agencies, axis_name="exchange-demo-axis")


def _document_pki(directory: Path, agencies: list[tuple[str, str]]) -> dict[str, Path]:
    if not (directory / "document-ca.pem").is_file():
        return write_dev_document_pki(directory, agencies)
    written = {
        "document_ca": directory / "document-ca.pem",
        "document_ca_key": directory / "document-ca.key.pem",
    }
    for organ_id, _ in agencies:
        for kind in ("person", "organization"):
            written[f"document_{kind}:{organ_id}"] = directory / f"document-{kind}-{organ_id}.pem"
            written[f"document_{kind}_key:{organ_id}"] = directory / f"document-{kind}-{organ_id}.key.pem"
    return written


async def trust_demo_ca(conn: Connection, pki: Mapping[str, Path]) -> None:
    """Trust the demo CAs, so that the demo agencies' envelope and PDF signatures are valid (once)."""
    for label, purpose in (("ca", "envelope"), ("document_ca", "document")):
        certificates = cert_registry.read_certificates(pki[label].read_bytes(), f"the demo {purpose} CA")
        await cert_registry.import_certificates(conn, certificates, organ_id=None, purpose=purpose)


async def load_demo(conn: Connection, kept: Mapping[str, str] | None = None) -> list[registry.NewSystem]:
    """Register what is missing and return a key for every demo system (printed by the caller).

    Safe to run again: nothing is duplicated. A key in ``kept`` that still opens its system is
    handed back unchanged; every other demo system gets a fresh key (its earlier one stops working).
    """
    async with conn.transaction():
        existing_systems = {system.name for system in await system_store.list_systems(conn)}
        for name, role in ((system, Role.SYSTEM) for *_, system in AGENCIES):
            if name not in existing_systems:
                await registry.add_system(conn, name, role)
        for name, role in OVERSIGHT:
            if name not in existing_systems:
                await registry.add_system(conn, name, role)
        registered = await agency_store.existing_organ_ids(conn, [agency[0] for agency in AGENCIES])
        missing = [
            registry.AgencyInput(
                {"organ_id": organ_id, "name": name, "parent": parent, "system": system} | _delivery(organ_id)
            )
            for organ_id, name, parent, system in AGENCIES
            if organ_id not in registered
        ]
        if missing:
            # The failing endpoint is on loopback on purpose (a demo sends nothing off this machine); at
            # push time the private-address rule refuses it unless delivery.allow_private_endpoints.
            await registry.add_agencies(conn, missing, allow_private_endpoints=True)
        names = [system for *_, system in AGENCIES] + [name for name, _ in OVERSIGHT]
        return [await _key_for(conn, name, (kept or {}).get(name)) for name in names]


def _delivery(organ_id: str) -> dict[str, object]:
    if organ_id != DOWN_AGENCY:
        return {}
    return {"mode": "push", "endpoint": DOWN_ENDPOINT, "max_attempts": str(DOWN_MAX_ATTEMPTS)}


async def _key_for(conn: Connection, name: str, kept: str | None) -> registry.NewSystem:
    if kept is not None:
        caller = await registry.authenticate(conn, kept)
        if caller is not None and caller.name == name:
            return registry.NewSystem(caller, kept)
    return await registry.rotate_key(conn, name)
