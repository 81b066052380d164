"""The command line's surface: help everywhere, one-line usage errors with status 2."""

from pathlib import Path

import click
import pytest

from exchange.cli import cli, run


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _command_paths(command, (*prefix, name))
    return paths


ALL_COMMANDS = _command_paths(cli)


def test_the_contracts_commands_exist() -> None:
    for path in [
        ("serve",),
        ("db", "migrate"),
        ("system", "add"),
        ("system", "list"),
        ("system", "rotate-key"),
        ("agency", "add"),
        ("agency", "list"),
        ("agency", "import"),
        ("demo",),
    ]:
        assert path in ALL_COMMANDS


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "exchange")
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: exchange")


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        ["serve", "--bogus"],
        ["system", "add"],
        ["agency", "add", "000.00.00.H26"],
        ["nope"],
        ["serve", "--port", "not-a-number"],
        ["system", "add", "x", "--role", "king"],
    ],
)
def test_usage_errors_are_one_line_and_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_or_broken_config_file_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["agency", "list", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err

    broken = tmp_path / "broken.toml"
    broken.write_text("[server]\nport = 'x'\n")
    assert run(["agency", "list", "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "server.port" in err
