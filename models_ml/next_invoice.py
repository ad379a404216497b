"""The next-invoice regression: the churn package's training code on a second task.

Each labelled snapshot of ``ml.churn_labels`` that has a ``next_invoice_amount`` (the
first invoice issued in the 31 days after the snapshot) is an entity row; its features
are the ``churn_v1`` feature service pulled through Feast exactly as the churn job pulls
them (:func:`models_ml.lake.train_on_service`: point in time, with
``filter_by_created_timestamp``, never reading the feature tables directly).  A
``LinearRegression`` or ``GBTRegressor`` is tuned like the churn model (time-ordered
folds or a forward train/validation cut, then a later held-out part) and judged with
``RegressionEvaluator`` (RMSE, MAE, R²) against the naive forecast "the next invoice
equals the last one": the service's own ``last_invoice_amount`` feature (view
``customer_billing``), copied into a separate baseline column because a
:class:`~models_ml.config.ModelConfig` column may not be both a feature and the
baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from features import feast_repo
from models_ml import model_store, registry
from models_ml.config import ModelConfig
from models_ml.evaluate import regression_metrics
from models_ml.lake import (
    FEATURE_SERVICE,
    LABELS_TABLE,
    common_metadata,
    log_metrics,
    model_config,
    save_and_register,
    train_on_service,
    training_entities,
)
from models_ml.training import TrainResult

MODEL_NAME = "next_invoice"
LABEL_COLUMN = "next_invoice_amount"
#: The service's feature that is the naive forecast, and the copy of it the config judges.
BASELINE_FEATURE = "last_invoice_amount"
BASELINE_COL = "baseline_last_invoice_amount"
#: Grids tuned over by default, per family (the estimator's own param names).
PARAM_GRIDS: Mapping[str, tuple[tuple[str, tuple[Any, ...]], ...]] = {
    "linear": (("regParam", (0.0, 0.01, 0.1)), ("elasticNetParam", (0.0, 0.5))),
    "gbt_regressor": (("maxDepth", (3, 5)), ("maxIter", (20, 50))),
}


@dataclasses.dataclass(frozen=True)
class NextInvoiceRun:
    """What one next-invoice training job produced.

    Attributes:
        saved: The model saved in the lake (its metadata holds versions and metrics).
        registered: Its MLflow registry entry, or ``None`` when not registered.
        result: The training result.  ``result.metrics``: the model's ``rmse``, ``mae``,
            ``r2`` over the ``n`` held-out rows; the baseline's ``baseline_rmse``,
            ``baseline_mae``, ``baseline_r2`` over the ``baseline_n`` of them that have
            a last invoice; and the model's ``model_rmse_on_baseline_rows`` (``mae``,
            ``r2``) over those same rows, to compare like for like.
        report_path: The Markdown report beside the saved model.
        holdout: The held-out rows (lazy; features, ``label`` and the baseline column).
    """

    saved: model_store.SavedModel
    registered: registry.RegisteredModel | None
    result: TrainResult
    report_path: Path
    holdout: DataFrame


def invoice_entities(
    spark: SparkSession, *, start: dt.date | None = None, end: dt.date | None = None
) -> DataFrame:
    """Entity rows: (customer_id, event_timestamp, label = next invoice amount) in a window.

    Snapshots without an invoice in the 31 days after them (customers who churned or are
    not billed in that month) have no label and are left out.
    """
    entities = training_entities(spark, start=start, end=end, label=LABEL_COLUMN)
    return entities.withColumn("label", F.col("label").cast("double"))


def add_baseline(features: DataFrame) -> DataFrame:
    """Add the naive forecast column: the last invoice amount known at the snapshot."""
    if BASELINE_FEATURE not in features.columns:
        raise KeyError(
            f"add_baseline: the {FEATURE_SERVICE} features lack {BASELINE_FEATURE!r} "
            f"(view customer_billing; columns: {features.columns}); the naive baseline "
            "needs it in the feature service"
        )
    return features.withColumn(BASELINE_COL, F.col(BASELINE_FEATURE).cast("double"))


def invoice_config(
    store: Any, *, family: str = "linear", tuning: str = "cv", **overrides: Any
) -> ModelConfig:
    """The next-invoice model's configuration over the feature service's features.

    It is the churn job's :func:`~models_ml.lake.model_config` with a regression
    family, the family's grid of :data:`PARAM_GRIDS` and the last-invoice baseline.
    """
    if family not in PARAM_GRIDS:
        raise ValueError(
            f"invoice_config: family {family!r} is not a regressor; use one of "
            f"{sorted(PARAM_GRIDS)}"
        )
    options: dict[str, Any] = {
        "family": family,
        "tuning": tuning,
        "baseline_col": BASELINE_COL,
        "param_grid": PARAM_GRIDS[family],
    }
    options.update(overrides)
    return model_config(store, **options)


def judge_on_baseline_rows(result: TrainResult, holdout: DataFrame) -> dict[str, float]:
    """The model's RMSE, MAE and R² on the held-out rows that have a baseline value.

    ``baseline_*`` metrics skip rows without a last invoice; these are the model's on
    exactly those rows, so the two compare like for like.
    """
    covered = holdout.where(F.col(BASELINE_COL).isNotNull())
    metrics = regression_metrics(result.score(covered))
    return {
        "baseline_n": metrics["n"],
        **{f"model_{name}_on_baseline_rows": metrics[name] for name in ("rmse", "mae", "r2")},
    }


def train_next_invoice_model(
    spark: SparkSession,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    family: str = "linear",
    tuning: str = "cv",
    register: bool = True,
    log: Callable[[str], None] = print,
    **overrides: Any,
) -> NextInvoiceRun:
    """Train, judge against the last-invoice baseline, report, save and register.

    Args:
        spark: The lakehouse session.
        start: First snapshot date of the training window (all by default).
        end: Last snapshot date of the training window (all by default).
        family: ``linear`` (``LinearRegression``) or ``gbt_regressor``.
        tuning: ``cv`` (time-block folds) or ``tvs`` (forward train/validation cut).
        register: Also log the model to MLflow and alias it ``champion``.
        log: Where progress lines go.
        **overrides: Fields of :class:`ModelConfig` to change (``num_folds``,
            ``param_grid``, ``holdout_start`` ...).
    """
    store = feast_repo.feature_store()
    entities = invoice_entities(spark, start=start, end=end)
    trained = train_on_service(
        store,
        entities,
        invoice_config(store, family=family, tuning=tuning, **overrides),
        label=f"{LABELS_TABLE}.{LABEL_COLUMN}",
        add_columns=add_baseline,
        log=log,
    )
    try:
        result = dataclasses.replace(
            trained.result,
            metrics={
                **trained.result.metrics,
                **judge_on_baseline_rows(trained.result, trained.split.holdout),
            },
        )
    finally:
        trained.frame.unpersist()
    log_metrics(result, log)
    extra = {
        **common_metadata(trained, start=start, end=end),
        "baseline": {"feature": BASELINE_FEATURE, "column": BASELINE_COL},
    }
    run = save_and_register(
        result, name=MODEL_NAME, versions=trained.versions, extra=extra, register=register, log=log
    )
    return NextInvoiceRun(
        saved=run.saved,
        registered=run.registered,
        result=result,
        report_path=run.report_path,
        holdout=trained.split.holdout,
    )
