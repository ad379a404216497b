"""Read a landing batch into one frame per source: typed columns plus parse status.

Every reader returns the source's columns (typed), any added columns, and
``_source_file, _line, _batch_date, _bad`` where ``_bad`` says why the record cannot be used
as sent (else null): ``malformed_record`` (not a record of the format), ``invalid_encoding``
(bytes that are not UTF-8), ``unparseable_timestamp``, ``wrong_type: <column>``.  Text
sources also return the record as sent (``_raw``; a CSV record may span lines inside a
quoted field, RFC 4180); :func:`raw_record` renders any source's record.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql.types import StringType, StructField, StructType

from features.ingest.files import LandingFile, batch_date_of, relative_name
from features.ingest.schema_check import (
    contract,
    is_malformed,
    is_scalar,
    read_json_line,
    typed_value,
)
from features.schemas import Source

MALFORMED = "malformed_record"
INVALID_ENCODING = "invalid_encoding"
# A double quote at a field's edge: after a comma, a quote or the line's start, or before a
# comma, a quote or the line's end.
_FIELD_QUOTE = r'(?<![^,"])"|"(?![^,"])'
# A double quote inside unquoted text (5" screen), neither at a field's edge nor beside
# another quote: text, left out when counting a record's fields.
_STRAY_QUOTE = r'(?<=[^,"])"(?=[^,"])'
# Split on commas outside double quotes (fields are quoted RFC 4180 style).
_CSV_FIELDS = r',(?=(?:[^"]*"[^"]*")*[^"]*$)'


def _numbered_lines(
    spark: SparkSession, files: list[LandingFile], *, quoted_newlines: bool = False
) -> DataFrame:
    """Non-blank records with their file, 0-based line number and batch date.

    Args:
        quoted_newlines: A record continues on the next line while a double-quoted field
            is open (CSV, RFC 4180): its lines are joined with ``\\n`` and it is numbered
            by its first line.  An unclosed quote makes the rest of its file one record
            (which then fails to parse and is quarantined whole, not split).
    """
    text = spark.read.text([file.path for file in files]).select(
        "value",
        relative_name().alias("_source_file"),
        batch_date_of().alias("_batch_date"),
        F.monotonically_increasing_id().alias("_order"),
    )
    in_file = Window.partitionBy("_source_file").orderBy("_order")
    line = F.row_number().over(in_file) - 1
    text = text.select("*", line.cast("long").alias("_line"))
    if quoted_newlines:
        # A line starts a record when the quotes before it in its file are even.  Only
        # quotes that can open or close a field count (at a field's edge: next to a comma,
        # another quote or the line's end); a stray one inside unquoted text (5" screen) is
        # text to RFC 4180 readers, and must not fold the rest of the file into one record.
        odd = F.regexp_count("value", F.lit(_FIELD_QUOTE)) % 2
        so_far = in_file.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        text = text.select("*", ((F.sum(odd).over(so_far) - odd) % 2).alias("_open"))
        text = text.select(
            "*", F.max(F.when(F.col("_open") == 0, F.col("_line"))).over(so_far).alias("_start")
        )
        # Same file partitioning: no second shuffle, only a local sort per record.
        record = (
            Window.partitionBy("_source_file", "_start")
            .orderBy("_line")
            .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
        )
        text = (
            text.select(
                F.concat_ws("\n", F.collect_list("value").over(record)).alias("value"),
                "_source_file",
                "_batch_date",
                "_line",
                "_start",
            )
            .where(F.col("_line") == F.col("_start"))
            .drop("_start")
        )
    return text.drop("_order").where(F.trim("value") != "")


def _first(*reasons: Column) -> Column:
    return F.coalesce(*reasons, F.lit(None).cast("string"))


def read_parquet(
    spark: SparkSession, source: Source, files: list[LandingFile], schemas: dict[str, StructType]
) -> DataFrame:
    """Parquet files (typed already): one read per distinct file schema, unioned by name.

    No ``_raw`` column: the record's JSON is rendered from its typed columns only for the
    rows that go to quarantine (see :func:`raw_record`), not carried through the shuffles
    of every row.  Parquet's string type promises UTF-8 but its readers do not check it: a
    row with other bytes in a top-level string column is ``invalid_encoding`` (strings
    nested in structs or arrays are not checked: the Parquet sources have none).
    """
    groups: dict[str, list[str]] = {}
    for file in files:
        groups.setdefault(schemas[file.path].json(), []).append(file.path)
    frames = []
    for paths in groups.values():
        frame = spark.read.parquet(*paths)
        data = frame.columns
        text = [
            field.name for field in frame.schema.fields if isinstance(field.dataType, StringType)
        ]
        frames.append(
            frame.select(
                *data,
                relative_name().alias("_source_file"),
                F.col("_metadata.row_index").cast("long").alias("_line"),
                batch_date_of().alias("_batch_date"),
                _first(*[_encoding(frame[name]) for name in text]).alias("_bad"),
            )
        )
    return _union(frames)


def raw_record(frame: DataFrame) -> Column:
    """The raw record of a parsed row: its landing line, or for Parquet its columns as JSON."""
    if "_raw" in frame.columns:
        return F.col("_raw")
    data = [c for c in frame.columns if not c.startswith("_")]
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in data]))


def _encoding(value: Column) -> Column:
    """Spark's text and Parquet readers keep a string's bytes as they are: check they are
    UTF-8."""
    return F.when(~F.is_valid_utf8(value), F.lit(INVALID_ENCODING))


def read_csv(
    spark: SparkSession, source: Source, files: list[LandingFile], headers: dict[str, list[str]]
) -> DataFrame:
    """CSV files with a header: one parse per distinct header, unioned by name."""
    fields = {field.name: field for field in contract(source).fields}
    groups: dict[tuple[str, ...], list[LandingFile]] = {}
    for file in files:
        groups.setdefault(tuple(headers[file.path]), []).append(file)
    frames = []
    for header, group in groups.items():
        lines = _numbered_lines(spark, group, quoted_newlines=True).where(F.col("_line") > 0)
        schema = ", ".join(f"`{name}` string" for name in header)
        parsed = lines.select(
            "*",
            F.size(F.split(F.regexp_replace("value", _STRAY_QUOTE, ""), _CSV_FIELDS)).alias(
                "_fields"
            ),
            F.from_csv("value", schema, {"mode": "PERMISSIVE"}).alias("_csv"),
        )
        columns = []
        reasons = [
            F.when(F.col("_fields") != len(header), F.lit(MALFORMED)),
            _encoding(F.col("value")),
        ]
        for name in header:
            raw = F.col("_csv").getField(name)
            if name in fields:
                value, reason = typed_value(raw, fields[name])
                reasons.append(reason)
                columns.append(value.alias(name))
            else:
                columns.append(raw.alias(name))
        frames.append(
            parsed.select(
                *columns,
                "_source_file",
                "_line",
                F.col("value").alias("_raw"),
                "_batch_date",
                _first(*reasons).alias("_bad"),
            )
        )
    return _union(frames)


def read_json(
    spark: SparkSession, source: Source, files: list[LandingFile], inferred: StructType
) -> DataFrame:
    """JSON lines: scalar fields read as text then cast (a row whose value has another type
    is quarantined, not its file), added fields kept with inferred types."""
    expected = contract(source)
    as_text = [
        StructField(f.name, StringType() if is_scalar(f.dataType) else f.dataType, True)
        for f in expected.fields
    ]
    known = {field.name for field in expected.fields}
    extras = [field for field in inferred.fields if field.name not in known]
    lines = _numbered_lines(spark, files)
    parsed = lines.select("*", read_json_line(F.col("value"), as_text + extras).alias("_json"))
    record = F.col("_json")
    malformed = is_malformed(record)
    columns, reasons = [], [F.when(malformed, F.lit(MALFORMED)), _encoding(F.col("value"))]
    for field in expected.fields:
        raw = record.getField(field.name)
        if is_scalar(field.dataType) and not isinstance(field.dataType, StringType):
            value, reason = typed_value(raw, field)
            reasons.append(reason)
            columns.append(value.alias(field.name))
        else:
            columns.append(raw.alias(field.name))
    columns += [record.getField(field.name).alias(field.name) for field in extras]
    return parsed.select(
        *columns,
        "_source_file",
        "_line",
        F.col("value").alias("_raw"),
        "_batch_date",
        _first(*reasons).alias("_bad"),
    )


def _union(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame, allowMissingColumns=True)
    return result


def read_source(
    spark: SparkSession, source: Source, files: list[LandingFile], layout: object
) -> DataFrame:
    """Read ``files`` of ``source`` with the per-file layout found by the schema check."""
    if source.file_format == "parquet":
        return read_parquet(spark, source, files, layout)  # type: ignore[arg-type]
    if source.file_format == "csv":
        return read_csv(spark, source, files, layout)  # type: ignore[arg-type]
    return read_json(spark, source, files, layout)  # type: ignore[arg-type]
