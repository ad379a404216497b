"""Ingestion: dirt to quarantine with its reason, balanced counts, idempotence, schema change."""

from __future__ import annotations

import datetime as dt
import shutil

import pyspark.sql.functions as F
import pytest

from features.generate import dirt_counts
from features.ingest import SchemaMismatch, ingest_batches
from features.lakehouse import settings
from features.schemas import SOURCES
from tests.spark.telco_data import TINY, tiny_lake

pytestmark = pytest.mark.spark

REASONS = {
    "malformed": "malformed_record",
    "unparseable_timestamp": "unparseable_timestamp",
    "negative_duration": "negative_duration",
    "unknown_customer": "unknown_customer",
    "missing_key": "missing_key",
    "duplicate": "duplicate",
    "non_finite": "non_finite: amount",
    "wrong_type": "wrong_type: customer_id",
    "out_of_range": "out_of_range: duration_s",
    "invalid_encoding": "invalid_encoding",
}
LINEAGE_TIMES = ("_ingested_at", "_quarantined_at")


@pytest.fixture(scope="module")
def ingested(spark):
    summary = tiny_lake(spark)
    results = ingest_batches(spark, TINY.dates)
    return summary, results


def _rows(spark, table: str, where=None) -> list[tuple]:
    """The table's rows without their ingestion times, sorted (rows, not a cached frame: a
    Delta write re-caches a cached frame of its table, which would compare it with itself)."""
    frame = spark.table(table)
    frame = frame.drop(*[c for c in LINEAGE_TIMES if c in frame.columns])
    if where is not None:
        frame = frame.where(where)
    return sorted(tuple(map(str, row)) for row in frame.collect())


def _version(spark, table: str) -> int:
    return spark.sql(f"describe history {table}").agg(F.max("version")).first()[0]


def test_counts_balance_and_are_logged(spark, ingested) -> None:
    summary, results = ingested
    for name, counts in results.items():
        assert all(c.read == c.ingested + c.quarantined for c in counts.values()), name
        assert sum(c.read for c in counts.values()) == summary.rows[name], name
    runs = spark.table("ops.pipeline_runs").where("pipeline = 'ingest' and status = 'succeeded'")
    usage = (
        runs.where("step = 'bronze.usage_events'")
        .agg(F.sum("rows_read"), F.sum("rows_written"), F.sum("rows_quarantined"), F.count("*"))
        .first()
    )
    assert usage[0] == usage[1] + usage[2] == summary.rows["usage"]
    assert usage[3] == TINY.days


def test_every_kind_of_dirt_lands_in_quarantine_with_its_reason(spark, ingested) -> None:
    expected: dict[tuple[str, str], int] = {}
    for (name, kind), count in dirt_counts(spark, TINY).items():
        if kind in REASONS:
            expected[(SOURCES[name].table, REASONS[kind])] = count
    found = {}
    for source in SOURCES.values():
        if not spark.catalog.tableExists(f"quarantine.{source.table}"):
            continue  # no landing files of this source in the window (e.g. no churn yet)
        rows = spark.table(f"quarantine.{source.table}").groupBy("reason").count().collect()
        found.update({(source.table, row["reason"]): row["count"] for row in rows})
    assert found == expected
    kinds = {reason for _, reason in found}
    assert kinds == set(REASONS.values())
    sample = spark.table("quarantine.support_chats").where("reason = 'malformed_record'").first()
    assert sample["source_file"].startswith("landing/chats/2026-01-")
    assert sample["raw_record"].startswith("{") and sample["line_number"] >= 0


def test_small_batches_are_written_one_file_per_date(spark, ingested) -> None:
    # TINY's batches are far under ROWS_PER_FILE rows: one writer task per batch date.
    for table in ("bronze.usage_events", "quarantine.usage_events"):
        files = (
            spark.table(table)
            .select("_batch_date", F.input_file_name().alias("file"))
            .distinct()
            .groupBy("_batch_date")
            .count()
        )
        assert files.count() == TINY.days, table
        assert files.where("count != 1").count() == 0, table


def test_late_events_are_ingested_with_their_true_time(spark, ingested) -> None:
    late = spark.table("bronze.usage_events").where(F.to_date("event_at") < F.col("_batch_date"))
    assert late.count() > 0
    assert late.where(F.datediff("_batch_date", F.to_date("event_at")) > 5).count() == 0


def test_reingest_changes_nothing(spark, ingested) -> None:
    tables = [
        "bronze.usage_events",
        "quarantine.usage_events",
        "bronze.support_chats",
        "quarantine.support_chats",
        "bronze.payments",
        "quarantine.payments",
    ]
    before = {table: _rows(spark, table) for table in tables}
    ingest_batches(spark, TINY.dates[2:5], sources=["usage", "chats", "payments"])
    for table in tables:
        assert _rows(spark, table) == before[table], table


@pytest.mark.parametrize("broadcast", [True, False], ids=["broadcast", "sort_merge"])
def test_copies_found_apart_are_the_ones_ranking_finds(
    spark, ingested, monkeypatch, broadcast
) -> None:
    """A large batch finds its exact copies apart (``classify.later_copies``) and joins them
    back by broadcasting them (few, in a real feed), or, when they are too many (a whole
    batch sent twice), by a sort-merge join: both mark the records that ranking every record
    (a small batch's way, which ingested these) marked."""
    import features.ingest as ingest

    monkeypatch.setattr(ingest, "COPIES_APART_BYTES", 0)
    tables = ["bronze.usage_events", "quarantine.usage_events"]
    dates = TINY.dates[:4]
    scope = F.col("_batch_date").isin(*dates)
    before = {table: _rows(spark, table, scope) for table in tables}
    assert any("duplicate" in row for row in before["quarantine.usage_events"])
    setting = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    if not broadcast:
        monkeypatch.setattr(ingest, "COPIES_BROADCAST_ROWS", 0)
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        ingest_batches(spark, dates, sources=["usage"])
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", setting)
    for table in tables:
        assert _rows(spark, table, scope) == before[table], table


def test_small_sources_go_side_by_side_and_a_large_one_alone(spark, ingested, monkeypatch) -> None:
    """Sources whose files total at most SMALL_BATCH_BYTES are ingested a few at once (their
    cost is latency); a larger one runs alone after them (its cost is CPU).  The small ones
    cache their classified records uncompressed, the large one compressed, and the
    session's setting is as it was afterwards."""
    import threading
    import time

    import features.ingest as ingest

    real = ingest.ingest_source
    lock = threading.Lock()
    running: set[str] = set()
    beside: dict[str, set[str]] = {}
    started: list[str] = []
    compressed: dict[str, str] = {}
    setting = "spark.sql.inMemoryColumnarStorage.compressed"

    def watched(spark_, source, *args, **kwargs):
        with lock:
            compressed[source.name] = spark_.conf.get(setting)
            started.append(source.name)
            beside.setdefault(source.name, set()).update(running)
            for other in running:
                beside.setdefault(other, set()).add(source.name)
            running.add(source.name)
        try:
            time.sleep(0.5)  # long enough to overlap whatever runs beside it
            return real(spark_, source, *args, **kwargs)
        finally:
            with lock:
                running.discard(source.name)

    day = max(TINY.dates, key=lambda d: sum(_landing(name, d).is_dir() for name in SOURCES))
    usage = sum(f.stat().st_size for f in _landing("usage", day).glob("*.parquet"))
    monkeypatch.setattr(ingest, "ingest_source", watched)
    monkeypatch.setattr(ingest, "SMALL_BATCH_BYTES", usage - 1)
    spark.conf.set(setting, "true")
    ingest_batches(spark, [day])
    small = set(beside) - {"customers", "usage"}
    assert len(small) >= 2 and "usage" in beside
    assert beside["usage"] == set() and beside["customers"] == set()
    assert started[0] == "customers" and started[-1] == "usage"
    assert any(beside[name] & small for name in small)
    assert compressed["usage"] == "true"
    assert {compressed[name] for name in small | {"customers"}} == {"false"}
    assert spark.conf.get(setting) == "true"
    spark.conf.unset(setting)
    ingest_batches(spark, [day], sources=["plans"])
    assert spark.conf.get(setting, None) is None  # left unset: Spark's default


def test_a_failing_source_rolls_back_the_batch_and_every_attempt_is_recorded(
    spark, ingested, monkeypatch
) -> None:
    """A batch commits all its sources or none: when one fails, the tables a source beside
    it wrote are restored, and both have their run-log rows (failed, and rolled back)."""
    import features.ingest as ingest

    real = ingest.ingest_source

    def failing(spark_, source, *args, **kwargs):
        if source.name == "usage":
            raise RuntimeError("usage: disk full\n\tat some.java.Frame")
        return real(spark_, source, *args, **kwargs)

    monkeypatch.setattr(ingest, "ingest_source", failing)
    day = TINY.dates[3]
    tables = ["bronze.subscriptions", "quarantine.subscriptions"]

    before = {table: _rows(spark, table) for table in tables}
    version = _version(spark, "bronze.subscriptions")
    runs_before = spark.table("ops.pipeline_runs").count()
    spark.sql(f"delete from bronze.subscriptions where _batch_date = '{day.isoformat()}'")
    deleted = _rows(spark, "bronze.subscriptions")
    assert len(deleted) < len(before["bronze.subscriptions"])
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_batches(spark, [day], sources=["subscriptions", "usage"], threads=2)
    found = {
        (r.step, r.status): r.message
        for r in spark.table("ops.pipeline_runs")
        .where("pipeline = 'ingest'")
        .orderBy(F.col("started_at").desc())
        .limit(spark.table("ops.pipeline_runs").count() - runs_before)
        .collect()
    }
    assert found[("bronze.usage_events", "failed")] == "RuntimeError: usage: disk full"
    assert (
        found[("bronze.subscriptions", "failed")] == "rolled back: RuntimeError: usage: disk full"
    )
    # subscriptions wrote its batch (a commit after the delete), then was restored
    assert _version(spark, "bronze.subscriptions") >= version + 3
    assert _rows(spark, "bronze.subscriptions") == deleted
    monkeypatch.setattr(ingest, "ingest_source", real)
    ingest_batches(spark, [day], sources=["subscriptions"])  # the rerun restores the day
    for table in tables:
        assert _rows(spark, table) == before[table], table


def _landing(name: str, day: dt.date):
    return settings().landing_dir / name / day.isoformat()


def test_added_column_evolves_bronze(spark, ingested) -> None:
    day = TINY.start + dt.timedelta(days=TINY.days)
    source = spark.read.parquet(str(_landing("usage", TINY.start)))
    batch = (
        source.where("event_id is not null")
        .limit(20)
        .select(
            *[
                F.concat(F.lit("x"), "event_id").alias("event_id") if c == "event_id" else F.col(c)
                for c in source.columns
            ],
            F.lit("5g").alias("network_type"),
        )
    )
    batch.coalesce(1).write.mode("overwrite").parquet(str(_landing("usage", day) / "_tmp"))
    for part in (_landing("usage", day) / "_tmp").glob("part-*.parquet"):
        part.rename(_landing("usage", day) / "part-00000.parquet")
    shutil.rmtree(_landing("usage", day) / "_tmp")
    counts = ingest_batches(spark, [day], sources=["usage"])["usage"][day]
    bronze = spark.table("bronze.usage_events")
    assert "network_type" in bronze.columns
    assert (
        bronze.where(F.col("_batch_date") == day).where("network_type = '5g'").count()
        == counts.ingested
        > 0
    )
    assert bronze.where(F.col("_batch_date") < day).where("network_type is not null").count() == 0


def _retype(frame, column: str, kind: str):
    if kind == "missing":
        return frame.drop(column)
    return frame.withColumn(column, F.concat(F.lit("id-"), F.col(column).cast("string")))


@pytest.mark.parametrize(
    ("name", "column", "kind"),
    [
        ("usage", "duration_s", "missing"),
        ("usage", "customer_id", "retyped"),
        ("payments", "status", "missing"),
        ("chats", "customer_id", "retyped"),
    ],
)
def test_missing_or_retyped_column_stops_the_batch(spark, ingested, name, column, kind) -> None:
    source = SOURCES[name]
    day = TINY.start + dt.timedelta(days=TINY.days + 1)
    folder = _landing(name, day)
    if name == "usage":
        frame = _retype(spark.read.parquet(str(_landing(name, TINY.start))), column, kind)
        frame.coalesce(1).write.mode("overwrite").parquet(str(folder / "_tmp"))
        next((folder / "_tmp").glob("part-*.parquet")).rename(folder / "part-00000.parquet")
        shutil.rmtree(folder / "_tmp")
        target = "part-00000.parquet"
    elif name == "payments":
        lines = (
            next(_landing(name, TINY.start + dt.timedelta(days=5)).glob("*.csv"))
            .read_text()
            .splitlines()
        )
        header = lines[0].split(",")
        index = header.index(column)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-00000.csv").write_text(
            "\n".join(
                ",".join(v for i, v in enumerate(line.split(",")) if i != index) for line in lines
            )
            + "\n"
        )
        target = "part-00000.csv"
    else:
        text = next(_landing(name, TINY.start + dt.timedelta(days=2)).glob("*.jsonl")).read_text()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-00000.jsonl").write_text(
            text.replace('"customer_id":', '"customer_id":"x').replace(',"chat_at"', '","chat_at"')
        )
        target = "part-00000.jsonl"
    tables = [f"bronze.{source.table}", f"quarantine.{source.table}"]
    versions = {table: _version(spark, table) for table in tables}
    try:
        with pytest.raises(SchemaMismatch) as error:
            ingest_batches(spark, [day])
        message = str(error.value)
        assert f"landing/{name}/{day.isoformat()}/{target}" in message
        assert f"'{column}'" in message and f"bronze.{source.table}" in message
        assert {table: _version(spark, table) for table in tables} == versions
        assert spark.table(tables[0]).where(F.col("_batch_date") == day).count() == 0
    finally:
        shutil.rmtree(folder)


def test_duplicate_of_an_earlier_batch_is_quarantined(spark, ingested) -> None:
    day = TINY.start + dt.timedelta(days=TINY.days + 2)
    source_day = TINY.start + dt.timedelta(days=1)
    folder = _landing("usage", day)
    folder.mkdir(parents=True)
    shutil.copy(_landing("usage", source_day) / "part-00000.parquet", folder / "part-00000.parquet")
    try:
        counts = ingest_batches(spark, [day], sources=["usage"])["usage"][day]
        reasons = {
            row["reason"]
            for row in spark.table("quarantine.usage_events")
            .where(F.col("_batch_date") == day)
            .select("reason")
            .distinct()
            .collect()
        }
        assert counts.ingested == 0 and counts.quarantined == counts.read > 0
        assert "duplicate" in reasons
    finally:
        shutil.rmtree(folder)


def test_footer_schema_is_the_schema_spark_reads(spark, tmp_path) -> None:
    """The per-file schema check reads footers without a Spark job; it must see what a
    Spark read sees, for files Spark wrote and for files another writer made."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from features.ingest.schema_check import parquet_schema

    spark_file = tmp_path / "spark"
    spark.range(3).select(
        "id",
        F.col("id").cast("string").alias("name"),
        F.timestamp_seconds("id").alias("at"),
        F.array("id").alias("ids"),
        F.struct(F.col("id").alias("inner")).alias("nested"),
    ).coalesce(1).write.parquet(str(spark_file))
    arrow_file = tmp_path / "arrow.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "amount": pa.array([1.5, None], pa.float64()),
                "at": pa.array([dt.datetime(2026, 1, 1), None], pa.timestamp("us", tz="UTC")),
                "flag": pa.array([True, False]),
                "day": pa.array([dt.date(2026, 1, 1)] * 2),
            }
        ),
        arrow_file,
    )
    for path in [*spark_file.glob("part-*.parquet"), arrow_file]:
        uri = path.as_uri()
        assert parquet_schema(spark, uri) == spark.read.parquet(uri).schema, path.name


def test_a_source_that_has_not_delivered_yet_gets_empty_tables(spark, ingested) -> None:
    """A young lake in which no customer has churned has no churn files: ingestion leaves
    bronze.churn_events empty but there, so that dbt's staging (which reads every source)
    builds.  Restored from its landing files afterwards."""
    source = SOURCES["churn"]
    for database in ("bronze", "quarantine"):
        spark.sql(f"drop table if exists {database}.{source.table}")
    held = settings().landing_dir / source.name
    aside = held.with_name(f"{source.name}.aside")
    delivered = held.exists()  # the tiny lake may have no churn at all
    if delivered:
        held.rename(aside)  # nothing delivered
    try:
        lines = []
        results = ingest_batches(
            spark, TINY.dates[:1], sources=["churn", "plans"], log=lines.append
        )
        assert "churn" not in results
        assert spark.table(f"bronze.{source.table}").count() == 0
        assert spark.table(f"quarantine.{source.table}").count() == 0
        assert f"ingest: bronze.{source.table}: nothing delivered yet; created empty" in lines
    finally:
        if delivered:
            aside.rename(held)
    if delivered:
        for database in ("bronze", "quarantine"):
            spark.sql(f"drop table if exists {database}.{source.table}")
        ingest_batches(spark, TINY.dates, sources=["churn"])
        assert spark.table(f"bronze.{source.table}").count() > 0


def test_local_landing_listing_is_hadoops(spark, tmp_path, monkeypatch) -> None:
    """A local landing folder is listed by the operating system (not entry by entry through
    the JVM): the same files, paths, sizes and modification times as Hadoop's listing, for
    a plain path and a ``file:`` URI, hidden, marker, empty files and folders skipped alike."""
    from features.ingest import _delivered_dates, files

    source = SOURCES["usage"]
    landing = tmp_path / "landing"
    for day, names in (("2026-01-01", ["a.parquet", "b.txt"]), ("2026-01-02", ["c.parquet"])):
        folder = landing / source.name / day
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"x" * (len(name) + 3))
        (folder / "_SUCCESS").write_bytes(b"")
        (folder / ".hidden.parquet").write_bytes(b"hidden")
        (folder / "empty.parquet").write_bytes(b"")
        (folder / "nested").mkdir()
        (folder / "dangling.parquet").symlink_to(folder / "nowhere")
    (landing / source.name / "not-a-date").mkdir()
    hadoop = {}
    for uri in (str(landing), f"{landing}/", f"file:{landing}", f"file://{landing}"):
        dates = _delivered_dates(spark, uri, source)
        assert dates == [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
        local = files.list_files(spark, landing_dir=uri, source=source, dates=dates)
        with monkeypatch.context() as patched:
            patched.setattr(files, "_local", lambda folder: None)
            assert _delivered_dates(spark, uri, source) == dates
            hadoop[uri] = files.list_files(spark, landing_dir=uri, source=source, dates=dates)
        assert local == hadoop[uri]
    assert [(f.name, f.size) for f in local] == [
        ("landing/usage/2026-01-01/a.parquet", 12),
        ("landing/usage/2026-01-01/b.txt", 8),
        ("landing/usage/2026-01-02/c.parquet", 12),
    ]
    assert all(f.path.startswith("file:/") and f.modified > 0 for f in local)
    assert files.list_dir(spark, str(landing / "missing")) == []
    # Other file systems, and a file: URI naming a host, are Hadoop's to list.
    assert [files._local(uri) for uri in ("hdfs:/x", "s3a://b/x", "file://host/x")] == [None] * 3


def test_a_customer_delivered_with_its_records_is_known_to_them(spark, ingested) -> None:
    """On a lake that already has customers, a batch that brings a new customer and its
    usage: the usage is ingested, not quarantined as from an unknown customer (the other
    sources check their ids against the customers as they are after this batch's customers
    went in, read once for them all)."""
    import pyarrow.parquet as pq

    day = TINY.start + dt.timedelta(days=TINY.days + 3)
    newcomer = 10_000_000 + TINY.customers
    template_day = next(d for d in TINY.dates if any(_landing("usage", d).glob("*.parquet")))
    folders = [_landing("customers", day), _landing("usage", day)]
    try:
        for folder in folders:
            folder.mkdir(parents=True)
        (folders[0] / "part-00000.csv").write_text(
            "customer_id,signup_date,region,segment,birth_year,updated_at\n"
            f"{newcomer},{day},north,consumer,1990,{day} 00:05:00\n"
        )
        usage = pq.read_table(next(_landing("usage", template_day).glob("*.parquet"))).slice(0, 1)
        row = usage.to_pylist()[0]
        row.update(  # a clean call (the template row may be dirt)
            event_id=f"e-newcomer-{day}",
            customer_id=newcomer,
            event_at=dt.datetime.combine(day, dt.time(8, 0)),
            event_type="call",
            duration_s=60,
            bytes=0,
            is_dropped=False,
            is_roaming=False,
            cell_id="cell-0001",
        )
        pq.write_table(  # timestamps as Spark writes them (INT96)
            usage.from_pylist([row], schema=usage.schema),
            folders[1] / "part-00000.parquet",
            use_deprecated_int96_timestamps=True,
        )
        results = ingest_batches(spark, [day], sources=["customers", "usage"])
        held = spark.table("quarantine.usage_events").where(F.col("_batch_date") == day)
        assert [row["reason"] for row in held.select("reason").collect()] == []
        assert results["customers"][day].ingested == 1
        assert (results["usage"][day].read, results["usage"][day].ingested) == (1, 1)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        for table in ("customers", "usage_events"):
            for database in ("bronze", "quarantine"):
                spark.sql(f"delete from {database}.{table} where _batch_date = '{day}'")
