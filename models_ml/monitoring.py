"""Monitoring the churn model after it is trained: drift of features and scores, and how
its past predictions turned out.

- :func:`monitor_day` (:func:`monitor_days` for a backfill): the features and the scores of
  a day against the baselines saved with the model
  (:func:`models_ml.churn.drift_reference`), one row per feature and one for the scores
  (``kind = 'prediction'``) in ``ops.feature_drift``; and the realized performance of
  every past score date whose 30-day labels have matured since, in ``ops.model_performance``;
  and the HTML report of the last 30 days (:mod:`models_ml.monitor_report`).
- :func:`leaned_on`: the features a model relies on, by its weights: drift elsewhere does
  not make retraining due.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame, SparkSession

from features import drift, feast_repo, lakehouse, runlog
from models_ml import churn, model_store
from models_ml.evaluate import auc_interval

PERFORMANCE_TABLE = "ops.model_performance"
PERFORMANCE_DDL = (
    "score_date date, model_name string, model_version string, rows bigint, "
    "positives bigint, auc double, auc_ci_low double, auc_ci_high double, brier double, "
    "mean_probability double, churn_rate double, labels_known_on date, computed_at timestamp"
)
CHURN_EVENTS = "staging.stg_bronze__churn_events"
HORIZON_DAYS = churn.LABEL_HORIZON_DAYS
PREDICTION = "prediction"
# A feature the model leans on has a weight at least this share of its largest.
LEAN_SHARE = 0.1


@dataclasses.dataclass(frozen=True)
class DriftCheck:
    """What monitoring found for one score date.

    Attributes:
        rows: Feature drift rows written to ``ops.feature_drift`` (one per feature).
        drifted: Features flagged (see :class:`features.drift.DriftRule`), largest PSI first.
        plot: The PNG of PSI per feature.
        model_version: The model whose baselines were compared.
        scores: The scores' drift (None when the day is not scored, or the model has no
            score baseline).
        performance: Realized performance rows written for matured score dates.
        report: The HTML report of the last 30 days (see
            :mod:`models_ml.monitor_report`).
    """

    rows: int
    drifted: list[str]
    plot: Path
    model_version: int
    scores: drift.FeatureDrift | None = None
    performance: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    report: Path | None = None


def monitor_day(
    spark: SparkSession,
    day: dt.date,
    *,
    version: int | None = None,
    rule: drift.DriftRule = drift.DEFAULT_RULE,
    log: Callable[[str], None] = print,
) -> DriftCheck:
    """Drift of ``day``'s features and scores, and the performance that matured by ``day``
    (:func:`monitor_days` for one day: what the daily job runs)."""
    return monitor_days(spark, [day], version=version, rule=rule, log=log)[day]


def monitor_days(
    spark: SparkSession,
    days: Sequence[dt.date],
    *,
    version: int | None = None,
    rule: drift.DriftRule = drift.DEFAULT_RULE,
    report: bool = True,
    log: Callable[[str], None] = print,
) -> dict[dt.date, DriftCheck]:
    """Drift of each day's features and scores against the model's baselines, then the
    performance that matured by the last day and its report.

    The model is the champion (what scoring uses) unless ``version`` names another.  The
    PSI and chi-square p-value of every feature of the model, between the baseline saved
    with the model at training time and the features of every customer active at the end
    of each day (through Feast, as scoring gets them), and of each scored day's scores in
    ``predictions.churn_scores`` against the scores of the baseline's day, replace those
    days' rows of ``ops.feature_drift`` for the model; a plot per day goes beside the
    model's other artifacts.  Many days (a backfill) cost one retrieval, one aggregation and
    one Delta commit.  Then :func:`record_performance` as of the last day (its rows on that
    day's check) and, with ``report``, the HTML report of the 30 days up to it.
    """
    days = sorted(set(days))
    if not days:
        raise ValueError("monitor: no day given")
    version = version if version is not None else churn.serving_version()
    if version is None:
        raise model_store.ModelNotFound(
            f"monitor: no saved {churn.MODEL_NAME!r} model; train one first"
        )
    metadata = model_store.read_metadata(churn.MODEL_NAME, version)
    baseline = metadata.get("drift_baseline")
    if not baseline:
        raise ValueError(
            f"monitor: model {churn.MODEL_NAME} v{version} was saved without a drift baseline "
            f"(trained before monitoring existed); retrain it"
        )
    features = churn.day_features(spark, feast_repo.feature_store(), days)
    by_day = drift.psi_by(baseline, features, F.to_date("event_timestamp"), rule=rule)
    missing = [day for day in days if day not in by_day]
    if missing:
        raise ValueError(
            f"monitor: no active customer on {', '.join(map(str, missing))}; "
            "build those days first (features daily)"
        )
    scores = _score_drift(spark, days, metadata, rule)
    drift.write_drift_days(
        spark,
        {day: by_day[day] + ([scores[day]] if day in scores else []) for day in days},
        model_name=churn.MODEL_NAME,
        model_version=str(version),
    )
    checks: dict[dt.date, DriftCheck] = {}
    for day in days:
        found = by_day[day]
        plot = drift.plot_drift(
            found,
            lakehouse.settings().artifacts_dir / "monitoring" / f"feature_drift_{day}.png",
            title=f"Feature drift on {day} vs the baseline of {churn.MODEL_NAME} v{version}",
            rule=rule,
        )
        drifted = drift.drifted_features(found)
        score = scores.get(day)
        log(
            f"monitor: {len(found)} features checked for {day}; "
            + (
                f"drifted (PSI > {rule.min_psi}, p < {rule.level(len(found)):.1e}): "
                f"{', '.join(drifted)}"
                if drifted
                else "no drift"
            )
            + (
                f"; scores PSI {score.psi:.3f} p {score.p_value:.2g}"
                + (" (drifted)" if score.drifted else "")
                if score
                else "; no scores to compare"
            )
            + f"; plot {plot}"
        )
        checks[day] = DriftCheck(
            rows=len(found), drifted=drifted, plot=plot, model_version=version, scores=score
        )
    last = days[-1]
    performance = record_performance(spark, last, log=log)
    page = None
    if report:
        from models_ml import monitor_report

        page = monitor_report.write_report(spark, last, rule=rule)
        log(f"monitor: report {page}")
    checks[last] = dataclasses.replace(checks[last], performance=performance, report=page)
    return checks


def _score_drift(
    spark: SparkSession, days: Sequence[dt.date], metadata: dict[str, Any], rule: drift.DriftRule
) -> dict[dt.date, drift.FeatureDrift]:
    """Each scored day's scores by the model against its score baseline (days the model
    did not score, or a model without a score baseline: absent)."""
    baseline = metadata.get("score_baseline")
    if not baseline or not spark.catalog.tableExists(churn.PREDICTIONS_TABLE):
        return {}
    scored = spark.table(churn.PREDICTIONS_TABLE).where(
        F.col("score_date").isin(list(days))
        & (F.col("model_name") == churn.MODEL_NAME)
        & (F.col("model_version") == str(metadata.get("version")))
    )
    found = drift.psi_by(
        baseline, scored.select("score_date", churn.SCORE_FEATURE), F.col("score_date"), rule=rule
    )
    return {day: dataclasses.replace(rows[0], kind=PREDICTION) for day, rows in found.items()}


def ensure_performance_table(spark: SparkSession) -> str:
    """Create ``ops.model_performance`` (partitioned by ``score_date``) if needed."""
    if not spark.catalog.tableExists(PERFORMANCE_TABLE):
        spark.sql("create database if not exists ops")
        spark.sql(
            f"create table if not exists {PERFORMANCE_TABLE} ({PERFORMANCE_DDL}) "
            "using delta partitioned by (score_date)"
        )
    return spark.sql(f"describe detail {PERFORMANCE_TABLE}").first()["location"]


def matured_dates(spark: SparkSession, day: dt.date) -> list[tuple[dt.date, str]]:
    """Score dates (with the model version that scored them) whose labels are known by
    the end of ``day`` and that ``ops.model_performance`` lacks for that version."""
    if not spark.catalog.tableExists(churn.PREDICTIONS_TABLE):
        return []
    last = day - dt.timedelta(days=HORIZON_DAYS)
    scored = (
        spark.table(churn.PREDICTIONS_TABLE)
        .where((F.col("model_name") == churn.MODEL_NAME) & (F.col("score_date") <= F.lit(last)))
        .select("score_date", "model_version")
        .distinct()
    )
    if spark.catalog.tableExists(PERFORMANCE_TABLE):
        done = (
            spark.table(PERFORMANCE_TABLE)
            .where(F.col("model_name") == churn.MODEL_NAME)
            .select("score_date", "model_version")
        )
        scored = scored.join(done, ["score_date", "model_version"], "left_anti")
    return sorted((row.score_date, row.model_version) for row in scored.collect())


def realized_frame(spark: SparkSession, score_date: dt.date) -> DataFrame:
    """The predictions of ``score_date`` with their realized label: churned within the
    30 days after it (``staging.stg_bronze__churn_events``)."""
    churned = (
        spark.table(CHURN_EVENTS)
        .groupBy("customer_id")
        .agg(F.min("churn_date").alias("churn_date"))
    )
    predictions = spark.table(churn.PREDICTIONS_TABLE).where(
        (F.col("score_date") == F.lit(score_date)) & (F.col("model_name") == churn.MODEL_NAME)
    )
    label = (F.col("churn_date") > F.col("score_date")) & (
        F.col("churn_date") <= F.date_add(F.col("score_date"), HORIZON_DAYS)
    )
    return predictions.join(churned, "customer_id", "left").select(
        "customer_id",
        "score_date",
        "model_version",
        F.col(churn.SCORE_FEATURE),
        F.coalesce(label, F.lit(False)).cast("double").alias("label"),
    )


def record_performance(
    spark: SparkSession,
    day: dt.date,
    *,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Realized ROC AUC (with its 95% interval) and calibration of every score date whose
    30-day labels matured by ``day`` and are not recorded yet, into ``ops.model_performance``.

    Calibration is the Brier score and the mean predicted probability beside the realized
    churn rate.  One Delta commit per date (``replaceWhere`` on date and model): a rerun
    writes the same rows again; a rescored date is measured again for its new version.

    Returns:
        The rows written.
    """
    pending = matured_dates(spark, day)
    if not pending:
        return []
    location = ensure_performance_table(spark)
    written = []
    for score_date, version in pending:
        frame = realized_frame(spark, score_date).cache()
        try:
            stats = frame.agg(
                F.count(F.lit(1)).alias("rows"),
                F.sum("label").alias("positives"),
                F.avg((F.col(churn.SCORE_FEATURE) - F.col("label")) ** 2).alias("brier"),
                F.avg(churn.SCORE_FEATURE).alias("mean_probability"),
                F.avg("label").alias("churn_rate"),
            ).first()
            rows, positives = int(stats["rows"]), int(stats["positives"] or 0)
            auc = None
            if 0 < positives < rows:
                auc = BinaryClassificationEvaluator(
                    rawPredictionCol=churn.SCORE_FEATURE,
                    labelCol="label",
                    metricName="areaUnderROC",
                ).evaluate(frame)
        finally:
            frame.unpersist()
        low, high = (
            auc_interval(auc, positives=positives, negatives=rows - positives)
            if auc is not None
            else (None, None)
        )
        row = {
            "score_date": score_date,
            "model_name": churn.MODEL_NAME,
            "model_version": str(version),
            "rows": rows,
            "positives": positives,
            "auc": auc,
            "auc_ci_low": low,
            "auc_ci_high": high,
            "brier": float(stats["brier"]),
            "mean_probability": float(stats["mean_probability"]),
            "churn_rate": float(stats["churn_rate"]),
            "labels_known_on": score_date + dt.timedelta(days=HORIZON_DAYS),
            "computed_at": runlog.utc_now(),
        }
        spark.createDataFrame([row], PERFORMANCE_DDL).write.format("delta").mode(
            "overwrite"
        ).option(
            "replaceWhere",
            f"score_date = '{score_date.isoformat()}' and model_name = '{churn.MODEL_NAME}'",
        ).save(location)
        written.append(row)
        log(
            f"monitor: realized on {score_date} (v{version}): "
            + (f"AUC {auc:.3f} [{low:.3f}, {high:.3f}]" if auc is not None else "AUC n/a")
            + f", {positives} of {rows} churned, mean score {row['mean_probability']:.3f}"
        )
    return written


def leaned_on(metadata: dict[str, Any], share: float = LEAN_SHARE) -> set[str] | None:
    """Features whose largest weight (over their slots: one per category of a categorical
    one) is at least ``share`` of the model's largest; None when the model has no weights."""
    weights = metadata.get("feature_weights")
    if not weights:  # saved before every feature's weight was kept: its 30 largest slots
        weights = {}
        for slot, weight in metadata.get("top_weights") or []:
            name = str(slot).split("=", 1)[0]
            weights[name] = max(weights.get(name, 0.0), abs(float(weight)))
    if not weights or max(weights.values()) == 0:
        return None
    largest = max(weights.values())
    return {name for name, weight in weights.items() if weight >= share * largest}
