"""How long `exchange audit verify` takes over a large chain (default 1,000,000 entries).

    .venv/bin/python bench/audit_verify.py [--entries 1000000] [--database-url URL]

Without a URL it starts a private PostgreSQL in a temporary directory. Entries are
written in bulk with realistic details, sealed with the production sealer (timed too),
checkpointed, then verified end to end exactly as the CLI does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from exchange.audit_chain import seal_pending, verify_chain
from exchange.store.embedded import embedded_cluster
from exchange.store.migrate import apply_migrations
from exchange.trust import devca
from exchange.trust.signing import Signer

FILL = """
INSERT INTO audit_log (actor, action, message_id, delivery_id, details)
SELECT 'dms-' || (n % 50),
       (ARRAY['message.accepted', 'delivery.created', 'delivery.pushed', 'status.recorded'])[n % 4 + 1],
       gen_random_uuid(), gen_random_uuid(),
       jsonb_build_object('recipient', '000.00.' || lpad((n % 99)::text, 2, '0') || '.H26', 'attempt', n % 3)
FROM generate_series(1, $1) AS n
"""


async def bench(url: str, entries: int) -> dict[str, float]:
    ca = devca.make_ca()
    axis = devca.issue_signing_cert(ca, organ_id=None, common_name="exchange-axis (bench)")
    signer = Signer(axis.certificate, axis.key)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
        started = time.perf_counter()
        await conn.execute(FILL, entries)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        while (await seal_pending(conn, signer, batch=20_000, force_checkpoint=True)).sealed:
            pass
        sealed = time.perf_counter() - started
        started = time.perf_counter()
        report = await verify_chain(conn, axis.certificate)
        verified = time.perf_counter() - started
        assert report.intact, report.problems[:3]
        assert report.entries >= entries
    finally:
        await conn.close()
    return {
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "fill_s": round(filled, 1),
        "seal_s": round(sealed, 1),
        "seal_per_s": round(report.entries / sealed),
        "verify_s": round(verified, 1),
        "verify_per_s": round(report.entries / verified),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.database_url or stack.enter_context(
            embedded_cluster(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "pgdata")
        )
        print(json.dumps(asyncio.run(bench(url, args.entries))))


if __name__ == "__main__":
    main()
