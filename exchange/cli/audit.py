"""``exchange audit``: sealing and verifying the audit hash chain."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from cryptography import x509
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from exchange.audit_chain import SEALER_WAIT_S, ChainReport, SealResult, seal_pending, verify_chain
from exchange.axis_identity import load_axis_signer
from exchange.cli.common import json_option, print_json, settings_options, with_database
from exchange.settings import Settings
from exchange.store import chain as chain_store
from exchange.store.db import Connection


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command()
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The axis certificate that signs checkpoints (default: the configured one).",
)
@json_option
@settings_options
def verify(settings: Settings, certificate: Path | None, as_json: bool) -> int:
    """Walk the whole chain; name the first entry edited, deleted, inserted or reordered."""
    axis = (
        x509.load_pem_x509_certificate(certificate.read_bytes())
        if certificate
        else load_axis_signer(settings).certificate
    )
    console = Console(stderr=True)
    with Progress(
        TextColumn("verifying audit chain"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
        transient=False,
    ) as progress:
        task = progress.add_task("chain", total=None)

        async def work(conn: Connection) -> ChainReport:
            progress.update(task, total=await chain_store.sealed_count(conn))
            return await verify_chain(
                conn,
                axis,
                max_seal_delay=timedelta(seconds=settings.audit.max_seal_delay_s),
                progress=lambda done: progress.update(task, completed=done),
            )

        report = with_database(settings, work)
    if as_json:
        print_json(report.as_dict())
    else:
        verdict = "intact" if report.intact else "TAMPERED"
        click.echo(
            f"audit chain {verdict}: {report.entries} entries, {report.checkpoints} signed checkpoints "
            f"verified, {report.unsealed} not sealed yet"
        )
        if report.first_bad_entry is not None:
            click.echo(f"first bad entry: {report.first_bad_entry}")
        for problem in report.problems[:20]:
            click.echo(f"  {problem}")
        if len(report.problems) > 20:
            click.echo(f"  … and {len(report.problems) - 20} more")
    return 0 if report.intact else 1


@audit.command()
@click.option("--checkpoint", is_flag=True, help="Sign a checkpoint of the head now.")
@json_option
@settings_options
def seal(settings: Settings, checkpoint: bool, as_json: bool) -> None:
    """Seal every committed entry now (a running server does this every second)."""
    signer = load_axis_signer(settings)

    async def work(conn: Connection) -> SealResult:
        total = SealResult()
        while True:
            # A running server's sealer at work is waited for, not taken for "nothing to seal".
            result = await seal_pending(conn, signer, force_checkpoint=checkpoint, wait_s=SEALER_WAIT_S)
            total.sealed += result.sealed
            total.checkpoint = result.checkpoint or total.checkpoint
            if result.sealed == 0:
                return total

    result = with_database(settings, work)
    signed = None if result.checkpoint is None else result.checkpoint.seq
    if as_json:
        print_json({"sealed": result.sealed, "checkpoint_seq": signed})
    else:
        click.echo(
            f"sealed {result.sealed} entries" + (f"; checkpoint at position {signed}" if signed else "")
        )
