"""The next-invoice regression on the daily job's lake: Feast features, a last-invoice
baseline judged on the same held-out rows, and a saved model that scores the same."""

from __future__ import annotations

import math

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.ml]

FEATURE_TABLES = {
    "features.customer_usage_daily",
    "features.customer_billing",
    "features.customer_support",
}
# Tiny tuning: two grid points and few iterations.  The lake has three weekly label
# snapshots: the latest is held out, and the two left make one expanding window (fit on
# the first, validate on the second): cross-validation asked for falls back to that
# forward split (two folds would need three snapshots besides the held-out one).
TINY = {
    "param_grid": (("regParam", (0.0, 0.1)), ("elasticNetParam", (0.0,))),
    "num_folds": 2,
    "max_iter": 20,
    "parallelism": 1,
}


@pytest.fixture(scope="module")
def invoice_run(daily_lake):
    """One training of the linear next-invoice model, saved and registered."""
    from models_ml import next_invoice

    spark = daily_lake.spark
    lines: list[str] = []
    run = next_invoice.train_next_invoice_model(
        spark, family="linear", tuning="cv", log=lines.append, **TINY
    )
    return spark, run, lines


def _direct_metrics(frame, prediction: str) -> dict[str, float]:
    """RMSE and R² of a column against ``label``, over the rows where it is not null."""
    import pyspark.sql.functions as F

    rows = frame.where(F.col(prediction).isNotNull() & F.col("label").isNotNull())
    mean = rows.agg(F.avg("label")).first()[0]
    row = rows.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum((F.col("label") - F.col(prediction)) ** 2).alias("sse"),
        F.sum((F.col("label") - F.lit(mean)) ** 2).alias("sst"),
    ).first()
    return {
        "n": row["n"],
        "rmse": math.sqrt(row["sse"] / row["n"]),
        "r2": 1.0 - row["sse"] / row["sst"],
    }


def test_trains_on_the_churn_service_through_feast(invoice_run):
    from features import feast_repo
    from models_ml.lake import service_features
    from models_ml.next_invoice import BASELINE_COL

    _, run, lines = invoice_run
    meta = run.saved.metadata
    numeric, categorical, text = service_features(feast_repo.feature_store())
    assert meta["feature_service"] == "churn_v1"
    assert meta["task"] == "regression" and meta["family"] == "linear"
    assert meta["config"]["tuning"] == "tvs"
    assert any("too few to cross-validate by time" in line for line in lines)
    assert len(meta["tuning"]["grid"]) == 2
    left_out = meta["features_left_out"]
    assert set(left_out) <= {"monthly_charge_change_90d"}  # a 75-day lake has no 90-day change
    assert meta["feature_names"] == [c for c in numeric if c not in left_out] + categorical
    assert text == ["recent_chat_text"]  # served, read only with text_features=True
    assert "last_invoice_amount" in meta["feature_names"]
    assert BASELINE_COL not in meta["feature_names"]
    assert set(meta["source_versions"]) == FEATURE_TABLES
    assert all(isinstance(v, int) for v in meta["source_versions"].values())
    assert meta["filter_by_created_timestamp"] is True
    assert meta["training_window"]["rows"] > 0
    # Held out by time: every held-out snapshot is later than every training one.
    assert meta["holdout_window"]["start"] > meta["training_window"]["end"]
    assert any("churn_v1" in line for line in lines)


def test_model_and_baseline_are_judged_on_the_held_out_rows(invoice_run):
    import pyspark.sql.functions as F

    from models_ml.next_invoice import BASELINE_COL

    _, run, _ = invoice_run
    metrics = run.result.metrics
    for name in (
        "rmse",
        "mae",
        "r2",
        "baseline_rmse",
        "baseline_mae",
        "baseline_r2",
        "model_rmse_on_baseline_rows",
        "model_r2_on_baseline_rows",
    ):
        assert math.isfinite(metrics[name]), (name, metrics)
    holdout = run.holdout.cache()
    assert metrics["n"] == holdout.count() == run.saved.metadata["holdout_window"]["rows"]
    # The baseline is the last invoice known at the snapshot, scored on those same rows.
    baseline = _direct_metrics(holdout, BASELINE_COL)
    assert 0 < baseline["n"] == metrics["baseline_n"] <= metrics["n"]
    assert metrics["baseline_rmse"] == pytest.approx(baseline["rmse"], rel=1e-9)
    assert metrics["baseline_r2"] == pytest.approx(baseline["r2"], rel=1e-9, abs=1e-12)
    model = _direct_metrics(run.result.score(holdout), "prediction")
    assert model["n"] == metrics["n"]
    assert metrics["rmse"] == pytest.approx(model["rmse"], rel=1e-9)
    assert metrics["r2"] == pytest.approx(model["r2"], rel=1e-9, abs=1e-12)
    # Like for like: the model on exactly the rows the baseline is judged on.
    covered = run.result.score(holdout.where(F.col(BASELINE_COL).isNotNull()))
    on_baseline_rows = _direct_metrics(covered, "prediction")
    assert on_baseline_rows["n"] == baseline["n"]
    assert metrics["model_rmse_on_baseline_rows"] == pytest.approx(
        on_baseline_rows["rmse"], rel=1e-9
    )
    holdout.unpersist()


def test_saved_model_scores_like_the_trained_one(invoice_run):
    import pyspark.sql.functions as F
    from pyspark.testing import assertDataFrameEqual

    from models_ml import model_store

    _, run, _ = invoice_run
    model, meta = model_store.load_model("next_invoice", version=run.saved.version)
    assert meta["metrics"] == pytest.approx(run.saved.metadata["metrics"])
    keys = ["customer_id", "event_timestamp"]
    holdout = run.holdout.cache()
    trained = run.result.model.transform(holdout).select(*keys, F.col("prediction"))
    loaded = model.transform(holdout).select(*keys, F.col("prediction"))
    assertDataFrameEqual(loaded, trained, rtol=0.0, atol=0.0)
    holdout.unpersist()
    report = run.report_path.read_text()
    assert run.report_path.parent == run.saved.path / "report"
    assert "baseline_rmse" in report and "baseline_r2" in report


def test_registered_in_mlflow_as_champion(invoice_run):
    from mlflow import MlflowClient

    from models_ml import registry

    _, run, _ = invoice_run
    assert run.registered is not None
    client = MlflowClient(tracking_uri=registry.configure_mlflow())
    champion = client.get_model_version_by_alias("next_invoice", "champion")
    assert str(champion.version) == str(run.registered.version)
    logged = client.get_run(run.registered.run_id).data.metrics
    assert logged["baseline_rmse"] == pytest.approx(run.result.metrics["baseline_rmse"])


def test_gbt_regressor_family_trains_too(daily_lake):
    from models_ml import next_invoice

    spark = daily_lake.spark
    run = next_invoice.train_next_invoice_model(
        spark,
        family="gbt_regressor",
        tuning="tvs",
        register=False,
        log=lambda _: None,
        **{**TINY, "param_grid": (("maxDepth", (2,)), ("maxIter", (5, 10)))},
    )
    assert run.saved.metadata["family"] == "gbt_regressor"
    assert run.saved.metadata["config"]["tuning"] == "tvs"
    assert run.registered is None
    assert math.isfinite(run.result.metrics["rmse"])
    assert math.isfinite(run.result.metrics["baseline_rmse"])
    assert run.result.best_params["maxDepth"] == 2
