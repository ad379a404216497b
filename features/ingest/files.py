"""Landing files of a batch, and the schema each one declares (any Hadoop file system)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import Column, SparkSession

from features.schemas import DATA_SUFFIXES, Source


@dataclasses.dataclass(frozen=True)
class LandingFile:
    """One landing file.

    Attributes:
        path: Full path as Spark reads it.
        name: Path relative to the lakehouse root,
            e.g. ``landing/usage/2026-03-01/part-00000.parquet``.
        batch_date: The batch (folder) date.
        size: Bytes.
        modified: Modification time, milliseconds since the epoch.
    """

    path: str
    name: str
    batch_date: dt.date
    size: int = 0
    modified: int = 0


def _fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath, hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def is_data_file(source: Source, name: str) -> bool:
    """Whether a landing file's name says it is data of ``source``'s format."""
    return name.lower().endswith(DATA_SUFFIXES[source.file_format])


def list_files(
    spark: SparkSession, *, landing_dir: str, source: Source, dates: list[dt.date]
) -> list[LandingFile]:
    """Files of ``source`` in the batches of ``dates`` (hidden, marker and empty files
    skipped), data or not: see :func:`is_data_file`."""
    files = []
    for date in dates:
        folder, fs = _fs(spark, f"{landing_dir}/{source.name}/{date.isoformat()}")
        if not fs.exists(folder):
            continue
        for status in fs.listStatus(folder):
            name = status.getPath().getName()
            if status.isDirectory() or name.startswith(("_", ".")) or status.getLen() == 0:
                continue
            files.append(
                LandingFile(
                    path=status.getPath().toString(),
                    name=f"landing/{source.name}/{date.isoformat()}/{name}",
                    batch_date=date,
                    size=int(status.getLen()),
                    modified=int(status.getModificationTime()),
                )
            )
    return sorted(files, key=lambda f: f.name)


def first_line(spark: SparkSession, path: str) -> str:
    """The first line of a text file (a CSV header) without reading the rest; a compressed
    file (``.gz``, ``.bz2``) is read through its codec, as Spark reads it."""
    jvm = spark.sparkContext._jvm
    hpath, fs = _fs(spark, path)
    raw = fs.open(hpath)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
        spark.sparkContext._jsc.hadoopConfiguration()
    ).getCodec(hpath)
    stream = codec.createInputStream(raw) if codec is not None else raw
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return (reader.readLine() or "").lstrip("\ufeff")
    finally:
        stream.close()


# Landing files sit at ``.../landing/<source>/<date>/<file>`` (see :func:`list_files`), so
# the last path segments give a row's file and batch; plain substrings, not regular
# expressions, because these run once per row (two regexes cost ~2.5 us a row on 2 cores).


def relative_name() -> Column:
    """``landing/<source>/<date>/<file>`` of the row's file (from Spark's file metadata)."""
    return F.substring_index(F.col("_metadata.file_path"), "/", -4)


def batch_date_of() -> Column:
    """The batch date of the row's file, from its folder name."""
    folder_and_file = F.substring_index(F.col("_metadata.file_path"), "/", -2)
    return F.to_date(F.substring_index(folder_and_file, "/", 1))
