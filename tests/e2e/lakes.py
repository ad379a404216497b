"""Comparing two lakes table by table: which Delta tables, how many rows, which content.

Two lakes built from the same landing files hold the same data, but not byte for byte: a few columns
record when a row was written (``_ingested_at``, ``scored_at`` ...) and file paths name the
lakehouse root.  A table's fingerprint leaves those columns out, strips the root from string
values and rounds floating point values, then adds up one 64-bit hash per row, so that it
does not depend on row order or file layout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType, FloatType, MapType, StringType

from features import lakehouse
from features.generate import GenerationSummary


@dataclasses.dataclass(frozen=True)
class DailyLake:
    """The lake the daily job built once (``tests/e2e/conftest.py::daily_lake``).

    Attributes:
        spark: The session on it.
        dates: Every batch date of the generated landing files, oldest first.
        summary: What the generator wrote (``features.generate.generate``'s summary).
        backfill: The daily job's run over every date but the last.
        daily: Its run over the last date (one more day, the late file delivered).
        versions: Each Delta table's version right after the daily job, before later
            tests changed the lake.
    """

    spark: SparkSession
    dates: list[dt.date]
    summary: GenerationSummary
    backfill: dict[str, str]
    daily: dict[str, str]
    versions: dict[str, int]


# Columns that say when (or in which run) a row was written, not what it holds.
WALL_CLOCK_COLUMNS = frozenset(
    {
        "_ingested_at",
        "_quarantined_at",
        "computed_at",
        "generated_at",
        "scored_at",
        "run_id",
        "started_at",
        "finished_at",
    }
)
# Tables whose rows are a log of attempts, which a crash legitimately lengthens.
LOG_TABLES = frozenset({"ops.pipeline_runs"})
# Tables of the data generator (the tests' input, not the daily job's output): a lake that
# copies another's landing files instead of generating them has none.
GENERATOR_TABLES = frozenset({"ops.generator_runs", "ops.generator_truth"})
DECIMALS = 9
# A feed both lakes deliver late: its folder of the backfill's last day is held back from
# the backfill and lands before the last day's run, which must ingest it beside its own
# day's files (a file for a date already ingested is taken by the next run).
LATE_SOURCE = "chats"


def late_folder(root: Path, day: dt.date) -> Path:
    """The landing folder of :data:`LATE_SOURCE` for ``day`` in the lake under ``root``."""
    return root / "landing" / LATE_SOURCE / day.isoformat()


def hold_back(root: Path, day: dt.date) -> Path:
    """Move the late feed's folder of ``day`` out of the landing area; return where to."""
    folder = late_folder(root, day)
    assert any(folder.iterdir()), f"the generator wrote no {LATE_SOURCE} files for {day}"
    aside = root / "held-back" / LATE_SOURCE / day.isoformat()
    aside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(folder, aside)
    return aside


def deliver(root: Path, day: dt.date) -> None:
    """Land the folder :func:`hold_back` kept (its files' times unchanged)."""
    shutil.move(root / "held-back" / LATE_SOURCE / day.isoformat(), late_folder(root, day))


def delta_tables(spark: SparkSession) -> dict[str, int]:
    """Every Delta table of the lake's catalog, with its current version."""
    versions: dict[str, int] = {}
    for database in lakehouse.DATABASES:
        if not spark.catalog.databaseExists(database):
            continue
        for table in spark.catalog.listTables(database):
            if table.isTemporary or table.tableType in ("VIEW", "TEMPORARY"):
                continue
            name = f"{database}.{table.name}"
            detail = spark.sql(f"describe detail {name}").first()
            if detail["format"] != "delta":
                continue
            versions[name] = spark.sql(f"describe history {name} limit 1").first()["version"]
    return versions


def table_folder(root: Path, name: str) -> Path:
    """Where the managed table ``name`` of the lake under ``root`` keeps its files."""
    database, table = name.split(".")
    return root / "warehouse" / f"{database}.db" / table


def delta_folders(root: Path) -> set[str]:
    """Names (``database.table``) of the Delta tables found in a lake's warehouse folder."""
    found = set()
    for log in (root / "warehouse").glob("*.db/*/_delta_log"):
        found.add(f"{log.parent.parent.name.removesuffix('.db')}.{log.parent.name}")
    return found


def fingerprint(frame: DataFrame, *, root: Path) -> tuple[int, int]:
    """(rows, order-free content hash) of ``frame`` without wall-clock columns.

    Args:
        frame: The table's rows.
        root: The lakehouse root its string values may name (removed before hashing).
    """
    columns = []
    for field in frame.schema.fields:
        if field.name in WALL_CLOCK_COLUMNS:
            continue
        column = F.col(f"`{field.name}`")
        if isinstance(field.dataType, StringType):
            column = F.replace(column, F.lit(f"file:{root}"), F.lit("<root>"))
            column = F.replace(column, F.lit(str(root)), F.lit("<root>"))
        elif isinstance(field.dataType, DoubleType | FloatType):
            column = F.round(column, DECIMALS)
        elif isinstance(field.dataType, MapType):  # maps cannot be hashed; their entries can
            column = F.array_sort(F.map_entries(column))
        columns.append(column.alias(field.name))
    hashed = frame.select(F.xxhash64(*columns).alias("h"))
    row = hashed.agg(F.count(F.lit(1)).alias("n"), F.sum("h").alias("s")).first()
    return int(row["n"]), int(row["s"] or 0)


def read_version(spark: SparkSession, name: str, version: int) -> DataFrame:
    """Table ``name`` of the session's catalog as of Delta version ``version``."""
    return spark.read.option("versionAsOf", version).table(name)


def read_folder(spark: SparkSession, root: Path, name: str) -> DataFrame:
    """The current version of managed table ``name`` of the lake under ``root``, by path."""
    return spark.read.format("delta").load(str(table_folder(root, name)))
