"""What a recipient does with its inbox: fetch a package, acknowledge it, report progress.

Shared by the native API and the VXP facade, so both record the same states and audit
entries. A system only ever sees deliveries addressed to the agencies it serves.
"""

from __future__ import annotations

from uuid import UUID

from exchange import standing
from exchange.errors import AckConflict, Conflict, Gone, NotFound, NotReceived
from exchange.model import System
from exchange.outgoing import OutgoingPackage, load_package
from exchange.store import agencies as agency_store
from exchange.store import audit
from exchange.store import deliveries as delivery_store
from exchange.store.audit import Event
from exchange.store.db import Connection
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow
from exchange.visibility import may_read_body


async def own_delivery(conn: Connection, caller: System, delivery_id: UUID) -> DeliveryRow:
    delivery = await delivery_store.delivery_by_id(conn, delivery_id)
    if delivery is None or delivery.recipient not in caller.organ_ids:
        raise NotFound(
            f"no delivery {delivery_id}"
        )  # another system's delivery does not exist for this caller
    if delivery.recipient not in caller.serving:  # held: read the agency to say why
        recipient = await agency_store.agencies_by_ids(conn, [delivery.recipient])
        standing.check_held(recipient.get(delivery.recipient), delivery.id)
    return delivery


async def fetch(
    conn: Connection, caller: System, delivery_id: UUID, trace_organ_id: str
) -> tuple[DeliveryRow, MessageRow, OutgoingPackage]:
    """The package for its recipient (original bytes plus the axis TraceHeader, to be streamed from
    the database); records the download."""
    delivery = await own_delivery(conn, caller, delivery_id)
    try:
        package = await load_package(conn, delivery.message_id, trace_organ_id)
    except LookupError:
        raise Gone(
            "the package was removed under the retention policy; its record and evidence remain"
        ) from None
    message = package.message
    if not may_read_body(caller, message, [delivery]):
        raise Gone("the sender withdrew this document; its content is no longer readable")
    first = delivery.downloaded_at is None
    event = Event(
        "delivery.downloaded", message.id, delivery.id, {"recipient": delivery.recipient, "first": first}
    )
    await delivery_store.mark_downloaded(conn, delivery.id, caller.name, event)
    return delivery, message, package


async def acknowledge(
    conn: Connection, caller: System, delivery_id: UUID, done: bool, reason: str | None
) -> DeliveryRow:
    """done: out of the inbox; fail: back in it, with the reason recorded.

    A DMS retries after a network failure: the acknowledgement it already gave, again, gets the
    same answer and changes nothing; a different one for the same round (done after fail, another
    reason) is a conflict. A new download opens a new round after a fail.
    """
    delivery = await own_delivery(conn, caller, delivery_id)
    result = "done" if done else "fail"
    event = Event(
        f"delivery.ack_{result}",
        delivery.message_id,
        delivery.id,
        {"recipient": delivery.recipient, "reason": reason},
    )
    updated = await delivery_store.acknowledge(conn, delivery.id, done, reason, caller.name, event)
    if updated is None:
        current = await delivery_store.delivery_by_id(conn, delivery.id)
        assert current is not None
        _check_repeat(current, result, reason)
        return current
    return updated


def _check_repeat(delivery: DeliveryRow, result: str, reason: str | None) -> None:
    """Accept the acknowledgement already recorded, given again; refuse anything else."""
    if delivery.mode == "pull" and delivery.downloaded_at is None and delivery.state != "withdrawn":
        # "done" of a copy never downloaded would take it out of the inbox while a revocation still
        # counts it as not received: only what the recipient downloaded is acknowledged.
        raise NotReceived(f"delivery {delivery.id} was never downloaded; download it before acknowledging it")
    if delivery.mode != "pull" or delivery.last_ack is None:
        raise Conflict(
            f"delivery {delivery.id} is {delivery.state} ({delivery.mode}); only a pull delivery "
            "in the inbox can be acknowledged"
        )
    if (delivery.last_ack, delivery.last_ack_reason) != (result, reason):
        given = delivery.last_ack + (f" ({delivery.last_ack_reason})" if delivery.last_ack_reason else "")
        raise AckConflict(
            f"delivery {delivery.id} was already acknowledged {given}; {result}"
            + (f" ({reason})" if reason else "")
            + " contradicts it"
            + ("; download it again to acknowledge it afresh" if delivery.last_ack == "fail" else "")
        )


async def processing(conn: Connection, caller: System, delivery_id: UUID, note: str | None) -> None:
    """The recipient says it is working on it (VXP updateStatus "processing"): a note in the audit
    log, nothing more. It hands out nothing, so it never marks the copy downloaded (only a download,
    under the read rule, does: that is what lets statuses 01-06 be reported); a withdrawn copy takes
    no note."""
    delivery = await own_delivery(conn, caller, delivery_id)
    if delivery.state == "withdrawn":
        raise Gone("the sender withdrew this document; its copy takes no further report")
    await audit.append(
        conn,
        caller.name,
        [
            Event(
                "delivery.processing",
                delivery.message_id,
                delivery.id,
                {"recipient": delivery.recipient, "note": note},
            )
        ],
    )
