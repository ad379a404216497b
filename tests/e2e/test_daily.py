"""The daily job end to end on a tiny generated lake: raw files to queryable predictions."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

pytestmark = pytest.mark.e2e

CUSTOMERS = 80
DAYS = 75


@pytest.fixture(scope="module")
def daily_lake(spark, lakehouse_root):
    from features import lakehouse
    from features.daily import DailyOptions, run_daily
    from features.generate import GeneratorConfig, generate

    # This module runs last (see conftest): it owns the lake from here on.
    for database in lakehouse.DATABASES:
        spark.sql(f"drop database if exists {database} cascade")
    shutil.rmtree(lakehouse_root / "landing", ignore_errors=True)
    # Only the churn model's own versions go: MLflow keeps its SQLite store open.
    shutil.rmtree(lakehouse_root / "artifacts" / "models" / "churn", ignore_errors=True)
    lakehouse.ensure_databases(spark)
    config = GeneratorConfig(customers=CUSTOMERS, days=DAYS, seed=11)
    summary = generate(spark, config)
    dates = [config.start + dt.timedelta(days=i) for i in range(DAYS)]
    backfill = run_daily(spark, dates[:-1], options=DailyOptions(retrain="always"))
    daily = run_daily(spark, dates[-1:])
    return spark, dates, summary, backfill, daily


def test_every_step_ran_and_was_recorded(daily_lake) -> None:
    spark, dates, _, backfill, daily = daily_lake
    assert list(backfill) == ["ingest", "dbt_build", "feast", "train", "score"]
    assert backfill["train"].startswith("v1")
    assert daily["train"] == "not due"
    runs = spark.sql(
        "select batch_date, step, status from ops.pipeline_runs where pipeline = 'daily'"
    ).collect()
    assert {(r.batch_date, r.step) for r in runs if r.status == "succeeded"} >= {
        (dates[-2], "score"), (dates[-1], "score"), (dates[-1], "dbt_build")}


def test_predictions_cover_every_active_customer_once(daily_lake) -> None:
    spark, dates, _, _, _ = daily_lake
    day = dates[-1]
    scores = spark.sql(
        f"select * from predictions.churn_scores where score_date = '{day}'").toPandas()
    active = spark.sql(
        f"select count(*) from staging.int_customer_days_spanned where feature_date = '{day}'"
    ).first()[0]
    assert len(scores) == active > 0
    assert scores.customer_id.is_unique
    assert scores.churn_probability.between(0, 1).all()
    assert set(scores.risk_decile) <= set(range(1, 11))
    assert (scores.model_name == "churn").all()


def test_rerun_of_a_finished_date_changes_nothing(daily_lake) -> None:
    from features.daily import run_daily

    spark, dates, _, _, _ = daily_lake
    before = spark.sql("describe history predictions.churn_scores").count()
    outcome = run_daily(spark, dates[-1:])
    assert set(outcome.values()) == {"skipped"}
    assert spark.sql("describe history predictions.churn_scores").count() == before


def test_rescoring_a_date_replaces_its_rows_only(daily_lake) -> None:
    from models_ml.churn import jobs

    spark, dates, _, _, _ = daily_lake
    counts = dict(spark.sql("select score_date, count(*) from predictions.churn_scores "
                            "group by score_date").collect())
    jobs.score_day(spark, dates[-1])
    again = dict(spark.sql("select score_date, count(*) from predictions.churn_scores "
                           "group by score_date").collect())
    assert again == counts


def test_model_is_judged_against_the_generator_ceiling(daily_lake) -> None:
    from models_ml.churn import persist

    _, _, summary, _, _ = daily_lake
    _, metadata = persist.load_model("churn")
    assert metadata["feature_service"] == "churn_v1"
    assert set(metadata["source_versions"]) == {
        "features.customer_usage_daily", "features.customer_billing", "features.customer_support"}
    # Tiny data: the bar is only that the model learned something real.
    assert metadata["metrics"]["areaUnderROC"] > 0.6
    assert summary.ceiling_auc is not None and summary.ceiling_auc > 0.6
