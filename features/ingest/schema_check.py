"""Validate every landing file of a batch against its source's schema, before any write."""

from __future__ import annotations

import json

import pyspark.sql.functions as F
from pyspark.sql import SparkSession
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from features.ingest.files import LandingFile, first_line, relative_name
from features.schemas import Source

CORRUPT = "_corrupt_record"


class SchemaMismatch(Exception):
    """A landing file lacks a column of its source, or sends it with another type."""


def contract(source: Source) -> StructType:
    """The landing schema of ``source`` as a StructType."""
    return StructType.fromDDL(source.ddl)


def _mismatch(file: LandingFile, source: Source, detail: str) -> SchemaMismatch:
    return SchemaMismatch(
        f"{file.name} {detail} (expected by bronze.{source.table}); "
        "fix the file or the contract in features/schemas.py, then ingest the batch again"
    )


SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"


def _nullable(data_type: DataType) -> DataType:
    """The type with every field and element nullable, as Spark reads files."""
    if isinstance(data_type, StructType):
        return StructType([StructField(f.name, _nullable(f.dataType), True, f.metadata)
                           for f in data_type.fields])
    if isinstance(data_type, ArrayType):
        return ArrayType(_nullable(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(data_type.keyType, _nullable(data_type.valueType), True)
    return data_type


def parquet_schema(spark: SparkSession, path: str) -> StructType:
    """The schema Spark reads a Parquet file with, from its footer alone (no Spark job).

    As Spark itself does: the Spark schema a Spark writer kept in the footer, else the
    Parquet schema converted with the session's settings.  Any failure falls back to
    ``spark.read.parquet(path).schema`` (a job per file, which is what this saves).
    """
    from py4j.protocol import Py4JError

    jvm = spark.sparkContext._jvm
    try:
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(
            jvm.org.apache.hadoop.fs.Path(path), conf)
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(source)
        try:
            meta = reader.getFooter().getFileMetaData()
            kept = meta.getKeyValueMetaData().get(SPARK_ROW_METADATA)
            if kept:
                text = kept
            else:
                converter = jvm.org.apache.spark.sql.execution.datasources.parquet \
                    .ParquetToSparkSchemaConverter(spark._jsparkSession.sessionState().conf())
                text = converter.convert(meta.getSchema()).json()
        finally:
            reader.close()
        return _nullable(StructType.fromJson(json.loads(text)))
    except (Py4JError, ValueError, KeyError):
        return spark.read.parquet(path).schema


def check_parquet(spark: SparkSession, source: Source, files: list[LandingFile]
                  ) -> dict[str, StructType]:
    """Return each file's schema; raise :class:`SchemaMismatch` on a missing or retyped column."""
    expected = contract(source)
    schemas = {}
    for file in files:
        actual = parquet_schema(spark, file.path)
        found = {field.name: field.dataType for field in actual.fields}
        for field in expected.fields:
            if field.name not in found:
                raise _mismatch(file, source, f"lacks column '{field.name}'")
            if found[field.name] != field.dataType:
                raise _mismatch(
                    file, source,
                    f"has column '{field.name}' as {found[field.name].simpleString()}, "
                    f"not {field.dataType.simpleString()}",
                )
        schemas[file.path] = actual
    return schemas


def check_csv(spark: SparkSession, source: Source, files: list[LandingFile]
              ) -> dict[str, list[str]]:
    """Return each file's header columns; raise on a missing column.

    CSV carries no types: a value that does not parse is quarantined, row by row.
    """
    headers = {}
    for file in files:
        header = [name.strip().strip('"') for name in first_line(spark, file.path).split(",")]
        for name in source.columns:
            if name not in header:
                raise _mismatch(file, source, f"lacks column '{name}' in its header")
        headers[file.path] = header
    return headers


def _compatible(expected: DataType, inferred: DataType) -> bool:
    """Whether JSON values inferred as ``inferred`` can be read as ``expected``."""
    if isinstance(inferred, StringType):
        return isinstance(expected, (StringType, TimestampType, DateType))
    if isinstance(expected, (LongType, IntegerType)):
        return isinstance(inferred, (LongType, IntegerType))
    if isinstance(expected, DoubleType):
        return isinstance(inferred, (LongType, IntegerType, DoubleType))
    if isinstance(expected, BooleanType):
        return isinstance(inferred, BooleanType)
    if isinstance(expected, ArrayType):
        return isinstance(inferred, ArrayType) and _compatible(
            expected.elementType, inferred.elementType
        )
    if isinstance(expected, StructType):
        if not isinstance(inferred, StructType):
            return False
        got = {field.name: field.dataType for field in inferred.fields}
        return all(
            field.name not in got or _compatible(field.dataType, got[field.name])
            for field in expected.fields
        )
    return expected == inferred


def _json_type_errors(source: Source, inferred: StructType) -> list[str]:
    got = {field.name: field.dataType for field in inferred.fields}
    return [
        f"has column '{field.name}' as {got[field.name].simpleString()}, "
        f"not {field.dataType.simpleString()}"
        for field in contract(source).fields
        if field.name in got and not _compatible(field.dataType, got[field.name])
    ]


def check_json(spark: SparkSession, source: Source, files: list[LandingFile],
               *, optional: tuple[str, ...] = ()) -> StructType:
    """Return the inferred schema of the batch's JSON lines; raise on missing/retyped columns.

    A column is missing when no line of a file has it (``optional`` columns may be absent).
    """
    if not files:
        return StructType([])
    paths = [file.path for file in files]
    inferred = spark.read.json(paths)
    if _json_type_errors(source, inferred.schema):
        for file in files:  # name the file: infer each one alone (only on this error path)
            errors = _json_type_errors(source, spark.read.json(file.path).schema)
            if errors:
                raise _mismatch(file, source, errors[0])
    required = [name for name in source.columns if name not in optional]
    text = spark.read.text(paths).select(relative_name().alias("path"), "value")
    present = text.where(F.trim("value") != "").groupBy("path").agg(*[
        F.max(F.col("value").contains(f'"{name}"').cast("int")).alias(name) for name in required
    ]).collect()
    by_path = {row["path"]: row for row in present}
    for file in files:
        row = by_path.get(file.name)
        if row is None:
            continue
        for name in required:
            if not row[name]:
                raise _mismatch(file, source, f"lacks column '{name}'")
    return StructType([field for field in inferred.schema.fields if field.name != CORRUPT])
