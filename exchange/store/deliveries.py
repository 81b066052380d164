"""Queries on ``deliveries``: fan-out, the inbox, claims with leases, and state changes.

A state change guarded by a lease names the worker that holds it: when a lease expired
and another worker claimed the delivery again, the late worker's update changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from exchange.store import audit
from exchange.store.audit import Event
from exchange.store.db import Connection, Record
from exchange.store.statuses import CURRENT_STATUS

CHANNEL = "exchange_deliveries"

COLUMNS = f"""d.id, d.message_id, d.recipient, d.mode, d.state, d.urgency, d.attempts, d.next_attempt_at,
    d.lease_until, d.last_error, d.created_at, d.updated_at, d.downloaded_at, d.delivered_at, d.acked_at,
    d.last_ack, d.last_ack_reason, {CURRENT_STATUS} AS business_status"""


@dataclass(frozen=True)
class NewDelivery:
    id: UUID
    message_id: UUID
    recipient: str
    mode: str
    state: str
    urgency: int


@dataclass(frozen=True)
class DeliveryRow:
    id: UUID
    message_id: UUID
    recipient: str
    mode: str
    state: str
    urgency: int
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    downloaded_at: datetime | None
    delivered_at: datetime | None
    acked_at: datetime | None
    last_ack: str | None
    last_ack_reason: str | None
    business_status: str | None

    @property
    def received(self) -> bool:
        """The copy reached its recipient: pushed with a 2xx, forwarded, or downloaded."""
        return self.delivered_at is not None or self.downloaded_at is not None

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "delivery_id": str(self.id),
            "message_id": str(self.message_id),
            "recipient": self.recipient,
            "mode": self.mode,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
            "downloaded_at": iso(self.downloaded_at),
            "delivered_at": iso(self.delivered_at),
            "acked_at": iso(self.acked_at),
            "business_status": self.business_status,
        }


@dataclass(frozen=True)
class Claimed:
    """A push delivery this worker now holds a lease on."""

    id: UUID
    message_id: UUID
    recipient: str
    mode: str  # push, or upstream (forwarded to another axis)
    endpoint: str
    attempts: int
    created_at: datetime
    max_attempts: int | None
    max_age_s: int | None
    lease_id: UUID | None = None  # this claim's own id: its outcome is written under it only


# Creates deliveries; the arrays are parallel: ids, message ids, recipients, modes, states, urgencies.
# Push deliveries are due at once.
_INSERT = """
INSERT INTO deliveries (id, message_id, recipient, mode, state, urgency, next_attempt_at)
SELECT id, message_id, recipient, mode, state, urgency,
       CASE WHEN mode IN ('push', 'upstream') THEN now() END
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::delivery_mode[], $5::delivery_state[], $6::smallint[])
    AS t (id, message_id, recipient, mode, state, urgency)
"""
# Wakes the delivery workers of every server process (delivered at COMMIT).
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
# The deliveries of a message: $1 message id.
_OF_MESSAGE = f"SELECT {COLUMNS} FROM deliveries d WHERE d.message_id = $1 ORDER BY d.recipient"
# One delivery: $1 id.
_BY_ID = f"SELECT {COLUMNS} FROM deliveries d WHERE d.id = $1"
# One delivery by message and recipient: $1 message id, $2 recipient.
_BY_RECIPIENT = f"SELECT {COLUMNS} FROM deliveries d WHERE d.message_id = $1 AND d.recipient = $2"
# The inbox of some agencies, oldest first: $1 recipients, $2 kind or NULL, $3 limit. Deliveries to
# agencies not in service (pending, disabled) are held: not listed until the agency is back.
_INBOX = """
SELECT d.id AS delivery_id, d.message_id, m.kind, m.sender, d.recipient, m.document_id, m.subject,
       m.status_code, m.received_at, d.attempts, d.state
FROM deliveries d JOIN messages m ON m.id = d.message_id
WHERE d.mode = 'pull' AND d.state IN ('queued', 'delivered') AND d.recipient = ANY($1::text[])
  AND ($2::message_kind IS NULL OR m.kind = $2::message_kind)
  AND d.recipient IN (SELECT organ_id FROM agencies_in_service)
ORDER BY d.created_at, d.id
LIMIT $3
"""
# A pull delivery handed to its recipient: $1 id. The first download moves queued to delivered; a
# download after a "fail" acknowledgement opens a new round, to be acknowledged afresh.
_DOWNLOADED = f"""
WITH changed AS (
    UPDATE deliveries SET downloaded_at = coalesce(downloaded_at, now()),
        delivered_at = coalesce(delivered_at, now()),
        state = CASE WHEN state = 'queued' THEN 'delivered'::delivery_state ELSE state END,
        updated_at = now(),
        last_ack = CASE WHEN last_ack = 'fail' THEN NULL ELSE last_ack END, last_ack_reason = CASE
            WHEN last_ack = 'fail' THEN NULL ELSE last_ack_reason END
    WHERE id = $1 RETURNING state
), entries AS ({audit.insert_entries(2)})
SELECT state FROM changed
"""


def _acknowledged(changes: str) -> str:
    """The recipient confirms (done) a pull delivery it downloaded, not yet acknowledged in this round,
    or could not use it (fail: back to the inbox), by ``changes``; audited ($3.. the entry) only when
    it changes: $1 id, $2 reason. Returns the delivery as changed."""
    return f"""
WITH changed AS (
    UPDATE deliveries SET {changes}, updated_at = now()
    WHERE id = $1 AND mode = 'pull' AND state IN ('queued', 'delivered') AND last_ack IS NULL
      AND downloaded_at IS NOT NULL
    RETURNING *
), entries AS ({audit.insert_entries(3, when="EXISTS (SELECT 1 FROM changed)")})
SELECT {COLUMNS} FROM changed d
"""


_ACKED = _acknowledged("state = 'acked', acked_at = now(), last_ack = 'done', last_ack_reason = $2")
_NACKED = _acknowledged(
    "state = 'queued', attempts = attempts + 1, last_error = $2, last_ack = 'fail', last_ack_reason = $2"
)
# Claims push deliveries whose worker's lease ran out, then due ones most urgent first, at most $1 in
# all: $2 lease seconds, $3 worker name. Two branches rather than one OR so that each walks its own
# index in order and stops at the limit, however large the backlog. Deliveries to agencies not in
# service are held (skipped, their state unchanged) until the agency is enabled again.
# Fair share: $4 is how many deliveries one endpoint may have in flight, $5/$6 the endpoints this
# worker already has deliveries in flight to and how many. Due deliveries to an endpoint that is
# full are passed over, so one slow or hanging endpoint never takes every slot; among the first
# $1 * 4 due candidates, each endpoint gets at most its remaining room.
_CLAIM = """
WITH stale AS (
    SELECT d.id FROM deliveries d
    WHERE d.state = 'sending' AND d.lease_until < now() AND d.mode IN ('push', 'upstream')
      AND d.recipient IN (SELECT organ_id FROM agencies_in_service)
    ORDER BY d.lease_until
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), busy AS (
    SELECT endpoint, n FROM unnest($5::text[], $6::int[]) AS b (endpoint, n)
), due AS (
    SELECT d.id, d.urgency, d.next_attempt_at, coalesce(a.push_endpoint, '') AS endpoint
    FROM deliveries d JOIN agencies a ON a.organ_id = d.recipient
    WHERE d.mode IN ('push', 'upstream') AND d.state IN ('queued', 'retry_wait')
      AND d.next_attempt_at <= now() AND d.recipient IN (SELECT organ_id FROM agencies_in_service)
      AND coalesce(a.push_endpoint, '') NOT IN (SELECT endpoint FROM busy WHERE n >= $4)
    ORDER BY d.urgency DESC, d.next_attempt_at
    LIMIT greatest($1 - (SELECT count(*) FROM stale), 0) * 4
    FOR UPDATE OF d SKIP LOCKED
), fair AS (
    SELECT r.id FROM (
        SELECT due.id, due.urgency, due.next_attempt_at, due.endpoint,
               row_number() OVER (
                   PARTITION BY due.endpoint ORDER BY due.urgency DESC, due.next_attempt_at
               ) AS n
        FROM due
    ) r LEFT JOIN busy b ON b.endpoint = r.endpoint
    WHERE r.n <= $4 - coalesce(b.n, 0)
    ORDER BY r.urgency DESC, r.next_attempt_at
    LIMIT greatest($1 - (SELECT count(*) FROM stale), 0)
), claimed AS (
    SELECT id FROM stale UNION ALL SELECT id FROM fair
)
UPDATE deliveries d
SET state = 'sending', lease_until = now() + make_interval(secs => $2), leased_by = $3,
    lease_id = gen_random_uuid(), attempts = d.attempts + 1, updated_at = now()
FROM claimed, agencies a
WHERE d.id = claimed.id AND a.organ_id = d.recipient
RETURNING d.id, d.message_id, d.recipient, d.mode::text AS mode, coalesce(a.push_endpoint, '') AS endpoint,
          d.attempts, d.created_at, a.max_attempts, a.max_age_s, d.lease_id
"""
# Withdraws deliveries not yet in the recipient's hands: $1 ids. Returns those withdrawn. Decided on
# whether the copy reached its recipient (downloaded, pushed, forwarded), never on the state alone: a
# state can say "acked" of a copy never received. A copy being pushed right now ('sending') may land,
# so it is not withdrawn (its recipient is told of the revocation instead).
_WITHDRAW = """
UPDATE deliveries SET state = 'withdrawn', next_attempt_at = NULL, lease_until = NULL, updated_at = now()
WHERE id = ANY($1::uuid[]) AND state NOT IN ('withdrawn', 'sending')
  AND downloaded_at IS NULL AND delivered_at IS NULL
RETURNING id
"""
# Serializes what is decided from a delivery's history (statuses, withdrawal): $1 ids, locked in id
# order so that two transactions locking several never deadlock. Held until COMMIT.
_LOCK = "SELECT id FROM deliveries WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
# Withdraws a delivery whatever its state (an agreed take-back): $1 id.
_WITHDRAW_ANY = """
UPDATE deliveries SET state = 'withdrawn', next_attempt_at = NULL, lease_until = NULL, updated_at = now()
WHERE id = $1 AND state <> 'withdrawn' RETURNING id
"""
# Puts failed or expired deliveries back in the queue: $1 ids. Returns those re-queued.
_REQUEUE = """
UPDATE deliveries SET state = 'queued', attempts = 0, last_error = NULL, updated_at = now(),
    next_attempt_at = CASE WHEN mode IN ('push', 'upstream') THEN now() END
WHERE id = ANY($1::uuid[]) AND state IN ('failed', 'expired') RETURNING id
"""
# Deliveries in a state (or all), most recently changed first: $1 state or NULL, $2 limit.
_LIST = f"""
SELECT {COLUMNS} FROM deliveries d
WHERE $1::delivery_state IS NULL OR d.state = $1::delivery_state
ORDER BY d.updated_at DESC, d.id LIMIT $2
"""


def delivery_from_row(row: Record) -> DeliveryRow:
    return DeliveryRow(**dict(row))


async def insert_deliveries(conn: Connection, deliveries: Sequence[NewDelivery]) -> None:
    if not deliveries:
        return
    await conn.execute(
        _INSERT,
        [d.id for d in deliveries],
        [d.message_id for d in deliveries],
        [d.recipient for d in deliveries],
        [d.mode for d in deliveries],
        [d.state for d in deliveries],
        [d.urgency for d in deliveries],
    )
    if any_pushed(deliveries):
        await wake_workers(conn)


def any_pushed(deliveries: Sequence[NewDelivery]) -> bool:
    """Whether the workers have something to do for these new deliveries (push or forward)."""
    return any(d.mode in ("push", "upstream") for d in deliveries)


async def wake_workers(conn: Connection) -> None:
    """Tell every server process's workers to look for due deliveries (at COMMIT)."""
    await conn.execute(_NOTIFY)


async def deliveries_of(conn: Connection, message_id: UUID) -> list[DeliveryRow]:
    return [delivery_from_row(row) for row in await conn.fetch(_OF_MESSAGE, message_id)]


async def delivery_by_id(conn: Connection, delivery_id: UUID) -> DeliveryRow | None:
    row = await conn.fetchrow(_BY_ID, delivery_id)
    return None if row is None else delivery_from_row(row)


async def delivery_to(conn: Connection, message_id: UUID, recipient: str) -> DeliveryRow | None:
    row = await conn.fetchrow(_BY_RECIPIENT, message_id, recipient)
    return None if row is None else delivery_from_row(row)


async def inbox(
    conn: Connection, recipients: Sequence[str], kind: str | None, limit: int
) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(_INBOX, list(recipients), kind, limit)]


async def mark_downloaded(conn: Connection, delivery_id: UUID, actor: str, event: Event) -> str | None:
    """Record a download and its audit entry (one statement); the delivery's state after it."""
    state: str | None = await conn.fetchval(_DOWNLOADED, delivery_id, actor, *audit.columns([event]))
    return state


async def acknowledge(
    conn: Connection, delivery_id: UUID, done: bool, reason: str | None, actor: str, event: Event
) -> DeliveryRow | None:
    """Record an acknowledgement and its audit entry (one statement); the delivery as changed, or
    None when it is not a pull delivery waiting for an acknowledgement (nothing changed)."""
    row = await conn.fetchrow(
        _ACKED if done else _NACKED, delivery_id, reason, actor, *audit.columns([event])
    )
    return None if row is None else delivery_from_row(row)


async def claim_due(
    conn: Connection,
    limit: int,
    lease_s: float,
    worker: str,
    per_endpoint: int | None = None,
    in_flight: Mapping[str, int] | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due push deliveries, at most ``per_endpoint`` in flight per endpoint
    counting the ``in_flight`` ones this worker already holds (no cap when ``per_endpoint`` is None)."""
    busy = dict(in_flight or {})
    rows = await conn.fetch(
        _CLAIM, limit, lease_s, worker, per_endpoint or limit, list(busy), list(busy.values())
    )
    return [Claimed(**dict(row)) for row in rows]


@dataclass(frozen=True)
class Outcome:
    """What became of one pushed delivery, written with others in one statement."""

    delivery_id: UUID
    lease_id: UUID | None  # the claim the attempt was made under
    state: str  # delivered, retry_wait, failed or expired
    error: str | None = None
    next_attempt_at: datetime | None = None
    remote_id: str | None = None


# Records many outcomes at once, each only under the claim its attempt was made under, while this
# worker still holds it: a late outcome of an earlier claim changes nothing (the delivery may be
# claimed again and in flight), except that a copy the recipient took is recorded as delivered
# whatever became of the claim, unless it was withdrawn meanwhile. $1 worker, then parallel arrays
# $2 ids, $3 claim ids, $4 states, $5 next attempt times, $6 errors, $7 remote ids; $8.. the audit
# entries, written for the deliveries changed only. Returns those changed.
_OUTCOMES = f"""
WITH changed AS (
    UPDATE deliveries d
    SET state = o.state,
        delivered_at = CASE WHEN o.state = 'delivered' THEN now() ELSE d.delivered_at END,
        next_attempt_at = CASE WHEN o.state = 'retry_wait' THEN o.next_attempt_at
                               WHEN o.state = 'delivered' THEN d.next_attempt_at END,
        lease_until = NULL, last_error = o.error,
        remote_id = CASE WHEN o.state = 'delivered' THEN o.remote_id ELSE d.remote_id END,
        updated_at = now()
    FROM unnest($2::uuid[], $3::uuid[], $4::delivery_state[], $5::timestamptz[], $6::text[], $7::text[])
        AS o (id, lease_id, state, next_attempt_at, error, remote_id)
    WHERE d.id = o.id AND (
        (d.state = 'sending' AND d.leased_by = $1 AND d.lease_id = o.lease_id)
        OR (o.state = 'delivered' AND d.delivered_at IS NULL AND d.mode IN ('push', 'upstream')
            AND d.state IN ('queued', 'sending', 'retry_wait', 'failed', 'expired'))
    )
    RETURNING d.id
), entries AS ({audit.insert_entries(8, when="e.delivery_id IN (SELECT id FROM changed)")})
SELECT id FROM changed
"""


async def record_outcomes(
    conn: Connection, worker: str, outcomes: Sequence[Outcome], events: Sequence[Event]
) -> set[UUID]:
    """Write the outcomes this worker still holds leases for, with the audit entries (``events``, by
    delivery) of those it changes, in one statement; the ids whose state changed."""
    rows = await conn.fetch(
        _OUTCOMES,
        worker,
        [o.delivery_id for o in outcomes],
        [o.lease_id for o in outcomes],
        [o.state for o in outcomes],
        [o.next_attempt_at for o in outcomes],
        [o.error for o in outcomes],
        [o.remote_id for o in outcomes],
        "axis",
        *audit.columns(events),
    )
    return {row["id"] for row in rows}


# Pull deliveries nobody downloaded within their agency's max age (or $1 seconds) since they were
# queued or re-queued expire, like push ones: at most $2 of them. Walks the (state, updated_at)
# index: an expired one was last changed before the shortest max age of any agency.
_EXPIRE_PULL = """
WITH old AS (
    SELECT d.id FROM deliveries d JOIN agencies a ON a.organ_id = d.recipient
    WHERE d.state = 'queued' AND d.mode = 'pull' AND d.downloaded_at IS NULL
      AND d.updated_at < now() - make_interval(secs => (SELECT least($1, min(max_age_s)) FROM agencies))
      AND greatest(d.created_at, d.updated_at) < now() - make_interval(secs => coalesce(a.max_age_s, $1))
    ORDER BY d.updated_at
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries d SET state = 'expired', last_error = $3, updated_at = now()
FROM old WHERE d.id = old.id
RETURNING d.id, d.message_id, d.recipient, d.attempts, d.created_at
"""


async def expire_pull(conn: Connection, max_age_s: float, limit: int, reason: str) -> list[Record]:
    return list(await conn.fetch(_EXPIRE_PULL, max_age_s, limit, reason))


async def withdraw_undelivered(conn: Connection, delivery_ids: Sequence[UUID]) -> set[UUID]:
    return {row["id"] for row in await conn.fetch(_WITHDRAW, list(delivery_ids))}


async def lock(conn: Connection, delivery_ids: Sequence[UUID]) -> None:
    """Lock deliveries until COMMIT (inside a transaction)."""
    await conn.execute(_LOCK, list(delivery_ids))


async def withdraw(conn: Connection, delivery_id: UUID) -> bool:
    return await conn.fetchval(_WITHDRAW_ANY, delivery_id) is not None


async def requeue(conn: Connection, delivery_ids: Sequence[UUID]) -> list[UUID]:
    requeued = [row["id"] for row in await conn.fetch(_REQUEUE, list(delivery_ids))]
    if requeued:
        await conn.execute(_NOTIFY)
    return requeued


async def list_deliveries(conn: Connection, state: str | None, limit: int) -> list[DeliveryRow]:
    return [delivery_from_row(row) for row in await conn.fetch(_LIST, state, limit)]


STATES = ("queued", "sending", "delivered", "acked", "retry_wait", "failed", "expired", "withdrawn")
# How many deliveries are in each state.
_COUNT_BY_STATE = "SELECT state::text, count(*) AS n FROM deliveries GROUP BY state"
# The push deliveries due now, and how long the oldest has waited (seconds); held ones are not due.
_DUE_QUEUE = """
SELECT count(*), coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)
FROM deliveries
WHERE mode IN ('push', 'upstream') AND state IN ('queued', 'retry_wait') AND next_attempt_at <= now()
  AND recipient IN (SELECT organ_id FROM agencies_in_service)
"""


async def count_by_state(conn: Connection) -> dict[str, int]:
    return {row["state"]: row["n"] for row in await conn.fetch(_COUNT_BY_STATE)}


async def due_queue(conn: Connection) -> tuple[int, float]:
    row = await conn.fetchrow(_DUE_QUEUE)
    return int(row[0]), float(row[1])


# How many deliveries wait in some agencies' inbox: $1 recipients, $2 kind.
_INBOX_COUNT = """
SELECT count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id
WHERE d.mode = 'pull' AND d.state IN ('queued', 'delivered') AND d.recipient = ANY($1::text[])
  AND m.kind = $2::message_kind
  AND d.recipient IN (SELECT organ_id FROM agencies_in_service)
"""
# Deliveries of what some agencies sent, newest first: $1 senders, $2 kind, $3 message id or NULL, $4 limit.
_SENT = f"""
SELECT d.id AS delivery_id, m.id AS message_id, m.sender, d.recipient, m.subject, m.code, m.kind,
       m.received_at, coalesce(d.delivered_at, d.downloaded_at) AS received, d.state,
       {CURRENT_STATUS} AS status
FROM deliveries d JOIN messages m ON m.id = d.message_id
WHERE m.sender = ANY($1::text[]) AND m.kind = $2::message_kind AND ($3::uuid IS NULL OR m.id = $3)
ORDER BY m.received_at DESC, d.recipient
LIMIT $4
"""


async def inbox_count(conn: Connection, recipients: Sequence[str], kind: str) -> int:
    return int(await conn.fetchval(_INBOX_COUNT, list(recipients), kind))


async def sent(
    conn: Connection, senders: Sequence[str], kind: str, message_id: UUID | None, limit: int
) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(_SENT, list(senders), kind, message_id, limit)]


# The deliveries of some messages: $1 message ids.
_OF_MESSAGES = f"""
SELECT {COLUMNS} FROM deliveries d WHERE d.message_id = ANY($1::uuid[]) ORDER BY d.recipient
"""


async def deliveries_of_messages(
    conn: Connection, message_ids: Sequence[UUID]
) -> dict[UUID, list[DeliveryRow]]:
    found: dict[UUID, list[DeliveryRow]] = {message_id: [] for message_id in message_ids}
    for row in await conn.fetch(_OF_MESSAGES, list(message_ids)):
        found[row["message_id"]].append(delivery_from_row(row))
    return found
