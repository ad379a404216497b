"""The same pipeline builder on the public IBM Telco churn benchmark (7,043 customers).

Telco has no time column, so the held-out set is a deterministic hash of customerID
(20 %), and CV folds are hashed too.  Published logistic regression: ROC AUC ~0.84.
"""

from __future__ import annotations

import json

import pytest

from models_ml import evaluate, model_store, registry
from models_ml.config import ModelConfig
from models_ml.report import write_report
from models_ml.training import train
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.ml

TELCO = SHARED_DATA / "Telco-Customer-Churn.csv"


@pytest.fixture(scope="module")
def telco(spark):
    if not TELCO.exists():
        pytest.skip(f"{TELCO} is not there")
    return spark.read.csv(str(TELCO), header=True, inferSchema=True).cache()


@pytest.fixture(scope="module")
def logistic(telco):
    # TotalCharges is read as string (11 blanks): forced numeric, blanks imputed.
    config = ModelConfig.from_schema(
        telco.schema,
        label_col="Churn",
        positive_label="Yes",
        id_cols=("customerID",),
        numeric_cols=("TotalCharges",),
        max_iter=20,
        tuning="cv",
        num_folds=3,
        param_grid=(("regParam", (0.001, 0.01)), ("elasticNetParam", (0.0, 0.5))),
    )
    return train(telco, config)


def test_logistic_reaches_published_auc_on_held_out_customers(logistic):
    m = logistic.metrics
    print(f"Telco logistic held-out: {m}")
    assert m["areaUnderROC"] >= 0.83
    assert m["areaUnderPR"] > m["positive_rate"]
    assert 0.0 < m["precision"] <= 1.0 and 0.0 < m["recall"] <= 1.0 and 0.0 < m["f1"] <= 1.0
    assert logistic.split_kind == "hash"
    assert len(logistic.grid_metrics) == 4
    assert 1300 < logistic.windows["holdout"]["rows"] < 1520


def test_lift_table_by_decile(logistic):
    lift = logistic.lift
    # Riskiest first, numbered as predictions.churn_scores' risk_decile: 10 = riskiest.
    assert [row["group"] for row in lift] == list(range(10, 0, -1))
    assert sum(row["n"] for row in lift) == logistic.metrics["n"]
    assert lift[0]["lift"] > 2.0 > lift[-1]["lift"]
    assert lift[-1]["cumulative_capture"] == pytest.approx(1.0)


def test_curves_are_aggregated(logistic):
    curve = logistic.curve
    assert 10 < len(curve) <= 101
    assert curve[0]["recall"] == 0.0 and curve[-1]["recall"] == pytest.approx(1.0)
    assert curve[-1]["fpr"] == pytest.approx(1.0)


def test_top_weights_name_telco_columns(logistic):
    names = [name for name, _ in logistic.weights[:10]]
    assert "tenure" in names
    assert any(name.startswith("Contract=") for name in names)


def test_save_load_scores_identically_with_metadata_and_report(
    spark, telco, logistic, lakehouse_root
):
    saved = model_store.save_model(
        logistic,
        name="telco_churn",
        feature_service="telco_benchmark",
        source_versions={"file:Telco-Customer-Churn.csv": 0},
    )
    assert saved.path.parent.parent == lakehouse_root / "artifacts" / "models"
    for png in ("roc.png", "pr.png", "lift.png", "weights.png"):
        assert (saved.path / "report" / png).stat().st_size > 1000
    assert "Lift by risk decile" in (saved.path / "report" / "report.md").read_text()
    loaded, metadata = model_store.load_model("telco_churn")
    on_disk = json.loads((saved.path / "metadata.json").read_text())
    assert metadata == on_disk
    assert metadata["feature_service"] == "telco_benchmark"
    assert "TotalCharges" in metadata["feature_names"]
    assert metadata["metrics"]["areaUnderROC"] == logistic.metrics["areaUnderROC"]
    assert metadata["params"] == logistic.best_params
    _assert_same_scores(logistic.model, loaded, telco)


def test_mlflow_registry_round_trip_by_alias(telco, logistic, lakehouse_root):
    registered = registry.log_to_mlflow(logistic, name="telco_churn")
    assert (lakehouse_root / "artifacts" / "mlflow.db").exists()
    assert (lakehouse_root / "artifacts" / "mlruns").is_dir()
    loaded = registry.load_registered("telco_churn", alias="champion")
    _assert_same_scores(logistic.model, loaded, telco)
    assert registered.version == "1"


def _assert_same_scores(model, other, frame) -> None:
    """Exactly equal probabilities and predictions on every row."""
    cols = ["customerID", "probability", "prediction"]
    ours = model.transform(frame).select(*cols)
    theirs = other.transform(frame).select(*cols)
    ours = ours.withColumn("p1", evaluate.vector_to_array("probability")[1]).drop("probability")
    theirs = theirs.withColumn("p1", evaluate.vector_to_array("probability")[1]).drop("probability")
    assert ours.exceptAll(theirs).isEmpty() and theirs.exceptAll(ours).isEmpty()


def test_gbt_family_on_the_same_builder(telco):
    config = ModelConfig.from_schema(
        telco.schema,
        label_col="Churn",
        positive_label="Yes",
        id_cols=("customerID",),
        numeric_cols=("TotalCharges",),
        family="gbt",
        tuning="tvs",
        standardize=False,
        param_grid=(("maxDepth", (3,)), ("maxIter", (8,))),
    )
    result = train(telco, config)
    print(f"Telco GBT held-out: {result.metrics}")
    assert result.metrics["areaUnderROC"] >= 0.80
    assert result.weights and result.weights[0][1] > 0


def test_regression_beats_naive_baseline(telco, tmp_path):
    # Monthly charge from the services bought, against the training mean as baseline.
    from pyspark.sql import functions as F

    frame = telco.drop("TotalCharges", "Churn")
    config = ModelConfig.from_schema(
        frame.schema,
        label_col="MonthlyCharges",
        id_cols=("customerID",),
        family="linear",
        tuning="tvs",
        max_iter=20,
        baseline_col="baseline",
        param_grid=(("regParam", (0.01,)), ("elasticNetParam", (0.0,))),
    )
    mean = frame.agg(F.avg("MonthlyCharges")).first()[0]
    result = train(frame.withColumn("baseline", F.lit(mean)), config)
    m = result.metrics
    print(f"Telco regression held-out: {m}")
    assert m["rmse"] < 0.5 * m["baseline_rmse"]
    assert m["r2"] > 0.9
    report = write_report(result, tmp_path, title="MonthlyCharges")
    assert (tmp_path / "weights.png").exists() and "rmse" in report.read_text()
