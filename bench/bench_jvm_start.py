"""Benchmark: what the JVM's class archive saves a fresh process of the lake.

Question: how much of a small command's start does mapping Spark's classes from the class
archive (``features/jvm_archive.py``, recorded by ``features setup``) remove?

Baseline ("no archive", measured in the same run): the same fresh process with
``LAKEHOUSE_CLASS_ARCHIVE=0``.  Each process starts the lake's session and runs what a small
command does first (databases, a Delta table created, written, merged into and read with a
join and a window), on a lake of its own; the two settings alternate ``--rounds`` times.
The script prints the median seconds (to the session, and to the end of the work), the JVM's
CPU seconds, the ratio to the baseline and the peak RSS of the process (JVM + Python).

Usage::

    .venv/bin/python bench/bench_jvm_start.py              # 3 rounds
    .venv/bin/python bench/bench_jvm_start.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import PeakMemory

REPO = Path(__file__).resolve().parent.parent

_PROCESS = """
import json, os, time
started = time.perf_counter()
from features import lakehouse
spark = lakehouse.spark_session()
session_s = time.perf_counter() - started
lakehouse.ensure_databases(spark)
spark.sql("create table if not exists ops.bench_start (id bigint, v string) using delta")
spark.sql("insert into ops.bench_start select id, cast(id as string) from range(1000)")
spark.sql("merge into ops.bench_start t using (select id, 'x' as v from range(500, 1500)) s "
          "on t.id = s.id when matched then update set v = s.v "
          "when not matched then insert (id, v) values (s.id, s.v)")
spark.sql("select a.id, row_number() over (partition by a.id % 7 order by a.id) as r "
          "from ops.bench_start a join ops.bench_start b using (id) where a.id % 3 = 0").count()
work_s = time.perf_counter() - started
pid = spark._jvm.ProcessHandle.current().pid()
fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
print("RESULT " + json.dumps({"session_s": session_s, "work_s": work_s, "cpu_s": cpu_s}))
spark.stop()
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting")
    return parser.parse_args(argv)


def run_once(archive: bool, root: Path) -> dict:
    """One fresh process on a lake of its own; its timings and peak RSS."""
    env = dict(
        os.environ,
        LAKEHOUSE_ROOT=str(root),
        SPARK_MASTER="local[2]",
        LAKEHOUSE_CLASS_ARCHIVE="1" if archive else "0",
        PYTHONPATH=str(REPO),
    )
    with PeakMemory() as memory:
        proc = subprocess.run(
            [sys.executable, "-c", _PROCESS],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    line = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the bench process failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return {**json.loads(line[len("RESULT ") :]), "peak_gib": memory.peak / 2**30}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from features import jvm_archive

    path = jvm_archive.archive_path()
    if path is None or not path.is_file():
        raise SystemExit(
            "no class archive recorded for this JDK and these jars: run "
            "`features setup` (or `make setup`) first"
        )
    print(
        f"bench: {args.rounds} fresh processes per setting, {os.cpu_count()} cores, "
        f"archive {path} ({path.stat().st_size / 2**20:.0f} MiB)",
        flush=True,
    )
    runs: dict[str, list[dict]] = {"no archive": [], "archive": []}
    scratch = Path(tempfile.mkdtemp(prefix="bench_jvm_start_"))
    try:
        for round_ in range(args.rounds):
            for name in runs:
                root = scratch / f"{name.replace(' ', '_')}_{round_}"
                runs[name].append(run_once(name == "archive", root))
                shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = {
        key: statistics.median(r[key] for r in runs["no archive"])
        for key in ("session_s", "work_s", "cpu_s")
    }
    print(
        f"{'setting':<12}{'session s':>11}{'total s':>10}{'JVM CPU s':>11}{'ratio':>8}"
        f"{'peak RSS GiB':>14}"
    )
    for name, results in runs.items():
        median = {
            key: statistics.median(r[key] for r in results)
            for key in ("session_s", "work_s", "cpu_s")
        }
        peak = max(r["peak_gib"] for r in results)
        print(
            f"{name:<12}{median['session_s']:>11.1f}{median['work_s']:>10.1f}"
            f"{median['cpu_s']:>11.1f}{median['work_s'] / base['work_s']:>8.2f}{peak:>14.2f}"
        )
    print(f"baseline: the same process without the archive, median of {args.rounds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
