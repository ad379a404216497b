"""Landing files as upstream systems send them: CSV extracts, JSON lines, Parquet per day."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from features.schemas import Source, _split_ddl

UNPARSEABLE_TIMESTAMP = "31/02/2026 25:61"
_UNKNOWN_OFFSET = 1_000_000_000
_EXTENSIONS = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}


def _types(source: Source) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1].strip() for part in _split_ddl(source.ddl)}


def _render(column: str, dtype: str) -> Column:
    """Render a typed column as a CSV field (nulls empty, quoted when needed)."""
    col = F.col(column)
    if dtype == "timestamp":
        text = F.date_format(col, "yyyy-MM-dd HH:mm:ss")
    elif dtype == "date":
        text = F.date_format(col, "yyyy-MM-dd")
    else:
        text = col.cast("string")
    quoted = F.concat(F.lit('"'), F.regexp_replace(text, '"', '""'), F.lit('"'))
    return F.coalesce(F.when(text.rlike('[,"\\n\\r]'), quoted).otherwise(text), F.lit(""))


def csv_lines(frame: DataFrame, source: Source) -> DataFrame:
    """Render records (with ``day``/``d`` and optional ``dirt``) as CSV lines plus headers.

    Returns ``value, d, is_record, ord, dirt, copy``: one header line per day first.
    """
    types = _types(source)
    if "dirt" not in frame.columns:
        frame = frame.withColumn("dirt", F.lit(None).cast("string"))
    kind = F.col("dirt")
    replaced = {}
    if "customer_id" in types:
        replaced["customer_id"] = F.when(
            kind == "unknown_customer", F.col("customer_id") + _UNKNOWN_OFFSET
        ).otherwise(F.col("customer_id"))
    replaced[source.key[0]] = F.when(kind == "missing_key", F.lit(None)).otherwise(
        replaced.get(source.key[0], F.col(source.key[0]))
    )
    frame = frame.withColumns(replaced)
    fields = [_render(name, dtype) for name, dtype in types.items()]
    names = list(types)
    if "amount" in types:
        index = names.index("amount")
        fields[index] = F.when(kind == "non_finite", F.lit("NaN")).otherwise(fields[index])
    if "customer_id" in types:
        index = names.index("customer_id")
        fields[index] = F.when(
            kind == "wrong_type", F.concat(fields[index], F.lit(".5"))
        ).otherwise(fields[index])
    if source.event_time:
        index = list(types).index(source.event_time)
        fields[index] = F.when(
            kind == "unparseable_timestamp", F.lit(UNPARSEABLE_TIMESTAMP)
        ).otherwise(fields[index])
    line = F.when(kind == "malformed", F.concat_ws(",", *fields[:-1])).otherwise(
        F.concat_ws(",", *fields)
    )
    records = frame.select(
        line.alias("value"),
        "d",
        F.lit(1).alias("is_record"),
        "dirt",
        F.when(kind == "duplicate", 2).otherwise(1).alias("copies"),
    ).withColumn("ord", F.xxhash64("value"))
    records = records.select(
        "*", F.explode(F.sequence(F.lit(1), F.col("copies"))).alias("copy")
    ).drop("copies")
    headers = (
        records.select("d")
        .distinct()
        .select(
            F.lit(",".join(types)).alias("value"),
            "d",
            F.lit(0).alias("is_record"),
            F.lit(None).cast("string").alias("dirt"),
            F.lit(0).cast("long").alias("ord"),
            F.lit(1).alias("copy"),
        )
    )
    return records.unionByName(headers)


def write_text_by_day(
    spark: SparkSession, lines: DataFrame, *, root: str, source: Source, dates: list[dt.date]
) -> None:
    """Write ``value`` lines, one file per day ``d``, header (``is_record`` 0) first."""
    tmp = f"{root}/_tmp_{source.name}"
    (
        lines.repartition(F.col("d"))
        .sortWithinPartitions("d", "is_record", "ord")
        .select("value", "d")
        .write.mode("overwrite")
        .partitionBy("d")
        .text(tmp)
    )
    _publish(spark, tmp, f"{root}/{source.name}", _EXTENSIONS[source.file_format], dates)


def write_parquet_by_day(
    spark: SparkSession, frame: DataFrame, *, root: str, source: Source, dates: list[dt.date]
) -> None:
    """Write the source's columns as Parquet files under one folder per day ``d``."""
    tmp = f"{root}/_tmp_{source.name}"
    frame.select(*source.columns, "d").write.mode("overwrite").partitionBy("d").parquet(tmp)
    _publish(spark, tmp, f"{root}/{source.name}", "parquet", dates)


def _publish(spark: SparkSession, tmp: str, target: str, ext: str, dates: list[dt.date]) -> None:
    """Move ``tmp/d=<date>/part-*`` to ``target/<date>/part-NNNNN.<ext>`` (any Hadoop FS)."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path
    fs = hpath(tmp).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    for date in dates:
        fs.delete(hpath(f"{target}/{date.isoformat()}"), True)
    for status in fs.listStatus(hpath(tmp)):
        name = status.getPath().getName()
        if not name.startswith("d="):
            continue
        dest = hpath(f"{target}/{name[2:]}")
        fs.mkdirs(dest)
        parts = sorted(
            (
                p.getPath()
                for p in fs.listStatus(status.getPath())
                if p.getPath().getName().startswith("part-")
            ),
            key=lambda path: path.getName(),
        )
        for index, part in enumerate(parts):
            fs.rename(part, hpath(dest, f"part-{index:05d}.{ext}"))
    fs.delete(hpath(tmp), True)


STRAY_NAME = "notes.txt"
PARTIAL_NAME = "part-99999.parquet"
PARTIAL_BYTES = 4096


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def add_file_dirt(
    spark: SparkSession,
    *,
    root: str,
    source: Source,
    dates: list[dt.date],
    seed: int,
    stray_file: float,
    corrupt_file: float,
) -> int:
    """Put the file-level dirt of real deliveries beside the data: a ``notes.txt`` in a
    share ``stray_file`` of the folders, and for Parquet sources in a share
    ``corrupt_file`` a truncated copy of the day's first file.  Returns files added."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path
    fs = hpath(root).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    added = 0
    for date in dates:
        folder = f"{root}/{source.name}/{date.isoformat()}"
        if not fs.exists(hpath(folder)):
            continue
        if _unit(seed, source.name, date, "stray") < stray_file:
            out = fs.create(hpath(f"{folder}/{STRAY_NAME}"), True)
            out.write(
                bytearray(
                    f"delivery notes for {source.name} {date}: see the feed's runbook\n".encode()
                )
            )
            out.close()
            added += 1
        first = hpath(f"{folder}/part-00000.parquet")
        if (
            source.file_format == "parquet"
            and fs.exists(first)
            and _unit(seed, source.name, date, "corrupt") < corrupt_file
        ):
            stream = fs.open(first)
            try:
                data = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
            finally:
                stream.close()
            out = fs.create(hpath(f"{folder}/{PARTIAL_NAME}"), True)
            # A fixed length where it can be: the same file whatever the writer's partitions.
            out.write(bytearray(data[: min(len(data) // 2, PARTIAL_BYTES)]))
            out.close()
            added += 1
    return added
