"""Benchmark: LakehouseOfflineStore vs Feast's built-in Spark store, in the same run.

Two shapes of training frame, as users have them (``--shape``):

* ``dense``: a feature table of customers x 730 daily rows (as the usage mart) and an
  entity frame of every customer every ``--entity-every-days`` days, one view per TTL.
* ``snapshots``: customers x 365 daily usage rows and customers x 12 monthly billing rows
  (two views), and an entity frame of every customer at 6 snapshot dates over the year:
  few entity rows per key, so most feature rows can reach none of them.

For each TTL three stores answer the same ``get_historical_features`` on the same
SparkSession: ours as configured by default (``join_strategy: auto``, which picks the
sort or the range strategy by the frame's shape), ours with the sort forced (the engine
before the range strategy) and Feast's.  Each run is timed to the end of an
order-independent checksum over every output row (so the whole join runs and nothing is
collected), the best of ``--repeat`` runs is kept, the checksums must agree, and peak
memory (driver JVM + Python processes, RSS sampled every 0.2 s) is printed beside the time.

Usage::

    .venv/bin/python bench/bench_offline_store.py --feature-rows 1000000 --ttl-days 30 365
    .venv/bin/python bench/bench_offline_store.py --feature-rows 10000000 --ttl-days 30 365
    .venv/bin/python bench/bench_offline_store.py --feature-rows 50000000 --ttl-days 30 365 \\
        --skip-feast-above 10000000
    .venv/bin/python bench/bench_offline_store.py --shape snapshots --feature-rows 10000000 \\
        --ttl-days 30

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
YEAR = 365
SNAPSHOTS = 6
BASE = dt.datetime(2024, 1, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["dense", "snapshots"], default="dense")
    parser.add_argument("--feature-rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--ttl-days", type=int, nargs="+", default=[30, 365])
    parser.add_argument(
        "--skip-feast-above",
        type=int,
        default=None,
        help="run only our store above this many feature rows",
    )
    parser.add_argument(
        "--skip-sort-above",
        type=int,
        default=None,
        help="leave out the forced-sort column above this many feature rows",
    )
    parser.add_argument(
        "--strategy",
        choices=["auto", "sort", "range"],
        default="auto",
        help="join_strategy of our store's first column (the second always sorts)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="time each retrieval this often, keep the best"
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


def write_snapshot_tables(spark, rows: int) -> int:
    """Write ``bench.usage_daily`` (customers x 365) and ``bench.billing_monthly`` (x 12).

    Returns the number of customers (about ``rows`` feature rows in all).
    """
    import pyspark.sql.functions as F

    customers = max(1, rows // (YEAR + 12))
    usage = spark.range(customers * YEAR).select(
        (F.col("id") % customers).alias("customer_id"),
        F.timestamp_add("DAY", (F.col("id") / customers).cast("int"), F.lit(BASE)).alias(
            "event_timestamp"
        ),
        (F.rand(1) * 500).alias("call_minutes"),
        (F.rand(2) * 100).cast("int").alias("support_tickets"),
    )
    usage = usage.withColumn(
        "created_timestamp", F.timestamp_add("HOUR", F.lit(2), F.col("event_timestamp"))
    )
    billing = spark.range(customers * 12).select(
        (F.col("id") % customers).alias("customer_id"),
        F.add_months(F.lit(BASE.date()), (F.col("id") / customers).cast("int"))
        .cast("timestamp")
        .alias("event_timestamp"),
        (F.rand(5) * 120).alias("amount_due"),
        (F.rand(6) < 0.1).cast("int").alias("paid_late"),
    )
    billing = billing.withColumn(
        "created_timestamp", F.timestamp_add("DAY", F.lit(1), F.col("event_timestamp"))
    )
    spark.sql("create database if not exists bench")
    for frame, table in ((usage, "bench.usage_daily"), (billing, "bench.billing_monthly")):
        frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(
            table
        )
    return customers


def snapshot_entities(spark, customers: int):
    """Every customer at 6 snapshot dates, 60 days apart from day 45, at a random time."""
    import pyspark.sql.functions as F

    return spark.range(customers * SNAPSHOTS).select(
        (F.col("id") % customers).alias("customer_id"),
        F.timestamp_add(
            "SECOND",
            (
                (F.lit(45) + (F.col("id") / customers).cast("int") * 60) * 86_400
                + (F.rand(3) * 86_400).cast("int")
            ),
            F.lit(BASE),
        ).alias("event_timestamp"),
        (F.rand(4) < 0.2).cast("int").alias("label"),
    )


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


# The views of each shape: (view name prefix, source table, feature columns); the
# features of one request are those of every view of the shape, at one TTL.
VIEWS = {
    "dense": [("customer_daily", "bench.customer_daily", ("call_minutes", "support_tickets"))],
    "snapshots": [
        ("usage_daily", "bench.usage_daily", ("call_minutes", "support_tickets")),
        ("billing_monthly", "bench.billing_monthly", ("amount_due", "paid_late")),
    ],
}


def definitions(shape: str, ttl_days: list[int]) -> list:
    from feast import Entity, FeatureView, Field
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64, Int32

    customer = Entity(name="customer", join_keys=["customer_id"])
    views = []
    for prefix, table, columns in VIEWS[shape]:
        source = SparkSource(
            name=f"{prefix}_source",
            table=table,
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
        )
        views.extend(
            FeatureView(
                name=f"{prefix}_ttl{days}",
                entities=[customer],
                ttl=dt.timedelta(days=days),
                source=source,
                schema=[
                    Field(name=columns[0], dtype=Float64),
                    Field(name=columns[1], dtype=Int32),
                ],
            )
            for days in ttl_days
        )
    return [customer, *views]


def feature_refs(shape: str, days: int) -> list[str]:
    return [
        f"{prefix}_ttl{days}:{column}" for prefix, _, columns in VIEWS[shape] for column in columns
    ]


def checksum(frame) -> tuple[int, int]:
    """Row count and an order-independent hash sum over every column."""
    import pyspark.sql.functions as F

    columns = sorted(frame.columns)
    row = frame.agg(F.count(F.lit(1)), F.sum(F.xxhash64(*[F.col(c) for c in columns]))).first()
    return int(row[0]), int(row[1] or 0)


def timed(store, entities, features: list[str], repeat: int) -> tuple[float, int, tuple, str]:
    """Best seconds of ``repeat`` runs, their peak memory, the checksum and our strategy."""
    best = float("inf")
    with PeakMemory() as memory:
        for _ in range(repeat):
            start = time.perf_counter()
            job = store.get_historical_features(entity_df=entities, features=features)
            result = checksum(job.to_spark_df())
            best = min(best, time.perf_counter() - start)
    strategies = getattr(job, "join_strategies", {})
    return best, memory.peak, result, "/".join(sorted(set(strategies.values()))) or "-"


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
    views = definitions(args.shape, args.ttl_days)
    stores: list = []
    header = (
        f"{'feature rows':>12} {'entity rows':>11} {'ttl d':>5} {'feast s':>8} {'sort s':>7} "
        f"{'ours s':>7} {'strategy':>8} {'ratio':>6} {'feast MiB':>9} {'sort MiB':>8} "
        f"{'ours MiB':>8} agree"
    )
    print(f"shape {args.shape}; best of {args.repeat} runs each; ratio = feast s / ours s")
    print(header)
    ok = True
    for rows in args.feature_rows:
        if args.shape == "dense":
            customers = write_feature_table(spark, rows)
        else:
            customers = write_snapshot_tables(spark, rows)
        if not stores:  # apply validates the source table, so it must exist first
            stores = [
                make_store(work / "ours", {"type": OURS, "join_strategy": args.strategy}, views),
                make_store(work / "sort", {"type": OURS, "join_strategy": "sort"}, views),
                make_store(work / "feast", {"type": "spark"}, views),
            ]
        ours, sort, feast = stores
        if args.shape == "dense":
            entities = entity_frame(spark, customers, args.entity_every_days).cache()
        else:
            entities = snapshot_entities(spark, customers).cache()
        n_features = customers * (DAYS if args.shape == "dense" else YEAR + 12)
        n_entities = entities.count()
        warm = entities.limit(1000)
        for store in stores:  # JIT and Feast's first-call costs, outside the timing
            checksum(
                store.get_historical_features(
                    entity_df=warm, features=[f"{views[1].name}:call_minutes"]
                ).to_spark_df()
            )
        run_feast = args.skip_feast_above is None or rows <= args.skip_feast_above
        for days in args.ttl_days:
            refs = feature_refs(args.shape, days)
            our_s, our_mem, our_sum, strategy = timed(ours, entities, refs, args.repeat)
            agree = True
            sort_cells = f"{'-':>7}", f"{'-':>8}"
            if args.skip_sort_above is None or rows <= args.skip_sort_above:
                sort_s, sort_mem, sort_sum, _ = timed(sort, entities, refs, args.repeat)
                agree = sort_sum == our_sum
                sort_cells = f"{sort_s:>7.1f}", f"{sort_mem / 2**20:>8.0f}"
            feast_cells = f"{'-':>8}", f"{'-':>6}", f"{'-':>9}"
            if run_feast:
                feast_s, feast_mem, feast_sum, _ = timed(feast, entities, refs, args.repeat)
                agree &= feast_sum == our_sum
                feast_cells = (
                    f"{feast_s:>8.1f}",
                    f"{feast_s / our_s:>5.1f}x",
                    f"{feast_mem / 2**20:>9.0f}",
                )
            ok &= agree
            print(
                f"{n_features:>12} {n_entities:>11} {days:>5} {feast_cells[0]} {sort_cells[0]} "
                f"{our_s:>7.1f} {strategy:>8} {feast_cells[1]} {feast_cells[2]} "
                f"{sort_cells[1]} {our_mem / 2**20:>8.0f} {agree}",
                flush=True,
            )
        entities.unpersist()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
