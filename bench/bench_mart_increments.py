"""Benchmark: one day's increment of the three feature marts, this commit's SQL against another's.

Question: what does an incremental run of ``customer_usage_daily``, ``customer_support`` and
``customer_billing`` cost (the daily build's last and longest nodes), and how does it compare
with the SQL of a baseline commit (``--baseline``, default the MERGE version the partition
overwrite replaced)?

Both run in this one warm process on the same lake, alternating, each round starting from
the same state: the three marts restored to their version before the lake's last daily
build, so each run recomputes the last day (and whatever late records reach back).  The
baseline's dbt project is that commit's ``dbt_project/`` (``git archive``) run with the same
profiles.  Every run must leave the same rows (a fingerprint of each mart), or the script
fails.  Printed: per round and project the wall seconds of ``dbt run`` and each mart's
node seconds; the ratio of the medians (this / baseline); peak RSS.

The lake: ``--root`` of a lake the daily job built (two runs at least), or a new one of
``--customers`` x ``--days`` made with ``features generate`` and two ``features daily``
runs (a backfill without training, then the last day).

Usage::

    .venv/bin/python bench/bench_mart_increments.py --customers 300 --days 60
    .venv/bin/python bench/bench_mart_increments.py --root /tmp/lake --baseline 4c8a8b8
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchkit import PeakMemory

REPO = Path(__file__).resolve().parent.parent
FEATURES = str(Path(sys.executable).with_name("features"))
MARTS = ("customer_usage_daily", "customer_support", "customer_billing")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="a lake the daily job built (default: new)")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", default="4c8a8b8", help="commit whose dbt SQL to compare")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


def build_lake(root: Path, customers: int, days: int, seed: int) -> None:
    """Generate landing files and run the daily job twice (backfill, then the last day)."""
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root)}
    start = dt.date(2026, 1, 1)
    last = start + dt.timedelta(days=days - 1)
    for args in (
        ["generate", "--customers", str(customers), "--days", str(days), "--seed", str(seed),
         "--start", start.isoformat()],
        ["daily", "--from", start.isoformat(), "--to", (last - dt.timedelta(days=1)).isoformat(),
         "--retrain", "never"],
        ["daily", "--date", last.isoformat(), "--retrain", "never"],
    ):  # fmt: skip
        proc = subprocess.run([FEATURES, *args], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"features {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def baseline_project(rev: str, into: Path) -> Path:
    """``dbt_project/`` of commit ``rev``, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "dbt_project"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "dbt_project"


def fingerprint(spark, table: str) -> tuple[int, int]:
    """(rows, sum of a 64-bit hash per row) of a table, whatever its file layout."""
    import pyspark.sql.functions as F

    frame = spark.table(table)
    row = frame.select(F.count("*"), F.sum(F.xxhash64(*frame.columns).cast("decimal(38,0)")))
    count, total = row.first()
    return int(count), int(total or 0)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    root = args.root
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="bench_marts_"))
        print(f"bench: building a lake of {args.customers} x {args.days} under {root}", flush=True)
        build_lake(root, args.customers, args.days, args.seed)
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    sys.path.insert(0, str(REPO))
    from features import console, dbt_runs, lakehouse

    console.configure(root)
    spark = lakehouse.spark_session(lakehouse.settings())
    tables = [f"features.{mart}" for mart in MARTS]
    base = {t: spark.sql(f"describe history {t} limit 1").first()["version"] - 1 for t in tables}
    projects = {
        "baseline": baseline_project(args.baseline, Path(tempfile.mkdtemp(prefix="bench_dbt_"))),
        "this": REPO / "dbt_project",
    }
    walls: dict[str, list[float]] = {label: [] for label in projects}
    prints: dict[str, set] = {label: set() for label in projects}
    with PeakMemory() as memory:
        for round_ in range(args.rounds):
            for label, project in projects.items():
                for table in tables:
                    spark.sql(f"restore table {table} to version as of {base[table]}")
                started = time.perf_counter()
                result = dbt_runs.invoke(
                    ["run", "--select", *MARTS, "--log-level", "none"], project=project
                )
                wall = time.perf_counter() - started
                if not result.success:
                    raise SystemExit(f"{label}: {dbt_runs.failures(result)}")
                nodes = {r.node.name: round(r.execution_time, 1) for r in result.result}
                prints[label].add(tuple(fingerprint(spark, t) for t in tables))
                walls[label].append(wall)
                print(f"round {round_} {label:<9} {wall:6.1f} s  {json.dumps(nodes)}", flush=True)
    if len(prints["this"] | prints["baseline"]) != 1:
        raise SystemExit(f"the marts differ between runs: {prints}")
    this, baseline = (statistics.median(walls[k]) for k in ("this", "baseline"))
    print(
        f"median dbt run: this {this:.1f} s, baseline ({args.baseline}) {baseline:.1f} s, "
        f"ratio {this / baseline:.2f}; first round (cold) {walls['this'][0]:.1f} s against "
        f"{walls['baseline'][0]:.1f} s; peak RSS {memory.peak / 2**30:.2f} GiB"
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
