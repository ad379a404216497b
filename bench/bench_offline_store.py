"""Benchmark: LakehouseOfflineStore vs Feast's built-in Spark store, in the same run.

A dense feature table (customers x daily snapshots, as the usage mart) is written as a
Delta table; the entity frame has one row per customer and month.  For each TTL both
stores answer the same ``get_historical_features`` on the same SparkSession; each run
is timed to the end of an order-independent checksum over every output row (so the
whole join runs and nothing is collected), the checksums must agree, and peak memory
(driver JVM + Python processes, RSS sampled every 0.2 s) is printed beside the time.

Usage::

    .venv/bin/python bench/bench_offline_store.py --feature-rows 1000000 --ttl-days 30 365
    .venv/bin/python bench/bench_offline_store.py --feature-rows 10000000 --ttl-days 30 365
    .venv/bin/python bench/bench_offline_store.py --feature-rows 50000000 --ttl-days 30 365 \\
        --skip-feast-above 10000000

LAKEHOUSE_ROOT defaults to a fresh temporary directory (own metastore and warehouse).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchkit import PeakMemory

OURS = "features.offline_store.LakehouseOfflineStore"
DAYS = 730
BASE = dt.datetime(2024, 1, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--ttl-days", type=int, nargs="+", default=[30, 365])
    parser.add_argument(
        "--skip-feast-above",
        type=int,
        default=None,
        help="run only our store above this many feature rows",
    )
    parser.add_argument(
        "--entity-every-days",
        type=int,
        default=30,
        help="one entity row per customer every this many days",
    )
    return parser.parse_args(argv)


def write_feature_table(spark, rows: int) -> int:
    """Write ``bench.customer_daily`` with ~rows rows; return the number of customers."""
    import pyspark.sql.functions as F

    customers = max(1, rows // DAYS)
    frame = (
        spark.range(customers * DAYS)
        .select(
            (F.col("id") % customers).alias("customer_id"),
            (F.col("id") / customers).cast("int").alias("day"),
        )
        .select(
            "customer_id",
            F.timestamp_add("DAY", F.col("day"), F.lit(BASE)).alias("event_timestamp"),
            F.timestamp_add(
                "HOUR", F.lit(2), F.timestamp_add("DAY", F.col("day"), F.lit(BASE))
            ).alias("created_timestamp"),
            (F.rand(1) * 500).alias("call_minutes"),
            (F.rand(2) * 100).cast("int").alias("support_tickets"),
        )
    )
    spark.sql("create database if not exists bench")
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(
        "bench.customer_daily"
    )
    return customers


def entity_frame(spark, customers: int, every_days: int):
    """One row per customer every ``every_days`` days, at a random time of day."""
    import pyspark.sql.functions as F

    periods = DAYS // every_days
    return spark.range(customers * periods).select(
        (F.col("id") % customers).alias("customer_id"),
        F.timestamp_add(
            "SECOND",
            (
                (F.col("id") / customers).cast("int") * every_days * 86_400
                + (F.rand(3) * 86_400).cast("int")
            ),
            F.lit(BASE),
        ).alias("event_timestamp"),
        (F.rand(4) < 0.2).cast("int").alias("label"),
    )


def make_store(path: Path, offline_store: dict, views: list):
    from feast import FeatureStore
    from feast.repo_config import RegistryConfig, RepoConfig

    path.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="bench",
        provider="local",
        registry=RegistryConfig(path=str(path / "registry.db"), cache_ttl_seconds=0),
        online_store={"type": "sqlite", "path": str(path / "online.db")},
        offline_store=offline_store,
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config, repo_path=str(path))
    store.apply(views)
    return store


def definitions(ttl_days: list[int]) -> list:
    from feast import Entity, FeatureView, Field
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64, Int32

    customer = Entity(name="customer", join_keys=["customer_id"])
    source = SparkSource(
        name="customer_daily_source",
        table="bench.customer_daily",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    )
    views = [
        FeatureView(
            name=f"customer_daily_ttl{days}",
            entities=[customer],
            ttl=dt.timedelta(days=days),
            source=source,
            schema=[
                Field(name="call_minutes", dtype=Float64),
                Field(name="support_tickets", dtype=Int32),
            ],
        )
        for days in ttl_days
    ]
    return [customer, *views]


def checksum(frame) -> tuple[int, int]:
    """Row count and an order-independent hash sum over every column."""
    import pyspark.sql.functions as F

    columns = sorted(frame.columns)
    row = frame.agg(F.count(F.lit(1)), F.sum(F.xxhash64(*[F.col(c) for c in columns]))).first()
    return int(row[0]), int(row[1] or 0)


def timed(store, entities, view: str) -> tuple[float, int, tuple[int, int]]:
    features = [f"{view}:call_minutes", f"{view}:support_tickets"]
    with PeakMemory() as memory:
        start = time.perf_counter()
        job = store.get_historical_features(entity_df=entities, features=features)
        result = checksum(job.to_spark_df())
        seconds = time.perf_counter() - start
    return seconds, memory.peak, result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    os.environ.setdefault("LAKEHOUSE_ROOT", tempfile.mkdtemp(prefix="bench_lakehouse_"))
    from features import lakehouse

    spark = lakehouse.spark_session()
    work = Path(tempfile.mkdtemp(prefix="bench_feast_"))
    print(
        f"lakehouse root {os.environ['LAKEHOUSE_ROOT']}, master {spark.sparkContext.master}, "
        f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}"
    )
    views = definitions(args.ttl_days)
    stores: list = []
    header = (
        f"{'feature rows':>12} {'entity rows':>11} {'ttl d':>5} {'feast s':>8} "
        f"{'ours s':>7} {'ratio':>6} {'feast peak MiB':>14} {'ours peak MiB':>13} agree"
    )
    print(header)
    ok = True
    for rows in args.feature_rows:
        customers = write_feature_table(spark, rows)
        if not stores:  # apply validates the source table, so it must exist first
            stores = [
                make_store(work / "ours", {"type": OURS}, views),
                make_store(work / "feast", {"type": "spark"}, views),
            ]
        ours, feast = stores
        entities = entity_frame(spark, customers, args.entity_every_days).cache()
        n_entities = entities.count()
        warm = entities.limit(1000)
        for store in (ours, feast):  # JIT and Feast's first-call costs, outside the timing
            checksum(
                store.get_historical_features(
                    entity_df=warm, features=[f"{views[1].name}:call_minutes"]
                ).to_spark_df()
            )
        run_feast = args.skip_feast_above is None or rows <= args.skip_feast_above
        for days in args.ttl_days:
            view = f"customer_daily_ttl{days}"
            our_s, our_mem, our_sum = timed(ours, entities, view)
            if run_feast:
                feast_s, feast_mem, feast_sum = timed(feast, entities, view)
                agree = feast_sum == our_sum
                ok &= agree
                print(
                    f"{customers * DAYS:>12} {n_entities:>11} {days:>5} {feast_s:>8.1f} "
                    f"{our_s:>7.1f} {feast_s / our_s:>5.1f}x {feast_mem / 2**20:>14.0f} "
                    f"{our_mem / 2**20:>13.0f} {agree}",
                    flush=True,
                )
            else:
                print(
                    f"{customers * DAYS:>12} {n_entities:>11} {days:>5} {'-':>8} "
                    f"{our_s:>7.1f} {'-':>6} {'-':>14} {our_mem / 2**20:>13.0f} -",
                    flush=True,
                )
        entities.unpersist()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
