"""``exchange deliveries`` and ``exchange trace``: operations on the running exchange."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import click

from exchange import timeline
from exchange.cli.common import json_option, print_json, print_table, settings_options, with_database
from exchange.operations import requeue_deliveries
from exchange.settings import Settings
from exchange.store import deliveries as delivery_store
from exchange.store.db import Connection
from exchange.store.deliveries import DeliveryRow


@click.group()
def deliveries() -> None:
    """Inspect deliveries and re-queue the ones that failed."""


@deliveries.command("list")
@click.option("--state", type=click.Choice(delivery_store.STATES), help="Only deliveries in this state.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@settings_options
def list_(settings: Settings, state: str | None, limit: int, as_json: bool) -> None:
    """List deliveries, most recently changed first."""

    async def work(conn: Connection) -> list[DeliveryRow]:
        return await delivery_store.list_deliveries(conn, state, limit)

    rows = with_database(settings, work)
    if as_json:
        print_json({"deliveries": [row.as_dict() for row in rows]})
        return
    print_table(
        ["delivery", "message", "recipient", "mode", "state", "attempts", "last error"],
        [(r.id, r.message_id, r.recipient, r.mode, r.state, r.attempts, r.last_error) for r in rows],
        keep_whole=["delivery"],
    )


@deliveries.command()
@click.argument("delivery_ids", nargs=-1, required=True, type=click.UUID)
@json_option
@settings_options
def requeue(settings: Settings, delivery_ids: tuple[UUID, ...], as_json: bool) -> int:
    """Put failed or expired deliveries back in the queue (attempts start again)."""

    async def work(conn: Connection) -> list[UUID]:
        return await requeue_deliveries(conn, "cli", delivery_ids)

    requeued = with_database(settings, work)
    skipped = [i for i in delivery_ids if i not in requeued]
    if as_json:
        print_json({"requeued": [str(i) for i in requeued], "not_requeued": [str(i) for i in skipped]})
    else:
        for delivery_id in requeued:
            click.echo(f"requeued {delivery_id}")
        for delivery_id in skipped:
            click.echo(f"not requeued {delivery_id} (unknown, or not failed/expired)", err=True)
    return 0 if not skipped else 1


@click.command()
@click.argument("message_id", type=click.UUID)
@json_option
@settings_options
def trace(settings: Settings, message_id: UUID, as_json: bool) -> None:
    """The complete timeline of a document: every recipient, attempt, download and status."""

    async def work(conn: Connection) -> dict[str, Any]:
        return await timeline.trace(conn, None, message_id)

    view = with_database(settings, work)
    if as_json:
        print_json(view)
        return
    click.echo(f"{view['kind']} {view['document_id']} from {view['sender']}, received {view['received_at']}")
    click.echo(f"signature: {view['signature']['verdict']} ({view['signature']['reason']})")
    for delivery in view["deliveries"]:
        statuses = (
            ", ".join(
                f"{s['code']} {s['label']}" + (f" [{s['flag']}]" if s["flag"] else "")
                for s in delivery["statuses"]
            )
            or "none"
        )
        click.echo(
            f"  to {delivery['recipient']} ({delivery['mode']}): {delivery['state']}, "
            f"{delivery['attempts']} attempt(s); statuses: {statuses}"
        )
    for event in view["events"]:
        click.echo(f"  {event['at']}  {event['action']:<26} {event['actor']:<20} {_brief(event['details'])}")


def _brief(details: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in details.items() if value not in (None, "", []))
