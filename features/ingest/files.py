"""Landing files of a batch, and the schema each one declares (any Hadoop file system)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat as file_mode

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


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of a folder: its path as Spark reads it, and what Hadoop's ``FileStatus``
    says of it."""

    path: str
    name: str
    is_dir: bool
    size: int
    modified: int


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _local(folder: str) -> str | None:
    """The local path of ``folder`` when it is on the local file system (a plain path, or a
    ``file:`` URI without a host), normalized as Hadoop's ``Path`` is; else None (Hadoop
    lists it, or says why it cannot)."""
    if folder.startswith("file:"):
        rest = folder[len("file:") :]
        if rest.startswith("//"):
            host, _, path = rest[2:].partition("/")
            if host:
                return None
            rest = "/" + path
        return os.path.normpath(rest) if rest.startswith("/") else None
    return None if _SCHEME.match(folder) else os.path.normpath(os.path.abspath(folder))


def list_dir(spark: SparkSession, folder: str) -> list[Entry]:
    """The entries of ``folder`` (none when it does not exist), on any Hadoop file system.

    A local folder is listed by the operating system: through Hadoop each entry costs
    several calls into the JVM (1.5-1.8 s for the demo's 604 landing folders, listed by
    every daily run); the paths, sizes and modification times (in whole milliseconds)
    are those Hadoop's local file system gives.
    """
    local = _local(folder)
    if local is not None:
        try:
            found = list(os.scandir(local))
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries = []
        for entry in found:
            try:
                stat = entry.stat()
            except OSError:  # gone since, a dangling or looping link: Hadoop skips it too
                continue
            entries.append(
                Entry(
                    path=f"file:{os.path.join(local, entry.name)}",
                    name=entry.name,
                    is_dir=file_mode.S_ISDIR(stat.st_mode),
                    size=stat.st_size,
                    modified=stat.st_mtime_ns // 1_000_000,
                )
            )
        return entries
    path, fs = _fs(spark, folder)
    if not fs.exists(path):
        return []
    return [
        Entry(
            path=status.getPath().toString(),
            name=status.getPath().getName(),
            is_dir=bool(status.isDirectory()),
            size=int(status.getLen()),
            modified=int(status.getModificationTime()),
        )
        for status in fs.listStatus(path)
    ]


def list_files(
    spark: SparkSession, *, landing_dir: str, source: Source, dates: list[dt.date]
) -> list[LandingFile]:
    """Files of ``source`` in the batches of ``dates`` (hidden, marker and empty files
    skipped), data or not: see :func:`is_data_file`."""
    files = []
    for date in dates:
        for entry in list_dir(spark, f"{landing_dir}/{source.name}/{date.isoformat()}"):
            if entry.is_dir or entry.name.startswith(("_", ".")) or entry.size == 0:
                continue
            files.append(
                LandingFile(
                    path=entry.path,
                    name=f"landing/{source.name}/{date.isoformat()}/{entry.name}",
                    batch_date=date,
                    size=entry.size,
                    modified=entry.modified,
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
