"""Young lakes: commands on a lake with nothing in it yet answer in one line naming the
command to run, and a lake one of whose sources has not delivered yet runs the daily job.

The empty lake is a lake of its own, and its commands run as a user runs them, in their own
processes with their own JVMs (about a minute): a failure's console must be one line and the
log's path, `features generate`'s its counts.  The young lake is the shared test lake with
its databases and landing files dropped once every other test of it is done (its fixture;
its artifacts, Feast's registry and MLflow's store, stay), with the commands run in this
process on the shared session: fresh processes' JVMs and `dbt build` cost about a minute
more, and what they add (the console) is checked by the empty lake's test and, for
`features daily`, the second lake's (tests/e2e/test_reliability.py).  A missing table's
message is checked in-process on the shared session, with a table no test makes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import empty_shared_lake

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
    delivered yet never breaks dbt); a daily run on that lake still says nothing landed;
    ``features generate``, which it names, then prints what it wrote, and nothing else."""
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
    # What that command prints, in a process of its own: a line per source, notes, no JVM.
    made = _run(root, "generate", "--customers", "5", "--days", "2", "--start", "2026-01-05")
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stderr == "", made.stderr
    printed = made.stdout.splitlines()
    assert all(re.match(r"^(note: .*|  \w+ +[\d,]+)$", line) for line in printed), printed
    assert {line.split()[0] for line in printed if line.startswith("  ")} == set(SOURCES)


@pytest.fixture
def young_lake(spark, lakehouse_root) -> Path:
    """The shared test lake without its databases and landing files (its artifacts stay).

    The tests using it run after every other test of the shared lake and before the daily
    lake's, whose fixture empties it again (tests/conftest.py).  In this process, on the
    shared session: what a fresh process adds is checked by the empty lake's test above and
    by the second lake's console (tests/e2e/test_reliability.py).
    """
    empty_shared_lake(spark, lakehouse_root)
    return lakehouse_root


def test_a_source_that_never_delivered_does_not_stop_the_daily_job(young_lake, capsys) -> None:
    """No customer has churned yet, so the churn feed never delivered: the daily job runs to
    its end (dbt builds on the empty bronze table; training, scoring and monitoring say why
    they cannot run yet).  (A feed's file landing late for a date already run is taken by
    the next run: the daily lake's, tests/e2e/test_daily.py.)"""
    from features import cli

    start = dt.date(2026, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(2)]
    generate = ["generate", "--customers", "20", "--days", "2", "--seed", "3"]
    assert cli.main([*generate, "--dirt-rate", "0", "--start", start.isoformat()]) == 0
    shutil.rmtree(young_lake / "landing" / "churn", ignore_errors=True)  # not delivered yet
    capsys.readouterr()
    code = cli.main(["daily", "--from", days[0].isoformat(), "--to", days[-1].isoformat()])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = {
        line.split(": ", 1)[0]: line.split(": ", 1)[1]
        for line in out.splitlines()
        if line.startswith(f"[daily {days[-1]}] ") and ": " in line
    }
    step = f"[daily {days[-1]}] "
    assert "models, seeds and tests ok" in lines[step + "dbt_build"], out
    assert lines[step + "train"].startswith("not possible yet: "), out
    assert lines[step + "score"].startswith("not possible yet: no model"), out
    assert lines[step + "monitor"].startswith("not possible yet: no model"), out


def test_a_missing_table_names_the_command_that_makes_it(spark, capsys) -> None:
    from features import cli

    assert cli.main(["sql", "select * from predictions.no_such_scores"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "features sql: failed: table predictions.no_such_scores does not exist in this lake "
        "yet: `features score --date D` (or `features daily`) makes it\n  full trace: "
    )
    assert err.count("\n") == 2
