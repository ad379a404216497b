"""Tuning by time: :class:`TimeSeriesCrossValidator` and :func:`tune`.

With a timestamp no grid point is ever validated on rows older than those it was fitted
on.  ``cv`` is a :class:`TimeSeriesCrossValidator`: the training part is cut into
``num_folds + 1`` contiguous time blocks and fold ``i`` fits on blocks ``0..i`` and
validates on block ``i + 1`` (expanding windows).  ``tvs`` is the same estimator with one
fold whose first window is the earliest ``train_ratio`` of the period.  Without a
timestamp (cross-sectional data) the folds come from a hash of the id columns
(``CrossValidator`` with ``foldCol``) and ``tvs`` is MLlib's seeded
``TrainValidationSplit``.

The label-free feature stages (medians, category lists, scales) are fitted once on the
whole training part and shared by all tuning fits; the held-out part is never seen here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyspark.sql.functions as F
from pyspark import keyword_only
from pyspark.ml import Estimator, Pipeline, PipelineModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator, Evaluator, RegressionEvaluator
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.tuning import (
    CrossValidator,
    CrossValidatorWriter,
    TrainValidationSplit,
    _ValidatorSharedReadWrite,
)
from pyspark.ml.util import DefaultParamsReader, MLReader, MLWriter
from pyspark.sql import DataFrame

from models_ml import evaluate
from models_ml.config import FEATURES, FOLD, LABEL, ROW_ID, SCALED, ConfigError, ModelConfig
from models_ml.pipeline import build_pipeline, param_maps
from models_ml.split import block_cuts, hash_folds, hash_unit, order_value, seconds, time_cut

ParamMap = dict[Param, Any]


class TimeSeriesCrossValidator(CrossValidator):
    """A ``CrossValidator`` whose folds are expanding windows in time.

    The rows are cut into ``numFolds + 1`` contiguous blocks by ``timeCol`` (a timestamp,
    date or number); fold ``i`` fits on blocks ``0..i`` and validates on block ``i + 1``,
    so no fold is validated on rows older than any it was fitted on.  With
    ``firstTrainFraction`` the first window holds that share of the period and the rest
    is cut evenly into ``numFolds`` validation blocks (one fold at 0.75: a forward
    train/validation split).  Blocks are whole instants when there are at most
    :data:`models_ml.split.EXACT_INSTANTS` distinct ones (weekly snapshots), else
    approximate quantiles of the rows; rows with a null ``timeCol`` are in no fold.

    Everything else is ``CrossValidator``'s: ``parallelism`` fits at once, the folds
    cached while they are fitted on, ``avgMetrics``/``stdMetrics``, the best grid point
    refitted on the whole frame, a ``CrossValidatorModel``.  It saves and loads with
    ``write()``/``load()`` like any tuner, its own params included.
    """

    timeCol: Param[str] = Param(
        Params._dummy(),
        "timeCol",
        "column ordering the rows in time (timestamp, date or number)",
        typeConverter=TypeConverters.toString,
    )
    firstTrainFraction: Param[float] = Param(
        Params._dummy(),
        "firstTrainFraction",
        "share of the period in the first fold's fitting window, in (0, 1); "
        "unset: 1 / (numFolds + 1), blocks of equal size",
        typeConverter=TypeConverters.toFloat,
    )

    @keyword_only
    def __init__(
        self,
        *,
        estimator: Estimator | None = None,
        estimatorParamMaps: list[ParamMap] | None = None,
        evaluator: Evaluator | None = None,
        numFolds: int = 3,
        seed: int | None = None,
        parallelism: int = 1,
        collectSubModels: bool = False,
        timeCol: str = "timestamp",
        firstTrainFraction: float | None = None,
    ) -> None:
        given = {k: v for k, v in self._input_kwargs.items() if v is not None}
        super().__init__()
        self._setDefault(timeCol="timestamp")
        self._set(**given)

    def setTimeCol(self, value: str) -> TimeSeriesCrossValidator:
        """Set ``timeCol``."""
        return self._set(timeCol=value)

    def getTimeCol(self) -> str:
        """The column ordering the rows in time."""
        return self.getOrDefault(self.timeCol)

    def setFirstTrainFraction(self, value: float) -> TimeSeriesCrossValidator:
        """Set ``firstTrainFraction``."""
        return self._set(firstTrainFraction=value)

    def getFirstTrainFraction(self) -> float:
        """The share of the period in the first fitting window."""
        folds = self.getNumFolds()
        if self.isDefined(self.firstTrainFraction):
            return self.getOrDefault(self.firstTrainFraction)
        return 1.0 / (folds + 1)

    def _kFold(self, dataset: DataFrame) -> list[tuple[DataFrame, DataFrame]]:
        """``numFolds`` pairs (fitting rows, validation rows), expanding windows in time.

        The contract with ``CrossValidator._fit`` (pinned by a test): it calls this once
        with the whole frame and fits and validates on pair ``i`` for ``i < numFolds``.
        """
        folds = self.getNumFolds()
        column = self.getTimeCol()
        if column not in dataset.columns:
            raise ConfigError(
                f"TimeSeriesCrossValidator: no column {column!r} to order the rows by "
                f"(columns: {dataset.columns}); set timeCol"
            )
        first = self.getFirstTrainFraction()
        if not 0.0 < first < 1.0:
            raise ConfigError(
                f"TimeSeriesCrossValidator: firstTrainFraction {first} is not in (0, 1)"
            )
        value = order_value(dataset, column)
        fractions = [first + (1.0 - first) * i / folds for i in range(folds)]
        cuts = block_cuts(dataset, value, fractions)
        if len(cuts) != folds or any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)):
            raise ConfigError(
                f"TimeSeriesCrossValidator: too few distinct values of {column!r} for "
                f"{folds} folds of {folds + 1} time blocks (cuts {cuts}); lower numFolds"
            )
        pairs = []
        for i, cut in enumerate(cuts):
            later = value > F.lit(cut)
            upper = value <= F.lit(cuts[i + 1]) if i + 1 < folds else F.lit(True)
            pairs.append((dataset.where(value <= F.lit(cut)), dataset.where(later & upper)))
        for i, (fit_rows, validation) in enumerate(pairs):
            if fit_rows.isEmpty() or validation.isEmpty():
                raise ConfigError(
                    f"TimeSeriesCrossValidator: fold {i} of {folds} has no "
                    f"{'fitting' if fit_rows.isEmpty() else 'validation'} rows: too few "
                    f"distinct values of {column!r}; lower numFolds"
                )
        return pairs

    def write(self) -> MLWriter:
        """A writer that keeps the class and its params (MLlib's Java writer would save a
        plain ``CrossValidator``)."""
        return CrossValidatorWriter(self)

    @classmethod
    def read(cls) -> _TimeSeriesCrossValidatorReader:  # type: ignore[override]
        """A reader that gives back this class with its params."""
        return _TimeSeriesCrossValidatorReader(cls)


class _TimeSeriesCrossValidatorReader(MLReader[TimeSeriesCrossValidator]):
    """Loads what :class:`CrossValidatorWriter` wrote for a :class:`TimeSeriesCrossValidator`."""

    def __init__(self, cls: type[TimeSeriesCrossValidator]) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> TimeSeriesCrossValidator:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        # The shared loader tells how the grid's values were encoded from the class name:
        # as pyspark's own validators, ours were written by the Python writer.
        as_python = {**metadata, "class": "pyspark.ml.tuning.CrossValidator"}
        _, estimator, evaluator, maps = _ValidatorSharedReadWrite.load(
            path, self.sparkSession, as_python
        )
        tuner = self.cls(estimator=estimator, estimatorParamMaps=maps, evaluator=evaluator)
        tuner = tuner._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(tuner, metadata, skipParams=["estimatorParamMaps"])
        return tuner


@dataclasses.dataclass(frozen=True)
class Tuned:
    """Outcome of tuning: the best pipeline refitted on all tuning data.

    Attributes:
        model: Best fitted pipeline.
        best_params: The winning grid point, ``{param: value}``.
        grid_metrics: One ``{param: value, ..., metric: value}`` per grid point.
        metric: Name of the tuning metric (``areaUnderROC`` or ``rmse``).
        threshold: Decision threshold of a classifier (see :func:`pick_threshold`).
    """

    model: PipelineModel
    best_params: dict[str, Any]
    grid_metrics: list[dict[str, Any]]
    metric: str
    threshold: float | None = None


def evaluator_for(config: ModelConfig) -> Evaluator:
    """The tuning evaluator: ROC AUC for classifiers, RMSE for regressors."""
    if config.is_classifier:
        return BinaryClassificationEvaluator(
            labelCol=LABEL, rawPredictionCol="rawPrediction", metricName="areaUnderROC"
        )
    return RegressionEvaluator(labelCol=LABEL, predictionCol="prediction", metricName="rmse")


def tuner_for(
    config: ModelConfig, estimator: Estimator, maps: list[ParamMap]
) -> CrossValidator | TrainValidationSplit:
    """The MLlib tuner of a config: :class:`TimeSeriesCrossValidator` with a timestamp,
    ``CrossValidator`` over hashed folds or ``TrainValidationSplit`` without one."""
    shared: dict[str, Any] = {
        "estimator": estimator,
        "estimatorParamMaps": maps,
        "evaluator": evaluator_for(config),
        # A torch_mlp fit starts processes of its own on the cores: one fit at a time.
        "parallelism": 1 if config.family == "torch_mlp" else config.parallelism,
        "seed": config.seed,
    }
    if config.timestamp_col is not None:
        if config.tuning == "cv":
            return TimeSeriesCrossValidator(
                **shared, numFolds=config.num_folds, timeCol=config.timestamp_col
            )
        return TimeSeriesCrossValidator(
            **shared,
            numFolds=1,
            timeCol=config.timestamp_col,
            firstTrainFraction=config.train_ratio,
        )
    if config.tuning == "cv":
        return CrossValidator(**shared, numFolds=config.num_folds, foldCol=FOLD)
    return TrainValidationSplit(**shared, trainRatio=config.train_ratio)


def _params_dict(param_map: ParamMap) -> dict[str, Any]:
    """``{param name: value}`` of a ParamMap."""
    return {param.name: value for param, value in param_map.items()}


def _best_index(metrics: list[float], evaluator: Evaluator) -> int:
    """Index of the best metric, larger or smaller being better per the evaluator."""
    pick = max if evaluator.isLargerBetter() else min
    return metrics.index(pick(metrics))


def featurize(frame: DataFrame, config: ModelConfig) -> tuple[PipelineModel, Estimator]:
    """Fit the feature stages of ``build_pipeline(config)`` (all but the estimator).

    Returns:
        The fitted feature stages and the unfitted estimator.
    """
    stages = build_pipeline(config).getStages()
    estimator = stages[-1]
    assert isinstance(estimator, Estimator)
    return Pipeline(stages=stages[:-1]).fit(frame), estimator


#: The column that marks the rows a boosted fit stops on (``ModelConfig.early_stopping``).
EARLY_STOP = "_early_stop"
#: A tree must improve the set-aside rows' loss by this share for the next to be added.
#: MLlib's default (0.01) stops after a handful of trees at a step size of 0.1.
EARLY_STOP_TOLERANCE = 1e-4


def stopping_early(estimator: Estimator, config: ModelConfig) -> Estimator:
    """The estimator, set to stop adding trees on the rows :data:`EARLY_STOP` marks when
    the config says so (gradient boosted families without ``maxIter`` in the grid)."""
    if not config.stops_early:
        return estimator
    return estimator.copy(
        {
            estimator.getParam("validationIndicatorCol"): EARLY_STOP,
            estimator.getParam("validationTol"): EARLY_STOP_TOLERANCE,
        }
    )


#: Rows of training vectors per partition that tuning aims at.
ROWS_PER_PARTITION = 100_000


def tuning_partitions(rows: int, parallelism: int) -> int:
    """Partitions of the cached training vectors: one per ``ROWS_PER_PARTITION`` rows,
    at most the cluster's parallelism.

    Every iteration of an MLlib fit is a Spark job with one task per partition; on a few
    thousand rows spread over the shuffle's partitions the tasks' fixed cost is most of the
    fit (a logistic regression on 3,000 rows: 8.6 s over 8 partitions, 1.1 s over one).
    Tuning fits several grid points at once, which keeps the cores busy instead.
    """
    return max(1, min(parallelism, -(-rows // ROWS_PER_PARTITION)))


def _vectors(
    features: PipelineModel, frame: DataFrame, config: ModelConfig, *, rows: int | None = None
) -> DataFrame:
    """The feature vectors, label, ids and timestamp of a frame, cached in
    :func:`tuning_partitions` partitions (``rows``: the frame's row count, if known)."""
    keep = [SCALED if config.standardize else FEATURES, LABEL, *(config.id_cols or (ROW_ID,))]
    if config.timestamp_col:
        keep.append(config.timestamp_col)
    vectors = features.transform(frame).select(*keep)
    if config.stops_early:
        aside = hash_unit(vectors, config, "early_stop") < F.lit(config.early_stopping)
        vectors = vectors.withColumn(EARLY_STOP, aside)
    spark = vectors.sparkSession
    rows = frame.count() if rows is None else rows
    # Capped by the configured shuffle partitions, not the cores found: the same settings
    # give the same partitioning, and so the same model, on any machine.
    cap = min(
        spark.sparkContext.defaultParallelism,
        int(str(spark.conf.get("spark.sql.shuffle.partitions"))),
    )
    wanted = tuning_partitions(rows, cap)
    if wanted < vectors.rdd.getNumPartitions():
        vectors = vectors.coalesce(wanted)
    return vectors.cache()


def tune(frame: DataFrame, config: ModelConfig, *, rows: int | None = None) -> Tuned:
    """Tune ``build_pipeline(config)`` over ``config.grid()`` on a prepared frame.

    The feature stages (medians, category lists, scales: no label information) are fitted
    once on all of ``frame``; the estimator is tuned by :func:`tuner_for`'s MLlib tuner
    over the cached vectors (:func:`tuning_partitions` partitions).  The best grid point
    is refitted on all of ``frame``; a classifier's threshold is picked by
    :func:`pick_threshold` over the same vectors.

    Raises:
        ConfigError: When the training part has too few distinct timestamps for the folds.
    """
    features, estimator = featurize(frame, config)
    estimator = stopping_early(estimator, config)
    maps = param_maps(config, estimator)
    vectors = _vectors(features, frame, config, rows=rows)
    try:
        tuner = tuner_for(config, estimator, maps)
        data = vectors
        if isinstance(tuner, CrossValidator) and tuner.isSet(tuner.foldCol):
            data = hash_folds(vectors, config, folds=config.num_folds)
        fitted = tuner.fit(data)
        if isinstance(tuner, CrossValidator):
            metrics = [float(m) for m in fitted.avgMetrics]
        else:
            metrics = [float(m) for m in fitted.validationMetrics]
        evaluator = tuner.getEvaluator()
        name = evaluator.getOrDefault(evaluator.getParam("metricName"))
        grid = [{**_params_dict(m), name: v} for m, v in zip(maps, metrics, strict=True)]
        best = _params_dict(maps[_best_index(metrics, evaluator)])
        threshold = (
            pick_threshold(vectors, config, estimator, best) if config.is_classifier else None
        )
    finally:
        vectors.unpersist()
    model = PipelineModel(stages=[*features.stages, fitted.bestModel])
    return Tuned(model=model, best_params=best, grid_metrics=grid, metric=name, threshold=threshold)


def pick_threshold(
    vectors: DataFrame, config: ModelConfig, estimator: Estimator, best_params: dict[str, Any]
) -> float:
    """The decision threshold: ``config.threshold``, or the one maximising F1 on a
    validation slice of the training part (its latest ``validation_fraction`` with a
    timestamp, else a hash slice), scored by the best grid point fitted on the rest.

    Args:
        vectors: Featurized training part (feature vector, label, ids, timestamp).
        config: The model configuration.
        estimator: The unfitted estimator.
        best_params: The grid point to fit.
    """
    if config.threshold is not None:
        return config.threshold
    if config.timestamp_col is not None:
        value = seconds(config)
        cut = time_cut(vectors, config, 1.0 - config.validation_fraction)
        fit_part = vectors.where(value <= F.lit(cut))
        val_part = vectors.where(value > F.lit(cut))
    else:
        unit = hash_unit(vectors, config, "threshold")
        fit_part = vectors.where(unit >= config.validation_fraction)
        val_part = vectors.where(unit < config.validation_fraction)
    extra = {estimator.getParam(k): v for k, v in best_params.items()}
    scored = evaluate.add_score_columns(
        estimator.fit(fit_part, extra).transform(val_part), is_classifier=True
    )
    return evaluate.best_f1_threshold(evaluate.threshold_curve(scored))
