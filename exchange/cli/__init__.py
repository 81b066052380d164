"""The ``exchange`` command line: serve the axis and manage its registry.

Errors go to stderr as one line (and their details below it): exit status 2 for
usage and configuration errors, 1 for failures.
"""

from __future__ import annotations

import sys

import click

from exchange import __version__
from exchange.cli import agencies, audit, certs, check, db, demo, evidence, operations, send, serve, systems
from exchange.errors import ConfigError, ExchangeError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="exchange")
def cli() -> None:
    """The e-document interconnection axis: accept, store and deliver edXML packages."""


cli.add_command(serve.serve)
cli.add_command(db.db)
cli.add_command(systems.system)
cli.add_command(agencies.agency)
cli.add_command(demo.demo)
cli.add_command(check.check)
cli.add_command(certs.cert)
cli.add_command(operations.deliveries)
cli.add_command(operations.trace)
cli.add_command(audit.audit)
cli.add_command(evidence.evidence)
cli.add_command(send.send)


def main() -> None:
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return the exit status, printing errors as one line."""
    try:
        result = cli.main(argv, prog_name="exchange", standalone_mode=False)
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx is not None else "exchange"
        _fail(f"{command}: {error.format_message()}")
        return 2
    except ConfigError as error:
        _fail(f"exchange: {error.message}")
        return 2
    except ExchangeError as error:
        _fail(f"exchange: {error.message}", [str(detail) for detail in error.details])
        return 1
    except click.ClickException as error:
        _fail(f"exchange: {error.format_message()}")
        return error.exit_code
    except click.Abort:
        _fail("exchange: aborted")
        return 1
    return result if isinstance(result, int) else 0


def _fail(message: str, details: list[str] | None = None) -> None:
    click.echo(message, err=True)
    for detail in details or []:
        click.echo(f"  {detail}", err=True)
