"""A month of generated traffic written straight into the tables, for checking report figures.

Documents, copies and statuses are spread over October 2026 (Vietnam time), with a few
just outside it on either side of midnight in Vietnam, and every outcome the report
distinguishes: completed on time and late, refused, overdue, pending, failed, withdrawn.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import date, datetime, timedelta

import asyncpg

from exchange.clock import VIETNAM

MONTH_FIRST, MONTH_LAST = date(2026, 10, 1), date(2026, 10, 31)
# Instants around the month's edges: 30/09 23:30 and 01/11 00:30 are outside, 31/10 23:30 inside.
EDGES = (
    datetime(2026, 9, 30, 23, 30, tzinfo=VIETNAM),
    datetime(2026, 10, 1, 0, 10, tzinfo=VIETNAM),
    datetime(2026, 10, 31, 23, 30, tzinfo=VIETNAM),
    datetime(2026, 11, 1, 0, 30, tzinfo=VIETNAM),
)
_PROGRESS = ("01", "03", "04", "05", "06")


async def generate_month(
    conn: asyncpg.Connection, organ_ids: list[str], documents: int, seed: int = 7
) -> None:
    """Write ``documents`` new documents (and some revocations, which reports must not count)."""
    rng = random.Random(seed)
    system_id = await conn.fetchval("SELECT id FROM systems ORDER BY id LIMIT 1")
    start = datetime(2026, 9, 28, tzinfo=VIETNAM)
    for n in range(documents):
        received = EDGES[n] if n < len(EDGES) else start + timedelta(minutes=rng.randrange(0, 38 * 24 * 60))
        sender = rng.choice(organ_ids)
        recipients = rng.sample([o for o in organ_ids if o != sender], rng.randint(1, 3))
        due = (
            None
            if rng.random() < 0.25
            else received.astimezone(VIETNAM).date() + timedelta(rng.randint(-3, 12))
        )
        business_type = 1 if rng.random() < 0.05 else 0
        message_id = await _message(
            conn,
            "edoc",
            sender,
            system_id,
            f"{sender},2026/10/01,{n}/GEN",
            received,
            business_type=business_type,
            due_date=due,
        )
        for recipient in recipients:
            await _copy(conn, rng, message_id, recipient, received, system_id)


async def _message(
    conn: asyncpg.Connection,
    kind: str,
    sender: str,
    system_id: int,
    document_id: str,
    received: datetime,
    business_type: int = 0,
    due_date: date | None = None,
    status_code: str | None = None,
) -> uuid.UUID:
    message_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO messages (id, kind, sender, sender_system_id, document_id, business_type, status_code, "
        "subject, due_date, sha256, size_bytes, signature, received_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 100, $11::jsonb, $12)",
        message_id,
        kind,
        sender,
        system_id,
        document_id,
        business_type,
        status_code,
        "Trích yếu bí mật" if kind == "edoc" else None,
        due_date,
        os.urandom(32),
        json.dumps({"verdict": "absent"}),
        received,
    )
    return message_id


async def _copy(
    conn: asyncpg.Connection,
    rng: random.Random,
    message_id: uuid.UUID,
    recipient: str,
    at: datetime,
    system_id: int,
) -> None:
    state = rng.choices(
        ["acked", "delivered", "failed", "expired", "withdrawn", "queued"], [60, 15, 6, 3, 4, 12]
    )[0]
    delivery_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO deliveries (id, message_id, recipient, mode, state, created_at, updated_at, last_error) "
        "VALUES ($1, $2, $3, 'pull', $4, $5, $5, $6)",
        delivery_id,
        message_id,
        recipient,
        state,
        at,
        "secret error text" if state in ("failed", "expired") else None,
    )
    if state not in ("acked", "delivered"):
        return
    outcome = rng.choices(["complete", "refuse", "partial", "none"], [55, 10, 20, 15])[0]
    codes = {
        "complete": list(_PROGRESS),
        "refuse": ["01", "02"],
        "partial": list(_PROGRESS[: rng.randint(1, 4)]),
    }
    moment = at
    for code in codes.get(outcome, []):
        moment += timedelta(hours=rng.uniform(0.5, 80))
        status_id = await _message(conn, "status", recipient, system_id, "status", moment, status_code=code)
        await conn.execute(
            "INSERT INTO business_statuses (delivery_id, status_message_id, code, received_at) "
            "VALUES ($1, $2, $3, $4)",
            delivery_id,
            status_id,
            code,
            moment,
        )
