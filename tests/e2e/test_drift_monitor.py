"""The drift monitor on a generated lake: quiet on days without change, quick on a real one.

This lake is not the shared daily lake (80 customers x 75 days): the monitor must be judged
on scoring days whose 90-day windows are whole (a lake of at least 90 days before the first
of them), on enough of them to measure a 95% rate (20), and on a change the generator injects
after them.  One lake serves both questions: the generator draws every record from hashes of
(seed, entity, day), so the days before the change are the very records of the same seed
without it (``test_the_days_before_the_change_are_the_lake_without_it`` checks the usage
records the generator draws, both ways).  The monitored days are read back after the whole
lake is ingested, as a backfill would; the lake runs a few days past the last of them so that
every late record of a monitored day has landed, as it had for the baseline's day.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyspark.sql.functions as F
import pytest

from tests.conftest import empty_shared_lake

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.spark,
    pytest.mark.ml,
    pytest.mark.dbt,
    pytest.mark.feast,
]

CUSTOMERS = 200
SEED = 5
TRAIN_DAY = 91  # the model is trained for this day: its windows are whole
QUIET_DAYS = 20  # monitored days without change: 92 .. 111
CHANGE_DAY = 112  # data usage falls to a fifth from here
CHANGE_DAYS = 4  # monitored days with the change: 112 .. 115
MARGIN_DAYS = 5  # every late record of a monitored day lands by then
DAYS = CHANGE_DAY + CHANGE_DAYS + MARGIN_DAYS
SCORED_EARLY = 85  # scored too, so that labels of 30 days after exist on day 120


@pytest.fixture(scope="session")
def drift_lake(spark, lakehouse_root):
    """The drift lake, trained on its day 91 and monitored on days 92 .. 115.

    Returns ``(spark, config, checks, reasons)``: the monitor's result per day, and the daily
    job's retraining decision for the day after each monitored day.
    """
    import shutil

    from features import feast_repo, runlog
    from features.daily import PIPELINE, DailyOptions, _retrain_reason, run_dbt_build
    from features.generate import Change, GeneratorConfig, generate
    from features.ingest import ingest_batches
    from models_ml import churn, monitoring

    # Runs last (tests/conftest.py): the shared lake's tests are done with it.
    empty_shared_lake(spark, lakehouse_root)
    shutil.rmtree(lakehouse_root / "artifacts" / "models" / "churn", ignore_errors=True)
    config = GeneratorConfig(
        customers=CUSTOMERS,
        days=DAYS,
        seed=SEED,
        changes=(Change(kind="data_drop", day=CHANGE_DAY, target="all", factor=0.2),),
    )
    generate(spark, config)
    ingest_batches(spark, config.dates)
    run_dbt_build()
    feast_repo.apply()
    runlog.ensure_table(spark)
    train_day = config.date_of(TRAIN_DAY)
    # What the daily job of that day trains on: snapshots whose labels it knows by then.
    with runlog.record_step(
        spark, pipeline=PIPELINE, step="train", batch_date=train_day, run_id=runlog.new_run_id()
    ) as record:
        run = churn.train_churn_model(
            spark, end=train_day - dt.timedelta(days=30), batch_date=train_day, tuning="tvs"
        )
        record.finish(status="succeeded", message=f"v{run.saved.version} (retrain=always)")
    # Scored: the model's own day (for the scores' drift) and two days whose 30-day labels
    # are known by the lake's last day (for the realized performance).
    for index in (SCORED_EARLY, SCORED_EARLY + 1, TRAIN_DAY + 1):
        churn.score_day(spark, config.date_of(index))
    # The monitored days in one go, as a backfill monitors them (one retrieval, one commit).
    monitored = range(TRAIN_DAY + 1, CHANGE_DAY + CHANGE_DAYS)
    by_date = monitoring.monitor_days(spark, [config.date_of(index) for index in monitored])
    checks = {index: by_date[config.date_of(index)] for index in monitored}
    options = DailyOptions(retrain_every_days=10_000)  # only drift may make it due
    reasons = {
        index: _retrain_reason(spark, config.date_of(index + 1), options) for index in monitored
    }
    return spark, config, checks, reasons


def test_no_change_no_flags_and_no_retraining(drift_lake) -> None:
    spark, config, checks, reasons = drift_lake
    quiet = range(TRAIN_DAY + 1, CHANGE_DAY)
    assert len(quiet) == QUIET_DAYS
    flagged = {index: checks[index].drifted for index in quiet if checks[index].drifted}
    # At least 95% of the days without change flag no feature at all.
    assert len(flagged) <= QUIET_DAYS * 0.05, flagged
    # The daily job retrains for drift only after a flagged day.
    assert {index for index in quiet if reasons[index] is not None} == set(flagged)
    rows = (
        spark.table("ops.feature_drift")
        .where(
            (F.col("score_date") == F.lit(config.date_of(TRAIN_DAY + 1)))
            & (F.col("kind") != "prediction")
        )
        .collect()
    )
    assert len(rows) == checks[TRAIN_DAY + 1].rows > 30
    assert all(0 <= r.p_value <= 1 and r.psi >= 0 for r in rows)
    # One day on its own, as the daily job monitors it, gives what the backfill gave.
    from features import drift, feast_repo
    from models_ml import churn, model_store

    baseline = model_store.read_metadata("churn", checks[TRAIN_DAY + 1].model_version)[
        "drift_baseline"
    ]
    alone = drift.psi(
        baseline,
        churn.day_features(spark, feast_repo.feature_store(), config.date_of(TRAIN_DAY + 1)),
    )
    stored = {r.feature: r for r in rows}
    for row in alone:
        assert row.psi == pytest.approx(stored[row.feature].psi, abs=1e-12)
        assert row.p_value == pytest.approx(stored[row.feature].p_value, abs=1e-12)
        assert row.drifted == stored[row.feature].drifted


def test_an_injected_change_is_flagged_within_three_days_and_only_where_it_moves(
    drift_lake,
) -> None:
    spark, config, checks, reasons = drift_lake
    change = config.changes[0]
    first_three = range(CHANGE_DAY, CHANGE_DAY + 3)
    assert any("data_mb_7d" in checks[index].drifted for index in first_three), {
        index: checks[index].drifted for index in first_three
    }
    flagged = {
        name
        for index in range(CHANGE_DAY, CHANGE_DAY + CHANGE_DAYS)
        for name in checks[index].drifted
    }
    assert flagged <= set(change.moves), flagged - set(change.moves)
    first = min(index for index in first_three if checks[index].drifted)
    assert reasons[first] is not None and "data_mb_7d" in reasons[first]


def test_the_change_is_in_the_truth_table(drift_lake) -> None:
    spark, config, *_ = drift_lake
    truth = spark.table("ops.generator_truth")
    (recorded,) = {row.changes for row in truth.select("changes").distinct().collect()}
    assert json.loads(recorded) == [
        {
            "kind": "data_drop",
            "day": CHANGE_DAY,
            "target": "all",
            "factor": 0.2,
            "date": config.date_of(CHANGE_DAY).isoformat(),
            "moves": ["data_mb_7d", "data_mb_30d", "data_mb_90d"],
        }
    ]
    # Every customer carries the day the change reached them: its day, or their activation.
    wrong = truth.where(
        ~F.col("changed_from").eqNullSafe(F.greatest(F.lit(CHANGE_DAY), F.col("active_day")))
    )
    assert truth.count() == CUSTOMERS and wrong.count() == 0


def test_the_days_before_the_change_are_the_lake_without_it(drift_lake) -> None:
    """The generator with and without a change writes the same usage records up to the day
    before it; from it on, a region's change alters only that region's data sessions."""
    import dataclasses

    from features.generate import Change, activity, customers

    spark, config, *_ = drift_lake
    plain = dataclasses.replace(config, changes=())
    north = dataclasses.replace(
        config, changes=(Change(kind="data_drop", day=CHANGE_DAY, target="north", factor=0.2),)
    )
    state = customers.customer_state(spark, plain).select("customer_id", "region")

    def usage(cfg, days):
        grid = activity.customer_days(spark, cfg, customers.customer_state(spark, cfg))
        return activity.usage_events(cfg, grid.where(F.col("day").isin(*days))).select(
            "customer_id", "event_id", "event_type", "bytes", "duration_s"
        )

    before = [CHANGE_DAY - 2, CHANGE_DAY - 1]
    for changed in (config, north):
        assert usage(changed, before).exceptAll(usage(plain, before)).count() == 0
        assert usage(plain, before).exceptAll(usage(changed, before)).count() == 0
    after = [CHANGE_DAY, CHANGE_DAY + 1]
    moved = usage(north, after).exceptAll(usage(plain, after)).join(state, "customer_id")
    found = {
        (row.region, row.event_type)
        for row in moved.select("region", "event_type").distinct().collect()
    }
    assert found == {("north", "data")}


def test_scores_are_compared_with_the_baseline_day(drift_lake) -> None:
    from features import drift
    from models_ml import monitoring

    spark, config, checks, _ = drift_lake
    first = checks[TRAIN_DAY + 1]
    assert first.scores is not None and first.scores.kind == monitoring.PREDICTION
    assert (
        first.scores.rows
        == spark.table("predictions.churn_scores")
        .where(F.col("score_date") == F.lit(config.date_of(TRAIN_DAY + 1)))
        .count()
    )
    assert not first.scores.drifted, first.scores
    # Days nobody scored have no score row; feature rows are there all the same.
    assert checks[TRAIN_DAY + 2].scores is None
    kinds = {
        row.kind
        for row in spark.table(drift.DRIFT_TABLE)
        .where(F.col("score_date") == F.lit(config.date_of(TRAIN_DAY + 1)))
        .collect()
    }
    assert kinds == {"numeric", "categorical", monitoring.PREDICTION}


def test_realized_performance_of_matured_score_dates(drift_lake) -> None:
    """Scores of days 85 and 86 meet the churn that followed them, as known on day 120."""
    from sklearn.metrics import roc_auc_score

    from models_ml import monitoring

    spark, config, checks, _ = drift_lake
    # Day 85's labels were known on day 115, a monitored day, which recorded them.
    assert [row["score_date"] for row in checks[SCORED_EARLY + 30].performance] == [
        config.date_of(SCORED_EARLY)
    ]
    last = config.date_of(DAYS - 1)
    assert [row["score_date"] for row in monitoring.record_performance(spark, last)] == [
        config.date_of(SCORED_EARLY + 1)
    ]
    written = [
        row.asDict()
        for row in spark.table(monitoring.PERFORMANCE_TABLE).orderBy("score_date").collect()
    ]
    dates = [config.date_of(SCORED_EARLY), config.date_of(SCORED_EARLY + 1)]
    assert [row["score_date"] for row in written] == dates
    churn = (
        spark.table("staging.stg_bronze__churn_events")
        .groupBy("customer_id")
        .agg(F.min("churn_date").alias("churn_date"))
        .toPandas()
    )
    for row in written:
        scored = (
            spark.table("predictions.churn_scores")
            .where(F.col("score_date") == F.lit(row["score_date"]))
            .toPandas()
        )
        merged = scored.merge(churn, on="customer_id", how="left")
        label = np.array(
            [
                int(isinstance(churned, dt.date) and 1 <= (churned - scored_on).days <= 30)
                for churned, scored_on in zip(merged.churn_date, merged.score_date, strict=True)
            ]
        )
        assert row["rows"] == len(scored) and row["positives"] == label.sum() > 0
        assert row["auc"] == pytest.approx(roc_auc_score(label, merged.churn_probability), abs=1e-9)
        assert row["auc_ci_low"] < row["auc"] < row["auc_ci_high"]
        assert row["brier"] == pytest.approx(
            ((merged.churn_probability - label) ** 2).mean(), rel=1e-9
        )
        assert row["labels_known_on"] == row["score_date"] + dt.timedelta(days=30)
    # Idempotent: nothing new has matured, so nothing is written; one row per date stays.
    assert monitoring.record_performance(spark, last) == []
    table = spark.table(monitoring.PERFORMANCE_TABLE)
    assert table.count() == table.select("score_date").distinct().count() == 2
    # Score dates whose labels are not all known yet are not judged.
    assert monitoring.matured_dates(spark, config.date_of(TRAIN_DAY + 30)) == []


def test_the_report_renders_in_headless_chromium(drift_lake, tmp_path) -> None:
    """The last monitored day's HTML report, opened by Debian's chromium: its DOM holds the
    three plots and the table, and the screenshot shows them (not a blank page)."""
    import shutil
    import subprocess

    from matplotlib.image import imread

    spark, config, checks, _ = drift_lake
    report = checks[CHANGE_DAY + CHANGE_DAYS - 1].report
    assert report is not None and report.name == f"report_{config.date_of(115)}.html"
    assert (report.parent / "report.html").read_bytes() == report.read_bytes()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed: make system-packages installs it"
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for marker in ('id="feature-drift"', 'id="score-drift"', 'id="performance"', 'id="latest"'):
        assert marker in dom, marker
    assert dom.count("data:image/png;base64,") == 3
    # The day's table marks exactly what the monitor flagged that day.
    import re

    marked = set(re.findall(r'<tr class="flagged"><td>([^<]+)</td>', dom))
    assert marked == set(checks[CHANGE_DAY + CHANGE_DAYS - 1].drifted)
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1200)
    not_white = (pixels < 0.95).any(axis=-1).mean()
    assert not_white > 0.05, not_white  # plots and text, not an empty page


def test_the_monitor_command_prints_a_line_per_day(drift_lake, capsys) -> None:
    """``features monitor --from --to`` in this process (its session is the tests')."""
    from features import cli

    spark, config, checks, _ = drift_lake
    first, last = config.date_of(CHANGE_DAY - 1), config.date_of(CHANGE_DAY + 2)
    assert cli.main(["monitor", "--from", str(first), "--to", str(last)]) == 0
    lines = capsys.readouterr().out.splitlines()
    days = [line.split(":")[0].strip() for line in lines if line.startswith("  2026-")]
    assert days == [str(config.date_of(index)) for index in range(CHANGE_DAY - 1, CHANGE_DAY + 3)]
    changed = next(line for line in lines if line.startswith(f"  {config.date_of(CHANGE_DAY + 2)}"))
    assert ("data_mb_7d" in changed) == ("data_mb_7d" in checks[CHANGE_DAY + 2].drifted)
    assert lines[-1] == f"report: {checks[CHANGE_DAY + 3].report.parent}/report_{last}.html"


def test_a_new_model_must_beat_the_champion_to_replace_it(drift_lake) -> None:
    """Last in this file: it trains two more models and moves the champion."""
    from models_ml import churn, registry

    spark, config, *_ = drift_lake
    champion = registry.champion_version("churn")
    assert champion is not None and churn.serving_version() == champion
    train_day = config.date_of(TRAIN_DAY)
    window = {"end": train_day - dt.timedelta(days=30), "batch_date": train_day}
    # A model that cannot rank: an L1 penalty that zeroes every weight.
    blind = {"param_grid": (("regParam", (10.0,)), ("elasticNetParam", (1.0,))), "tuning": "tvs"}
    run = churn.train_churn_model(spark, **window, **blind)
    promotion = run.saved.metadata["promotion"]
    assert not promotion["promoted"] and promotion["champion_version"] == champion
    assert promotion["rows"] > promotion["positives"] > 0
    assert promotion["auc"] < promotion["champion_auc"] + churn.PROMOTION_MARGIN
    assert promotion["reason"].startswith(f"does not beat v{champion}")
    assert registry.champion_version("churn") == champion == churn.serving_version()
    assert registry.champion_version("churn", alias="challenger") == run.saved.version
    # Scoring and monitoring keep using the champion.
    day = config.date_of(TRAIN_DAY + 1)
    churn.score_day(spark, day)
    versions = {
        row.model_version
        for row in spark.table("predictions.churn_scores")
        .where(F.col("score_date") == F.lit(day))
        .select("model_version")
        .collect()
    }
    assert versions == {str(champion)}
    # Told to, it replaces the champion whatever it scores.
    forced = churn.train_churn_model(spark, **window, promote=True, **blind)
    assert forced.saved.metadata["promotion"] == {
        "promoted": True,
        "champion_version": champion,
        "rows": None,
        "positives": None,
        "auc": None,
        "champion_auc": None,
        "reason": "promoted as asked",
    }
    assert registry.champion_version("churn") == forced.saved.version == churn.serving_version()
