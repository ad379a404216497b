"""The ML library on a labelled frame from outside the lake: the BigML churn dataset.

Its columns have spaces in their names (``Account length``), it has no id column, and it
comes as a training file and a test file: the caller gives the split.  All of it in the
project's own session, which reads backquoted names as regular expressions (for Feast).
"""

from __future__ import annotations

import pytest

import models_ml
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.ml

TRAIN = SHARED_DATA / "churn-bigml-80.csv"
TEST = SHARED_DATA / "churn-bigml-20.csv"


@pytest.fixture(scope="module")
def frames(spark):
    if not (TRAIN.exists() and TEST.exists()):
        pytest.skip(f"{TRAIN} or {TEST} is not there")
    assert spark.conf.get("spark.sql.parser.quotedRegexColumnNames") == "true"
    read = spark.read.option("header", True).option("inferSchema", True)
    return read.csv(str(TRAIN)).cache(), read.csv(str(TEST)).cache()


def test_names_with_spaces_no_ids_and_a_given_split(frames):
    train_rows, test_rows = frames
    assert "Account length" in train_rows.columns
    config = models_ml.ModelConfig.from_schema(
        train_rows.schema,
        label_col="Churn",
        family="logistic",
        tuning="tvs",
        param_grid=(("regParam", (0.001, 0.01)),),
    )
    assert config.id_cols == () and "Total day minutes" in config.numeric_cols
    split = models_ml.Split(
        train=models_ml.prepare(train_rows, config),
        holdout=models_ml.prepare(test_rows, config),
        kind="hash",
    )
    result = models_ml.train(train_rows, config, split=split)
    assert result.windows["holdout"]["rows"] == test_rows.count()
    # Logistic regression on this dataset: about 0.82-0.85 ROC AUC on the test file.
    assert result.metrics["areaUnderROC"] > 0.78
    assert {"Customer service calls", "International plan"} <= {
        name.split("=", 1)[0] for name, _ in result.weights
    }
    scored = result.score(test_rows.drop("Churn"))
    assert scored.where("score is null").count() == 0


def test_a_hash_split_without_ids_keys_on_the_rows_own_values(frames):
    train_rows, _ = frames
    config = models_ml.ModelConfig.from_schema(train_rows.schema, label_col="Churn")
    first = models_ml.split_holdout(models_ml.prepare(train_rows, config), config)
    again = models_ml.split_holdout(models_ml.prepare(train_rows.repartition(3), config), config)
    assert first.kind == "hash"
    held = sorted(r[0] for r in first.holdout.select("_row_id").collect())
    assert held == sorted(r[0] for r in again.holdout.select("_row_id").collect())
    assert 0.15 < len(held) / train_rows.count() < 0.25


def test_boosted_trees_stop_adding_trees_on_a_slice_set_aside(frames):
    train_rows, test_rows = frames
    config = models_ml.ModelConfig.from_schema(
        train_rows.schema,
        label_col="Churn",
        family="gbt",
        tuning="tvs",
        standardize=False,
        param_grid=(("maxDepth", (5,)),),
        early_stopping=0.1,
    )
    assert config.stops_early and config.max_trees == 200
    split = models_ml.Split(
        train=models_ml.prepare(train_rows, config),
        holdout=models_ml.prepare(test_rows, config),
        kind="hash",
    )
    result = models_ml.train(train_rows, config, split=split)
    trees = result.model.stages[-1]
    assert trees.getValidationIndicatorCol() == "_early_stop"
    assert 1 < trees.getNumTrees < config.max_trees
    assert result.metrics["areaUnderROC"] > 0.88
    # Scoring needs no such column: the raw test rows score as they are.
    assert result.score(test_rows).where("score is null").count() == 0
