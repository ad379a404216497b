"""Reading Feast ``SparkSource`` definitions as Spark DataFrames, pinned and pruned.

A source is a metastore table, a path (Delta or parquet) or a query, exactly as
Feast's Spark store accepts them.  A Delta source is always read at one explicit
table version, which is recorded with the retrieval so that a training set can be
rebuilt exactly.  Versions can be pinned, per source, for a block of code::

    with pinned_versions(job.source_versions):   # or {"features.billing": 12}
        store.get_historical_features(...)

A pin is a Delta version (int) or an instant (datetime or ISO string): the latest
version committed at or before it.  Rows are pruned to the time range a request can
need, on the timestamp (Delta data skipping) and on the date partition column.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator, Mapping

import pyspark.sql.functions as F
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from pyspark.sql import Column, DataFrame, SparkSession

PinValue = int | str | dt.datetime

_PINS: contextvars.ContextVar[Mapping[str, PinValue | None]] = contextvars.ContextVar(
    "lakehouse_offline_store_pins"
)


class SourceVersionNotFound(ValueError):
    """A pin names an instant before the first version of a Delta table."""


@contextlib.contextmanager
def pinned_versions(pins: Mapping[str, PinValue | None]) -> Iterator[None]:
    """Read the named sources at fixed Delta versions or instants inside the block.

    Args:
        pins: Source identifier (see :func:`source_id`) to a Delta version (int) or an
            instant (datetime or ISO string); e.g. the ``source_versions`` recorded by
            an earlier retrieval.  None values (non-Delta sources) are ignored.
    """
    merged = {**_PINS.get({}), **{k: v for k, v in pins.items() if v is not None}}
    token = _PINS.set(merged)
    try:
        yield
    finally:
        _PINS.reset(token)


def source_id(source: SparkSource) -> str:
    """Return the identifier of a source: its table, its path, or ``query:<sql>``."""
    return source.table or source.path or f"query:{source.query}"


def read_source(spark: SparkSession, source: SparkSource) -> tuple[DataFrame, int | None]:
    """Read a source, a Delta one at one (pinned or current) version.

    A path source is Delta when its ``table_format`` is Feast's ``DeltaFormat`` (Feast
    0.67 does not accept ``file_format="delta"``); the format's ``versionAsOf`` or
    ``timestampAsOf`` property pins it unless :func:`pinned_versions` says otherwise.

    Returns:
        The rows, and the Delta version read (None for other formats, views and queries).
    """
    pin = _PINS.get({}).get(source_id(source))
    if source.table:
        if not _is_delta_table(spark, source.table):
            return spark.table(source.table), None
        return _read_delta(spark, source.table, pin)
    if source.path:
        file_format = path_format(source)
        options = dict(source.table_format.properties) if source.table_format else {}
        if file_format != "delta":
            return spark.read.format(file_format).options(**options).load(source.path), None
        if pin is None and "versionAsOf" in options:
            pin = int(options["versionAsOf"])
        elif pin is None and "timestampAsOf" in options:
            pin = options["timestampAsOf"]
        return _read_delta(spark, f"delta.`{source.path}`", pin)
    if source.query:
        return spark.sql(source.query), None
    raise ValueError(f"SparkSource {source.name!r} has neither table, path nor query")


def path_format(source: SparkSource) -> str:
    """The Spark format of a path source: its table format, else its file format."""
    if source.table_format is not None:
        return str(source.table_format.format_type.value).lower()
    return (source.file_format or "parquet").lower()


def _is_delta_table(spark: SparkSession, table: str) -> bool:
    try:
        detail = spark.sql(f"describe detail {table}").first()
    except Exception:  # noqa: BLE001 - views and non-Delta tables have no detail
        return False
    return detail is not None and (detail.format or "").lower() == "delta"


def _read_delta(
    spark: SparkSession, identifier: str, pin: PinValue | None
) -> tuple[DataFrame, int]:
    version = resolve_version(spark, identifier, pin)
    return spark.sql(f"select * from {identifier} version as of {version}"), version


def resolve_version(spark: SparkSession, identifier: str, pin: PinValue | None) -> int:
    """The Delta version to read: the pinned one, the last at a pinned instant, or the current."""
    if isinstance(pin, int):
        return pin
    if pin is None:  # the latest commit only: Delta reads no older one
        return int(spark.sql(f"describe history {identifier} limit 1").first().version)
    history = spark.sql(f"describe history {identifier}")
    instant = pin if isinstance(pin, dt.datetime) else dt.datetime.fromisoformat(str(pin))
    found = (
        history.where(F.col("timestamp") <= timestamp_literal(instant))
        .agg(F.max("version"))
        .first()[0]
    )
    if found is None:
        raise SourceVersionNotFound(
            f"{identifier} has no version committed at or before {instant.isoformat()}: "
            f"pin a later instant or a version number"
        )
    return int(found)


def time_bounded(
    rows: DataFrame,
    source: SparkSource,
    *,
    timestamp_field: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> DataFrame:
    """Keep rows whose timestamp lies in [start, end], pruning date partitions too."""
    column = F.col(f"`{timestamp_field}`")
    partition = source.date_partition_column
    fmt = source.date_partition_column_format or "%Y-%m-%d"
    if end is not None:
        rows = rows.where(column <= timestamp_literal(end))
        if partition:
            rows = rows.where(F.col(f"`{partition}`") <= F.lit(naive_utc(end).strftime(fmt)))
    if start is not None:
        rows = rows.where(column >= timestamp_literal(start))
        if partition:
            rows = rows.where(F.col(f"`{partition}`") >= F.lit(naive_utc(start).strftime(fmt)))
    return rows


def naive_utc(instant: dt.datetime) -> dt.datetime:
    """Return ``instant`` as a naive UTC datetime (naive input is taken as UTC)."""
    if instant.tzinfo is not None:
        instant = instant.astimezone(dt.UTC).replace(tzinfo=None)
    return instant


def timestamp_literal(instant: dt.datetime) -> Column:
    """A Spark timestamp literal of a UTC instant, independent of Python's local zone."""
    return F.lit(naive_utc(instant).isoformat(sep=" ")).cast("timestamp")
