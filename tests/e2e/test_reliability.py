"""Reliability of the daily job: readers during a scoring write, and runs killed mid-way.

The killed runs are real: ``features daily`` in a subprocess (its own lake and Derby
metastore), its process group SIGKILLed at random moments, then rerun until it finishes.
Its tables must equal those the clean in-process run of the ``daily_lake`` fixture wrote
from the same seed (row counts and checksums; only wall-clock columns are left out).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from pyspark.sql import DataFrame, SparkSession

from tests.e2e.conftest import CUSTOMERS, DAYS, SEED

pytestmark = pytest.mark.e2e

#: Columns that hold the wall-clock time of a write: they differ between any two runs.
WALL_CLOCK = {"_ingested_at", "_quarantined_at", "scored_at", "computed_at"}


def test_readers_see_a_whole_day_or_none(daily_lake) -> None:
    from models_ml.churn import jobs

    spark, dates, _, _, _ = daily_lake
    day = dates[-3]  # never scored by the fixture
    expected = spark.sql(
        f"select count(*) from {jobs.SPINE_TABLE} where feature_date = '{day}'").first()[0]
    query = (f"select count(*), count(distinct customer_id) from {jobs.PREDICTIONS_TABLE} "
             f"where score_date = '{day}'")
    assert tuple(spark.sql(query).first()) == (0, 0)
    versions_before = spark.sql(f"describe history {jobs.PREDICTIONS_TABLE}").count()
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(tuple(spark.sql(query).first()))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        jobs.score_day(spark, day, log=lambda _: None)  # the day appears ...
        jobs.score_day(spark, day, log=lambda _: None)  # ... and is replaced
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 2
    assert set(seen) <= {(0, 0), (expected, expected)}, set(seen)
    assert tuple(spark.sql(query).first()) == (expected, expected)
    # Each scoring run is one Delta commit: there is no in-between version to read.
    assert spark.sql(f"describe history {jobs.PREDICTIONS_TABLE}").count() == versions_before + 2


def _fingerprint(frame: DataFrame) -> tuple[int, int]:
    """Row count and an order-free checksum (doubles rounded, wall-clock columns left out)."""
    columns = []
    for field in frame.schema.fields:
        if field.name in WALL_CLOCK:
            continue
        column = F.col(f"`{field.name}`")
        if field.dataType.typeName() in ("double", "float"):
            column = F.round(column, 6)
        columns.append(column)
    row = frame.select(F.xxhash64(*columns).cast("decimal(38,0)").alias("h")).agg(
        F.count("*"), F.sum("h")).first()
    return int(row[0]), int(row[1] or 0)


def _tables(warehouse: Path) -> list[str]:
    from features.schemas import SOURCES

    names = [f"{db}.db/{source.table}" for source in SOURCES.values()
             for db in ("bronze", "quarantine")]
    return names + ["features.db/customer_usage_daily", "features.db/customer_billing",
                    "features.db/customer_support", "ml.db/churn_labels",
                    "predictions.db/churn_scores", "ops.db/feature_drift"]


def _lake_fingerprints(spark: SparkSession, warehouse: Path, score_dates) -> dict:
    found = {}
    for name in _tables(warehouse):
        path = warehouse / name
        if not (path / "_delta_log").is_dir():
            found[name] = None
            continue
        frame = spark.read.format("delta").load(str(path))
        if "score_date" in frame.columns:  # later tests score more dates in the fixture's lake
            frame = frame.where(F.col("score_date").isin([str(d) for d in score_dates]))
        found[name] = _fingerprint(frame)
    return found


def _run_until_done(args: list[str], env: dict, rng: random.Random, *, kills: int,
                    log: list[str]) -> None:
    """Run ``features <args>``; SIGKILL it ``kills`` times at random moments; rerun to the end."""
    for attempt in range(kills + 1):
        process = subprocess.Popen(
            [sys.executable, "-m", "features.cli", *args], env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        if attempt < kills:
            delay = rng.uniform(20, 120)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the JVM goes down with it
                process.wait()
                log.append(f"{' '.join(args)}: killed after {delay:.0f}s")
                continue
        else:
            process.wait(timeout=1800)
        stderr = process.stderr.read() if process.stderr else ""
        assert process.returncode == 0, f"features {' '.join(args)} failed:\n{stderr[-3000:]}"
        log.append(f"{' '.join(args)}: finished on attempt {attempt + 1}")
        return


def test_killed_runs_leave_the_lake_as_a_clean_run_would(daily_lake, tmp_path) -> None:
    spark, dates, _, _, _ = daily_lake
    seed = int(os.environ.get("LAKEHOUSE_CRASH_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    root = tmp_path / "crashed"
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "SPARK_MASTER": "local[2]",
           "LAKEHOUSE_SHUFFLE_PARTITIONS": "2", "LAKEHOUSE_SPARK_UI": "false",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    log: list[str] = [f"seed {seed}"]
    _run_until_done(["generate", "--customers", str(CUSTOMERS), "--days", str(DAYS),
                     "--seed", str(SEED)], env, rng, kills=0, log=log)
    _run_until_done(["daily", "--from", str(dates[0]), "--to", str(dates[-2]),
                     "--retrain", "always"], env, rng, kills=3, log=log)
    _run_until_done(["daily", "--date", str(dates[-1])], env, rng, kills=2, log=log)

    from features import lakehouse

    clean = _lake_fingerprints(spark, lakehouse.settings().warehouse_dir, dates[-2:])
    crashed = _lake_fingerprints(spark, root / "warehouse", dates[-2:])
    assert clean["predictions.db/churn_scores"] is not None
    differing = {name: (clean[name], crashed[name]) for name in clean
                 if clean[name] != crashed[name]}
    assert not differing, f"{'; '.join(log)}: tables differ from the clean run: {differing}"
