"""A demo registry: a city with departments, districts and communes, and the central office.

OrganIds follow QCVN 102 (V1V2V3.Z1Z2.Y1Y2.MX1X2): the city is 000.00.00.H26, a
department 000.00.0N.H26, a district 000.00.1N.H26, and a commune of district 12
000.0N.12.H26. Names are illustrative.
"""

from __future__ import annotations

from exchange import registry
from exchange.model import Role
from exchange.store import agencies as agency_store
from exchange.store import systems as system_store
from exchange.store.db import Connection

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


async def load_demo(conn: Connection) -> list[registry.NewSystem]:
    """Register what is missing and give every demo system a fresh key (printed by the caller).

    Safe to run again: nothing is duplicated; earlier demo keys stop working.
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
            registry.AgencyInput({"organ_id": organ_id, "name": name, "parent": parent, "system": system})
            for organ_id, name, parent, system in AGENCIES
            if organ_id not in registered
        ]
        if missing:
            await registry.add_agencies(conn, missing)
        names = [system for *_, system in AGENCIES] + [name for name, _ in OVERSIGHT]
        return [await registry.rotate_key(conn, name) for name in names]
