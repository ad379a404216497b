"""Split by time, tune, pick the threshold, fit and judge: :func:`train`.

With a timestamp column nothing is ever judged on data older than what it was fitted
on: the held-out set is the latest rows (every training row is at or before the cutoff,
every held-out row after it), ``tvs`` fits on the earlier part of the training period and
validates on the later part (strictly forward), and ``cv`` uses contiguous time blocks as
folds (blocked CV: a block is validated by a model fitted on the other blocks, later ones
included, so prefer ``tvs`` when hyperparameter choice must not see the future; the
held-out score is clean either way).  The label-free feature stages (medians, category
lists, scales) are fitted once on the whole training part and shared by all tuning fits;
the held-out part is never seen before it is scored.  Without a
timestamp (cross-sectional data such as the IBM Telco benchmark) the held-out set and the
folds come from a hash of the id columns: deterministic, independent of partitioning.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

import pyspark.sql.functions as F
from pyspark.ml import Estimator, Model, Pipeline, PipelineModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator, Evaluator, RegressionEvaluator
from pyspark.ml.param import Param
from pyspark.ml.tuning import CrossValidator, TrainValidationSplit
from pyspark.sql import DataFrame

from models_ml.churn import evaluate
from models_ml.churn.config import FEATURES, FOLD, LABEL, SCALED, ConfigError, ModelConfig
from models_ml.churn.pipeline import build_pipeline, param_maps

_HASH_BUCKETS = 10_000

ParamMap = dict[Param, Any]


@dataclasses.dataclass(frozen=True)
class Split:
    """A training part and a later (or hashed-apart) held-out part.

    Attributes:
        train: Rows to fit and tune on.
        holdout: Rows to judge on.
        kind: ``time`` or ``hash``.
        cutoff: ``time``: training rows are at or before it, held-out rows after it.
    """

    train: DataFrame
    holdout: DataFrame
    kind: Literal["time", "hash"]
    cutoff: datetime | None = None


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


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Everything :func:`train` learned and measured; input of report and persistence.

    Attributes:
        config: The configuration trained with.
        model: Fitted pipeline (best grid point, refitted on the whole training part).
        threshold: Decision threshold (classifiers), else ``None``.
        best_params: Winning grid point.
        grid_metrics: Tuning metric per grid point.
        tuning_metric: Its name.
        split_kind: ``time`` or ``hash``.
        windows: ``{"train": {...}, "holdout": {...}}`` with row counts and, with a
            timestamp, ``start``/``end`` ISO instants.
        metrics: Held-out metrics.
        curve: Held-out threshold curve (classifiers).
        lift: Held-out lift table by risk decile (classifiers).
        weights: Coefficients or importances by feature slot, largest first.
        feature_slots: Names of the assembled vector's slots.
    """

    config: ModelConfig
    model: PipelineModel
    threshold: float | None
    best_params: dict[str, Any]
    grid_metrics: list[dict[str, Any]]
    tuning_metric: str
    split_kind: str
    windows: dict[str, dict[str, Any]]
    metrics: dict[str, float]
    curve: list[dict[str, float]]
    lift: list[dict[str, Any]]
    weights: list[tuple[str, float]]
    feature_slots: list[str]

    def score(self, frame: DataFrame) -> DataFrame:
        """Score a feature frame: the model's columns plus ``score`` (and
        ``predicted_label`` at :attr:`threshold`)."""
        return score(self.model, frame, config=self.config, threshold=self.threshold)


def score(
    model: PipelineModel,
    frame: DataFrame,
    *,
    config: ModelConfig,
    threshold: float | None = None,
) -> DataFrame:
    """Apply a fitted pipeline and add ``score`` / ``predicted_label``."""
    return evaluate.add_score_columns(
        model.transform(frame), is_classifier=config.is_classifier, threshold=threshold
    )


def prepare(frame: DataFrame, config: ModelConfig) -> DataFrame:
    """Add the double ``label`` the estimators read; drop rows without a label.

    Classifiers: ``label_col == positive_label`` when that is set, else the 0/1 or
    boolean column cast to double.  Regressors: the column cast to double.
    """
    missing = [
        c
        for c in (config.label_col, config.timestamp_col, *config.id_cols, *config.feature_cols)
        if c and c not in frame.columns
    ]
    if missing:
        raise ConfigError(
            f"prepare: the training frame lacks columns {missing} named in the ModelConfig "
            f"(it has {frame.columns})"
        )
    source = F.col(config.label_col)
    if config.is_classifier and config.positive_label is not None:
        label = F.when(source.isNull(), None).otherwise(
            (source.cast("string") == F.lit(config.positive_label)).cast("double")
        )
    else:
        label = source.cast("double")
    return frame.withColumn(LABEL, label).where(F.col(LABEL).isNotNull())


def _hash_unit(frame: DataFrame, config: ModelConfig, salt: str) -> F.Column:
    """A deterministic number in [0, 1) per row, from the id columns and a salt."""
    ids = [F.col(c).cast("string") for c in config.id_cols]
    hashed = F.xxhash64(F.lit(f"{salt}:{config.seed}"), *ids)
    return F.pmod(hashed, F.lit(_HASH_BUCKETS)) / F.lit(float(_HASH_BUCKETS))


def _seconds(config: ModelConfig) -> F.Column:
    """The timestamp column as epoch seconds (double)."""
    return F.unix_micros(F.col(config.timestamp_col).cast("timestamp")) / F.lit(1e6)


def _time_cut(frame: DataFrame, config: ModelConfig, quantile: float) -> float:
    """Epoch seconds that cut ``frame`` by time: rows at or before go first.

    The ``quantile`` of the timestamps, moved so that both sides keep rows whenever the
    frame has two distinct instants (weekly snapshots give few: the 0.8 quantile of
    three snapshots is the last one, which would leave nothing after the cut).
    """
    seconds = _seconds(config)
    (cut,) = frame.select(seconds.alias("_s")).approxQuantile("_s", [quantile], 0.0001)
    low, high = frame.agg(F.min(seconds), F.max(seconds)).first()
    if high is None:
        return cut
    if cut >= high:
        before_last = frame.where(seconds < F.lit(high)).agg(F.max(seconds)).first()[0]
        return before_last if before_last is not None else cut
    return max(cut, low)


def split_holdout(frame: DataFrame, config: ModelConfig) -> Split:
    """Split a prepared frame into training and held-out parts.

    With ``timestamp_col``: rows after the cutoff are held out, where the cutoff is the
    ``1 - holdout_fraction`` quantile of the timestamps (or just before
    ``holdout_start``).  All rows sharing a timestamp fall on the same side.  Rows with a
    null timestamp are dropped.  Without it: a hash of ``id_cols`` picks
    ``holdout_fraction`` of the rows.
    """
    if config.timestamp_col is None:
        unit = _hash_unit(frame, config, "holdout")
        return Split(
            train=frame.where(unit >= config.holdout_fraction),
            holdout=frame.where(unit < config.holdout_fraction),
            kind="hash",
        )
    ts = F.col(config.timestamp_col).cast("timestamp")
    timed = frame.where(ts.isNotNull())
    if config.holdout_start is not None:
        start = F.lit(config.holdout_start).cast("timestamp")
        train, holdout = timed.where(ts < start), timed.where(ts >= start)
        cutoff = config.holdout_start
    else:
        cut = _time_cut(timed, config, 1.0 - config.holdout_fraction)
        cutoff = datetime.fromtimestamp(cut, tz=UTC)
        train = timed.where(_seconds(config) <= F.lit(cut))
        holdout = timed.where(_seconds(config) > F.lit(cut))
    return Split(train=train, holdout=holdout, kind="time", cutoff=cutoff)


#: Up to this many distinct timestamps, time folds are cut between exact instants.
_EXACT_FOLD_INSTANTS = 10_000


def add_folds(frame: DataFrame, config: ModelConfig, *, folds: int) -> DataFrame:
    """Add the integer fold column ``_fold`` in ``[0, folds)``.

    With a timestamp the folds are contiguous time blocks (approximate quantiles of the
    timestamp; fold 0 the earliest); otherwise a hash of the id columns.

    Raises:
        ConfigError: When a time block is empty (too few distinct timestamps).
    """
    if config.timestamp_col is None:
        unit = _hash_unit(frame, config, "fold")
        return frame.withColumn(FOLD, F.floor(unit * folds).cast("int"))
    seconds = _seconds(config)
    instants = frame.select(seconds.alias("_s")).distinct()
    if instants.limit(_EXACT_FOLD_INSTANTS + 1).count() <= _EXACT_FOLD_INSTANTS:
        # Few instants (weekly snapshots): blocks of whole instants, as even as they go.
        found = sorted(r[0] for r in instants.collect() if r[0] is not None)
        cuts = [
            found[(i * len(found)) // folds - 1]
            for i in range(1, folds)
            if (i * len(found)) // folds >= 1
        ]
    else:
        cuts = frame.select(seconds.alias("_s")).approxQuantile(
            "_s", [i / folds for i in range(1, folds)], 0.0001
        )
    fold = sum(((seconds > F.lit(c)).cast("int") for c in cuts), F.lit(0))
    out = frame.withColumn(FOLD, fold.cast("int"))
    counts = {r[FOLD]: r["n"] for r in out.groupBy(FOLD).agg(F.count("*").alias("n")).collect()}
    empty = [i for i in range(folds) if not counts.get(i)]
    if empty:
        raise ConfigError(
            f"add_folds: time blocks {empty} of {folds} are empty: the training part has too "
            f"few distinct values of {config.timestamp_col!r}; lower num_folds or use "
            "tuning='tvs'"
        )
    return out


def _evaluator(config: ModelConfig) -> Evaluator:
    """The tuning evaluator: ROC AUC for classifiers, RMSE for regressors."""
    if config.is_classifier:
        return BinaryClassificationEvaluator(
            labelCol=LABEL, rawPredictionCol="rawPrediction", metricName="areaUnderROC"
        )
    return RegressionEvaluator(labelCol=LABEL, predictionCol="prediction", metricName="rmse")


def _params_dict(param_map: ParamMap) -> dict[str, Any]:
    """``{param name: value}`` of a ParamMap."""
    return {param.name: value for param, value in param_map.items()}


def _forward_tvs(
    estimator: Estimator,
    maps: list[ParamMap],
    vectors: DataFrame,
    config: ModelConfig,
    evaluator: Evaluator,
) -> tuple[Model, list[float]]:
    """Train/validation split by time: fit every grid point on the earliest
    ``train_ratio`` of the period (``parallelism`` at a time), validate on the rest."""
    seconds = _seconds(config)
    cut = _time_cut(vectors, config, config.train_ratio)
    fit_part = vectors.where(seconds <= F.lit(cut)).cache()
    val_part = vectors.where(seconds > F.lit(cut)).cache()
    try:
        if val_part.isEmpty():
            raise ConfigError(
                f"tune: no validation rows after {datetime.fromtimestamp(cut, tz=UTC)}: "
                f"too few distinct values of {config.timestamp_col!r} for "
                f"train_ratio={config.train_ratio}"
            )

        def fit_and_score(param_map: ParamMap) -> float:
            return evaluator.evaluate(estimator.fit(fit_part, param_map).transform(val_part))

        with ThreadPoolExecutor(max_workers=max(1, config.parallelism)) as pool:
            metrics = list(pool.map(fit_and_score, maps))
    finally:
        fit_part.unpersist()
        val_part.unpersist()
    best = _best_index(metrics, evaluator)
    return estimator.fit(vectors, maps[best]), metrics


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
    return Pipeline(stages=stages[:-1]).fit(frame), stages[-1]


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
    keep = [SCALED if config.standardize else FEATURES, LABEL, *config.id_cols]
    if config.timestamp_col:
        keep.append(config.timestamp_col)
    vectors = features.transform(frame).select(*keep)
    spark = vectors.sparkSession
    rows = frame.count() if rows is None else rows
    # Capped by the configured shuffle partitions, not the cores found: the same settings
    # give the same partitioning, and so the same model, on any machine.
    cap = min(
        spark.sparkContext.defaultParallelism, int(spark.conf.get("spark.sql.shuffle.partitions"))
    )
    wanted = tuning_partitions(rows, cap)
    if wanted < vectors.rdd.getNumPartitions():
        vectors = vectors.coalesce(wanted)
    return vectors.cache()


def tune(frame: DataFrame, config: ModelConfig, *, rows: int | None = None) -> Tuned:
    """Tune ``build_pipeline(config)`` over ``config.grid()`` on a prepared frame.

    The feature stages (medians, category lists, scales: no label information) are fitted
    once on all of ``frame``; the estimator is tuned over the cached vectors.
    ``cv``: ``CrossValidator`` with ``foldCol`` (contiguous time blocks, or an id hash) and
    ``parallelism``.  ``tvs`` with a timestamp: fit on the earlier ``train_ratio`` of the
    period and validate on the later rest; without one, ``TrainValidationSplit`` (seeded).
    The vectors are cached in :func:`tuning_partitions` partitions.
    The best grid point is refitted on all of ``frame``; a classifier's threshold is
    picked by :func:`pick_threshold` over the same vectors.
    """
    features, estimator = featurize(frame, config)
    maps = param_maps(config, estimator)
    evaluator = _evaluator(config)
    vectors = _vectors(features, frame, config, rows=rows)
    try:
        if config.tuning == "cv":
            folded = add_folds(vectors, config, folds=config.num_folds)
            tuner = CrossValidator(
                estimator=estimator,
                estimatorParamMaps=maps,
                evaluator=evaluator,
                numFolds=config.num_folds,
                foldCol=FOLD,
                parallelism=config.parallelism,
                seed=config.seed,
            )
            fitted = tuner.fit(folded)
            best_model, metrics = fitted.bestModel, [float(m) for m in fitted.avgMetrics]
        elif config.timestamp_col is not None:
            best_model, metrics = _forward_tvs(estimator, maps, vectors, config, evaluator)
        else:
            tuner = TrainValidationSplit(
                estimator=estimator,
                estimatorParamMaps=maps,
                evaluator=evaluator,
                trainRatio=config.train_ratio,
                parallelism=config.parallelism,
                seed=config.seed,
            )
            fitted = tuner.fit(vectors)
            best_model = fitted.bestModel
            metrics = [float(m) for m in fitted.validationMetrics]
        name = evaluator.getOrDefault(evaluator.getParam("metricName"))
        grid = [{**_params_dict(m), name: v} for m, v in zip(maps, metrics, strict=True)]
        best = _params_dict(maps[_best_index(metrics, evaluator)])
        threshold = (
            pick_threshold(vectors, config, estimator, best) if config.is_classifier else None
        )
    finally:
        vectors.unpersist()
    model = PipelineModel(stages=[*features.stages, best_model])
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
        seconds = _seconds(config)
        cut = _time_cut(vectors, config, 1.0 - config.validation_fraction)
        fit_part = vectors.where(seconds <= F.lit(cut))
        val_part = vectors.where(seconds > F.lit(cut))
    else:
        unit = _hash_unit(vectors, config, "threshold")
        fit_part = vectors.where(unit >= config.validation_fraction)
        val_part = vectors.where(unit < config.validation_fraction)
    extra = {estimator.getParam(k): v for k, v in best_params.items()}
    scored = evaluate.add_score_columns(
        estimator.fit(fit_part, extra).transform(val_part), is_classifier=True
    )
    return evaluate.best_f1_threshold(evaluate.threshold_curve(scored))


def _window(frame: DataFrame, config: ModelConfig) -> dict[str, Any]:
    """Row count and, with a timestamp, first and last instant of a frame."""
    if config.timestamp_col is None:
        return {"rows": frame.count()}
    ts = F.col(config.timestamp_col).cast("timestamp")
    row = frame.agg(F.count("*").alias("n"), F.min(ts).alias("lo"), F.max(ts).alias("hi")).first()
    return {
        "rows": int(row["n"]),
        "start": row["lo"].isoformat() if row["lo"] else None,
        "end": row["hi"].isoformat() if row["hi"] else None,
    }


def without_empty_features(frame: DataFrame, config: ModelConfig) -> ModelConfig:
    """The config without the features that are null on every row of ``frame``.

    Nothing can be learnt from them and no median or category can be fitted (a 90-day
    change is null everywhere while the lake holds less than 90 days).  The saved
    config, and so the model's metadata, lists the features it really uses.
    """
    columns = [*config.numeric_cols, *config.categorical_cols]
    if not columns:
        return config
    counts = frame.agg(*[F.count(F.col(f"`{c}`")).alias(c) for c in columns]).first()
    empty = {c for c in columns if not counts[c]}
    if not empty:
        return config
    keep_numeric = tuple(c for c in config.numeric_cols if c not in empty)
    keep_categorical = tuple(c for c in config.categorical_cols if c not in empty)
    if not keep_numeric and not keep_categorical:
        raise ConfigError(f"train: every feature is null in the training part: {sorted(empty)}")
    return dataclasses.replace(config, numeric_cols=keep_numeric, categorical_cols=keep_categorical)


def train(frame: DataFrame, config: ModelConfig, *, split: Split | None = None) -> TrainResult:
    """Split, tune, pick the threshold, and judge on the held-out part.

    Args:
        frame: Any Spark frame with the config's feature, label, id and timestamp
            columns, e.g. a Feast historical retrieval (``to_spark_df()``).
        config: The model configuration.
        split: A ready split (of :func:`prepare`-d frames) instead of
            :func:`split_holdout`.

    Returns:
        The fitted model with its held-out metrics, curves, lift and weights.
    """
    if split is None:
        split = split_holdout(prepare(frame, config), config)
    train_part = split.train.cache()
    holdout = split.holdout.cache()
    try:
        windows = {"train": _window(train_part, config), "holdout": _window(holdout, config)}
        if not windows["train"]["rows"] or not windows["holdout"]["rows"]:
            raise ConfigError(
                f"train: empty split {windows}; check holdout_fraction / holdout_start"
            )
        config = without_empty_features(train_part, config)
        tuned = tune(train_part, config, rows=windows["train"]["rows"])
        threshold = tuned.threshold
        scored = score(tuned.model, holdout, config=config, threshold=threshold).cache()
        curve: list[dict[str, float]] = []
        lift: list[dict[str, Any]] = []
        if config.is_classifier:
            metrics = evaluate.classification_metrics(scored, threshold=threshold)
            curve = evaluate.threshold_curve(scored)
            lift = evaluate.lift_table(scored)
        else:
            metrics = evaluate.regression_metrics(scored, baseline_col=config.baseline_col)
        scored.unpersist()
        return TrainResult(
            config=config,
            model=tuned.model,
            threshold=threshold,
            best_params=tuned.best_params,
            grid_metrics=tuned.grid_metrics,
            tuning_metric=tuned.metric,
            split_kind=split.kind,
            windows=windows,
            metrics=metrics,
            curve=curve,
            lift=lift,
            weights=evaluate.feature_weights(tuned.model, train_part),
            feature_slots=evaluate.feature_slots(tuned.model, train_part),
        )
    finally:
        train_part.unpersist()
        holdout.unpersist()
