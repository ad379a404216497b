"""Fit and judge a model: :func:`train` splits off the held-out part
(:mod:`models_ml.split`), tunes on the rest (:mod:`models_ml.tuning`) and measures the
winner on the held-out rows (:mod:`models_ml.evaluate`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyspark.sql.functions as F
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from models_ml import evaluate
from models_ml.config import ConfigError, ModelConfig
from models_ml.split import Split, prepare, split_holdout
from models_ml.tuning import tune


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
    columns = list(config.feature_cols)
    if not columns:
        return config
    counts = frame.agg(*[F.count(F.col(f"`{c}`")).alias(c) for c in columns]).first()
    empty = {c for c in columns if not counts[c]}
    if not empty:
        return config
    kept = {
        role: tuple(c for c in getattr(config, role) if c not in empty)
        for role in ("numeric_cols", "categorical_cols", "text_cols")
    }
    if not any(kept.values()):
        raise ConfigError(f"train: every feature is null in the training part: {sorted(empty)}")
    return config.replace(**kept)


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
            assert threshold is not None  # tune picks one for every classifier
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
