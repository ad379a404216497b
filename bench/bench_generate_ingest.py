"""Benchmark: generating and ingesting the telco sources, against an I/O floor.

Question: how fast do we generate the landing files and ingest them into bronze (with
quarantine), per usage row, compared with the fastest Spark can write rows at all on the same
machine in the same run?

Baseline ("I/O floor"): ``spark.range(N)`` with nine cheap derived columns (as many as a
usage event) written straight to Parquet.  The generator and the ingestion are reported as
rows/s and as a ratio to that floor (1.0 = as fast as writing the rows at all).  Peak memory
is the highest RSS sampled every 0.2 s of the Python driver and of the JVM (its child).

Usage::

    .venv/bin/python bench/bench_generate_ingest.py --usage-rows 1_000_000        # smoke
    .venv/bin/python bench/bench_generate_ingest.py --usage-rows 10_000_000
    .venv/bin/python bench/bench_generate_ingest.py --usage-rows 100_000_000 --days 90

It works in a fresh lakehouse under a temporary directory (or ``--root``), which it deletes
afterwards unless ``--keep``.  Spark settings come from the environment as usual
(``LAKEHOUSE_DRIVER_MEMORY``, ``LAKEHOUSE_SHUFFLE_PARTITIONS``, ``SPARK_MASTER``); 100M rows
on 2 cores wants ``LAKEHOUSE_DRIVER_MEMORY=8g`` and about 10 GB of free disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchkit import PeakMemory, io_floor_seconds


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usage-rows", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, help="lakehouse root (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the lakehouse afterwards")
    parser.add_argument("--no-ingest", dest="ingest", action="store_false")
    args = parser.parse_args(argv)

    root = args.root or Path(tempfile.mkdtemp(prefix="bench_lake_"))
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from features import lakehouse
    from features.generate import config_for_usage_rows, generate
    from features.ingest import ingest_batches

    with PeakMemory() as memory:
        spark = lakehouse.spark_session()
        lakehouse.ensure_databases(spark)
        cfg = config_for_usage_rows(args.usage_rows, days=args.days, seed=args.seed)
        print(
            f"bench: {cfg.customers:,} customers x {cfg.days} days (target "
            f"{args.usage_rows:,} usage rows), {spark.sparkContext.defaultParallelism} cores, "
            f"lake {root}"
        )
        floor_s = io_floor_seconds(spark, args.usage_rows, str(root / "bench_floor"))
        floor_rate = args.usage_rows / floor_s
        print(f"bench: floor written in {floor_s:.1f}s")
        started = time.perf_counter()
        summary = generate(spark, cfg, log=lambda line: print(f"  {line}"))
        gen_s = time.perf_counter() - started
        usage_rows = summary.rows["usage"]
        ingest_s = read_rows = 0
        if args.ingest:
            started = time.perf_counter()
            results = ingest_batches(spark, cfg.dates, log=lambda line: print(f"  {line}"))
            ingest_s = time.perf_counter() - started
            read_rows = sum(c.read for counts in results.values() for c in counts.values())

    total = sum(summary.rows.values())
    print()
    print(f"{'step':<34}{'rows':>14}{'seconds':>10}{'rows/s':>14}{'vs floor':>10}")
    lines = [
        ("floor: spark.range -> parquet", args.usage_rows, floor_s),
        ("generate usage (parquet)", usage_rows, summary.seconds["usage"]),
        ("generate all sources", total, gen_s),
    ]
    if args.ingest:
        lines.append(("ingest all sources -> bronze", read_rows, ingest_s))
    for name, rows, seconds in lines:
        rate = rows / seconds if seconds else float("nan")
        print(f"{name:<34}{rows:>14,}{seconds:>10.1f}{rate:>14,.0f}{rate / floor_rate:>10.2f}")
    print(
        f"peak RSS: JVM {memory.jvm_peak / 2**30:.2f} GiB, "
        f"Python {memory.python_peak / 2**20:.0f} MiB"
    )
    auc = summary.ceiling_auc
    print(f"ceiling AUC of the hidden risk score: {'n/a' if auc is None else f'{auc:.3f}'}")
    if not (args.keep or args.root):
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
