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

import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from features import console, runlog
from features.ingest.classify import classify, later_copies, prior_keys, with_hashes
from features.ingest.files import LandingFile, is_data_file, list_dir, list_files
from features.ingest.readers import raw_record, read_source
from features.ingest.schema_check import (
    SchemaMismatch,
    check_csv,
    check_json,
    check_parquet,
    read_or_note,
)
from features.lakehouse import settings
from features.schemas import (
    QUARANTINE_DDL,
    QUARANTINED_FILES_DDL,
    QUARANTINED_FILES_TABLE,
    SOURCES,
    Source,
)

__all__ = [
    "BatchCounts",
    "CountsMismatch",
    "IngestResults",
    "SchemaMismatch",
    "ingest_batches",
    "landing_changes",
]

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
# A Parquet source's exact copies are found apart (classify.later_copies: two more jobs, no
# record sorted whole) when its files total more than this; below it ranking every record
# costs less (bench/RESULTS.md: 3M usage rows, 49 MB, classified in 10-12 s against 21 s;
# the demo's 16 MB, a backfill ingest about 5 s slower apart).  A text source's reader sorts
# its lines anyway, and reading it again twice would cost more than the ranking saves.
COPIES_APART_BYTES = 32 * 2**20
# Up to this many copies are broadcast to the records (exact: they are counted first).
COPIES_BROADCAST_ROWS = 1_000_000


# Spark's columnar cache compresses every column as it builds (dictionary, run-length
# encodings): for usage's batch at 10M rows that was half of the job that classifies and
# caches it (20.6 s against 13.2 s uncompressed, warm; bench/RESULTS.md).  The classified
# records are cached uncompressed while sources up to SMALL_BATCH_BYTES are ingested; a
# larger source keeps the compression, so that less of its cache spills to disk.
_CACHE_COMPRESSION = "spark.sql.inMemoryColumnarStorage.compressed"


@contextlib.contextmanager
def _cache_compression(spark: SparkSession, *, enabled: bool) -> Iterator[None]:
    """Build the session's caches compressed or not inside the block (the setting is the
    session's: the block's sources are the only ones being ingested)."""
    before = spark.conf.get(_CACHE_COMPRESSION, None)
    spark.conf.set(_CACHE_COMPRESSION, "true" if enabled else "false")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(_CACHE_COMPRESSION)
        else:
            spark.conf.set(_CACHE_COMPRESSION, before)


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


class IngestResults(dict):
    """Counts per source and batch date (a dict), and what the batches still wait for.

    Attributes:
        waiting: Batch date to the daily sources (``Source.daily``) without files for it,
            or to every source when nothing at all was delivered for the date.
        quarantined_files: Landing files quarantined whole (name to reason).
        ignored: Landing files that are not data (names), left alone.
        delivered: Batch date to the sources with readable files for it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[dt.date, list[str]] = {}
        self.delivered: dict[dt.date, list[str]] = {}
        self.quarantined_files: dict[str, str] = {}
        self.ignored: list[str] = []


def fingerprint(files: Iterable[LandingFile]) -> str:
    """What was delivered: a digest of the files' names, sizes and modification times."""
    text = "\n".join(sorted(f"{file.name}:{file.size}:{file.modified}" for file in files))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


_FINGERPRINT = re.compile(r"fingerprint ([0-9a-f]{16})")


def _dates_sql(dates: Iterable[dt.date]) -> str:
    return "_batch_date in (" + ", ".join(f"'{d.isoformat()}'" for d in sorted(dates)) + ")"


def _validate(
    spark: SparkSession, source: Source, files: list[LandingFile], unreadable: dict[str, str]
) -> object:
    if source.file_format == "parquet":
        return check_parquet(spark, source, files, unreadable)
    if source.file_format == "csv":
        return check_csv(spark, source, files, unreadable)
    return check_json(spark, source, files, unreadable, optional=source.optional)


def _unreadable_files(
    spark: SparkSession, source: Source, files: list[LandingFile], layout: object
) -> dict[str, str]:
    """Files of a batch whose read failed, each read alone in full (after a batch read
    failed: a page that does not decompress, a broken archive)."""
    found: dict[str, str] = {}
    kind = {"csv": "CSV", "json": "JSON lines", "parquet": "Parquet"}[source.file_format]
    for file in files:
        frame = read_source(spark, source, [file], layout)
        read_or_note(
            frame.select(F.xxhash64(*[F.col(f"`{c}`") for c in frame.columns]).alias("h"))
            .agg(F.sum("h"))
            .collect,
            file.path,
            kind=kind,
            unreadable=found,
        )
    return found


def _table_location(spark: SparkSession, name: str) -> str:
    """Where the catalog keeps table ``database.table`` (the metastore alone answers: no
    Delta state is read, unlike ``describe detail``)."""
    database, table = name.split(".")
    jvm = spark.sparkContext._jvm
    ident = jvm.org.apache.spark.sql.catalyst.TableIdentifier(table, jvm.scala.Some(database))
    meta = spark._jsparkSession.sessionState().catalog().getTableMetadata(ident)
    # The catalog's URI as a Hadoop path (a space stays a space, not %20).
    return str(jvm.org.apache.spark.sql.catalyst.catalog.CatalogUtils.URIToString(meta.location()))


def ensure_tables(spark: SparkSession, source: Source) -> tuple[str, str]:
    """Create ``bronze.<table>`` and ``quarantine.<table>`` if needed; return their locations."""
    partition = f" partitioned by ({', '.join(source.partition_by)})" if source.partition_by else ""
    for name, ddl in (
        (f"bronze.{source.table}", source.bronze_ddl),
        (f"quarantine.{source.table}", QUARANTINE_DDL),
    ):
        if not spark.catalog.tableExists(name):
            spark.sql(f"create table if not exists {name} ({ddl}) using delta{partition}")
    return (
        _table_location(spark, f"bronze.{source.table}"),
        _table_location(spark, f"quarantine.{source.table}"),
    )


def ensure_all_tables(spark: SparkSession) -> list[str]:
    """Create every source's bronze and quarantine tables, and ``quarantine.landing_files``,
    empty with their contract's schema where missing; return the bronze tables made."""
    made = []
    for name in ORDER:
        source = SOURCES[name]
        if not spark.catalog.tableExists(f"bronze.{source.table}"):
            made.append(f"bronze.{source.table}")
        ensure_tables(spark, source)
    spark.sql(
        f"create table if not exists {QUARANTINED_FILES_TABLE} "
        f"({QUARANTINED_FILES_DDL}) using delta"
    )
    return made


def known_customers(spark: SparkSession) -> DataFrame:
    """Customers of bronze with the first batch that brought each."""
    return (
        spark.table("bronze.customers")
        .groupBy("customer_id")
        .agg(F.min("_batch_date").alias("_first_batch"))
    )


class _Commits:
    """Delta commits of one ingestion run, to undo them all if any source fails."""

    def __init__(self) -> None:
        self.before: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, location: str, version: int) -> None:
        with self._lock:
            self.before.setdefault(location, version)

    def undo(self, spark: SparkSession) -> None:
        """Restore every table this run committed to its version before the run."""
        from delta.tables import DeltaTable

        for location, version in self.before.items():
            DeltaTable.forPath(spark, location).restoreToVersion(version)


def _replace(
    frame: DataFrame,
    location: str,
    dates: list[dt.date],
    *,
    rows: int,
    merge: bool,
    commits: _Commits | None = None,
) -> int:
    """Replace the batches ``dates`` of a Delta table by ``frame`` (``rows`` rows): one commit.

    Returns:
        The rows the commit wrote, from Delta's own operation metrics.
    """
    from delta.tables import DeltaTable

    spark = frame.sparkSession
    if rows == 0 and not merge and not _holds_batches(spark, location, dates):
        return 0  # nothing to write and nothing to replace: skip the write's jobs
    if rows < ROWS_PER_FILE * len(dates):
        frame = frame.repartition("_batch_date")
    before = DeltaTable.forPath(spark, location).history(1).first()["version"]
    if commits is not None:
        commits.add(location, before)
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


def _holds_batches(spark: SparkSession, location: str, dates: list[dt.date]) -> bool:
    """Whether the Delta table at ``location`` has rows of the batches ``dates``.

    Most of a day's quarantine tables hold none: their files' statistics on ``_batch_date``
    (or its partitions) rule every file out without reading one, which costs less than the
    jobs of an empty replacing write (Delta commits nothing for it either way).
    """
    found = spark.read.format("delta").load(location).where(_dates_sql(dates)).limit(1)
    return bool(found.collect())


def ingest_source(
    spark: SparkSession,
    source: Source,
    files: list[LandingFile],
    layout: object,
    dates: list[dt.date],
    *,
    check_customers: bool = True,
    known: DataFrame | None = None,
    log: Callable[[str], None] = print,
    unreadable: dict[str, str] | None = None,
    commits: _Commits | None = None,
) -> dict[dt.date, BatchCounts]:
    """Read, classify and write one source over ``dates``; return counts per batch.

    A file whose read fails is found (each read alone), added to ``unreadable`` and left
    out; the source is read again without it.  ``commits`` collects the tables written.
    ``known``: the customers as :func:`known_customers` gives them, when the caller holds
    them (cached once for the sources of a run); read here when None.
    """
    unreadable = {} if unreadable is None else unreadable
    while True:
        try:
            return _ingest_source(
                spark,
                source,
                files,
                layout,
                dates,
                check_customers=check_customers,
                known=known,
                log=log,
                commits=commits,
            )
        except _ReadFailed as failed:
            bad = _unreadable_files(spark, source, files, layout)
            if not bad:
                raise failed.error from None
            unreadable.update(bad)
            files = [file for file in files if file.path not in bad]
            if not files:
                return clear_batches(spark, source, dates, commits=commits)


def clear_batches(
    spark: SparkSession, source: Source, dates: list[dt.date], *, commits: _Commits | None = None
) -> dict[dt.date, BatchCounts]:
    """Empty the batches ``dates`` of a source whose files were all unreadable (what an
    earlier ingestion of them wrote is replaced by nothing, as a rerun replaces a batch)."""
    locations = ensure_tables(spark, source)
    for location, ddl in zip(locations, (source.bronze_ddl, QUARANTINE_DDL), strict=True):
        frame = spark.createDataFrame([], ddl)
        _replace(frame, location, dates, rows=0, merge=False, commits=commits)
    return {date: BatchCounts(0, 0, 0) for date in dates}


class _ReadFailed(Exception):
    """Reading a source's batch failed before anything was written."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _ingest_source(
    spark: SparkSession,
    source: Source,
    files: list[LandingFile],
    layout: object,
    dates: list[dt.date],
    *,
    check_customers: bool,
    known: DataFrame | None,
    log: Callable[[str], None],
    commits: _Commits | None,
) -> dict[dt.date, BatchCounts]:
    bronze_loc, quarantine_loc = ensure_tables(spark, source)
    parsed = read_source(spark, source, files, layout)
    extras = [c for c in parsed.columns if c not in source.columns and not c.startswith("_")]
    first = min(dates).isoformat()
    since = None
    if source.event_time:
        try:
            earliest = parsed.agg(F.min(F.to_date(source.event_time))).first()[0]
        except Exception as error:  # noqa: BLE001 - a file may be unreadable: see caller
            raise _ReadFailed(error) from error
        since = earliest.isoformat() if earliest else first
    prior = prior_keys(spark.table(f"bronze.{source.table}"), source, before=first, since=since)
    if not check_customers or source.name == "customers":
        known = None
    elif known is None:
        known = known_customers(spark)
    hashed = with_hashes(parsed, source)
    later = marks = None
    if source.file_format == "parquet" and sum(file.size for file in files) > COPIES_APART_BYTES:
        try:
            later, copies = later_copies(hashed)
        except Exception as error:  # noqa: BLE001 - a file may be unreadable: see caller
            raise _ReadFailed(error) from error
        marks = F.broadcast(later) if copies <= COPIES_BROADCAST_ROWS else later
    try:
        classified = classify(hashed, source, later=marks, known_customers=known, prior=prior)
        return _write_classified(
            source,
            dates,
            parsed,
            classified,
            (bronze_loc, quarantine_loc),
            extras=extras,
            log=log,
            commits=commits,
        )
    finally:
        if later is not None:
            later.unpersist()


def _write_classified(
    source: Source,
    dates: list[dt.date],
    parsed: DataFrame,
    classified: DataFrame,
    locations: tuple[str, str],
    *,
    extras: list[str],
    log: Callable[[str], None],
    commits: _Commits | None,
) -> dict[dt.date, BatchCounts]:
    """Count the classified records per batch, write quarantine then bronze (one commit
    each), and check Delta's counts against them."""
    bronze_loc, quarantine_loc = locations
    raw = raw_record(parsed)
    # Cached for the counts and the two writes: the record and its lineage, not the hashes
    # and flags that decided its reason.
    kept = [c for c in parsed.columns if not c.startswith("_")]
    kept += [c for c in ("_raw", "_source_file", "_line", "_batch_date") if c in parsed.columns]
    classified = classified.select(*[F.col(f"`{c}`") for c in kept], "_reason").persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        now = runlog.utc_now()
        try:
            counts = {
                row["_batch_date"]: (int(row["read"]), int(row["ok"]))
                for row in classified.groupBy("_batch_date")
                .agg(
                    F.count("*").alias("read"),
                    F.count(F.when(F.col("_reason").isNull(), 1)).alias("ok"),
                )
                .collect()
            }
        except Exception as error:  # noqa: BLE001 - a file may be unreadable: see caller
            raise _ReadFailed(error) from error
        result = {}
        for date in dates:
            read, ok = counts.get(date, (0, 0))
            result[date] = BatchCounts(read=read, ingested=ok, quarantined=read - ok)
        expected = (
            sum(c.ingested for c in result.values()),
            sum(c.quarantined for c in result.values()),
        )
        bronze = classified.where(F.col("_reason").isNull()).select(
            *source.columns,
            "_source_file",
            "_batch_date",
            F.lit(now).cast("timestamp").alias("_ingested_at"),
            *extras,
        )
        quarantine = classified.where(F.col("_reason").isNotNull()).select(
            F.col("_source_file").alias("source_file"),
            F.col("_line").alias("line_number"),
            F.col("_reason").alias("reason"),
            raw.alias("raw_record"),
            "_batch_date",
            F.lit(now).cast("timestamp").alias("_quarantined_at"),
        )
        # Quarantine first: ``classified`` reads bronze (the prior keys), so the bronze commit
        # invalidates its cache and anything written after it would classify every row again.
        held = _replace(
            quarantine, quarantine_loc, dates, rows=expected[1], merge=False, commits=commits
        )
        wrote = _replace(
            bronze, bronze_loc, dates, rows=expected[0], merge=bool(extras), commits=commits
        )
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
) -> IngestResults:
    """Ingest the landing batches of ``dates`` into bronze and quarantine.

    The policy (README, "Bad input"): a file that is not data (by its name) is ignored and
    logged; a file that cannot be read is quarantined whole (``quarantine.landing_files``)
    and the rest goes on; a bad row goes to ``quarantine.<table>`` with its reason; a bad
    column stops the batch before any write.  The batch commits all its sources or none:
    when one fails, the tables the others wrote are restored.  Every attempt has its rows in
    ``ops.pipeline_runs`` (a date still waiting for a daily source gets a ``waiting`` row).

    Args:
        spark: The lakehouse session.
        dates: Batch dates; all of a source's dates are read in one job, one commit per table.
        sources: Source names (all of :data:`features.schemas.SOURCES` by default).
        threads: Sources ingested at once after ``customers``; by default the sources
            whose landing files total at most :data:`SMALL_BATCH_BYTES` each go
            :data:`SMALL_BATCH_THREADS` at once, then each larger one alone (not started
            when a source before it failed: the batch is rolled back anyway).
        log: Where progress lines go.

    Returns:
        Counts per source and batch date (only batches with landing files), and what is
        still waiting (see :class:`IngestResults`).

    Raises:
        SchemaMismatch: A file lacks a column, retypes it or sends one Spark cannot tell
            apart; nothing was written.
        CountsMismatch: Read differs from ingested plus quarantined (recorded as failed).
    """
    wanted = [name for name in ORDER if sources is None or name in set(sources)]
    all_dates = sorted(set(dates))
    landing = str(settings().landing_dir)
    run_id = runlog.new_run_id()
    plan: list[tuple[Source, list[LandingFile], list[LandingFile], object]] = []
    results = IngestResults()
    unreadable: dict[str, str] = {}
    delivered: dict[dt.date, set[str]] = {}
    started = runlog.utc_now()
    try:
        for name in wanted:
            source = SOURCES[name]
            listed = list_files(spark, landing_dir=landing, source=source, dates=all_dates)
            data = [file for file in listed if is_data_file(source, file.name)]
            for file in listed:
                if file not in data:
                    results.ignored.append(file.name)
                    log(f"ingest: ignored {file.name}: not a {source.file_format} file")
            if data:
                layout = _validate(spark, source, data, unreadable)
                readable = [file for file in data if file.path not in unreadable]
                plan.append((source, data, readable, layout))
    except SchemaMismatch as error:
        runlog.append_runs(
            spark,
            [
                runlog.StepRun(
                    pipeline=PIPELINE,
                    step="validate",
                    batch_date=d,
                    run_id=run_id,
                    started_at=started,
                ).finish(status="failed", message=str(error))
                for d in all_dates
            ],
        )
        raise
    customers_known = any(
        item[0].name == "customers" for item in plan
    ) or spark.catalog.tableExists("bronze.customers")
    commits = _Commits()
    # The known customers, once the customers are in: cached for every other source (each
    # read them again: a scan of bronze.customers and an aggregate per source).
    known: DataFrame | None = None

    def ingest_one(
        item: tuple[Source, list[LandingFile], list[LandingFile], object],
    ) -> tuple[dict[dt.date, BatchCounts], list[runlog.StepRun]]:
        source, data, readable, layout = item
        clock = time.perf_counter()
        step_started = runlog.utc_now()
        dates_here = sorted({file.batch_date for file in data})
        if readable:
            counts = ingest_source(
                spark,
                source,
                readable,
                layout,
                dates_here,
                check_customers=customers_known,
                known=known,
                log=log,
                unreadable=unreadable,
                commits=commits,
            )
        else:
            counts = clear_batches(spark, source, dates_here, commits=commits)
        source_runs = []
        for date, batch in counts.items():
            files_here = [file for file in data if file.batch_date == date]
            whole = [file.name for file in files_here if file.path in unreadable]
            message = (
                f"{len(files_here)} file(s), {sum(f.size for f in files_here):,} bytes, "
                f"fingerprint {fingerprint(files_here)}"
            )
            if whole:
                message += f"; {len(whole)} quarantined whole: {', '.join(whole)}"
            run = runlog.StepRun(
                pipeline=PIPELINE,
                step=f"bronze.{source.table}",
                batch_date=date,
                run_id=run_id,
                started_at=step_started,
                rows_read=batch.read,
                rows_written=batch.ingested,
                rows_quarantined=batch.quarantined,
            )
            source_runs.append(
                run.finish(status="succeeded", message=message)
                if batch.balanced
                else run.finish(
                    status="failed",
                    message=f"read {batch.read} != ingested {batch.ingested} + "
                    f"quarantined {batch.quarantined}",
                )
            )
        total = [
            sum(getattr(c, f) for c in counts.values()) for f in ("read", "ingested", "quarantined")
        ]
        log(
            f"ingest: bronze.{source.table}: {len(dates_here)} batch(es), read {total[0]:,}, "
            f"ingested {total[1]:,}, quarantined {total[2]:,} "
            f"in {time.perf_counter() - clock:.1f}s"
        )
        return counts, source_runs

    def landed(item: tuple[Source, list[LandingFile], list[LandingFile], object]) -> int:
        return sum(file.size for file in item[1])

    # customers first (the others check their ids against it), then the small sources side
    # by side (see SMALL_BATCH_BYTES), then each large one alone.
    first = [item for item in plan if item[0].name == "customers"]
    rest = [item for item in plan if item[0].name != "customers"]
    if threads is None:
        small = [item for item in rest if landed(item) <= SMALL_BATCH_BYTES]
        large = [item for item in rest if landed(item) > SMALL_BATCH_BYTES]
        stages = [(small, SMALL_BATCH_THREADS), (large, 1)]
    else:
        stages = [(rest, threads)]
    runs: list[runlog.StepRun] = []
    errors: list[BaseException] = []

    def collect(item, outcome) -> None:
        try:
            counts, source_runs = outcome()
        except Exception as error:  # recorded below; the others' rows are kept
            errors.append(error)
            runs.extend(
                runlog.StepRun(
                    pipeline=PIPELINE,
                    step=f"bronze.{item[0].table}",
                    batch_date=d,
                    run_id=run_id,
                    started_at=started,
                ).finish(status="failed", message=console.first_line(error))
                for d in sorted({file.batch_date for file in item[1]})
            )
            return
        results[item[0].name] = counts
        runs.extend(source_runs)

    for item in first:
        with _cache_compression(spark, enabled=landed(item) > SMALL_BATCH_BYTES):
            collect(item, lambda item=item: ingest_one(item))
    if customers_known and rest and not errors:
        try:
            known = known_customers(spark).persist(StorageLevel.MEMORY_AND_DISK)
        except Exception:  # noqa: BLE001 - each source reads them itself, and fails there
            known = None  # (recorded and rolled back with the batch)
    try:
        for items, workers in stages:
            if errors or not items:
                continue
            large_here = any(landed(item) > SMALL_BATCH_BYTES for item in items)
            with (
                _cache_compression(spark, enabled=large_here),
                ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
            ):
                futures = [(item, pool.submit(ingest_one, item)) for item in items]
                for item, future in futures:
                    collect(item, future.result)
    finally:
        if known is not None:
            known.unpersist()
    failed = [run for run in runs if run.status == "failed"]
    if errors or failed:  # all sources or none: undo what the others committed
        cause = console.first_line(errors[0]) if errors else f"{failed[0].step} failed"
        try:
            commits.undo(spark)
        except Exception as undo_error:  # noqa: BLE001 - recorded; the first error is raised
            cause += f" (and restoring the others failed: {console.first_line(undo_error)})"
        for run in runs:
            if run.status == "succeeded":
                run.finish(status="failed", message=f"rolled back: {cause}")
        runlog.append_runs(spark, runs)
        if errors:
            raise errors[0]
        raise CountsMismatch("; ".join(f"{r.step} {r.batch_date}: {r.message}" for r in failed))
    # What landed and could be read, per date: a daily source without it is waited for.
    for source, data, _, _ in plan:
        for file in data:
            if file.path not in unreadable:
                delivered.setdefault(file.batch_date, set()).add(source.name)
    for date in all_dates:
        got = delivered.get(date, set())
        missing = [name for name in wanted if SOURCES[name].daily and name not in got]
        if not got or missing:
            results.waiting[date] = missing or list(wanted)
        results.delivered[date] = sorted(got)
    names = {file.path: file for _, files, _, _ in plan for file in files}
    for path, reason in unreadable.items():
        results.quarantined_files[names[path].name] = reason
        log(f"ingest: {names[path].name} quarantined whole: {reason}")
    _record_unreadable(spark, plan, unreadable)
    for date, missing in results.waiting.items():
        what = (
            "nothing delivered"
            if not delivered.get(date)
            else "no readable files of " + ", ".join(missing)
        )
        runs.append(
            runlog.StepRun(
                pipeline=PIPELINE,
                step="delivery",
                batch_date=date,
                run_id=run_id,
                started_at=started,
            ).finish(
                status="waiting", message=f"{what} under {landing}/<source>/{date.isoformat()}"
            )
        )
    runlog.append_runs(spark, runs)
    ordered = {name: results[name] for name in ORDER if name in results}
    results.clear()
    results.update(ordered)
    # A source that has delivered nothing yet (no customer has churned in a young lake) gets
    # its empty tables, so that what reads every source (dbt's staging) runs; not before the
    # first delivery of anything, so that an empty lake stays visibly empty.
    if results or spark.catalog.tableExists("bronze.customers"):
        for name in wanted:
            if name not in results and not spark.catalog.tableExists(
                f"bronze.{SOURCES[name].table}"
            ):
                ensure_tables(spark, SOURCES[name])
                log(f"ingest: bronze.{SOURCES[name].table}: nothing delivered yet; created empty")
    return results


def _record_unreadable(spark: SparkSession, plan: list, unreadable: dict[str, str]) -> None:
    """Replace the batches' rows of ``quarantine.landing_files`` by the files found unreadable
    now (one commit; none when there is nothing to record or to clear)."""
    files = [
        (source, file) for source, data, _, _ in plan for file in data if file.path in unreadable
    ]
    exists = spark.catalog.tableExists(QUARANTINED_FILES_TABLE)
    if not files and not exists:
        return
    pairs = " or ".join(
        f"(source = '{source.name}' and _batch_date = '{date.isoformat()}')"
        for source, data, _, _ in plan
        for date in sorted({f.batch_date for f in data})
    )
    if not pairs:
        return
    if not files and spark.table(QUARANTINED_FILES_TABLE).where(pairs).limit(1).count() == 0:
        return
    if not exists:
        spark.sql(
            f"create table if not exists {QUARANTINED_FILES_TABLE} "
            f"({QUARANTINED_FILES_DDL}) using delta"
        )
    now = runlog.utc_now()
    rows = [
        (source.name, file.name, file.size, unreadable[file.path], file.batch_date, now)
        for source, file in files
    ]
    spark.createDataFrame(rows, QUARANTINED_FILES_DDL).write.format("delta").mode(
        "overwrite"
    ).option("replaceWhere", pairs).saveAsTable(QUARANTINED_FILES_TABLE)


def landing_changes(spark: SparkSession, *, until: dt.date) -> list[dt.date]:
    """Batch dates up to ``until``, already asked of ingestion, whose landing files differ
    from what it last took (a late file, a file replaced or added): for some source, the
    files' fingerprint is not that of its latest succeeded ``ops.pipeline_runs`` row."""
    if not spark.catalog.tableExists(runlog.PIPELINE_RUNS_TABLE):
        return []
    rows = (
        spark.table(runlog.PIPELINE_RUNS_TABLE)
        .where((F.col("pipeline") == PIPELINE) & (F.col("batch_date") <= F.lit(until)))
        .groupBy("step", "batch_date", "status")
        .agg(F.max_by("message", "finished_at").alias("message"))
        .collect()
    )
    # Dates ingestion took or waits for (one that failed validation stays failed until a
    # person reruns it: it must not pull every later run into the same failure).
    asked = {row["batch_date"] for row in rows if row["status"] in ("succeeded", "waiting")}
    taken: dict[tuple[str, dt.date], str | None] = {}
    for row in rows:
        if row["status"] == "succeeded" and row["step"].startswith("bronze."):
            found = _FINGERPRINT.search(row["message"] or "")
            # A row from before fingerprints were recorded matches whatever is there.
            taken[(row["step"], row["batch_date"])] = found.group(1) if found else None
    if not asked:
        return []
    landing = str(settings().landing_dir)
    changed: set[dt.date] = set()
    for source in SOURCES.values():
        dates = [date for date in _delivered_dates(spark, landing, source) if date in asked]
        if not dates:
            continue
        by_date: dict[dt.date, list[LandingFile]] = {}
        for file in list_files(spark, landing_dir=landing, source=source, dates=dates):
            if is_data_file(source, file.name):
                by_date.setdefault(file.batch_date, []).append(file)
        for date, here in by_date.items():
            key = (f"bronze.{source.table}", date)
            if key not in taken or (taken[key] is not None and taken[key] != fingerprint(here)):
                changed.add(date)
    return sorted(changed)


def _delivered_dates(spark: SparkSession, landing: str, source: Source) -> list[dt.date]:
    """The batch dates of ``source``'s landing folders."""
    dates = []
    for entry in list_dir(spark, f"{landing}/{source.name}"):
        if entry.is_dir:
            try:
                dates.append(dt.date.fromisoformat(entry.name))
            except ValueError:
                continue
    return sorted(dates)
