"""Landing batches into bronze Delta tables, with quarantine and a balanced run log.

``ingest_batches(spark, dates)`` validates every file of every source first (a missing or
retyped column raises :class:`SchemaMismatch` before anything is written), then reads each
source over all the dates in one Spark job and replaces those batches in ``bronze.<table>``
and ``quarantine.<table>`` with one Delta commit per table (``replaceWhere`` on
``_batch_date``): re-ingesting a batch leaves the tables as they were.  Counts per source and
batch go to ``ops.pipeline_runs``; read = ingested + quarantined is checked against the
tables after the commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from features import console, runlog
from features.ingest.classify import classify, prior_keys
from features.ingest.files import LandingFile, list_files
from features.ingest.readers import raw_record, read_source
from features.ingest.schema_check import SchemaMismatch, check_csv, check_json, check_parquet
from features.lakehouse import settings
from features.schemas import QUARANTINE_DDL, SOURCES, Source

__all__ = ["BatchCounts", "CountsMismatch", "SchemaMismatch", "ingest_batches"]

PIPELINE = "ingest"
# customers first: the other sources check their customer ids against bronze.customers.
ORDER = ("customers", "plans", "subscriptions", "invoices", "payments", "churn", "chats", "usage")
# Every writer task writes a file per batch date it holds: a backfill of 90 dates on 8 tasks
# would make 720 files, each costing ~20 ms of Parquet and Delta overhead to write and again to
# every later scan.  Batches averaging fewer rows than this are written one task per date.
ROWS_PER_FILE = 1_000_000
# A small source's ingestion is mostly fixed latency (Delta commits and log reads, metastore
# calls, scheduling tiny tasks), which overlaps across independent tables; a large one is
# CPU-bound, and side by side on a few cores they only contend.
SMALL_BATCH_BYTES = 256 * 2**20
SMALL_BATCH_THREADS = 4


class CountsMismatch(Exception):
    """Rows read differ from rows ingested plus rows quarantined."""


@dataclasses.dataclass(frozen=True)
class BatchCounts:
    """Counts of one source in one batch."""

    read: int
    ingested: int
    quarantined: int

    @property
    def balanced(self) -> bool:
        """Whether read = ingested + quarantined."""
        return self.read == self.ingested + self.quarantined


def _dates_sql(dates: Iterable[dt.date]) -> str:
    return "_batch_date in (" + ", ".join(f"'{d.isoformat()}'" for d in sorted(dates)) + ")"


def _validate(spark: SparkSession, source: Source, files: list[LandingFile]) -> object:
    if source.file_format == "parquet":
        return check_parquet(spark, source, files)
    if source.file_format == "csv":
        return check_csv(spark, source, files)
    return check_json(spark, source, files, optional=source.optional)


def _table_location(spark: SparkSession, name: str) -> str:
    """Where the catalog keeps table ``database.table`` (the metastore alone answers: no
    Delta state is read, unlike ``describe detail``)."""
    database, table = name.split(".")
    jvm = spark.sparkContext._jvm
    ident = jvm.org.apache.spark.sql.catalyst.TableIdentifier(table, jvm.scala.Some(database))
    meta = spark._jsparkSession.sessionState().catalog().getTableMetadata(ident)
    # The catalog's URI as a Hadoop path (a space stays a space, not %20).
    return str(jvm.org.apache.spark.sql.catalyst.catalog.CatalogUtils.URIToString(
        meta.location()))


def ensure_tables(spark: SparkSession, source: Source) -> tuple[str, str]:
    """Create ``bronze.<table>`` and ``quarantine.<table>`` if needed; return their locations."""
    partition = f" partitioned by ({', '.join(source.partition_by)})" if source.partition_by else ""
    for name, ddl in ((f"bronze.{source.table}", source.bronze_ddl),
                      (f"quarantine.{source.table}", QUARANTINE_DDL)):
        if not spark.catalog.tableExists(name):
            spark.sql(f"create table if not exists {name} ({ddl}) using delta{partition}")
    return (_table_location(spark, f"bronze.{source.table}"),
            _table_location(spark, f"quarantine.{source.table}"))


def known_customers(spark: SparkSession) -> DataFrame:
    """Customers of bronze with the first batch that brought each."""
    return spark.table("bronze.customers").groupBy("customer_id") \
        .agg(F.min("_batch_date").alias("_first_batch"))


def _replace(frame: DataFrame, location: str, dates: list[dt.date], *, rows: int,
             merge: bool) -> int:
    """Replace the batches ``dates`` of a Delta table by ``frame`` (``rows`` rows): one commit.

    Returns:
        The rows the commit wrote, from Delta's own operation metrics.
    """
    from delta.tables import DeltaTable

    spark = frame.sparkSession
    if rows < ROWS_PER_FILE * len(dates):
        frame = frame.repartition("_batch_date")
    before = DeltaTable.forPath(spark, location).history(1).first()["version"]
    writer = frame.write.format("delta").mode("overwrite").option("replaceWhere", _dates_sql(dates))
    if merge:
        writer = writer.option("mergeSchema", "true")
    writer.save(location)
    metrics = DeltaTable.forPath(spark, location).history(1).first()
    if metrics["version"] == before:
        return 0  # nothing to write and nothing to replace: Delta made no commit
    found = metrics["operationMetrics"] or {}
    # Rows of other batches that shared a rewritten file are copied, not written by us.
    return int(found.get("numOutputRows", 0)) - int(found.get("numCopiedRows", 0))


def ingest_source(
    spark: SparkSession, source: Source, files: list[LandingFile], layout: object,
    dates: list[dt.date], *, check_customers: bool = True, log: Callable[[str], None] = print,
) -> dict[dt.date, BatchCounts]:
    """Read, classify and write one source over ``dates``; return counts per batch."""
    bronze_loc, quarantine_loc = ensure_tables(spark, source)
    parsed = read_source(spark, source, files, layout)
    raw = raw_record(parsed)
    extras = [c for c in parsed.columns if c not in source.columns and not c.startswith("_")]
    first = min(dates).isoformat()
    since = None
    if source.event_time:
        earliest = parsed.agg(F.min(F.to_date(source.event_time))).first()[0]
        since = earliest.isoformat() if earliest else first
    prior = prior_keys(spark.table(f"bronze.{source.table}"), source, before=first, since=since)
    known = known_customers(spark) if check_customers and source.name != "customers" else None
    classified = classify(parsed, source, known_customers=known, prior=prior) \
        .persist(StorageLevel.MEMORY_AND_DISK)
    try:
        now = runlog.utc_now()
        counts = {
            row["_batch_date"]: (int(row["read"]), int(row["ok"]))
            for row in classified.groupBy("_batch_date").agg(
                F.count("*").alias("read"),
                F.count(F.when(F.col("_reason").isNull(), 1)).alias("ok"),
            ).collect()
        }
        result = {}
        for date in dates:
            read, ok = counts.get(date, (0, 0))
            result[date] = BatchCounts(read=read, ingested=ok, quarantined=read - ok)
        expected = (sum(c.ingested for c in result.values()),
                    sum(c.quarantined for c in result.values()))
        bronze = classified.where(F.col("_reason").isNull()).select(
            *source.columns, "_source_file", "_batch_date",
            F.lit(now).cast("timestamp").alias("_ingested_at"), *extras,
        )
        quarantine = classified.where(F.col("_reason").isNotNull()).select(
            F.col("_source_file").alias("source_file"), F.col("_line").alias("line_number"),
            F.col("_reason").alias("reason"), raw.alias("raw_record"),
            "_batch_date", F.lit(now).cast("timestamp").alias("_quarantined_at"),
        )
        # Quarantine first: ``classified`` reads bronze (the prior keys), so the bronze commit
        # invalidates its cache and anything written after it would classify every row again.
        held = _replace(quarantine, quarantine_loc, dates, rows=expected[1], merge=False)
        wrote = _replace(bronze, bronze_loc, dates, rows=expected[0], merge=bool(extras))
        if extras:
            log(f"ingest: bronze.{source.table} evolved with added column(s) {', '.join(extras)}")
    finally:
        classified.unpersist()
    if (wrote, held) != expected:
        raise CountsMismatch(
            f"bronze.{source.table}: Delta committed {wrote} rows to bronze and {held} to "
            f"quarantine, expected {expected[0]} and {expected[1]}"
        )
    return result


def ingest_batches(
    spark: SparkSession,
    dates: Iterable[dt.date],
    *,
    sources: Iterable[str] | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict[dt.date, BatchCounts]]:
    """Ingest the landing batches of ``dates`` into bronze and quarantine.

    Args:
        spark: The lakehouse session.
        dates: Batch dates; all of a source's dates are read in one job, one commit per table.
        sources: Source names (all of :data:`features.schemas.SOURCES` by default).
        threads: Sources ingested at once after ``customers``; by default
            :data:`SMALL_BATCH_THREADS` when the landing files total at most
            :data:`SMALL_BATCH_BYTES`, else one.
        log: Where progress lines go.

    Returns:
        Counts per source and batch date (only batches with landing files).

    Raises:
        SchemaMismatch: A file lacks a column or retypes it; nothing was written.
        CountsMismatch: Read differs from ingested plus quarantined (recorded as failed).
    """
    wanted = [name for name in ORDER if sources is None or name in set(sources)]
    all_dates = sorted(set(dates))
    landing = str(settings().landing_dir)
    run_id = runlog.new_run_id()
    plan: list[tuple[Source, list[LandingFile], object]] = []
    started = runlog.utc_now()
    try:
        for name in wanted:
            source = SOURCES[name]
            files = list_files(spark, landing_dir=landing, source=source, dates=all_dates)
            if files:
                plan.append((source, files, _validate(spark, source, files)))
    except SchemaMismatch as error:
        runlog.append_runs(spark, [
            runlog.StepRun(pipeline=PIPELINE, step="validate", batch_date=d, run_id=run_id,
                           started_at=started).finish(status="failed", message=str(error))
            for d in all_dates
        ])
        raise
    customers_known = any(s.name == "customers" for s, _, _ in plan) or \
        spark.catalog.tableExists("bronze.customers")

    def ingest_one(item: tuple[Source, list[LandingFile], object]
                   ) -> tuple[dict[dt.date, BatchCounts], list[runlog.StepRun]]:
        source, files, layout = item
        clock = time.perf_counter()
        step_started = runlog.utc_now()
        dates_here = sorted({file.batch_date for file in files})
        counts = ingest_source(spark, source, files, layout, dates_here,
                               check_customers=customers_known, log=log)
        source_runs = []
        for date, batch in counts.items():
            run = runlog.StepRun(
                pipeline=PIPELINE, step=f"bronze.{source.table}", batch_date=date, run_id=run_id,
                started_at=step_started, rows_read=batch.read, rows_written=batch.ingested,
                rows_quarantined=batch.quarantined,
            )
            source_runs.append(run.finish(status="succeeded") if batch.balanced else run.finish(
                status="failed", message=f"read {batch.read} != ingested {batch.ingested} + "
                f"quarantined {batch.quarantined}"))
        total = [sum(getattr(c, f) for c in counts.values())
                 for f in ("read", "ingested", "quarantined")]
        log(f"ingest: bronze.{source.table}: {len(dates_here)} batch(es), read {total[0]:,}, "
            f"ingested {total[1]:,}, quarantined {total[2]:,} "
            f"in {time.perf_counter() - clock:.1f}s")
        return counts, source_runs

    landed = sum(file.size for _, files, _ in plan for file in files)
    workers = threads if threads is not None else (
        SMALL_BATCH_THREADS if landed <= SMALL_BATCH_BYTES else 1)
    # customers first (the others check their ids against it), then the rest, side by side
    # when the batch is small (see SMALL_BATCH_BYTES).
    first = [item for item in plan if item[0].name == "customers"]
    rest = [item for item in plan if item[0].name != "customers"]
    results: dict[str, dict[dt.date, BatchCounts]] = {}
    runs: list[runlog.StepRun] = []
    errors: list[BaseException] = []

    def collect(item: tuple[Source, list[LandingFile], object], outcome) -> None:
        try:
            counts, source_runs = outcome()
        except Exception as error:  # recorded below; the others' rows are kept
            errors.append(error)
            runs.extend(
                runlog.StepRun(pipeline=PIPELINE, step=f"bronze.{item[0].table}", batch_date=d,
                               run_id=run_id, started_at=started).finish(
                    status="failed", message=console.first_line(error))
                for d in sorted({file.batch_date for file in item[1]}))
            return
        results[item[0].name] = counts
        runs.extend(source_runs)

    for item in first:
        collect(item, lambda item=item: ingest_one(item))
    if not errors:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [(item, pool.submit(ingest_one, item)) for item in rest]
            for item, future in futures:
                collect(item, future.result)
    results = {name: results[name] for name in ORDER if name in results}
    runlog.append_runs(spark, runs)
    if errors:
        raise errors[0]
    failed = [run for run in runs if run.status == "failed"]
    if failed:
        raise CountsMismatch("; ".join(f"{r.step} {r.batch_date}: {r.message}" for r in failed))
    # A source that has delivered nothing yet (no customer has churned in a young lake) gets
    # its empty tables, so that what reads every source (dbt's staging) runs; not before the
    # first delivery of anything, so that an empty lake stays visibly empty.
    if results or spark.catalog.tableExists("bronze.customers"):
        for name in wanted:
            if name not in results and not spark.catalog.tableExists(
                    f"bronze.{SOURCES[name].table}"):
                ensure_tables(spark, SOURCES[name])
                log(f"ingest: bronze.{SOURCES[name].table}: nothing delivered yet; "
                    "created empty")
    return results
