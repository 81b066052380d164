"""Who may see what of a document: the one place that decides it (DESIGN.md, "Visibility").

Every route that shows a message, its deliveries, statuses, events or bytes asks here:

- auditors and admins (and the operator's CLI, ``caller is None``) see everything;
- the sender (a system serving the message's From) sees the message and every recipient;
- a recipient sees the message, its own deliveries, their status history (the statuses it
  sent and those sent to it about its copy) and the events about itself, never another
  recipient's delivery ids, states, errors, acknowledgements, statuses or events;
- anyone else sees nothing (404, as for an id that does not exist).

A system acts for an agency here only while that agency is in service (``System.serving``): a
pending or disabled agency gives its system no view of what was sent by or to it.

The bytes of a package (and its attachments) are readable by a recipient only through a
copy that is not withdrawn: a withdrawn copy is unreadable on every route.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from exchange.model import Role, System
from exchange.store.audit import AuditEntry
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow

WITHDRAWN = "withdrawn"


def sees_everything(caller: System | None) -> bool:
    """Auditors, admins and the operator's own command line."""
    return caller is None or caller.role in (Role.AUDITOR, Role.ADMIN)


def is_sender(caller: System | None, message: MessageRow) -> bool:
    return caller is not None and message.sender in caller.serving


def own_deliveries(caller: System | None, deliveries: Sequence[DeliveryRow]) -> list[DeliveryRow]:
    """The copies addressed to one of the caller's agencies in service."""
    mine = set(caller.serving) if caller is not None else set()
    return [d for d in deliveries if d.recipient in mine]


def may_see(caller: System | None, message: MessageRow, deliveries: Sequence[DeliveryRow]) -> bool:
    """Whether the caller may know the message exists at all."""
    return sees_everything(caller) or is_sender(caller, message) or bool(own_deliveries(caller, deliveries))


def visible_deliveries(
    caller: System | None, message: MessageRow, deliveries: Sequence[DeliveryRow]
) -> list[DeliveryRow]:
    """All deliveries for auditors, admins and the sender; a recipient's own ones otherwise."""
    if sees_everything(caller) or is_sender(caller, message):
        return list(deliveries)
    return own_deliveries(caller, deliveries)


def may_read_body(caller: System | None, message: MessageRow, deliveries: Sequence[DeliveryRow]) -> bool:
    """Whether the caller may read the package's bytes (and so its attachments).

    ``deliveries`` are the copies the request concerns: the one asked for (download routes)
    or all of the message's (evidence). A system holding copies reads through a live one; a
    withdrawn copy never opens the body, even to a caller that also sent the document. A
    sender holding no copy reads what it sent.
    """
    if sees_everything(caller):
        return True
    copies = own_deliveries(caller, deliveries)
    if copies:
        return any(d.state != WITHDRAWN for d in copies)
    return is_sender(caller, message)


@dataclass(frozen=True)
class EventFilter:
    """Which audit entries about a message a caller sees."""

    everything: bool
    whole_log: bool  # may see every entry of the audit log, other documents' too (auditors, admins)
    message_id: UUID
    delivery_ids: frozenset[UUID]
    actor: str | None

    def shows(self, entry: AuditEntry) -> bool:
        if self.everything:
            return True
        if entry.delivery_id is not None:
            return entry.delivery_id in self.delivery_ids
        # Message-level entries (accepted, signature verdict) of this message, and what the
        # caller did itself (the acceptance of its own status packages).
        return entry.message_id == self.message_id or entry.actor == self.actor


def event_filter(
    caller: System | None, message: MessageRow, deliveries: Sequence[DeliveryRow]
) -> EventFilter:
    shown = visible_deliveries(caller, message, deliveries)
    return EventFilter(
        everything=sees_everything(caller) or is_sender(caller, message),
        whole_log=sees_everything(caller),
        message_id=message.id,
        delivery_ids=frozenset(d.id for d in shown),
        actor=caller.name if caller is not None else None,
    )
