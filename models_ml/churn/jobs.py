"""The churn jobs over the lakehouse: train through Feast, and score a day.

Training builds its entity frame from ``ml.churn_labels`` (customer, snapshot instant,
label), pulls the ``churn_v1`` feature service through Feast's
``get_historical_features`` (our Delta offline store, with ``filter_by_created_timestamp``
so that no value written after a snapshot leaks into it) as a lazy Spark DataFrame,
and tunes, judges, reports and saves the model.  Scoring gets every active customer's
features as of the end of a day the same way and replaces that day's rows of
``predictions.churn_scores`` in one Delta commit.
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

from features import drift, feast_repo, lakehouse
from features.generate import risk
from models_ml.churn import persist
from models_ml.churn.config import ModelConfig
from models_ml.churn.train import TrainResult, score, train

FEATURE_SERVICE = "churn_v1"
MODEL_NAME = "churn"
LABELS_TABLE = "ml.churn_labels"
SPINE_TABLE = "staging.int_customer_days_spanned"
PREDICTIONS_TABLE = "predictions.churn_scores"
PREDICTIONS_DDL = (
    "customer_id bigint, score_date date, churn_probability double, risk_decile int, "
    "model_name string, model_version string, scored_at timestamp"
)
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

    saved: persist.SavedModel
    registered: persist.RegisteredModel | None
    result: TrainResult
    report_path: Path


def service_features(store: Any, service: str = FEATURE_SERVICE) -> tuple[list[str], list[str]]:
    """Return the numeric and the categorical feature names of a feature service."""
    numeric, categorical = [], []
    for projection in store.get_feature_service(service).feature_view_projections:
        for field in projection.features:
            (categorical if str(field.dtype) in _STRING_TYPES else numeric).append(field.name)
    return numeric, categorical


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


def model_config(store: Any, **overrides: Any) -> ModelConfig:
    """The churn model's configuration over the feature service's features."""
    numeric, categorical = service_features(store)
    options: dict[str, Any] = {
        "label_col": "label",
        "family": "logistic",
        "timestamp_col": "event_timestamp",
        "id_cols": ("customer_id",),
        "numeric_cols": tuple(numeric),
        "categorical_cols": tuple(categorical),
        "param_grid": (("regParam", (0.001, 0.01, 0.1)), ("elasticNetParam", (0.0, 0.5))),
        "tuning": "cv",
        "num_folds": 3,
        "max_iter": 50,
    }
    options.update(overrides)
    return ModelConfig(**options)


def fit_tuning_to_snapshots(
    config: ModelConfig, snapshots: int, *, log: Callable[[str], None] = print
) -> ModelConfig:
    """Fewer time folds when the labels have few snapshot instants.

    The latest instant is held out and each time block of the cross-validation needs
    one of the rest: with fewer than ``num_folds`` left, the folds shrink to what there
    is (at least two), else tuning falls back to the forward train/validation split.
    """
    usable = snapshots - 1
    if config.tuning != "cv" or usable >= config.num_folds:
        return config
    if usable >= 2:
        log(f"train: {snapshots} snapshot instants: {usable} time folds "
            f"instead of {config.num_folds}")
        return dataclasses.replace(config, num_folds=usable)
    log(f"train: {snapshots} snapshot instants: too few to cross-validate by time; "
        f"tuning with a forward train/validation split")
    return dataclasses.replace(config, tuning="tvs")


def train_churn_model(
    spark: SparkSession,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    batch_date: dt.date | None = None,
    log: Callable[[str], None] = print,
    **config_overrides: Any,
) -> TrainingRun:
    """Train, judge, report, save and register the churn model.

    Args:
        spark: The lakehouse session.
        start: First snapshot date of the training window (all by default).
        end: Last snapshot date of the training window (all by default).
        batch_date: The daily job's date that trained it (kept in the metadata).
        log: Where progress lines go.
        **config_overrides: Fields of :class:`ModelConfig` to change.
    """
    store = feast_repo.feature_store()
    entities = training_entities(spark, start=start, end=end)
    snapshots = entities.select("event_timestamp").distinct().count()
    if snapshots == 0:
        raise ValueError(
            f"train: {LABELS_TABLE} has no labelled snapshot"
            + (f" between {start} and {end}" if start or end else "")
            + ": a snapshot is labelled once its 30-day horizon has passed; the lake needs "
            "more days of data (or a wider training window)")
    frame, versions = historical_features(store, entities)
    config = fit_tuning_to_snapshots(model_config(store, **config_overrides), snapshots,
                                     log=log)
    log(f"train: {FEATURE_SERVICE} features of {LABELS_TABLE} ({len(config.feature_cols)} "
        f"features; tables at versions {versions})")
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)  # trained on, then profiled
    result = train(frame, config)
    baseline = drift.profile(frame, numeric_cols=result.config.numeric_cols,
                             categorical_cols=result.config.categorical_cols)
    frame.unpersist()
    log("train: held-out " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(result.metrics.items())))
    ceiling = holdout_ceiling(entities, result)
    notes = []
    if ceiling["auc"] is not None:
        auc = result.metrics.get("areaUnderROC")
        share = (f"; the model's {auc:.4f} is {100 * auc / ceiling['auc']:.0f}% of it"
                 if auc is not None else "")
        notes.append(f"generator's hidden risk score on the same {ceiling['rows']} held-out "
                     f"rows: ROC AUC {ceiling['auc']:.4f}{share}")
        log(f"train: {notes[-1]}")
    extra = {"training_window": {"start": str(start) if start else None,
                                 "end": str(end) if end else None},
             "filter_by_created_timestamp": True,
             "batch_date": str(batch_date) if batch_date else None,
             "drift_baseline": baseline,
             "holdout_ceiling": ceiling}
    return save_and_register(result, name=MODEL_NAME, versions=versions, extra=extra,
                             notes=notes, log=log)


def save_and_register(
    result: TrainResult,
    *,
    name: str,
    versions: dict[str, Any],
    extra: dict[str, Any],
    notes: list[str] | None = None,
    register: bool = True,
    log: Callable[[str], None] = print,
) -> TrainingRun:
    """Save a model trained on the feature service (with its report) and register it.

    Args:
        result: The training result.
        name: Model name in the lake and in MLflow's registry.
        versions: Delta version of every feature table read.
        extra: More metadata (training window, baselines ...).
        notes: Extra lines for the report's metrics section.
        register: Also log it to MLflow and alias it ``champion``.
        log: Where progress lines go.
    """
    saved = persist.save_model(
        result, name=name, feature_service=FEATURE_SERVICE,
        source_versions=versions, extra=extra, report_notes=notes,
    )
    report_dir = saved.path / "report"
    registered = None
    if register:
        registered = persist.log_to_mlflow(
            result, name=name, metadata=saved.metadata, report_dir=report_dir
        )
    log(f"train: saved {saved.path}"
        + (f"; registered {registered.model_uri} as champion" if registered else ""))
    return TrainingRun(saved=saved, registered=registered, result=result,
                       report_path=report_dir / "report.md")


def holdout_ceiling(entities: DataFrame, result: Any) -> dict[str, Any]:
    """AUC of the generator's hidden risk score on the model's own held-out rows.

    On generated data (``ops.generator_truth`` exists) this is the fair ceiling for the
    model's held-out AUC: same customers, same snapshots, same labels.  Elsewhere
    ``{"auc": None, "rows": 0}``.
    """
    start = result.windows.get("holdout", {}).get("start")
    if result.split_kind != "time" or start is None:
        return {"auc": None, "rows": 0}
    held = entities.where(F.col("event_timestamp") >= F.lit(start).cast("timestamp"))
    auc, rows = risk.ceiling_on(held, customer_col="customer_id",
                                timestamp_col="event_timestamp", label_col="label")
    return {"auc": auc, "rows": rows}


def trained_for(batch_date: dt.date) -> int | None:
    """The saved version the daily job trained on ``batch_date``, if it is whole.

    Whole means saved and registered (and promoted again, in case a crash came between
    the two).  A version saved but never registered is discarded, so that training again
    saves it under the same number, as a run without the crash would have.
    """
    for version in reversed(persist.saved_versions(MODEL_NAME)):
        metadata = persist.read_metadata(MODEL_NAME, version)
        if metadata.get("batch_date") != str(batch_date):
            continue
        registered = persist.registered_version(MODEL_NAME, version)
        if registered is None:
            persist.discard_version(MODEL_NAME, version)
            return None
        persist.promote(MODEL_NAME, registered)
        return version
    return None


def active_customers(spark: SparkSession, day: dt.date) -> DataFrame:
    """Entity rows for scoring: every customer active on ``day``, as of its end."""
    return (
        spark.table(SPINE_TABLE)
        .where(F.col("feature_date") == F.lit(day))
        .select(
            "customer_id",
            (F.lit(day).cast("timestamp") + F.expr("INTERVAL 86399 SECONDS")).alias(
                "event_timestamp"
            ),
        )
    )


def _deciles(scored: DataFrame) -> DataFrame:
    """Risk decile 10 = the riskiest tenth, from approximate quantiles (no global sort)."""
    cuts = scored.approxQuantile("churn_probability", [i / 10 for i in range(1, 10)], 0.001)
    decile = F.lit(1)
    for cut in cuts:
        decile = decile + F.when(F.col("churn_probability") > F.lit(cut), 1).otherwise(0)
    return scored.withColumn("risk_decile", decile.cast("int"))


def score_day(
    spark: SparkSession,
    day: dt.date,
    *,
    version: int | None = None,
    promoted: bool = False,
    log: Callable[[str], None] = print,
) -> int:
    """Score every active customer as of the end of ``day`` into the predictions table.

    Args:
        spark: The lakehouse session.
        day: The score date.
        version: Saved model version; the newest saved one by default.
        promoted: Use the registry's promoted (``champion``) version instead.
        log: Where progress lines go.

    Returns:
        Rows written for ``day`` (that day's earlier rows are replaced atomically).
    """
    if promoted:
        model, metadata = persist.load_promoted(MODEL_NAME)
    else:
        model, metadata = persist.load_model(MODEL_NAME, version=version)
    store = feast_repo.feature_store()
    features, _ = historical_features(store, active_customers(spark, day))
    config = model_config(store)
    scored = score(model, features, config=config, threshold=metadata.get("threshold"))
    scored = scored.select(
        "customer_id",
        F.lit(day).alias("score_date"),
        F.col("score").cast("double").alias("churn_probability"),
    )
    scored = _deciles(scored.cache())
    out = scored.select(
        "customer_id", "score_date", "churn_probability", "risk_decile",
        F.lit(MODEL_NAME).alias("model_name"),
        F.lit(str(metadata.get("version", version))).alias("model_version"),
        F.current_timestamp().alias("scored_at"),
    )
    lakehouse.ensure_databases(spark, databases=("predictions",))
    if not spark.catalog.tableExists(PREDICTIONS_TABLE):
        spark.createDataFrame([], PREDICTIONS_DDL).write.format("delta").partitionBy(
            "score_date").saveAsTable(PREDICTIONS_TABLE)
    (
        out.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"score_date = '{day.isoformat()}'")
        .saveAsTable(PREDICTIONS_TABLE)
    )
    rows = spark.table(PREDICTIONS_TABLE).where(F.col("score_date") == F.lit(day)).count()
    scored.unpersist()
    log(f"score: {rows:,} customers scored for {day} with {MODEL_NAME} "
        f"v{metadata.get('version', version)}")
    return rows


@dataclasses.dataclass(frozen=True)
class DriftCheck:
    """What monitoring found for one score date.

    Attributes:
        rows: Drift rows written to ``ops.feature_drift`` (one per feature).
        drifted: Features whose PSI passed the threshold, most drifted first.
        plot: The PNG of PSI per feature.
        model_version: The model whose training set is the baseline.
    """

    rows: int
    drifted: list[str]
    plot: Path
    model_version: int


def monitor_day(
    spark: SparkSession,
    day: dt.date,
    *,
    version: int | None = None,
    threshold: float = drift.DEFAULT_THRESHOLD,
    log: Callable[[str], None] = print,
) -> DriftCheck:
    """Feature drift of ``day``'s scoring set against the model's training set.

    The population stability index of every feature of the model, between the profile
    saved with the model at training time and the features of every active customer as
    of the end of ``day`` (through Feast, as scoring gets them), replaces ``day``'s rows
    of ``ops.feature_drift`` for the model; a plot goes beside the model's other artifacts.
    """
    versions = persist.saved_versions(MODEL_NAME)
    if not versions:
        raise persist.ModelNotFound(f"monitor: no saved {MODEL_NAME!r} model; train one first")
    version = version if version is not None else versions[-1]
    metadata = persist.read_metadata(MODEL_NAME, version)
    baseline = metadata.get("drift_baseline")
    if not baseline:
        raise ValueError(
            f"monitor: model {MODEL_NAME} v{version} was saved without a drift baseline "
            f"(trained before monitoring existed); retrain it")
    store = feast_repo.feature_store()
    features, _ = historical_features(store, active_customers(spark, day))
    found = drift.psi(baseline, features)
    rows = drift.write_drift(spark, found, score_date=day, model_name=MODEL_NAME,
                             model_version=str(version), threshold=threshold)
    plot = drift.plot_drift(
        found,
        lakehouse.settings().artifacts_dir / "monitoring" / f"feature_drift_{day}.png",
        title=f"Feature drift on {day} vs the training set of {MODEL_NAME} v{version}",
        threshold=threshold,
    )
    drifted = drift.drifted_features(found, threshold)
    log(f"monitor: {rows} features checked for {day}; "
        + (f"drifted (PSI > {threshold}): {', '.join(drifted)}" if drifted else "no drift")
        + f"; plot {plot}")
    return DriftCheck(rows=rows, drifted=drifted, plot=plot, model_version=version)

