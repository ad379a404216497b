"""TimeSeriesCrossValidator: expanding windows in time, MLlib's own fit loop, persistence."""

from __future__ import annotations

import inspect
import random
from datetime import datetime, timedelta

import numpy as np
import pyspark.sql.functions as F
import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.tuning import CrossValidator, CrossValidatorModel, ParamGridBuilder

from models_ml.config import ConfigError
from models_ml.tuning import TimeSeriesCrossValidator

pytestmark = pytest.mark.ml

DAYS = [datetime(2026, 1, 1) + timedelta(days=7 * i) for i in range(8)]


@pytest.fixture(scope="module")
def vectors(spark):
    """Eight weekly snapshots of 40 customers; the label follows x with noise."""
    rnd = random.Random(3)
    rows = []
    for day in DAYS:
        for i in range(40):
            x = rnd.uniform(-2, 2)
            rows.append((i, day, x, rnd.uniform(-1, 1), float(x + rnd.gauss(0, 1) > 0)))
    frame = spark.createDataFrame(rows, "id int, at timestamp, x double, y double, label double")
    return VectorAssembler(inputCols=["x", "y"], outputCol="features").transform(frame).cache()


def _tuner(**options) -> TimeSeriesCrossValidator:
    lr = LogisticRegression(maxIter=10)
    grid = ParamGridBuilder().addGrid(lr.regParam, [0.0, 1.0]).build()
    return TimeSeriesCrossValidator(
        estimator=lr,
        estimatorParamMaps=grid,
        evaluator=BinaryClassificationEvaluator(),
        timeCol="at",
        **options,
    )


def _instants(frame) -> list[datetime]:
    return sorted(r[0] for r in frame.select("at").distinct().collect())


def test_folds_are_expanding_windows_that_never_validate_on_the_past(vectors):
    pairs = _tuner(numFolds=3)._kFold(vectors)
    assert len(pairs) == 3
    fitted, validated = [], []
    for fit_rows, validation in pairs:
        fitted.append(_instants(fit_rows))
        validated.append(_instants(validation))
        assert max(fitted[-1]) < min(validated[-1])
    # Eight instants in four blocks of two: fit on 2, 4, 6; validate on the next 2.
    assert fitted == [DAYS[:2], DAYS[:4], DAYS[:6]]
    assert validated == [DAYS[2:4], DAYS[4:6], DAYS[6:]]


def test_first_window_share_makes_a_forward_split(vectors):
    ((fit_rows, validation),) = _tuner(numFolds=1, firstTrainFraction=0.75)._kFold(vectors)
    assert _instants(fit_rows) == DAYS[:6] and _instants(validation) == DAYS[6:]


def test_fit_averages_the_folds_it_defined(vectors):
    """Pins the private contract with CrossValidator._fit: it calls ``_kFold`` once and
    fits and validates fold i on pair i; the averaged metrics are those of our folds."""
    assert list(inspect.signature(CrossValidator._kFold).parameters) == ["self", "dataset"]
    assert "self._kFold(dataset)" in inspect.getsource(CrossValidator._fit)
    tuner = _tuner(numFolds=3, parallelism=2)
    model = tuner.fit(vectors)
    by_hand = [
        [
            tuner.getEvaluator().evaluate(
                tuner.getEstimator().fit(fit_rows, grid_point).transform(validation)
            )
            for grid_point in tuner.getEstimatorParamMaps()
        ]
        for fit_rows, validation in tuner._kFold(vectors)
    ]
    assert np.allclose(model.avgMetrics, np.mean(by_hand, axis=0))
    # A random 3-fold split of the same rows scores differently: the folds are ours.
    shuffled = CrossValidator(
        estimator=tuner.getEstimator(),
        estimatorParamMaps=tuner.getEstimatorParamMaps(),
        evaluator=tuner.getEvaluator(),
        numFolds=3,
        seed=1,
    ).fit(vectors)
    assert not np.allclose(model.avgMetrics, shuffled.avgMetrics)


def test_saves_and_loads_as_itself_with_its_params(vectors, tmp_path):
    tuner = _tuner(numFolds=2, firstTrainFraction=0.5, parallelism=2)
    tuner.write().save(str(tmp_path / "tuner"))
    loaded = TimeSeriesCrossValidator.load(str(tmp_path / "tuner"))
    assert type(loaded) is TimeSeriesCrossValidator and loaded.uid == tuner.uid
    assert (loaded.getTimeCol(), loaded.getFirstTrainFraction(), loaded.getNumFolds()) == (
        "at",
        0.5,
        2,
    )
    assert [{p.name: v for p, v in m.items()} for m in loaded.getEstimatorParamMaps()] == [
        {"regParam": 0.0},
        {"regParam": 1.0},
    ]
    model = loaded.fit(vectors)
    model.write().save(str(tmp_path / "model"))
    again = CrossValidatorModel.load(str(tmp_path / "model"))
    assert np.allclose(again.avgMetrics, model.avgMetrics)


def test_too_few_instants_for_the_folds_says_so(vectors):
    three = vectors.where(F.col("at") < DAYS[3])
    with pytest.raises(ConfigError, match="too few distinct values of 'at'"):
        _tuner(numFolds=3)._kFold(three)
    with pytest.raises(ConfigError, match="no column 'when'"):
        _tuner(numFolds=2).setTimeCol("when")._kFold(vectors)
