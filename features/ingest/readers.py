"""Read a landing batch into one frame per source: typed columns plus parse status.

Every reader returns the source's columns (typed), any added columns, and
``_source_file, _line, _batch_date, _bad`` where ``_bad`` is ``malformed_record`` or
``unparseable_timestamp`` when the record cannot be used as sent (else null).  Text sources
also return the line as sent (``_raw``); :func:`raw_record` renders any source's record.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql.types import DateType, StringType, StructField, StructType, TimestampType

from features.ingest.files import LandingFile, batch_date_of, relative_name
from features.ingest.schema_check import CORRUPT, contract
from features.schemas import Source

MALFORMED = "malformed_record"
UNPARSEABLE = "unparseable_timestamp"
# Split on commas outside double quotes (fields are quoted RFC 4180 style).
_CSV_FIELDS = r',(?=(?:[^"]*"[^"]*")*[^"]*$)'


def _numbered_lines(spark: SparkSession, files: list[LandingFile]) -> DataFrame:
    """Non-blank lines with their file, 0-based line number and batch date."""
    text = spark.read.text([file.path for file in files]).select(
        "value", relative_name().alias("_source_file"), batch_date_of().alias("_batch_date"),
        F.monotonically_increasing_id().alias("_order"),
    )
    line = F.row_number().over(Window.partitionBy("_source_file").orderBy("_order")) - 1
    return text.select("*", line.cast("long").alias("_line")).drop("_order") \
        .where(F.trim("value") != "")


def _first(*reasons: Column) -> Column:
    return F.coalesce(*reasons, F.lit(None).cast("string"))


def read_parquet(spark: SparkSession, source: Source, files: list[LandingFile],
                 schemas: dict[str, StructType]) -> DataFrame:
    """Parquet files (typed already): one read per distinct file schema, unioned by name.

    No ``_raw`` column: the record's JSON is rendered from its typed columns only for the
    rows that go to quarantine (see :func:`raw_record`), not carried through the shuffles
    of every row.
    """
    groups: dict[str, list[str]] = {}
    for file in files:
        groups.setdefault(schemas[file.path].json(), []).append(file.path)
    frames = []
    for paths in groups.values():
        frame = spark.read.parquet(*paths)
        data = frame.columns
        frames.append(frame.select(
            *data,
            relative_name().alias("_source_file"),
            F.col("_metadata.row_index").cast("long").alias("_line"),
            batch_date_of().alias("_batch_date"),
            F.lit(None).cast("string").alias("_bad"),
        ))
    return _union(frames)


def raw_record(frame: DataFrame) -> Column:
    """The raw record of a parsed row: its landing line, or for Parquet its columns as JSON."""
    if "_raw" in frame.columns:
        return F.col("_raw")
    data = [c for c in frame.columns if not c.startswith("_")]
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in data]))


def _typed(raw: Column, field: StructField) -> tuple[Column, Column]:
    """Cast a string field to its contract type; return (value, reason if it fails)."""
    value = raw.cast(field.dataType)
    failed = raw.isNotNull() & value.isNull()
    return value, F.when(failed, F.lit(UNPARSEABLE if _time_like(field) else MALFORMED))


def read_csv(spark: SparkSession, source: Source, files: list[LandingFile],
             headers: dict[str, list[str]]) -> DataFrame:
    """CSV files with a header: one parse per distinct header, unioned by name."""
    fields = {field.name: field for field in contract(source).fields}
    groups: dict[tuple[str, ...], list[LandingFile]] = {}
    for file in files:
        groups.setdefault(tuple(headers[file.path]), []).append(file)
    frames = []
    for header, group in groups.items():
        lines = _numbered_lines(spark, group).where(F.col("_line") > 0)
        schema = ", ".join(f"`{name}` string" for name in header)
        parsed = lines.select(
            "*",
            F.size(F.split("value", _CSV_FIELDS)).alias("_fields"),
            F.from_csv("value", schema, {"mode": "PERMISSIVE"}).alias("_csv"),
        )
        columns, reasons = [], [F.when(F.col("_fields") != len(header), F.lit(MALFORMED))]
        for name in header:
            raw = F.col("_csv").getField(name)
            if name in fields:
                value, reason = _typed(raw, fields[name])
                reasons.append(reason)
                columns.append(value.alias(name))
            else:
                columns.append(raw.alias(name))
        frames.append(parsed.select(
            *columns, "_source_file", "_line", F.col("value").alias("_raw"), "_batch_date",
            _first(*reasons).alias("_bad"),
        ))
    return _union(frames)


def read_json(spark: SparkSession, source: Source, files: list[LandingFile],
              inferred: StructType) -> DataFrame:
    """JSON lines: timestamps read as text then cast, added fields kept with inferred types."""
    expected = contract(source)
    as_text = [
        StructField(f.name, StringType() if _time_like(f) else f.dataType, True)
        for f in expected.fields
    ]
    known = {field.name for field in expected.fields}
    extras = [field for field in inferred.fields if field.name not in known]
    schema = StructType(as_text + extras + [StructField(CORRUPT, StringType(), True)])
    lines = _numbered_lines(spark, files)
    parsed = lines.select(
        "*", F.from_json("value", schema, {"columnNameOfCorruptRecord": CORRUPT}).alias("_json")
    )
    record = F.col("_json")
    malformed = record.isNull() | record.getField(CORRUPT).isNotNull()
    columns, reasons = [], [F.when(malformed, F.lit(MALFORMED))]
    for field in expected.fields:
        raw = record.getField(field.name)
        if _time_like(field):
            value, reason = _typed(raw, field)
            reasons.append(reason)
            columns.append(value.alias(field.name))
        else:
            columns.append(raw.alias(field.name))
    columns += [record.getField(field.name).alias(field.name) for field in extras]
    return parsed.select(
        *columns, "_source_file", "_line", F.col("value").alias("_raw"), "_batch_date",
        _first(*reasons).alias("_bad"),
    )


def _time_like(field: StructField) -> bool:
    return isinstance(field.dataType, (TimestampType, DateType))


def _union(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame, allowMissingColumns=True)
    return result


def read_source(spark: SparkSession, source: Source, files: list[LandingFile],
                layout: object) -> DataFrame:
    """Read ``files`` of ``source`` with the per-file layout found by the schema check."""
    if source.file_format == "parquet":
        return read_parquet(spark, source, files, layout)  # type: ignore[arg-type]
    if source.file_format == "csv":
        return read_csv(spark, source, files, layout)  # type: ignore[arg-type]
    return read_json(spark, source, files, layout)  # type: ignore[arg-type]
