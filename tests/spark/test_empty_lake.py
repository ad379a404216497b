"""Commands on a lake with nothing in it yet answer in one line naming the command to run.

The daily job needs a lake of its own (an empty one, which the shared test lake is not) and
runs as a user runs it, in its own process with its own JVM (about 20 s).  A missing table's
message is checked in-process on the shared session, with a table no test makes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

FEATURES = str(Path(sys.executable).with_name("features"))


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LAKEHOUSE_ROOT=str(root), SPARK_MASTER="local[1]",
               LAKEHOUSE_DRIVER_MEMORY="1g", LAKEHOUSE_SHUFFLE_PARTITIONS="2")
    return subprocess.run([FEATURES, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


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
    made = next(line for line in setup.stdout.splitlines()
                if line.startswith("Bronze and quarantine tables created empty"))
    assert sorted(made.split(": ", 1)[1].split(", ")) == \
        sorted(f"bronze.{source.table}" for source in SOURCES.values())
    daily = _one_failure(_run(root, "daily", "--date", "2026-01-05"), "daily")
    assert f"no landing files under {root / 'landing'} for 2026-01-05..2026-01-05" in daily
    assert "`features generate`" in daily


def test_a_missing_table_names_the_command_that_makes_it(spark, capsys) -> None:
    from features import cli

    assert cli.main(["sql", "select * from predictions.no_such_scores"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "features sql: failed: table predictions.no_such_scores does not exist in this lake "
        "yet: `features score --date D` (or `features daily`) makes it\n  full trace: ")
    assert err.count("\n") == 2
