"""Validate every landing file of a batch against its source's schema, before any write."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from typing import TypeVar, cast

import pyspark.sql.functions as F
from pyspark.sql import Column, SparkSession
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
from features.schemas import RESERVED_PREFIX, Source

T = TypeVar("T")

CORRUPT = "_corrupt_record"


class SchemaMismatch(Exception):
    """A landing file lacks a column of its source, or sends it with another type."""


def contract(source: Source) -> StructType:
    """The landing schema of ``source`` as a StructType."""
    return cast(StructType, StructType.fromDDL(source.ddl))


def _mismatch(file: LandingFile, source: Source, detail: str) -> SchemaMismatch:
    return SchemaMismatch(
        f"{file.name} {detail} (expected by bronze.{source.table}); "
        "fix the file or the contract in features/schemas.py, then ingest the batch again"
    )


def check_names(file: LandingFile, source: Source, names: list[str]) -> None:
    """Raise :class:`SchemaMismatch` on a column Spark could not tell apart from another
    (same name up to case) or that takes a name the lake keeps for itself."""
    seen: dict[str, str] = {}
    for name in names:
        if (
            name.startswith(RESERVED_PREFIX)
            and name != CORRUPT
            and not name.startswith("__index_level_")
        ):  # pandas' index: dropped
            raise _mismatch(
                file,
                source,
                f"has column '{name}': names starting with "
                f"'{RESERVED_PREFIX}' are the lake's own (lineage such as "
                "_batch_date); rename it upstream",
            )
        if name.lower() in seen:
            raise _mismatch(
                file,
                source,
                f"has columns '{seen[name.lower()]}' and '{name}', "
                "which differ only in case (Spark cannot tell them apart)",
            )
        seen[name.lower()] = name


def unreadable_reason(error: BaseException, kind: str) -> str:
    """The reason recorded for a file quarantined whole: what it is not, and why (the
    Java exception's message, paths relative to the lake: the same on every machine)."""
    lines = [line.strip().lstrip(": ") for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if line and not line.startswith(_PY4J_CALL)]
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"\S*/(landing/[^\s.,;]+(?:\.[A-Za-z0-9]+)*)", r"\1", text)
    return f"not a readable {kind} file: {text[:300]}"


_PY4J_CALL = "An error occurred while calling"


SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"


def _nullable(data_type: DataType) -> DataType:
    """The type with every field and element nullable, as Spark reads files."""
    if isinstance(data_type, StructType):
        return StructType(
            [StructField(f.name, _nullable(f.dataType), True, f.metadata) for f in data_type.fields]
        )
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
            jvm.org.apache.hadoop.fs.Path(path), conf
        )
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(source)
        try:
            meta = reader.getFooter().getFileMetaData()
            kept = meta.getKeyValueMetaData().get(SPARK_ROW_METADATA)
            if kept:
                text = kept
            else:
                parquet = jvm.org.apache.spark.sql.execution.datasources.parquet
                converter = parquet.ParquetToSparkSchemaConverter(
                    spark._jsparkSession.sessionState().conf()
                )
                text = converter.convert(meta.getSchema()).json()
        finally:
            reader.close()
        return cast(StructType, _nullable(StructType.fromJson(json.loads(text))))
    except (Py4JError, ValueError, KeyError):
        return spark.read.parquet(path).schema


def check_parquet(
    spark: SparkSession, source: Source, files: list[LandingFile], unreadable: dict[str, str]
) -> dict[str, StructType]:
    """Return each file's schema; raise :class:`SchemaMismatch` on a missing or retyped column.

    A file whose footer cannot be read is not Parquet (truncated, or another format under a
    Parquet name): it goes to ``unreadable`` (path to reason) and the batch goes on without it.
    """
    expected = contract(source)
    schemas = {}
    for file in files:
        actual = read_or_note(
            partial(parquet_schema, spark, file.path),
            file.path,
            kind="Parquet",
            unreadable=unreadable,
        )
        if actual is None:
            continue
        check_names(file, source, actual.fieldNames())
        found = {field.name: field.dataType for field in actual.fields}
        for field in expected.fields:
            if field.name not in found:
                raise _mismatch(file, source, f"lacks column '{field.name}'")
            if found[field.name] != field.dataType:
                raise _mismatch(
                    file,
                    source,
                    f"has column '{field.name}' as {found[field.name].simpleString()}, "
                    f"not {field.dataType.simpleString()}",
                )
        schemas[file.path] = actual
    return schemas


def check_csv(
    spark: SparkSession, source: Source, files: list[LandingFile], unreadable: dict[str, str]
) -> dict[str, list[str]]:
    """Return each file's header columns; raise on a missing, ambiguous or reserved column.

    CSV carries no types: a value that does not parse is quarantined, row by row.  A file
    whose header is not text (binary, another encoding, a broken archive) goes to
    ``unreadable`` (path to reason).
    """
    headers = {}
    for file in files:
        line = read_or_note(
            partial(first_line, spark, file.path), file.path, kind="CSV", unreadable=unreadable
        )
        if line is None:
            continue
        if not line.strip() or "\ufffd" in line or "\x00" in line:
            unreadable[file.path] = (
                "not a readable CSV file: its first line is not a UTF-8 header"
                if line.strip()
                else "not a readable CSV file: no header line"
            )
            continue
        header = [name.strip().strip('"') for name in line.split(",")]
        check_names(file, source, header)
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


WRONG_TYPE = "wrong_type"
UNPARSEABLE = "unparseable_timestamp"
_INTEGER = r"^\s*[+-]?[0-9]+\s*$"


def typed_value(raw: Column, field: StructField) -> tuple[Column, Column]:
    """Read text ``raw`` as ``field``'s contract type; return (value, reason when it is not).

    Strict where Spark's cast is lenient: ``12.5`` is not an integer (a cast would make it
    12).  Times that do not parse are ``unparseable_timestamp``, other values
    ``wrong_type: <column>``.
    """
    value = raw.cast(field.dataType)
    failed = raw.isNotNull() & value.isNull()
    if isinstance(field.dataType, (LongType, IntegerType)):
        failed = failed | (raw.isNotNull() & ~raw.rlike(_INTEGER))
        value = F.when(raw.rlike(_INTEGER), value)
    time_like = isinstance(field.dataType, (TimestampType, DateType))
    reason = F.lit(UNPARSEABLE) if time_like else F.lit(f"{WRONG_TYPE}: {field.name}")
    return value, F.when(failed, reason)


def read_json_line(value: Column, fields: list[StructField]) -> Column:
    """A JSON line read into ``fields`` and the corrupt-record column (Spark's permissive
    mode keeps the text of a line that does not parse there)."""
    return F.from_json(
        value,
        StructType([*fields, StructField(CORRUPT, StringType(), True)]),
        {"columnNameOfCorruptRecord": CORRUPT},
    )


def is_malformed(record: Column) -> Column:
    """Whether a line read by :func:`read_json_line` did not parse: the reader quarantines
    it as malformed, and the column check of its file does not count it."""
    return record.isNull() | record.getField(CORRUPT).isNotNull()


def is_scalar(data_type: DataType) -> bool:
    """Whether values of this type are read from text (not nested)."""
    return not isinstance(data_type, (ArrayType, StructType, MapType))


def _retyped_columns(
    spark: SparkSession, source: Source, files: list[LandingFile], inferred: StructType
) -> None:
    """Tell a retyped column (a file none of whose values has the contract's type: raise)
    from row dirt (some values do not: those rows are quarantined by the reader)."""
    got = {field.name: field.dataType for field in inferred.fields}
    wrong = [
        field
        for field in contract(source).fields
        if field.name in got and not _compatible(field.dataType, got[field.name])
    ]
    if not wrong:
        return
    # Every value as its JSON text (Spark gives a nested value's text for a string field).
    schema = StructType([StructField(field.name, StringType(), True) for field in wrong])
    record = F.from_json("value", schema)
    text = spark.read.text([file.path for file in files]).select(
        relative_name().alias("path"), record.alias("r")
    )
    aggregates = []
    for field in wrong:
        raw = F.col("r").getField(field.name)
        if is_scalar(field.dataType):
            _, reason = typed_value(raw, field)
            typed = reason.isNull()
        else:  # an object or a list where the contract has one (its inside: the reader's)
            typed = F.trim(raw).startswith(
                "{" if isinstance(field.dataType, (StructType, MapType)) else "["
            )
        aggregates += [
            F.count(raw).alias(f"{field.name}__sent"),
            F.count(F.when(raw.isNotNull() & typed, 1)).alias(f"{field.name}__typed"),
        ]
    by_path = {row["path"]: row for row in text.groupBy("path").agg(*aggregates).collect()}
    for file in files:
        row = by_path.get(file.name)
        for field in wrong:
            if row is not None and row[f"{field.name}__sent"] and not row[f"{field.name}__typed"]:
                sent = spark.read.json(file.path).schema
                kind = next(
                    (f.dataType.simpleString() for f in sent.fields if f.name == field.name), "text"
                )
                raise _mismatch(
                    file,
                    source,
                    f"has column '{field.name}' as {kind}, not {field.dataType.simpleString()}",
                )


def _json_names(spark: SparkSession, source: Source, files: list[LandingFile]) -> StructType:
    """The batch's inferred JSON schema, after checking every file's column names."""
    from pyspark.errors import AnalysisException

    try:
        inferred = spark.read.json([file.path for file in files]).schema
        check_names(files[0], source, inferred.fieldNames())
        return inferred
    except (AnalysisException, SchemaMismatch):
        pass
    seen: dict[str, tuple[str, LandingFile]] = {}
    for file in files:  # name the file (infer each one alone: only on this error path)
        try:
            names = spark.read.json(file.path).schema.fieldNames()
        except AnalysisException as error:
            raise _mismatch(
                file, source, f"has columns that differ only in case ({console_line(error)})"
            ) from None
        check_names(file, source, names)
        for name in names:
            earlier = seen.get(name.lower())
            if earlier is not None and earlier[0] != name:
                raise _mismatch(
                    file,
                    source,
                    f"has column '{name}' where "
                    f"{earlier[1].name} has '{earlier[0]}' (names that differ "
                    "only in case: Spark cannot tell them apart)",
                )
            seen.setdefault(name.lower(), (name, file))
    raise SchemaMismatch(
        f"bronze.{source.table}: the batch's JSON files could not be read "
        "together, and each one alone can: see the log"
    )


def _readable_json(
    spark: SparkSession, files: list[LandingFile], unreadable: dict[str, str]
) -> list[LandingFile]:
    """The files whose text can be read (a broken archive cannot): the others go to
    ``unreadable``."""
    from pyspark.errors import AnalysisException

    try:
        spark.read.text([file.path for file in files]).selectExpr("count(1)").collect()
        return files
    except AnalysisException:
        raise
    except Exception as error:  # noqa: BLE001 - find the file; re-raised if none is corrupt
        found: dict[str, str] = {}
        for file in files:
            read_or_note(
                spark.read.text(file.path).selectExpr("count(1)").collect,
                file.path,
                kind="JSON lines",
                unreadable=found,
            )
        if not found:
            raise error
        unreadable.update(found)
        return [file for file in files if file.path not in found]


_CORRUPT_SIGNS = (
    "FAILED_READ_FILE",
    "CANNOT_READ_FILE_FOOTER",
    "Could not read footer",
    "ParquetDecodingException",
    "EOFException",
    "not a Parquet file",
    "magic number",
    "ZipException",
    "Not in GZIP format",
    "Unexpected end of",
    "can not read class",
    "CORRUPTED",
    "Corrupt",
    "corrupt",
    "invalid block type",
    "invalid distance",
    "BZip2",
    "incorrect header check",
)
_NOT_CORRUPT_SIGNS = (
    "Permission denied",
    "AccessDenied",
    "Access denied",
    "FileNotFoundException",
    "No such file",
    "OutOfMemory",
    "SparkContext was shut down",
    "cancelled",
)


def read_or_note(
    read: Callable[[], T], path: str, *, kind: str, unreadable: dict[str, str]
) -> T | None:
    """``read()``, or None when it failed because the file at ``path`` is corrupt: then
    the reason goes to ``unreadable[path]`` (``kind`` names the format in it).  Any other
    failure (a missing file, a lost session) is raised: it says nothing about the file."""
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - a broken file, or re-raised
        if not is_corrupt(error):
            raise
        unreadable[path] = unreadable_reason(error, kind)
        return None


def is_corrupt(error: BaseException) -> bool:
    """Whether a read failure says the file itself is broken (not the disk, rights or
    memory, which must stop the batch rather than quarantine a good file)."""
    text = str(error)
    return any(sign in text for sign in _CORRUPT_SIGNS) and not any(
        sign in text for sign in _NOT_CORRUPT_SIGNS
    )


def console_line(error: BaseException) -> str:
    """The first line of an error's message."""
    return next(
        (line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__
    )


def check_json(
    spark: SparkSession,
    source: Source,
    files: list[LandingFile],
    unreadable: dict[str, str],
    *,
    optional: tuple[str, ...] = (),
) -> StructType:
    """Return the inferred schema of the batch's JSON lines; raise on missing, retyped,
    ambiguous or reserved columns.

    A column is missing when no line of a file has it (``optional`` columns may be absent);
    retyped when none of a file's values has its type (some values without it are row
    dirt, quarantined by the reader).  A JSON file is read line by line: a file whose every
    line is an object cut short (a truncated one-record file) has its lines quarantined as
    malformed, while text that is not JSON lines at all lacks every column and stops the
    batch; a file whose text cannot be read (a broken archive) goes to ``unreadable``.
    """
    files = _readable_json(spark, files, unreadable) if files else files
    if not files:
        return StructType([])
    paths = [file.path for file in files]
    inferred = _json_names(spark, source, files)
    if _json_type_errors(source, inferred):
        _retyped_columns(spark, source, files, inferred)
    required = [name for name in source.columns if name not in optional]
    text = spark.read.text(paths).select(relative_name().alias("path"), "value")
    # A file none of whose lines parses, each of them the start of an object (a one-record
    # file cut short), has its lines quarantined as malformed by the reader, not a schema
    # to check ("parses" as the reader decides it).  Text that is not JSON at all (a CSV or
    # an error page in a JSON folder) is still refused here, whole.
    parsed = ~is_malformed(
        read_json_line(F.col("value"), [StructField(name, StringType(), True) for name in required])
    )
    present = (
        text.where(F.trim("value") != "")
        .groupBy("path")
        .agg(
            *[
                F.max(F.col("value").contains(f'"{name}"').cast("int")).alias(name)
                for name in required
            ],
            F.max(parsed.cast("int")).alias(f"{CORRUPT}_parsed"),
            F.min(F.col("value").rlike(r"^\s*\{").cast("int")).alias(f"{CORRUPT}_objects"),
        )
        .collect()
    )
    by_path = {row["path"]: row for row in present}
    for file in files:
        row = by_path.get(file.name)
        if row is None or (not row[f"{CORRUPT}_parsed"] and row[f"{CORRUPT}_objects"]):
            continue
        for name in required:
            if not row[name]:
                raise _mismatch(file, source, f"lacks column '{name}'")
    return StructType([field for field in inferred.fields if field.name != CORRUPT])
