"""Training on the lake's feature service: the path every task shares.

A task (:mod:`models_ml.churn`, :mod:`models_ml.next_invoice`) gives entity rows
(customer, snapshot instant, label) from ``ml.churn_labels`` and a
:class:`~models_ml.config.ModelConfig`; :func:`train_on_service` pulls the
``churn_v1`` feature service for them through Feast's ``get_historical_features`` (our
Delta offline store, with ``filter_by_created_timestamp`` so that no value written after
a snapshot leaks into it) as a lazy Spark DataFrame, fits the tuning to the snapshots
there are, splits, tunes and judges; :func:`save_and_register` saves the model with its
report and metadata in the lake and registers it in MLflow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from features.dbt_contracts import ROLE_TAG
from models_ml import model_store, registry
from models_ml.config import ModelConfig
from models_ml.split import Split, prepare, split_holdout
from models_ml.training import TrainResult, train

FEATURE_SERVICE = "churn_v1"
LABELS_TABLE = "ml.churn_labels"
_STRING_TYPES = ("String",)


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """What one training job produced.

    Attributes:
        saved: The model saved in the lake (its metadata holds versions and metrics).
        registered: Its MLflow registry entry (``None`` when not registered).
        result: The training result (model, metrics, curves).
        report_path: The Markdown report beside the plots.
    """

    saved: model_store.SavedModel
    registered: registry.RegisteredModel | None
    result: TrainResult
    report_path: Path


def service_features(
    store: Any, service: str = FEATURE_SERVICE
) -> tuple[list[str], list[str], list[str]]:
    """Return the numeric, the categorical and the text feature names of a feature service.

    A string feature is categorical unless its mart's contract gives it
    ``meta: feature_role: text`` (the Feast field's tag): then it is text, read by the
    pipeline's :class:`~models_ml.text.ChatTextScorer`.
    """
    numeric: list[str] = []
    categorical: list[str] = []
    text: list[str] = []
    for projection in store.get_feature_service(service).feature_view_projections:
        for field in projection.features:
            if (field.tags or {}).get(ROLE_TAG) == "text":
                text.append(field.name)
            elif str(field.dtype) in _STRING_TYPES:
                categorical.append(field.name)
            else:
                numeric.append(field.name)
    return numeric, categorical, text


def training_entities(
    spark: SparkSession,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    label: str = "churned_within_30d",
) -> DataFrame:
    """Entity rows for training: (customer_id, event_timestamp, label) in a window.

    Args:
        spark: The lakehouse session.
        start: First snapshot date (all by default).
        end: Last snapshot date (all by default).
        label: The column of ``ml.churn_labels`` that is the label; snapshots where it is
            null (no label known) are left out.
    """
    labels = spark.table(LABELS_TABLE).where(F.col(label).isNotNull())
    if start is not None:
        labels = labels.where(F.col("snapshot_date") >= F.lit(start))
    if end is not None:
        labels = labels.where(F.col("snapshot_date") <= F.lit(end))
    return labels.select("customer_id", "event_timestamp", F.col(label).alias("label"))


def historical_features(store: Any, entities: DataFrame) -> tuple[DataFrame, dict[str, Any]]:
    """Point-in-time features of the churn service for the entity rows, lazily.

    Returns:
        The feature frame and the Delta version of every feature table read.
    """
    job = store.get_historical_features(
        entity_df=entities,
        features=store.get_feature_service(FEATURE_SERVICE),
        filter_by_created_timestamp=True,
    )
    return job.to_spark_df(), dict(getattr(job, "source_versions", {}) or {})


def model_config(store: Any, *, text_features: bool = False, **overrides: Any) -> ModelConfig:
    """The churn model's configuration over the feature service's features.

    Args:
        store: The Feast feature store.
        text_features: Also read the service's text features (``recent_chat_text``) with
            the pandas-UDF stage :class:`~models_ml.text.ChatTextScorer`.  Off by default:
            on the generated lakes it moved the held-out ROC AUC by less than its noise
            (``bench/bench_model_families.py``) and costs a Python worker per task.
        **overrides: Any other :class:`ModelConfig` field.
    """
    numeric, categorical, text = service_features(store)
    options: dict[str, Any] = {
        "label_col": "label",
        "family": "logistic",
        "timestamp_col": "event_timestamp",
        "id_cols": ("customer_id",),
        "numeric_cols": tuple(numeric),
        "categorical_cols": tuple(categorical),
        "text_cols": tuple(text) if text_features else (),
        "tuning": "cv",
        "num_folds": 3,
    }
    family = overrides.get("family", "logistic")
    if family == "logistic":
        # The churn model's own grid; other families tune over theirs (DEFAULT_GRIDS).
        options["param_grid"] = (("regParam", (0.001, 0.01, 0.1)), ("elasticNetParam", (0.0, 0.5)))
    if family in ("logistic", "linear"):
        options["max_iter"] = 50
    options.update(overrides)
    return ModelConfig(**options)


def fit_tuning_to_snapshots(
    config: ModelConfig, snapshots: int, *, log: Callable[[str], None] = print
) -> ModelConfig:
    """Fewer time folds when the labels have few snapshot instants.

    The latest instant is held out, and ``num_folds`` expanding windows need
    ``num_folds + 1`` time blocks of the rest, one instant each at least: with fewer
    instants left the folds shrink to what there is (at least two), else tuning falls back
    to the forward train/validation split (one fold).
    """
    usable = snapshots - 1
    if config.tuning != "cv" or usable >= config.num_folds + 1:
        return config
    if usable >= 3:
        log(
            f"train: {snapshots} snapshot instants: {usable - 1} time folds "
            f"instead of {config.num_folds}"
        )
        return dataclasses.replace(config, num_folds=usable - 1)
    log(
        f"train: {snapshots} snapshot instants: too few to cross-validate by time; "
        f"tuning with a forward train/validation split"
    )
    return dataclasses.replace(config, tuning="tvs")


def save_and_register(
    result: TrainResult,
    *,
    name: str,
    versions: dict[str, Any],
    extra: dict[str, Any],
    notes: list[str] | None = None,
    register: bool = True,
    alias: str = registry.DEFAULT_ALIAS,
    log: Callable[[str], None] = print,
    input_example: Any = None,
) -> TrainingRun:
    """Save a model trained on the feature service (with its report) and register it.

    Args:
        result: The training result.
        name: Model name in the lake and in MLflow's registry.
        versions: Delta version of every feature table read.
        extra: More metadata (training window, baselines ...).
        notes: Extra lines for the report's metrics section.
        register: Also log it to MLflow and point ``alias`` at it.
        alias: ``champion`` (what scoring uses) or ``challenger``.
        log: Where progress lines go.
        input_example: A few rows of the features (pandas) for MLflow's signature.
    """
    saved = model_store.save_model(
        result,
        name=name,
        feature_service=FEATURE_SERVICE,
        source_versions=versions,
        extra=extra,
        report_notes=notes,
    )
    report_dir = saved.path / "report"
    registered = None
    if register:
        registered = registry.log_to_mlflow(
            result,
            name=name,
            metadata=saved.metadata,
            report_dir=report_dir,
            alias=alias,
            input_example=input_example,
        )
    log(
        f"train: saved {saved.path}"
        + (f"; registered {registered.model_uri} as {alias}" if registered else "")
    )
    return TrainingRun(
        saved=saved, registered=registered, result=result, report_path=report_dir / "report.md"
    )


@dataclasses.dataclass(frozen=True)
class ServiceTraining:
    """A model trained on the feature service, not yet saved.

    Attributes:
        result: The training result (its config lists the features really used).
        split: The training and held-out parts (lazy, over :attr:`frame`).
        frame: The retrieval, persisted: the caller unpersists it when done.
        versions: The Delta version of every feature table read.
        left_out: Features of the service left out (null on every training row).
    """

    result: TrainResult
    split: Split
    frame: DataFrame
    versions: dict[str, Any]
    left_out: list[str]


def train_on_service(
    store: Any,
    entities: DataFrame,
    config: ModelConfig,
    *,
    label: str,
    add_columns: Callable[[DataFrame], DataFrame] | None = None,
    snapshots: int | None = None,
    log: Callable[[str], None] = print,
) -> ServiceTraining:
    """Pull the service's features for the entity rows, fit the tuning to the snapshots
    there are, split, tune and judge.

    Args:
        store: The Feast feature store.
        entities: ``(customer_id, event_timestamp, label)`` rows (:func:`training_entities`).
        config: The task's model configuration over the service's features.
        label: What the label is, for the progress line (``ml.churn_labels.churned_within_30d``).
        add_columns: Columns the task derives from the features (a baseline forecast).
        snapshots: The entity rows' distinct instants, when the task has counted them.
        log: Where progress lines go.
    """
    frame, versions = historical_features(store, entities)
    if add_columns is not None:
        frame = add_columns(frame)
    if snapshots is None:
        snapshots = entities.select("event_timestamp").distinct().count()
    config = fit_tuning_to_snapshots(config, snapshots, log=log)
    log(
        f"train: {FEATURE_SERVICE} features of {label} ({len(config.feature_cols)} features, "
        f"{config.family}; tables at versions {versions})"
    )
    # One retrieval, read by the split, the tuning, the judging and the task's checks.
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        split = split_holdout(prepare(frame, config), config)
        result = train(frame, config, split=split)
    except BaseException:
        frame.unpersist()
        raise
    left_out = [c for c in config.feature_cols if c not in result.config.feature_cols]
    if left_out:
        log(f"train: left out {left_out}: null on every training row")
    return ServiceTraining(
        result=result, split=split, frame=frame, versions=versions, left_out=left_out
    )


def common_metadata(
    trained: ServiceTraining,
    *,
    start: dt.date | None,
    end: dt.date | None,
    batch_date: dt.date | None = None,
) -> dict[str, Any]:
    """The metadata every task saves beside a model trained on the service.

    ``requested_window``: the snapshot window the job was asked for (the rows it really
    had are ``training_window`` and ``holdout_window``); ``filter_by_created_timestamp``:
    how the features were read; ``features_left_out``: the service's features null on every
    training row; ``batch_date``: the daily job's date that trained it, if one did.
    """
    return {
        "requested_window": {
            "start": str(start) if start else None,
            "end": str(end) if end else None,
        },
        "filter_by_created_timestamp": True,
        "features_left_out": trained.left_out,
        "batch_date": str(batch_date) if batch_date else None,
    }


def log_metrics(result: TrainResult, log: Callable[[str], None] = print) -> None:
    """One progress line with the held-out metrics."""
    log("train: held-out " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(result.metrics.items())))
