"""The run log: one ``ops.pipeline_runs`` row per step and batch, appended atomically.

Usage::

    with record_step(spark, pipeline="daily", step="dbt_run", batch_date=day) as run:
        run.rows_read = ...
        run.rows_written = ...

writes one row with status ``succeeded`` (or ``failed`` and the error, re-raised) when the
block ends.  Steps that cover many batches build :class:`StepRun` objects themselves and
append them all in one commit with :func:`append_runs`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession

PIPELINE_RUNS_TABLE = "ops.pipeline_runs"
PIPELINE_RUNS_DDL = (
    "run_id string, pipeline string, step string, batch_date date, status string, "
    "started_at timestamp, finished_at timestamp, rows_read bigint, rows_written bigint, "
    "rows_quarantined bigint, message string"
)


def utc_now() -> dt.datetime:
    """The current UTC time as a naive datetime (the session's time zone is UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """A fresh run id."""
    return uuid.uuid4().hex


@dataclasses.dataclass
class StepRun:
    """One step of one pipeline run over one batch (a row of ``ops.pipeline_runs``)."""

    pipeline: str
    step: str
    batch_date: dt.date | None = None
    run_id: str = dataclasses.field(default_factory=new_run_id)
    status: str = "running"
    started_at: dt.datetime = dataclasses.field(default_factory=utc_now)
    finished_at: dt.datetime | None = None
    rows_read: int | None = None
    rows_written: int | None = None
    rows_quarantined: int | None = None
    message: str | None = None

    def finish(self, *, status: str = "succeeded", message: str | None = None) -> StepRun:
        """Mark the step finished with ``status``; return it."""
        self.status = status
        self.finished_at = utc_now()
        if message is not None:
            self.message = message
        return self

    def as_row(self) -> tuple:
        """The row in ``ops.pipeline_runs`` column order."""
        return (
            self.run_id,
            self.pipeline,
            self.step,
            self.batch_date,
            self.status,
            self.started_at,
            self.finished_at,
            self.rows_read,
            self.rows_written,
            self.rows_quarantined,
            self.message,
        )


def ensure_table(spark: SparkSession) -> None:
    """Create ``ops.pipeline_runs`` if it does not exist."""
    if spark.catalog.tableExists(PIPELINE_RUNS_TABLE):  # no DDL, no metastore write
        return
    spark.sql("create database if not exists ops")
    spark.sql(f"create table if not exists {PIPELINE_RUNS_TABLE} ({PIPELINE_RUNS_DDL}) using delta")


def append_runs(spark: SparkSession, runs: list[StepRun]) -> None:
    """Append ``runs`` to ``ops.pipeline_runs`` in one Delta commit."""
    if not runs:
        return
    ensure_table(spark)
    frame = spark.createDataFrame([run.as_row() for run in runs], PIPELINE_RUNS_DDL)
    frame.write.format("delta").mode("append").saveAsTable(PIPELINE_RUNS_TABLE)


@contextmanager
def record_step(
    spark: SparkSession,
    *,
    pipeline: str,
    step: str,
    batch_date: dt.date | None = None,
    run_id: str | None = None,
) -> Iterator[StepRun]:
    """Record the enclosed block as one step: one row when it ends, succeeded or failed.

    Args:
        spark: The lakehouse session.
        pipeline: Pipeline name, e.g. ``ingest`` or ``daily``.
        step: Step name, e.g. ``bronze.usage_events``.
        batch_date: The batch the step worked on.
        run_id: Shared id of a pipeline run (a fresh one by default).
    """
    run = StepRun(
        pipeline=pipeline, step=step, batch_date=batch_date, run_id=run_id or new_run_id()
    )
    try:
        yield run
    except BaseException as error:
        run.finish(status="failed", message=f"{type(error).__name__}: {error}"[:4000])
        append_runs(spark, [run])
        raise
    if run.status == "running":
        run.finish()
    append_runs(spark, [run])


def read_runs(spark: SparkSession, *, pipeline: str | None = None) -> DataFrame:
    """The run log, optionally of one pipeline, newest first."""
    ensure_table(spark)
    frame = spark.table(PIPELINE_RUNS_TABLE)
    if pipeline is not None:
        frame = frame.where(frame.pipeline == pipeline)
    return frame.orderBy(frame.started_at.desc())
