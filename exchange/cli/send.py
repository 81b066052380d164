"""``exchange send FILE --as SYSTEM``: post a package to a running axis, as a DMS would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import click

from exchange.cli.common import print_json, settings_options
from exchange.demo import load_kept_keys
from exchange.errors import ExchangeError
from exchange.settings import Settings


class SendFailed(ExchangeError):
    code = "send_failed"


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "system", required=True, help="The system that sends (its demo key is used).")
@click.option("--key", envvar="EXCHANGE_API_KEY", help="The system's API key (default: the kept demo key).")
@click.option("--url", help="The axis (default: http://<server.host>:<server.port>).")
@settings_options
def send(settings: Settings, file: Path, system: str, key: str | None, url: str | None) -> None:
    """Post FILE (an edXML package) to the axis as SYSTEM and print the answer.

    Without --key, the key is taken from <data-dir>/demo/keys.json, where `exchange demo`
    keeps the demo systems' keys. Exit status 1 when the axis refuses the package.
    """
    if key is None:
        key = load_kept_keys(settings.data_dir).get(system)
        if key is None:
            raise click.UsageError(f"no kept key for {system!r}: give --key, or run 'exchange demo' first")
    base = url or f"http://{settings.server.host}:{settings.server.port}"
    request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own axis)
        f"{base.rstrip('/')}/v1/packages",
        data=file.read_bytes(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/xml"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            print_json(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        print_json(json.loads(error.read() or b"{}"))
        raise SendFailed(f"the axis refused {file.name} ({error.code})") from None
    except urllib.error.URLError as error:
        raise SendFailed(f"no axis answers at {base} ({error.reason}); start one with 'make run'") from None
