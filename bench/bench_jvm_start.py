"""Benchmark: what a fresh process of the lake spends before its work, and what saves it.

Questions (``--compare``):

- ``archive``: how much of a small command's start does mapping Spark's classes from the
  class archive (``features/jvm_archive.py``, recorded by ``features setup``) remove?
  Baseline: the same fresh process with ``LAKEHOUSE_CLASS_ARCHIVE=0``.
- ``preload``: how much does importing the daily job's libraries (Feast, dbt, MLlib's
  models: ``features.daily.LIBRARIES``) while the JVM launches save, against importing them
  after it (``lakehouse.spark_session(preload=...)``)?  Baseline: the same process without
  ``preload``; both import the libraries right after the session, so both end with them
  imported.

Each process starts the lake's session (and, in ``preload``, imports the libraries) and
runs what a small command does first (databases, a Delta table created, written, merged into
and read with a join and a window), on a lake of its own; the two settings alternate
``--rounds`` times.  The script prints the median seconds (to the session, with the
libraries in ``preload``, and to the end of the work), the JVM's CPU seconds, the ratio to
the baseline and the peak RSS of the process (JVM + Python).

Usage::

    .venv/bin/python bench/bench_jvm_start.py              # the archive, 3 rounds
    .venv/bin/python bench/bench_jvm_start.py --compare preload --rounds 5
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
import importlib, json, os, time
started = time.perf_counter()
from features import lakehouse
imports = [name for name in os.environ["BENCH_IMPORTS"].split(",") if name]
spark = lakehouse.spark_session(preload=imports if os.environ["BENCH_PRELOAD"] == "1" else ())
for name in imports:
    importlib.import_module(name)
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
    parser.add_argument(
        "--compare",
        choices=("archive", "preload"),
        default="archive",
        help="what to measure against its absence (see the module's docstring)",
    )
    return parser.parse_args(argv)


# Each comparison's two settings, baseline first: (name, class archive, libraries preloaded).
SETTINGS = {
    "archive": (("no archive", False, False), ("archive", True, False)),
    "preload": (("no preload", True, False), ("preload", True, True)),
}


def run_once(archive: bool, preload: bool, root: Path, libraries: list[str]) -> dict:
    """One fresh process on a lake of its own; its timings and peak RSS.  It imports
    ``libraries`` after the session (with ``preload``, the session's launch did already)."""
    env = dict(
        os.environ,
        LAKEHOUSE_ROOT=str(root),
        SPARK_MASTER="local[2]",
        LAKEHOUSE_CLASS_ARCHIVE="1" if archive else "0",
        PYTHONPATH=str(REPO),
        BENCH_IMPORTS=",".join(libraries),
        BENCH_PRELOAD="1" if preload else "0",
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
    from features.daily import LIBRARIES

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
    settings = SETTINGS[args.compare]
    libraries = list(LIBRARIES) if args.compare == "preload" else []
    if libraries:
        print(f"libraries imported after the session: {', '.join(libraries)}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in settings}
    scratch = Path(tempfile.mkdtemp(prefix="bench_jvm_start_"))
    try:
        for round_ in range(args.rounds):
            for name, archive, preload in settings:
                root = scratch / f"{name.replace(' ', '_')}_{round_}"
                runs[name].append(run_once(archive, preload, root, libraries))
                shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    baseline = settings[0][0]
    base = {
        key: statistics.median(r[key] for r in runs[baseline])
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
    print(f"baseline: the same process with {baseline}, median of {args.rounds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
