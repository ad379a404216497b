"""Decide, record by record, whether it goes to bronze or to quarantine (and why)."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from features.schemas import Source

MISSING_KEY = "missing_key"
NEGATIVE_DURATION = "negative_duration"
UNKNOWN_CUSTOMER = "unknown_customer"
DUPLICATE = "duplicate"


def row_hash(source: Source) -> Column:
    """A hash of all the source's landing columns (exact-duplicate detection)."""
    return F.xxhash64(*[F.col(name) for name in source.columns])


def classify(
    parsed: DataFrame,
    source: Source,
    *,
    known_customers: DataFrame | None = None,
    prior: DataFrame | None = None,
) -> DataFrame:
    """Add ``_reason``: null for a usable record, else why it is quarantined.

    Reasons, first match wins: the parse status (malformed_record, unparseable_timestamp),
    missing_key, negative_duration, unknown_customer, duplicate.

    Args:
        parsed: Output of :mod:`features.ingest.readers`.
        source: The source.
        known_customers: ``customer_id, _first_batch``: a customer is known to a record of
            batch ``d`` when it first appeared in a batch at or before ``d``.
        prior: ``_key_hash`` of records already in bronze from earlier batches.
    """
    frame = parsed.withColumn("_row_hash", row_hash(source))
    key_null = F.lit(False)
    for name in source.key:
        key_null = key_null | F.col(name).isNull()
    reasons = [F.col("_bad"), F.when(key_null, F.lit(MISSING_KEY))]
    if "duration_s" in source.columns:
        reasons.append(F.when(F.col("duration_s") < 0, F.lit(NEGATIVE_DURATION)))
    if known_customers is not None and "customer_id" in source.columns:
        frame = frame.join(F.broadcast(known_customers), "customer_id", "left")
        unknown = F.col("customer_id").isNotNull() & (
            F.col("_first_batch").isNull() | (F.col("_first_batch") > F.col("_batch_date"))
        )
        reasons.append(F.when(unknown, F.lit(UNKNOWN_CUSTOMER)))
    key_hash = F.xxhash64(*[F.col(name) for name in source.key], F.col("_row_hash"))
    frame = frame.withColumn("_key_hash", key_hash)
    copy = F.row_number().over(
        Window.partitionBy("_key_hash", "_row_hash")
        .orderBy("_batch_date", "_source_file", "_line")
    )
    duplicate = copy > 1
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
