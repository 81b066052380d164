"""Retention: package bodies older than the configured age are removed, everything else stays.

Metadata, the SHA-256 of the original bytes, the signed receipt and the audit chain remain,
so an evidence bundle made afterwards still proves what was accepted (without the bytes).
"""

from __future__ import annotations

from datetime import timedelta

from exchange.clock import now
from exchange.logs import get_logger
from exchange.settings import RetentionSettings
from exchange.store import audit
from exchange.store import operations as operations_store
from exchange.store.audit import Event
from exchange.store.db import Connection

log = get_logger(__name__)
BATCH = 500


async def remove_old_bodies(conn: Connection, settings: RetentionSettings) -> int:
    """Apply the retention policy once; returns how many bodies were removed."""
    if settings.body_max_age_days == 0:
        return 0
    cutoff = now() - timedelta(days=settings.body_max_age_days)
    removed = 0
    while True:
        async with conn.transaction():
            batch = await operations_store.remove_old_bodies(conn, cutoff, BATCH)
            await audit.append(
                conn,
                "axis",
                [
                    Event(
                        "retention.body_removed",
                        message_id,
                        details={"sha256": sha256.hex(), "policy_days": settings.body_max_age_days},
                    )
                    for message_id, sha256 in batch
                ],
            )
        removed += len(batch)
        if len(batch) < BATCH:
            break
    if removed:
        log.info("retention.bodies_removed", count=removed, policy_days=settings.body_max_age_days)
    return removed
