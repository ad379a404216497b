"""Benchmark: the daily job end to end, per step, against an I/O floor.

Question: where does the time of ``features daily`` go at a given scale of raw usage rows?

A fresh lake is generated (``--usage-rows`` usage events over ``--days`` days; generation is
timed but is not part of the job), then the job runs as in production: a backfill of every
day but the last (ingest, ``dbt build``, Feast apply + materialize, train, score, monitor),
then the daily run of the last day.  Per step it prints the seconds (from
``ops.pipeline_runs``), the peak RSS of the driver JVM and Python processes while the step
ran, and the step's time as a multiple of the baseline.

Baseline ("I/O floor", measured first in the same run): ``spark.range(N)`` with nine cheap
derived columns written to Parquet, N = the usage rows; "x floor" = step seconds / floor
seconds.

Usage::

    .venv/bin/python bench/bench_daily.py --usage-rows 1_000_000 --days 60    # smoke
    .venv/bin/python bench/bench_daily.py --usage-rows 10_000_000 --days 90
    LAKEHOUSE_DRIVER_MEMORY=12g .venv/bin/python bench/bench_daily.py \\
        --usage-rows 100_000_000 --days 90

It works in a fresh lakehouse under a temporary directory (or ``--root``), deleted afterwards
unless ``--keep``.  ``--tuning tvs`` (the default here) tunes with one forward split instead
of cross-validation; ``--tuning cv`` times what the daily job does by default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchkit import PeakMemory, io_floor_seconds


def _rows(text: str) -> int:
    return int(text.replace("_", ""))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usage-rows", type=_rows, default=1_000_000)
    parser.add_argument(
        "--days",
        type=int,
        default=90,
        help="days of data (at least 75: labels need 28 days of history and "
        "a 30-day horizon, and training needs several snapshots)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tuning", choices=("cv", "tvs"), default="tvs")
    parser.add_argument("--root", type=Path, help="lakehouse root (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the lakehouse afterwards")
    return parser.parse_args(argv)


def step_seconds(spark, run_dates: list[dt.date]) -> dict[tuple[dt.date, str], float]:
    """Seconds of each daily step recorded for ``run_dates`` in ``ops.pipeline_runs``."""
    rows = spark.sql(
        "select batch_date, step, unix_timestamp(finished_at) - unix_timestamp(started_at) "
        "as seconds from ops.pipeline_runs where pipeline = 'daily' and status = 'succeeded'"
    ).collect()
    wanted = set(run_dates)
    return {(r.batch_date, r.step): float(r.seconds) for r in rows if r.batch_date in wanted}


def slowest_dbt_nodes(target: Path, top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` slowest nodes of the last dbt invocation (``target/run_results.json``)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    timed = [(r["unique_id"].split(".", 2)[-1], float(r["execution_time"])) for r in results]
    return sorted(timed, key=lambda pair: -pair[1])[:top]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    if args.days < 75:
        raise SystemExit(f"bench_daily: --days {args.days} is too few to train; use >= 75")
    root = args.root or Path(tempfile.mkdtemp(prefix="bench_daily_"))
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from features import lakehouse
    from features.daily import DBT_PROJECT, STEPS, DailyOptions, run_daily
    from features.generate import config_for_usage_rows, generate

    def log(line: str) -> None:
        # "[daily D] step ..." opens a step: later memory samples belong to it.
        for step in STEPS:
            if line.endswith(f"] {step} ..."):
                memory.phase = (
                    f"{'daily' if line.startswith(f'[daily {last}]') else 'backfill'}:{step}"
                )
        print(f"  {line}", flush=True)
        # "[daily D] step: ... (Ns)" closes it: its peak now, in case the run ends early.
        closed = line.split("] ", 1)[-1].split(":", 1)[0]
        if line.startswith("[daily ") and line.endswith("s)") and memory.phase.endswith(closed):
            print(
                f"  bench: {memory.phase} peak RSS "
                f"{memory.phase_peaks[memory.phase] / 2**30:.2f} GiB",
                flush=True,
            )

    with PeakMemory() as memory:
        spark = lakehouse.spark_session()
        lakehouse.ensure_databases(spark)
        cfg = config_for_usage_rows(args.usage_rows, days=args.days, seed=args.seed)
        dates = cfg.dates
        last = dates[-1]
        print(
            f"bench: {cfg.customers:,} customers x {cfg.days} days (target "
            f"{args.usage_rows:,} usage rows), {spark.sparkContext.defaultParallelism} "
            f"cores, lake {root}",
            flush=True,
        )
        memory.phase = "floor"
        floor_s = io_floor_seconds(spark, args.usage_rows, str(root / "bench_floor"))
        print(f"bench: I/O floor ({args.usage_rows:,} rows -> parquet) {floor_s:.1f}s", flush=True)
        memory.phase = "generate"
        started = time.perf_counter()
        summary = generate(spark, cfg, log=log)
        generate_s = time.perf_counter() - started
        started = time.perf_counter()
        run_daily(
            spark, dates[:-1], options=DailyOptions(retrain="always", tuning=args.tuning), log=log
        )
        backfill_s = time.perf_counter() - started
        slowest = {"backfill": slowest_dbt_nodes(DBT_PROJECT / "target")}
        started = time.perf_counter()
        run_daily(
            spark, [last], options=DailyOptions(retrain="always", tuning=args.tuning), log=log
        )
        daily_s = time.perf_counter() - started
        slowest["daily"] = slowest_dbt_nodes(DBT_PROJECT / "target")
        seconds = step_seconds(spark, [dates[-2], last])

    print()
    print(
        f"usage rows generated: {summary.rows['usage']:,}; all records: "
        f"{sum(summary.rows.values()):,}; generation {generate_s:.1f}s "
        f"({generate_s / floor_s:.1f}x floor)"
    )
    print(f"{'run':<10}{'step':<12}{'seconds':>10}{'share':>8}{'x floor':>9}{'peak RSS GiB':>14}")
    for run, day, total in (("backfill", dates[-2], backfill_s), ("daily", last, daily_s)):
        for step in STEPS:
            secs = seconds.get((day, step))
            if secs is None:
                continue
            peak = memory.phase_peaks.get(f"{run}:{step}", 0) / 2**30
            print(
                f"{run:<10}{step:<12}{secs:>10.1f}{secs / total:>8.0%}"
                f"{secs / floor_s:>9.1f}{peak:>14.2f}"
            )
        print(f"{run:<10}{'total':<12}{total:>10.1f}{'':>8}{total / floor_s:>9.1f}")
    for run, nodes in slowest.items():
        print(
            f"{run}: slowest dbt nodes: " + ", ".join(f"{name} {secs:.0f}s" for name, secs in nodes)
        )
    print(
        f"baseline: I/O floor {floor_s:.1f}s for {args.usage_rows:,} rows; peak RSS overall "
        f"{memory.peak / 2**30:.2f} GiB (JVM {memory.jvm_peak / 2**30:.2f} GiB)"
    )
    from models_ml import churn, model_store

    _, metadata = model_store.load_model("churn", version=churn.serving_version())
    auc = metadata.get("metrics", {}).get("areaUnderROC")
    from features.demo import holdout_ceiling

    same_rows = holdout_ceiling(spark, metadata)
    ceiling = same_rows["auc"]
    if auc is not None and ceiling:
        print(
            f"model v{metadata['version']}: held-out ROC AUC {auc:.4f}; the generator's hidden "
            f"score on the same {same_rows['rows']:,} rows {ceiling:.4f} "
            f"({100 * auc / ceiling:.0f}% of it); ceiling over all generator snapshots "
            f"{summary.ceiling_auc:.4f}"
        )
    if not (args.keep or args.root):
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
