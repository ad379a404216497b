"""Benchmark: small runs, as a new user meets them (``features demo``, one more daily run).

Question: how long do ``features demo`` at its default size and one more daily run of the demo
lake (no retraining due) take end to end, and where does the time go?

Both run as the user runs them: the ``features`` command in a fresh process (JVM start
included), over a fresh lake under a temporary directory (or ``--root``).  The demo generates
``--customers`` x ``--days`` of landing files, backfills all but the last day and runs the
last day; the extra daily run is ``features daily --date <last day> --force --retrain never``
(every step again, the ingested batch replaced: what a daily run costs when no training is due).
Per step it prints the seconds the command printed for it.

Baselines, measured in the same run after the commands (so that they share nothing with
them): the I/O floor, ``spark.range(N)`` with nine cheap columns written to Parquet where N is
the demo's record count, and the JVM floor, the seconds to start the lake's SparkSession and
read one Delta table in a fresh process.  "x floor" = seconds / I/O floor.  Peak RSS is of the
command's whole process tree.

Usage::

    .venv/bin/python bench/bench_small.py                      # demo defaults
    .venv/bin/python bench/bench_small.py --customers 200 --days 80
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import PeakMemory, io_floor_seconds

REPO = Path(__file__).resolve().parent.parent
FEATURES = str(Path(sys.executable).with_name("features"))
STEP_LINE = re.compile(r"^\[daily (\S+)\] (\w+): .*\((\d+)s\)$")
RECORDS = re.compile(r"generated ([\d,]+) records .*\((\d+)s\)$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, help="lakehouse root (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the lakehouse afterwards")
    return parser.parse_args(argv)


def run_command(args: list[str], env: dict[str, str]) -> tuple[float, float, list[str]]:
    """Run ``features ARGS``; return (seconds, peak RSS GiB of its tree, its output lines)."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        proc = subprocess.run(
            [FEATURES, *args], env=env, capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - started
    lines = proc.stdout.splitlines()
    if proc.returncode != 0:
        raise SystemExit(
            f"bench_small: features {' '.join(args)} failed "
            f"({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return seconds, memory.peak / 2**30, lines


def steps(lines: list[str]) -> list[tuple[str, str, int]]:
    """(batch date, step, seconds) of each closing step line, in order."""
    found = []
    for line in lines:
        match = STEP_LINE.match(line.strip().removeprefix("\x1b[K"))
        if match:
            found.append((match[1], match[2], int(match[3])))
    return found


def floors(root: Path, rows: int) -> tuple[float, float]:
    """(JVM floor, I/O floor) in seconds, measured in this process after the commands."""
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    sys.path.insert(0, str(REPO))
    from features import lakehouse

    started = time.perf_counter()
    spark = lakehouse.spark_session()
    spark.table("ops.pipeline_runs").count()
    jvm_s = time.perf_counter() - started
    io_s = io_floor_seconds(spark, rows, str(root / "bench_floor"))
    spark.stop()
    return jvm_s, io_s


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="bench_small_"))
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    print(
        f"bench: {args.customers:,} customers x {args.days} days, {os.cpu_count()} cores, "
        f"lake {root}",
        flush=True,
    )
    demo_s, demo_peak, demo_lines = run_command(
        [
            "demo",
            "--customers",
            str(args.customers),
            "--days",
            str(args.days),
            "--seed",
            str(args.seed),
        ],
        env,
    )
    demo_steps = steps(demo_lines)
    last = demo_steps[-1][0]
    daily_s, daily_peak, daily_lines = run_command(
        ["daily", "--date", last, "--force", "--retrain", "never"], env
    )
    daily_steps = steps(daily_lines)
    generated = next((RECORDS.search(line) for line in demo_lines if RECORDS.search(line)), None)
    records = int(generated[1].replace(",", "")) if generated else 0
    jvm_s, io_s = floors(root, records or 1_000_000)

    print()
    print(f"{'run':<26}{'step':<12}{'seconds':>9}{'x floor':>9}")
    if generated:
        secs = int(generated[2])
        print(f"{'demo':<26}{'generate':<12}{secs:>9}{secs / io_s:>9.1f}")
    runs = (("demo", demo_steps), ("one more daily run", daily_steps))
    for label, found in runs:
        for day, step, secs in found:
            print(f"{label + ' ' + day[5:]:<26}{step:<12}{secs:>9}{secs / io_s:>9.1f}")
    print(
        f"{'demo':<26}{'total':<12}{demo_s:>9.0f}{demo_s / io_s:>9.1f}   peak RSS "
        f"{demo_peak:.2f} GiB"
    )
    print(
        f"{'one more daily run':<26}{'total':<12}{daily_s:>9.0f}{daily_s / io_s:>9.1f}   "
        f"peak RSS {daily_peak:.2f} GiB"
    )
    print(
        f"baselines: I/O floor {io_s:.1f}s ({records:,} rows -> parquet); JVM floor "
        f"{jvm_s:.1f}s (SparkSession + one Delta read in a fresh process)"
    )
    print(
        f"targets (issue: small runs): demo <= 240 s: {demo_s:.0f} s; one more daily run "
        f"<= 60 s: {daily_s:.0f} s"
    )
    if not (args.keep or args.root):
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
