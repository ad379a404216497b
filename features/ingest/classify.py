"""Decide, record by record, whether it goes to bronze or to quarantine (and why)."""

from __future__ import annotations

from typing import cast

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql.types import DoubleType, FloatType, StructType

from features.schemas import EARLIEST_EVENT, EVENT_DAYS_AHEAD, Source

MISSING_KEY = "missing_key"
NEGATIVE_DURATION = "negative_duration"
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"
NOT_ALLOWED = "not_allowed"
UNKNOWN_CUSTOMER = "unknown_customer"
DUPLICATE = "duplicate"


def contract_reasons(source: Source) -> list[Column]:
    """Why a typed record breaks its source's contract (features/schemas.py), per column:
    ``non_finite: <column>`` (NaN, Infinity, or a number too large for a double),
    ``out_of_range: <column>`` (a range, or an event time outside [EARLIEST_EVENT, the day
    after its batch]), ``not_allowed: <column>`` (a value outside the allowed ones)."""
    reasons = []
    for field in cast(StructType, StructType.fromDDL(source.ddl)).fields:
        if isinstance(field.dataType, (DoubleType, FloatType)):
            value = F.col(field.name)
            bad = F.isnan(value) | value.isin(float("inf"), float("-inf"))
            reasons.append(F.when(bad, F.lit(f"{NON_FINITE}: {field.name}")))
    for name, low, high in source.ranges:
        value, outside = F.col(name), F.lit(False)
        if low is not None:
            outside = outside | (value < F.lit(low))
        if high is not None:
            outside = outside | (value > F.lit(high))
        reasons.append(F.when(outside, F.lit(f"{OUT_OF_RANGE}: {name}")))
    if source.event_time:
        day = F.to_date(F.col(source.event_time))
        outside = (day < F.lit(EARLIEST_EVENT).cast("date")) | (
            day > F.date_add(F.col("_batch_date"), EVENT_DAYS_AHEAD)
        )
        reasons.append(F.when(outside, F.lit(f"{OUT_OF_RANGE}: {source.event_time}")))
    for name, values in source.allowed:
        value = F.lower(F.trim(F.col(name)))
        reasons.append(F.when(~value.isin(*values), F.lit(f"{NOT_ALLOWED}: {name}")))
    return reasons


def row_hash(source: Source) -> Column:
    """A hash of all the source's landing columns (exact-duplicate detection)."""
    return F.xxhash64(*[F.col(name) for name in source.columns])


def with_hashes(parsed: DataFrame, source: Source) -> DataFrame:
    """Add ``_row_hash`` (every landing column) and ``_key_hash`` (the key and the row hash):
    two records are copies of each other when both are equal."""
    frame = parsed.withColumn("_row_hash", row_hash(source))
    key_hash = F.xxhash64(*[F.col(name) for name in source.key], F.col("_row_hash"))
    return frame.withColumn("_key_hash", key_hash)


def copy_number() -> Column:
    """1 for a record's first copy (by batch date, file, line), 2 for its second, ...: a
    rank among the records with the same ``_key_hash`` and ``_row_hash``."""
    copies = Window.partitionBy("_key_hash", "_row_hash")
    return F.row_number().over(copies.orderBy("_batch_date", "_source_file", "_line"))


def later_copies(hashed: DataFrame) -> tuple[DataFrame, int]:
    """``_source_file, _line, _later_copy`` of every record of ``hashed`` (output of
    :func:`with_hashes`) that repeats an earlier one (earlier by batch date, file, line),
    and how many there are.

    Cached here, in two Spark jobs that read the source again: a hash aggregate of the two
    hashes finds the repeated ones, and only their records are ranked, so no record is
    shuffled or sorted whole (for Parquet: a text source's reader numbers its lines by a
    sort of its own).  The caller joins them to the records (broadcast, when they are few
    enough: the count says) and unpersists them.
    """
    hashes = ["_key_hash", "_row_hash"]
    repeated = hashed.groupBy(*hashes).count().where(F.col("count") > 1).select(*hashes).cache()
    later = None
    try:
        repeated.count()
        later = (
            hashed.join(repeated, hashes, "left_semi")
            .select("_source_file", "_line", copy_number().alias("_copy"))
            .where(F.col("_copy") > 1)
            .select("_source_file", "_line", F.lit(True).alias("_later_copy"))
            .cache()
        )
        copies = later.count()
    except BaseException:
        if later is not None:
            later.unpersist()
        raise
    finally:
        repeated.unpersist()
    return later, copies


def classify(
    hashed: DataFrame,
    source: Source,
    *,
    later: DataFrame | None = None,
    known_customers: DataFrame | None = None,
    prior: DataFrame | None = None,
) -> DataFrame:
    """Add ``_reason``: null for a usable record, else why it is quarantined.

    Reasons, first match wins: the parse status (malformed_record, invalid_encoding,
    unparseable_timestamp, wrong_type), missing_key, negative_duration, the contract's
    (non_finite, out_of_range, not_allowed: see :func:`contract_reasons`),
    unknown_customer, duplicate.

    Args:
        hashed: Output of :mod:`features.ingest.readers` with :func:`with_hashes`.
        source: The source.
        later: The records of ``hashed`` that repeat an earlier one (:func:`later_copies`),
            for a large batch; without it every record is ranked among its copies by a
            window (a shuffle and sort of whole records, which costs a small batch less
            than the two jobs of :func:`later_copies`).
        known_customers: ``customer_id, _first_batch``: a customer is known to a record of
            batch ``d`` when it first appeared in a batch at or before ``d``.
        prior: ``_key_hash`` of records already in bronze from earlier batches.
    """
    frame = hashed
    key_null = F.lit(False)
    for name in source.key:
        key_null = key_null | F.col(name).isNull()
    reasons = [F.col("_bad"), F.when(key_null, F.lit(MISSING_KEY))]
    if "duration_s" in source.columns:
        reasons.append(F.when(F.col("duration_s") < 0, F.lit(NEGATIVE_DURATION)))
    reasons += contract_reasons(source)
    if known_customers is not None and "customer_id" in source.columns:
        frame = frame.join(F.broadcast(known_customers), "customer_id", "left")
        unknown = F.col("customer_id").isNotNull() & (
            F.col("_first_batch").isNull() | (F.col("_first_batch") > F.col("_batch_date"))
        )
        reasons.append(F.when(unknown, F.lit(UNKNOWN_CUSTOMER)))
    if later is not None:
        frame = frame.join(later, ["_source_file", "_line"], "left")
        duplicate = F.coalesce(F.col("_later_copy"), F.lit(False))
    else:
        duplicate = copy_number() > 1
    if prior is not None:
        seen = prior.select("_key_hash").distinct().withColumn("_seen", F.lit(True))
        frame = frame.join(seen, "_key_hash", "left")
        duplicate = duplicate | F.coalesce(F.col("_seen"), F.lit(False))
    reasons.append(F.when(duplicate, F.lit(DUPLICATE)))
    return frame.withColumn("_reason", F.coalesce(*reasons))


def prior_keys(bronze: DataFrame, source: Source, *, before: str, since: str | None) -> DataFrame:
    """``_key_hash`` of bronze records of batches in ``[since, before)`` (for duplicates)."""
    frame = bronze.where(F.col("_batch_date") < F.lit(before).cast("date"))
    if since is not None:
        frame = frame.where(F.col("_batch_date") >= F.lit(since).cast("date"))
    return frame.select(
        F.xxhash64(*[F.col(name) for name in source.key], row_hash(source)).alias("_key_hash")
    )
