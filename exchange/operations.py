"""Operator actions on deliveries, shared by the CLI and the admin API."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from exchange.store import audit
from exchange.store import deliveries as delivery_store
from exchange.store.audit import Event
from exchange.store.db import Connection


async def requeue_deliveries(conn: Connection, actor: str, delivery_ids: Sequence[UUID]) -> list[UUID]:
    """Put failed or expired deliveries back in the queue; return those re-queued."""
    async with conn.transaction():
        requeued = await delivery_store.requeue(conn, delivery_ids)
        await audit.append(conn, actor, [Event("delivery.requeued", delivery_id=i) for i in requeued])
    return requeued
