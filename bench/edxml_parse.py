"""Parse + validate throughput of the format layer, and peak memory for a 20 MB package.

    .venv/bin/python bench/edxml_parse.py [--seconds 3] [--json]

Each size is a realistic edoc (header as DMS software writes it, one PDF-like
attachment of random bytes) built by exchange.edxml.builder. Throughput is measured
in this process; memory in a fresh child process per size, as the growth of peak RSS
while parsing (the package bytes are already in memory before the measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.edxml.builder import build_edoc
from exchange.edxml.package import parse_package
from tests.edxml_factories import small_edoc

SIZES = {"20k": 20 * 1024, "1m": 1024 * 1024, "20m": 20 * 1024 * 1024}


def package_of(size: int) -> bytes:
    """An edoc whose total size is close to ``size`` bytes."""
    header = len(build_edoc(small_edoc(body=b"")))
    body = os.urandom(max(0, (size - header) * 3 // 4))
    return build_edoc(small_edoc(body=body))


def rate(work: Callable[[], object], seconds: float) -> float:
    """How many times per second ``work`` runs, after one warm-up run (schemas compiled)."""
    work()
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or count < 3:
        work()
        count += 1
    return count / elapsed


def peak_growth_mb(data: bytes) -> float:
    """Parse ``data`` once in a fresh child and report how much its peak RSS grew meanwhile."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent.
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from exchange.edxml.package import parse_package; from tests.edxml_factories import sample;"
        "hwm = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]);"
        "parse_package(sample('status.edxml'));"  # schemas compiled, modules loaded
        "data = open(sys.argv[1], 'rb').read();"
        "before = hwm(); parse_package(data); print(hwm() - before)"
    )
    root = Path(__file__).resolve().parent.parent
    with tempfile.NamedTemporaryFile(suffix=".edxml") as file:
        file.write(data)
        file.flush()
        out = subprocess.run(
            [sys.executable, "-c", code, file.name], cwd=root, capture_output=True, text=True, check=True
        )
    return int(out.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent on each size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    packages = {label: package_of(size) for label, size in SIZES.items()}
    for label, data in packages.items():
        per_s = rate(lambda data=data: parse_package(data), args.seconds)
        results[label] = {
            "bytes": len(data),
            "packages_per_s": round(per_s, 1),
            "mb_per_s": round(per_s * len(data) / 1e6, 1),
        }
    results["20m"]["peak_rss_growth_mb"] = round(peak_growth_mb(packages["20m"]), 1)
    results["20m"]["peak_over_size"] = round(
        results["20m"]["peak_rss_growth_mb"] * 2**20 / results["20m"]["bytes"], 2
    )
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'size':>6} {'bytes':>10} {'packages/s':>11} {'MB/s':>7}")
    for label in SIZES:
        row = results[label]
        print(f"{label:>6} {row['bytes']:>10} {row['packages_per_s']:>11} {row['mb_per_s']:>7}")
    print(
        f"20 MB package: peak RSS grew {results['20m']['peak_rss_growth_mb']} MB while parsing "
        f"({results['20m']['peak_over_size']}x its size)"
    )


if __name__ == "__main__":
    main()
