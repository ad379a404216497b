"""The pipeline builder, the time split and tuning on a small timestamped frame."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyspark.sql.functions as F
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import Imputer, OneHotEncoder, StringIndexer, VectorAssembler
from pyspark.ml.regression import LinearRegression

from models_ml import evaluate
from models_ml.config import ConfigError, ModelConfig
from models_ml.pipeline import build_pipeline
from models_ml.split import prepare, split_holdout
from models_ml.training import train, without_empty_features
from models_ml.tuning import TimeSeriesCrossValidator

pytestmark = pytest.mark.ml

SCHEMA = (
    "customer_id string, snapshot_at timestamp, tenure_days int, spend double, "
    "plan string, is_churned boolean"
)
SNAPSHOTS = [datetime(2026, 1, 1) + timedelta(days=30 * i) for i in range(6)]


def _rows() -> list[tuple]:
    """Six monthly snapshots of 60 customers; churn follows low tenure and plan 'basic'."""
    rnd = random.Random(7)
    rows = []
    for snapshot in SNAPSHOTS:
        for i in range(60):
            tenure = rnd.randint(1, 900)
            plan = rnd.choice(["basic", "plus", "max", None])
            spend = None if rnd.random() < 0.1 else round(rnd.uniform(10, 90), 2)
            risk = (tenure < 300) + (plan == "basic") + rnd.random()
            rows.append((f"c{i:03d}", snapshot, tenure, spend, plan, risk > 1.4))
    return rows


@pytest.fixture(scope="module")
def frame(spark):
    return spark.createDataFrame(_rows(), SCHEMA)


@pytest.fixture(scope="module")
def config(frame) -> ModelConfig:
    return ModelConfig.from_schema(
        frame.schema,
        label_col="is_churned",
        id_cols=("customer_id",),
        timestamp_col="snapshot_at",
        max_iter=10,
        param_grid=(("regParam", (0.01,)), ("elasticNetParam", (0.0, 0.5))),
        tuning="tvs",
        holdout_fraction=0.3,
    )


@pytest.fixture(scope="module")
def result(frame, config):
    return train(frame, config)


def test_config_infers_features_from_schema(config):
    assert config.numeric_cols == ("tenure_days", "spend")
    assert config.categorical_cols == ("plan",)
    assert config.is_classifier


def test_config_rejects_feature_that_is_also_label():
    with pytest.raises(ConfigError, match="used twice"):
        ModelConfig(label_col="y", id_cols=("id",), numeric_cols=("y",))


def test_build_pipeline_is_unfitted_with_the_stages_of_each_family(config):
    pipeline = build_pipeline(config)
    assert isinstance(pipeline, Pipeline)
    kinds = [type(s) for s in pipeline.getStages()]
    assert Imputer in kinds and StringIndexer in kinds and OneHotEncoder in kinds
    assert VectorAssembler in kinds
    indexer = next(s for s in pipeline.getStages() if isinstance(s, StringIndexer))
    assert indexer.getHandleInvalid() == "keep"
    assert isinstance(pipeline.getStages()[-1], LogisticRegression)
    assert isinstance(build_pipeline(config.replace(family="gbt")).getStages()[-1], GBTClassifier)
    linear = config.replace(family="linear", label_col="spend", numeric_cols=("tenure_days",))
    assert isinstance(build_pipeline(linear).getStages()[-1], LinearRegression)
    # The linear families stop at the config's tolerance (1e-4), not MLlib's 1e-6.
    assert pipeline.getStages()[-1].getTol() == config.tol == 1e-4
    assert build_pipeline(linear.replace(tol=1e-3)).getStages()[-1].getTol() == 1e-3


def test_config_rejects_a_tolerance_outside_zero_one(config):
    for tol in (0.0, -1e-4, 1.0):
        with pytest.raises(ConfigError, match="tol must lie strictly between 0 and 1"):
            config.replace(tol=tol)


def test_time_split_holds_out_only_later_rows(frame, config):
    split = split_holdout(prepare(frame, config), config)
    last_train = split.train.agg(F.max("snapshot_at")).first()[0]
    first_held = split.holdout.agg(F.min("snapshot_at")).first()[0]
    assert last_train < first_held
    assert split.train.count() + split.holdout.count() == frame.count()
    assert split.kind == "time" and split.cutoff is not None


def test_time_split_at_a_given_start(frame, config):
    split = split_holdout(prepare(frame, config), config.replace(holdout_start=SNAPSHOTS[4]))
    assert split.train.agg(F.max("snapshot_at")).first()[0] == SNAPSHOTS[3]
    assert split.holdout.agg(F.min("snapshot_at")).first()[0] == SNAPSHOTS[4]


def test_few_snapshot_instants_still_split_and_fold(frame, config):
    # Three weekly snapshots: the 0.8 quantile is the last instant itself; the holdout
    # must still get it, and one forward fold must fit on one and validate on the other.
    three = prepare(frame.where(F.col("snapshot_at") < SNAPSHOTS[3]), config)
    split = split_holdout(three, config.replace(holdout_fraction=0.2))
    assert split.holdout.select("snapshot_at").distinct().collect()[0][0] == SNAPSHOTS[2]
    assert split.holdout.select("snapshot_at").distinct().count() == 1
    tuner = TimeSeriesCrossValidator(numFolds=1, timeCol="snapshot_at", firstTrainFraction=0.75)
    ((fit_rows, validation),) = tuner._kFold(split.train)
    assert [r[0] for r in fit_rows.select("snapshot_at").distinct().collect()] == [SNAPSHOTS[0]]
    assert [r[0] for r in validation.select("snapshot_at").distinct().collect()] == [SNAPSHOTS[1]]


def test_all_null_features_are_left_out(frame, config):
    with_empty = frame.withColumn("never_known", F.lit(None).cast("double"))
    wider = config.replace(numeric_cols=(*config.numeric_cols, "never_known"))
    assert without_empty_features(with_empty, wider).numeric_cols == config.numeric_cols
    assert without_empty_features(frame, config) == config


def test_train_judges_on_later_snapshots(result):
    assert result.split_kind == "time"
    assert result.windows["train"]["end"] < result.windows["holdout"]["start"]
    assert len(result.grid_metrics) == 2
    assert 0.5 < result.metrics["areaUnderROC"] <= 1.0
    assert 0.0 < result.threshold < 1.0
    assert {"tenure_days", "spend"} <= {name for name, _ in result.weights}


def test_scoring_needs_no_label_and_handles_unseen_categories(spark, result):
    rows = [("z1", SNAPSHOTS[0], 10, None, "unheard-of", None)]
    scored = result.score(spark.createDataFrame(rows, SCHEMA).drop("is_churned"))
    row = scored.select(evaluate.SCORE, evaluate.PREDICTED).first()
    assert 0.0 <= row[evaluate.SCORE] <= 1.0
    assert row[evaluate.PREDICTED] in (0.0, 1.0)


def test_cv_over_time_blocks(frame, config):
    cv = config.replace(
        tuning="cv", num_folds=2, param_grid=(("regParam", (0.01,)),), threshold=0.5
    )
    result = train(frame, cv)
    assert len(result.grid_metrics) == 1
    assert result.threshold == 0.5
    assert result.metrics["areaUnderROC"] > 0.5
