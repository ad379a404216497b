"""Synthetic telco sources at scale: customers, billing, usage, chats, churn, with dirt.

``generate(spark, config)`` writes one landing batch per day under
``<LAKEHOUSE_ROOT>/landing/<source>/<YYYY-MM-DD>/`` and records the run, with the AUC of
its own hidden risk score (the ceiling for churn models), in ``ops.generator_runs``.
All randomness comes from hashes of (seed, entity, day, salt): the same seed gives the same
records whatever the partitioning, and nothing loops over rows in Python.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from features.generate import activity, billing, customers, landing, risk
from features.generate.config import Change, DirtRates, GeneratorConfig, config_for_usage_rows
from features.lakehouse import settings
from features.schemas import SOURCES

__all__ = [
    "Change",
    "DirtRates",
    "GenerationSummary",
    "GeneratorConfig",
    "config_for_usage_rows",
    "dirt_counts",
    "generate",
    "source_frames",
]

# A small lake's sources are written (and counted) side by side: each is a few small Spark
# jobs and file renames, mostly fixed latency that overlaps across sources; a large one's are
# CPU-bound and would only contend (as ingestion, features/ingest SMALL_BATCH_THREADS).
SMALL_CUSTOMER_DAYS = 200_000
SMALL_WRITERS = 4

GENERATOR_RUNS_DDL = (
    "seed bigint, customers bigint, days int, start_date date, rows map<string,bigint>, "
    "churned bigint, ceiling_auc double, auc_rows bigint, auc_positives bigint, "
    "generated_at timestamp"
)


@dataclasses.dataclass
class GenerationSummary:
    """What one generation wrote.

    Attributes:
        config: The configuration used.
        landing_dir: Root of the landing files.
        rows: Records written per source (lines for text sources, headers excluded).
        churned: Customers who churned inside the window.
        ceiling_auc: AUC of the hidden risk score on 30-day churn labels (None if undefined).
        auc_rows: Customer-snapshots scored for the AUC.
        seconds: Wall-clock seconds per step.
    """

    config: GeneratorConfig
    landing_dir: str
    rows: dict[str, int]
    churned: int
    ceiling_auc: float | None
    auc_rows: int
    seconds: dict[str, float]


def source_frames(
    spark: SparkSession, cfg: GeneratorConfig, state: DataFrame
) -> dict[str, DataFrame]:
    """Every source as a lazy DataFrame with ``d`` (landing date) and ``dirt`` columns.

    CSV and JSON sources are rendered as lines (``value``); usage keeps typed columns.
    """

    def dated(frame: DataFrame) -> DataFrame:
        return activity.usage_day_dates(cfg, frame)

    bills = billing.invoices(spark, cfg, state)
    invoices = billing.csv_dirt(
        cfg, dated(billing.invoice_rows(cfg, bills)), salt="inv_dirt", key="invoice_id"
    )
    payments = billing.csv_dirt(
        cfg, dated(billing.payment_rows(cfg, bills)), salt="pay_dirt", key="payment_id"
    )
    grid = activity.customer_days(spark, cfg, state)
    return {
        "customers": landing.csv_lines(
            dated(customers.customers_rows(cfg, state)), SOURCES["customers"]
        ),
        "plans": landing.csv_lines(dated(customers.plans_rows(spark, cfg)), SOURCES["plans"]),
        "subscriptions": landing.csv_lines(
            dated(customers.subscriptions_rows(cfg, state)), SOURCES["subscriptions"]
        ),
        "invoices": landing.csv_lines(invoices, SOURCES["invoices"]),
        "payments": landing.csv_lines(payments, SOURCES["payments"]),
        "churn": landing.csv_lines(dated(customers.churn_rows(cfg, state)), SOURCES["churn"]),
        "chats": dated(activity.support_chats(cfg, grid)),
        "usage": dated(activity.usage_events(cfg, grid)),
    }


def generate(
    spark: SparkSession,
    config: GeneratorConfig,
    *,
    sources: tuple[str, ...] | None = None,
    log: Callable[[str], None] = print,
) -> GenerationSummary:
    """Generate every day's landing batch, compute the ceiling AUC, record the run.

    Args:
        spark: The lakehouse session.
        config: Scale, seed and dirt rates.
        sources: Only these sources (all by default).
        log: Where progress lines go.
    """
    cfg = config
    root = str(settings().landing_dir)
    seconds: dict[str, float] = {}
    state = customers.customer_state(spark, cfg).cache()
    frames = source_frames(spark, cfg, state)
    dates = cfg.dates
    names = [n for n in frames if not sources or n in sources]
    writers = SMALL_WRITERS if cfg.customers * cfg.days <= SMALL_CUSTOMER_DAYS else 1

    def write(name: str) -> float:
        source = SOURCES[name]
        started = time.perf_counter()
        if source.file_format == "parquet":
            landing.write_parquet_by_day(spark, frames[name], root=root, source=source, dates=dates)
        else:
            landing.write_text_by_day(spark, frames[name], root=root, source=source, dates=dates)
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=writers) as pool:
        for name, took in zip(names, pool.map(write, names), strict=True):
            seconds[name] = took
            log(f"generate: {name} written in {took:.1f}s")
    started = time.perf_counter()
    rows = landing_counts(spark, root=root, dates=dates, names=names, threads=writers)
    seconds["count"] = time.perf_counter() - started
    extra = sum(
        landing.add_file_dirt(
            spark,
            root=root,
            source=SOURCES[name],
            dates=dates,
            seed=cfg.seed,
            stray_file=cfg.dirt.stray_file,
            corrupt_file=cfg.dirt.corrupt_file,
        )
        for name in names
    )
    if extra:
        log(
            f"generate: {extra} file(s) that are not data or cannot be read put beside the "
            "data (stray notes, truncated re-sends)"
        )
    risk.write_truth(cfg, state)
    snapshots = risk.risk_snapshots(spark, cfg, state).cache()
    auc = risk.ceiling_auc(snapshots)
    counts = snapshots.agg(F.count("*"), F.sum("label")).first()
    assert counts is not None  # an aggregate has a row
    auc_rows, positives = counts
    churned = state.where(F.col("churn_day").isNotNull()).count()
    snapshots.unpersist()
    state.unpersist()
    summary = GenerationSummary(
        config=cfg,
        landing_dir=root,
        rows=rows,
        churned=churned,
        ceiling_auc=auc,
        auc_rows=int(auc_rows),
        seconds=seconds,
    )
    _record(spark, summary, positives=int(positives or 0))
    auc_text = "n/a" if auc is None else f"{auc:.3f}"
    log(
        f"generate: {sum(rows.values()):,} records over {cfg.days} days for {cfg.customers:,} "
        f"customers; {churned} churned; ceiling AUC (hidden risk score, churn within "
        f"{cfg.horizon_days} days) = {auc_text} on {auc_rows} customer-snapshots"
    )
    return summary


def landing_counts(
    spark: SparkSession,
    *,
    root: str,
    dates: list[dt.date],
    names: list[str],
    threads: int = 1,
) -> dict[str, int]:
    """Records per source in the landing folders of ``dates``, counted by Spark's own
    readers (CSV records as RFC 4180 reads them, headers excluded): the independent count
    ingestion's balance is checked against.  ``threads`` sources are counted at once."""
    jvm = spark.sparkContext._jvm

    def count(name: str) -> int:
        source = SOURCES[name]
        folder = jvm.org.apache.hadoop.fs.Path(f"{root}/{name}")
        fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        paths = [
            f"{root}/{name}/{d.isoformat()}"
            for d in dates
            if fs.exists(jvm.org.apache.hadoop.fs.Path(f"{root}/{name}/{d.isoformat()}"))
        ]
        if not paths:
            return 0
        if source.file_format == "parquet":
            return spark.read.parquet(*paths).count()
        if source.file_format == "csv":  # records, not lines: a quoted field may span two
            return spark.read.options(header=True, multiLine=True).csv(paths).count()
        return spark.read.text(paths).count()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return dict(zip(names, pool.map(count, names), strict=True))


def dirt_counts(spark: SparkSession, cfg: GeneratorConfig) -> dict[tuple[str, str], int]:
    """Records of each (source, dirt kind) the generator writes (a second copy counts once).

    Recomputes the sources (deterministic), so it is meant for tests and audits.
    """
    state = customers.customer_state(spark, cfg)
    out: dict[tuple[str, str], int] = {}
    for name, frame in source_frames(spark, cfg, state).items():
        rows = (
            frame.where(F.col("dirt").isNotNull() & (F.col("copy") == 1))
            .groupBy("dirt")
            .count()
            .collect()
        )
        out.update({(name, row["dirt"]): int(row["count"]) for row in rows})
    return out


def _record(spark: SparkSession, summary: GenerationSummary, *, positives: int) -> None:
    """Append the run to ``ops.generator_runs``."""
    cfg = summary.config
    spark.sql(f"create table if not exists ops.generator_runs ({GENERATOR_RUNS_DDL}) using delta")
    row = (
        cfg.seed,
        cfg.customers,
        cfg.days,
        cfg.start,
        summary.rows,
        summary.churned,
        summary.ceiling_auc,
        summary.auc_rows,
        positives,
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    spark.createDataFrame([row], GENERATOR_RUNS_DDL).write.format("delta").mode(
        "append"
    ).saveAsTable("ops.generator_runs")
