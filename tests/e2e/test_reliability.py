"""A daily job killed at random points (SIGKILL) and rerun ends where a clean run ends.

The clean run is the ``daily_lake`` fixture: the daily job in this process over a generated
lake.  The killed runs build the ``killed_lake`` from the same landing files in subprocesses
(see :mod:`tests.e2e.second_lake`; it runs on the cluster setup).  Every Delta table the
daily job made in the clean lake must exist in the killed one with the same rows and
content (the generator's own tables are the clean lake's alone), every step must have
succeeded once for both dates, and the model must have been saved once per training, not
once per attempt.
"""

from __future__ import annotations

import signal

import pytest

from features.daily import STEPS
from tests.e2e import lakes
from tests.e2e.second_lake import KILL_SEED

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.second_lake]


def test_killed_runs_were_really_killed(killed_lake) -> None:
    _, attempts, log = killed_lake
    killed = [a for a in attempts if a[2] == -signal.SIGKILL]
    # A kill drawn after its run ended hits nothing; most must land, or this tests little.
    assert len(killed) >= 2, f"kills {attempts} (seed {KILL_SEED}); see {log}"


def test_killed_and_rerun_lake_equals_the_clean_lake(
    daily_lake, lakehouse_root, killed_lake
) -> None:
    spark, versions = daily_lake.spark, daily_lake.versions
    root, attempts, log = killed_lake
    context = f"kills {attempts} (seed {KILL_SEED}); see {log}"
    compared = sorted(set(versions) - lakes.LOG_TABLES - lakes.GENERATOR_TABLES)
    assert lakes.delta_folders(root) >= set(compared), context
    differ = {}
    for name in compared:
        clean = lakes.fingerprint(
            lakes.read_version(spark, name, versions[name]), root=lakehouse_root
        )
        rerun = lakes.fingerprint(lakes.read_folder(spark, root, name), root=root)
        if clean != rerun:
            differ[name] = (clean, rerun)
    assert not differ, f"tables differ (rows, hash) clean vs killed: {differ}; {context}"
    assert len(compared) >= 20  # bronze, quarantine, features, ml, predictions, ops


def test_every_step_succeeded_once_per_date(daily_lake, killed_lake) -> None:
    spark, dates = daily_lake.spark, daily_lake.dates
    root, attempts, log = killed_lake
    runs = lakes.read_folder(spark, root, "ops.pipeline_runs").where(
        "pipeline = 'daily' and status = 'succeeded'"
    )
    done = {(r.batch_date, r.step) for r in runs.select("batch_date", "step").collect()}
    assert done == {(day, step) for day in (dates[-2], dates[-1]) for step in STEPS}, (
        f"kills {attempts}; see {log}"
    )
    # A step recorded twice as succeeded means a rerun did a finished step again.
    assert runs.count() == len(done)


def test_each_training_saved_one_model_version(daily_lake, lakehouse_root, killed_lake) -> None:
    from models_ml import churn, model_store

    root, attempts, log = killed_lake
    clean = model_store.saved_versions(churn.MODEL_NAME, root=lakehouse_root)
    rerun = model_store.saved_versions(churn.MODEL_NAME, root=root)
    assert rerun == clean, (
        f"saved versions clean {clean} vs killed {rerun}; kills {attempts}; see {log}"
    )
    for version in rerun:
        ours = model_store.read_metadata(churn.MODEL_NAME, version, root=root)
        theirs = model_store.read_metadata(churn.MODEL_NAME, version, root=lakehouse_root)
        assert ours["batch_date"] == theirs["batch_date"]
        assert ours["metrics"]["areaUnderROC"] == pytest.approx(
            theirs["metrics"]["areaUnderROC"], abs=1e-9
        )


def test_the_console_shows_steps_not_java(killed_lake) -> None:
    """Every line the ``features`` commands printed (stdout and stderr) is for a person:
    step lines and the closing summary; no JVM or library noise."""
    import re

    _, attempts, log = killed_lake
    allowed = re.compile(
        r"^(\$ features .*|exit -?\d+ after [\d.]+s"  # the test's own markers around each command
        r"|\[daily \d{4}-\d\d-\d\d\] \w+ \.\.\."  # a step starts
        r"|\[daily \d{4}-\d\d-\d\d\] \w+: .*"  # a step ends (what it did, seconds)
        r"|daily \d{4}-\d\d-\d\d: .*"  # the command's summary
        r"|lakehouse: removed .*)$"
    )  # an orphan folder of a killed create, cleaned up
    lines = log.read_text().splitlines()
    noisy = [line for line in lines if not allowed.match(line)]
    assert not noisy, f"{len(noisy)} lines for no one, e.g. {noisy[:5]}; see {log}"
    step_lines = [line for line in lines if re.match(r"^\[daily .*\((\d+)s\)$", line)]
    assert len(step_lines) >= len(attempts)  # and each closing step line says how long
