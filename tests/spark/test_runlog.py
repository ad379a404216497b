"""The run log: one row per step, succeeded or failed, appended to ops.pipeline_runs."""

from __future__ import annotations

import datetime as dt

import pytest

from features import runlog

pytestmark = pytest.mark.spark


def test_record_step_writes_succeeded_row_with_counts(spark) -> None:
    with runlog.record_step(
        spark, pipeline="t_runlog", step="ok", batch_date=dt.date(2026, 1, 2)
    ) as run:
        run.rows_read, run.rows_written, run.rows_quarantined = 10, 8, 2
    row = spark.table("ops.pipeline_runs").where(f"run_id = '{run.run_id}'").collect()
    assert len(row) == 1
    assert row[0]["status"] == "succeeded"
    assert (row[0]["rows_read"], row[0]["rows_written"], row[0]["rows_quarantined"]) == (10, 8, 2)
    assert row[0]["batch_date"] == dt.date(2026, 1, 2)
    assert row[0]["finished_at"] >= row[0]["started_at"]


def test_record_step_records_failure_and_reraises(spark) -> None:
    with pytest.raises(ValueError, match="boom"):
        with runlog.record_step(spark, pipeline="t_runlog", step="bad") as run:
            raise ValueError("boom")
    row = spark.table("ops.pipeline_runs").where(f"run_id = '{run.run_id}'").first()
    assert row["status"] == "failed"
    assert "ValueError: boom" in row["message"]
    assert runlog.read_runs(spark, pipeline="t_runlog").count() == 2
