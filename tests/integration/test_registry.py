import asyncio

import asyncpg
import pytest

from exchange import registry
from exchange.credentials import hash_api_key
from exchange.errors import DuplicateAgency, DuplicateSystem, InvalidInput, NotFound
from exchange.model import DeliveryMode, Role
from exchange.store import agencies as agency_store

CITY = {"organ_id": "000.00.00.H26", "name": "UBND Thành phố"}


def item(line: int | None = None, **values: object) -> registry.AgencyInput:
    return registry.AgencyInput(values, line)


async def count_agencies(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM agencies"))


async def test_agencies_register_with_parents_in_any_order(conn: asyncpg.Connection) -> None:
    await registry.add_system(conn, "dms-dept", Role.SYSTEM)
    commune = item(organ_id="000.05.12.H26", name="Phường", parent="000.00.12.H26")
    district = item(
        organ_id="000.00.12.H26",
        name="Quận",
        parent="000.00.00.H26",
        system="dms-dept",
        mode="push",
        endpoint="https://dms.example/inbox",
        signature_policy="record",
    )
    await registry.add_agencies(conn, [commune, district, item(**CITY)])

    listed = {a.organ_id: a for a in await agency_store.list_agencies(conn)}
    assert listed["000.05.12.H26"].parent == "000.00.12.H26"
    assert listed["000.00.12.H26"].system == "dms-dept"
    assert listed["000.00.12.H26"].mode is DeliveryMode.PUSH
    assert listed["000.00.12.H26"].endpoint == "https://dms.example/inbox"


async def test_a_bad_batch_stores_nothing_and_names_each_line(conn: asyncpg.Connection) -> None:
    await registry.add_agencies(conn, [item(**CITY)])
    batch = [
        item(2, organ_id="000.00.01.H26", name="Sở Nội vụ", parent="000.00.00.H26"),
        item(3, organ_id="28.22.H17", name="Not a registry id"),
        item(4, organ_id="000.00.01.H26", name="Again"),
        item(5, organ_id="000.00.02.H26", name="", parent="000.00.99.H26"),
        item(6, organ_id="000.00.03.H26", name="Push", mode="push"),
        item(7, organ_id="000.00.04.H26", name="Ghost", system="nobody"),
        item(8, organ_id="000.00.00.H26", name="The city again"),
        item(9, organ_id="000.00.05.H26", name="x", mode="fax", active="perhaps", colour="red"),
    ]
    with pytest.raises(InvalidInput) as refused:
        await registry.add_agencies(conn, batch)
    problems = {(d.line, d.reason) for d in refused.value.details}
    assert problems >= {
        (3, "OrganId '28.22.H17' is not in the QCVN 102 shape NNN.NN.NN.LNN (e.g. 000.00.12.H26)"),
        (4, "duplicate OrganId 000.00.01.H26 (first on line 2)"),
        (5, "name is empty"),
        (6, "mode push needs an endpoint URL"),
        (7, "system 'nobody' is not registered"),
        (8, "agency 000.00.00.H26 is already registered"),
        (9, "mode 'fax' is not one of pull, push, upstream"),
        (9, "active 'perhaps' is not true or false"),
        (9, "unknown field 'colour'"),
    }
    assert await count_agencies(conn) == 1


async def test_unknown_parent_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(InvalidInput) as refused:
        await registry.add_agencies(
            conn, [item(1, organ_id="000.00.01.H26", name="D", parent="000.00.00.H26")]
        )
    assert refused.value.details[0].reason == "parent 000.00.00.H26 is neither registered nor in this import"
    assert await count_agencies(conn) == 0


async def test_registering_an_existing_agency_is_a_conflict(conn: asyncpg.Connection) -> None:
    await registry.add_agencies(conn, [item(**CITY)])
    with pytest.raises(DuplicateAgency):
        await registry.add_agencies(conn, [item(**CITY)])


async def test_keys_are_stored_hashed_and_rotation_revokes_the_old_one(conn: asyncpg.Connection) -> None:
    await registry.add_agencies(conn, [item(**CITY)])
    new = await registry.add_system(conn, "city-dms", Role.SYSTEM, ["000.00.00.H26"])
    assert new.system.organ_ids == ("000.00.00.H26",)
    stored = await conn.fetchval("SELECT api_key_hash FROM systems WHERE name = 'city-dms'")
    assert stored == hash_api_key(new.api_key)
    assert new.api_key.encode() not in stored

    assert (await registry.authenticate(conn, new.api_key)).name == "city-dms"  # type: ignore[union-attr]
    rotated = await registry.rotate_key(conn, "city-dms")
    assert rotated.api_key != new.api_key
    assert await registry.authenticate(conn, new.api_key) is None
    assert (await registry.authenticate(conn, rotated.api_key)).name == "city-dms"  # type: ignore[union-attr]


async def test_system_rules(conn: asyncpg.Connection) -> None:
    await registry.add_system(conn, "one", Role.AUDITOR)
    with pytest.raises(DuplicateSystem):
        await registry.add_system(conn, "one", Role.AUDITOR)
    with pytest.raises(InvalidInput, match="unknown agencies"):
        await registry.add_system(conn, "two", Role.SYSTEM, ["000.00.00.H26"])
    with pytest.raises(InvalidInput, match="only a system"):
        await registry.add_system(conn, "three", Role.AUDITOR, ["000.00.00.H26"])
    with pytest.raises(InvalidInput, match="system name"):
        await registry.add_system(conn, "has space", Role.ADMIN)
    with pytest.raises(NotFound):
        await registry.rotate_key(conn, "absent")
    names = [r["name"] for r in await conn.fetch("SELECT name FROM systems")]
    assert names == ["one"]


async def test_upstream_agencies_registered_by_two_transactions_in_opposite_orders_both_commit(
    database_url: str,
) -> None:
    # Two packages naming the same upstream agencies in opposite orders, registered at once: taken
    # in the order given, each transaction would wait for a row the other inserted (a deadlock).
    organs = [f"{n // 100:03}.{n % 100:02}.99.Z99" for n in range(20_000)]
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:

        async def register(conn: asyncpg.Connection, order: list[str]) -> None:
            async with conn.transaction():
                await agency_store.register_upstream(conn, [(o, o) for o in order])

        await asyncio.gather(register(first, organs), register(second, organs[::-1]))
        assert await first.fetchval("SELECT count(*) FROM agencies WHERE organ_id LIKE '%.Z99'") == 20_000
    finally:
        await first.close()
        await second.close()
