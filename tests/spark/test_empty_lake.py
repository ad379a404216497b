"""Young lakes: commands on a lake with nothing in it yet answer in one line naming the
command to run, and a lake one of whose sources has not delivered yet runs the daily job.

These need lakes of their own (an empty one, and one without a source, which the shared test
lake is not) and run as a user runs them, in their own processes with their own JVMs (about
20 s for the empty lake, about three minutes for the young one: a daily run with `dbt build`).
A missing table's message is checked in-process on the shared session, with a table no test
makes.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

FEATURES = str(Path(sys.executable).with_name("features"))


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        LAKEHOUSE_ROOT=str(root),
        SPARK_MASTER="local[2]",
        LAKEHOUSE_DRIVER_MEMORY="1g",
        LAKEHOUSE_SHUFFLE_PARTITIONS="2",
    )
    return subprocess.run(
        [FEATURES, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _one_failure(proc: subprocess.CompletedProcess, command: str) -> str:
    """The failure's line, after checking that it is all the console got."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr  # the message and where the full trace is
    assert lines[0].startswith(f"features {command}: failed: ")
    assert lines[1].startswith("  full trace: ")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "\tat " not in proc.stdout + proc.stderr  # no Java frame
    return lines[0]


def test_an_empty_lake_says_what_to_run(tmp_path) -> None:
    """``features setup`` makes every bronze table, empty (so a source that has not
    delivered yet never breaks dbt); a daily run on that lake still says nothing landed."""
    from features.schemas import SOURCES

    root = tmp_path / "lake"
    setup = _run(root, "setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    made = next(
        line
        for line in setup.stdout.splitlines()
        if line.startswith("Bronze and quarantine tables created empty")
    )
    assert sorted(made.split(": ", 1)[1].split(", ")) == sorted(
        f"bronze.{source.table}" for source in SOURCES.values()
    )
    daily = _one_failure(_run(root, "daily", "--date", "2026-01-05"), "daily")
    assert f"no landing files under {root / 'landing'} for 2026-01-05..2026-01-05" in daily
    assert "`features generate`" in daily


def test_a_source_that_never_delivered_does_not_stop_the_daily_job(tmp_path) -> None:
    """No customer has churned yet, so the churn feed never delivered: the daily job runs to
    its end (dbt builds on the empty bronze table; training, scoring and monitoring say why
    they cannot run yet).  (A feed's file landing late for a date already run is taken by
    the next run: the daily lake's, tests/e2e/test_daily.py.)"""
    root = tmp_path / "young"
    start = dt.date(2026, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(2)]
    made = _run(
        root,
        "generate",
        "--customers",
        "20",
        "--days",
        "2",
        "--seed",
        "3",
        "--dirt-rate",
        "0",
        "--start",
        start.isoformat(),
    )
    assert made.returncode == 0, made.stdout + made.stderr
    shutil.rmtree(root / "landing" / "churn", ignore_errors=True)  # not delivered yet
    first = _run(root, "daily", "--from", days[0].isoformat(), "--to", days[-1].isoformat())
    assert first.returncode == 0, first.stdout + first.stderr
    lines = {
        line.split(": ", 1)[0]: line.split(": ", 1)[1]
        for line in first.stdout.splitlines()
        if line.startswith(f"[daily {days[-1]}] ") and ": " in line
    }
    step = f"[daily {days[-1]}] "
    assert "models, seeds and tests ok" in lines[step + "dbt_build"], first.stdout
    assert lines[step + "train"].startswith("not possible yet: "), first.stdout
    assert lines[step + "score"].startswith("not possible yet: no model"), first.stdout
    assert lines[step + "monitor"].startswith("not possible yet: no model"), first.stdout


def test_a_missing_table_names_the_command_that_makes_it(spark, capsys) -> None:
    from features import cli

    assert cli.main(["sql", "select * from predictions.no_such_scores"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "features sql: failed: table predictions.no_such_scores does not exist in this lake "
        "yet: `features score --date D` (or `features daily`) makes it\n  full trace: "
    )
    assert err.count("\n") == 2
