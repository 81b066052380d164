"""``exchange serve`` as a real process: embedded PostgreSQL, readiness, signals, shared data dir."""

import json
import signal
from pathlib import Path

from exchange.store.migrate import latest_version
from tests.e2e.conftest import exchange, get, postgres_processes, running_server


def test_embedded_server_serves_and_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pgdata = data_dir / "pgdata"
    with running_server(["--data-dir", str(data_dir)]) as server:
        assert get(f"{server.url}/readyz") == (200, {"status": "ready", "schema_version": latest_version()})
        assert postgres_processes(pgdata), "the embedded cluster should be running"

        # A CLI command on the same data directory joins the running cluster and leaves it running.
        added = exchange("system", "add", "ops", "--role", "admin", "--data-dir", str(data_dir), "--json")
        assert added.returncode == 0, added.stderr
        key = json.loads(added.stdout)["api_key"]
        assert get(f"{server.url}/readyz")[0] == 200
        status, body = get(f"{server.url}/v1/admin/systems", key)
        assert status == 200
        assert [s["name"] for s in body["items"]] == ["ops"]

        assert server.stop(signal.SIGINT) == 0
    events = [e.get("event") for e in server.events]
    assert (
        events.index("server.stopping") < events.index("server.stopped") < events.index("db.embedded.stopped")
    )
    assert postgres_processes(pgdata) == []

    # With no server running, the CLI starts the cluster itself and stops it again.
    listed = exchange("system", "list", "--data-dir", str(data_dir), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)["systems"]] == ["ops"]
    assert postgres_processes(pgdata) == []


def test_a_killed_server_does_not_strand_its_cluster(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pgdata = data_dir / "pgdata"
    with running_server(["--data-dir", str(data_dir)]) as first:
        first.kill()
    assert postgres_processes(pgdata), "PostgreSQL outlives a SIGKILLed server"

    with running_server(["--data-dir", str(data_dir)]) as second:
        assert get(f"{second.url}/readyz")[0] == 200
        assert second.stop(signal.SIGTERM) == 0
    assert postgres_processes(pgdata) == []


def test_sigterm_with_an_external_database(database_url: str, tmp_path: Path) -> None:
    with running_server(["--database-url", database_url, "--data-dir", str(tmp_path)]) as server:
        assert get(f"{server.url}/readyz")[0] == 200
        assert get(f"{server.url}/v1/agencies")[0] == 401
        assert server.stop(signal.SIGTERM) == 0
    assert not (tmp_path / "pgdata").exists(), "no embedded cluster when a URL is given"
    requests = [e for e in server.events if e.get("event") == "http.request"]
    assert [(r["path"], r["status"]) for r in requests] == [("/readyz", 200), ("/v1/agencies", 401)]
