"""Benchmark: what a small Delta table costs to commit to and to read cold, with our settings.

Question: how much of the fixed cost of each small table (ingestion's small sources, dbt's
models, the ops tables) do the lake's Delta settings remove?

Baseline ("Delta defaults", measured in the same run): the same work with Delta's own
``snapshotPartitions`` (50) and ``checkpointInterval`` (10).  Ours: ``spark_conf()`` (the
lake's shuffle partitions, a checkpoint every 100 commits).  Each configuration runs twice in
fresh JVMs, as the daily job's processes do: one writes ``--tables`` tables of ``--commits``
small appends each, the next reads every table once (state rebuilt from the log).  The
script prints seconds per commit and per cold read, the ratio to the baseline, and the peak
RSS of each process (JVM + Python).

Usage::

    .venv/bin/python bench/bench_delta_state.py                # 4 tables x 25 commits
    .venv/bin/python bench/bench_delta_state.py --tables 8 --commits 40
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import PeakMemory

CONFIGS = {
    "Delta defaults": {
        "spark.databricks.delta.snapshotPartitions": "50",
        "spark.databricks.delta.properties.defaults.checkpointInterval": "10",
    },
    "lake settings": {},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=4)
    parser.add_argument("--commits", type=int, default=25)
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="work folder (a temporary one by default, deleted afterwards)",
    )
    parser.add_argument("--child", choices=("write", "read"), help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=tuple(CONFIGS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _session(config: str, root: Path):
    from pyspark.sql import SparkSession

    from features import lakehouse

    cfg = lakehouse.LakehouseSettings.from_env({**os.environ, "LAKEHOUSE_ROOT": str(root)})
    lakehouse.ensure_jvm_jars(cfg)
    builder = SparkSession.builder
    for key, value in {**lakehouse.spark_conf(cfg), **CONFIGS[config]}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def child(args: argparse.Namespace) -> None:
    """One fresh JVM: write every table, or read each once; print JSON timings."""
    root = args.root
    with PeakMemory() as memory:
        spark = _session(args.config, root)
        started = time.perf_counter()
        for table in range(args.tables):
            path = str(root / "tables" / f"t{table}")
            if args.child == "read":
                rows = spark.read.format("delta").load(path).count()
                assert rows == 5 * args.commits, (path, rows)
                continue
            for commit in range(args.commits):
                spark.range(commit * 5, commit * 5 + 5).selectExpr(
                    "id", "cast(id as string) as label"
                ).write.format("delta").mode("append").save(path)
        seconds = time.perf_counter() - started
        spark.stop()
    print(json.dumps({"seconds": seconds, "peak_mib": memory.peak / 2**20}))


def run_child(mode: str, config: str, root: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--config",
        config,
        "--root",
        str(root),
        "--tables",
        str(args.tables),
        "--commits",
        str(args.commits),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} with {config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    work = args.root or Path(tempfile.mkdtemp(prefix="bench-delta-state-"))
    results = {}
    try:
        for config in CONFIGS:
            root = work / config.replace(" ", "_")
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            print(
                f"[{config}] writing {args.tables} tables x {args.commits} commits ...", flush=True
            )
            write = run_child("write", config, root, args)
            print(f"[{config}] reading each table cold ...", flush=True)
            read = run_child("read", config, root, args)
            results[config] = (write, read)
    finally:
        if args.root is None:
            shutil.rmtree(work, ignore_errors=True)
    commits = args.tables * args.commits
    base_write, base_read = results["Delta defaults"]
    print(
        f"\n{args.tables} tables x {args.commits} commits of 5 rows; "
        "every phase in a fresh JVM (its first table pays the JIT warm-up)"
    )
    print(
        f"{'configuration':<16} {'s/commit':>9} {'s/cold read':>12} {'write x':>8} "
        f"{'read x':>7} {'peak MiB w/r':>13}"
    )
    for config, (write, read) in results.items():
        print(
            f"{config:<16} {write['seconds'] / commits:>9.2f} "
            f"{read['seconds'] / args.tables:>12.2f} "
            f"{write['seconds'] / base_write['seconds']:>8.2f} "
            f"{read['seconds'] / base_read['seconds']:>7.2f} "
            f"{write['peak_mib']:>6.0f}/{read['peak_mib']:<6.0f}"
        )
    print("(x: seconds as a fraction of the Delta defaults' in this run; lower is faster)")


if __name__ == "__main__":
    main()
