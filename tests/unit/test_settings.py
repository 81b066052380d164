import tomllib
from pathlib import Path

import pytest

from exchange.errors import ConfigError
from exchange.settings import Settings, load_settings
from tests.conftest import REPO

SHIPPED_CONFIG = REPO / "config" / "exchange.toml"


def test_shipped_config_documents_every_key_with_the_builtin_default() -> None:
    from_file = load_settings(SHIPPED_CONFIG)
    assert from_file == load_settings(None)

    documented = tomllib.loads(SHIPPED_CONFIG.read_text("utf-8"))
    expected = Settings().model_dump(mode="json")
    assert set(documented) == set(expected)
    for section, value in expected.items():
        if isinstance(value, dict):
            assert set(documented[section]) == set(value), section


def test_sources_in_order_file_environment_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "exchange.toml"
    config.write_text('[server]\nport = 9001\nhost = "0.0.0.0"\n[database]\npool_max_size = 4\n')
    assert load_settings(config).server.port == 9001

    monkeypatch.setenv("EXCHANGE_SERVER__PORT", "9002")
    monkeypatch.setenv("EXCHANGE_DATABASE__URL", "postgresql://example/db")
    from_env = load_settings(config)
    assert from_env.server.port == 9002
    assert from_env.server.host == "0.0.0.0"
    assert from_env.database.pool_max_size == 4
    assert from_env.database.url == "postgresql://example/db"
    assert not from_env.embedded_database

    flagged = load_settings(config, server={"port": 9003}, database={"url": None})
    assert flagged.server.port == 9003
    assert flagged.database.url == "postgresql://example/db"


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "other.toml"
    config.write_text('data_dir = "/srv/axis"\n')
    monkeypatch.setenv("EXCHANGE_CONFIG", str(config))
    assert load_settings(None).data_dir == Path("/srv/axis")


def test_missing_file_unknown_key_and_bad_value_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")

    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_settings(unknown)

    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(bad)

    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(broken)


def test_a_lease_shorter_than_a_push_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "exchange.toml"
    config.write_text("[delivery]\nlease_s = 30.5\npush_timeout_s = 30.0\n")
    refused = r"delivery: .*lease_s \(30.5\) must be at least 1 s longer than push_timeout_s \(30\)"
    with pytest.raises(ConfigError, match=refused):
        load_settings(config)
    config.write_text("[delivery]\nlease_s = 31.0\npush_timeout_s = 30.0\n")
    assert load_settings(config).delivery.lease_s == 31.0
