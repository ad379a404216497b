"""The generator's own ceiling: AUC of its hidden risk score on the churn labels it made."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame, SparkSession

from features.generate.config import GeneratorConfig
from features.generate.customers import hazard_at, in_episode


def snapshot_days(cfg: GeneratorConfig) -> list[int]:
    """Snapshot day indexes whose label horizon lies (almost) inside the window."""
    return list(range(cfg.snapshot_every, cfg.days - cfg.horizon_days + 1, cfg.snapshot_every))


def risk_snapshots(spark: SparkSession, cfg: GeneratorConfig, state: DataFrame) -> DataFrame:
    """Customers active at each snapshot with the hidden ``score`` and the ``label``.

    The score uses only the state at the snapshot (in an episode or not, the hazard), never
    the drawn churn day; the label is churn within ``horizon_days`` after the snapshot.
    """
    days = snapshot_days(cfg)
    if not days:
        return spark.createDataFrame([], "customer_id bigint, day int, score double, label double")
    snaps = spark.createDataFrame([(d,) for d in days], "day int")
    day = F.col("day")
    frame = state.crossJoin(F.broadcast(snaps)).where(
        (F.col("active_day") <= day) & (F.col("churn_day").isNull() | (F.col("churn_day") > day))
    )
    score = F.when(
        in_episode(day), 1.0 + F.least(day - F.col("onset_day"), F.lit(35)) / 35.0
    ).otherwise(1.0 - F.exp(-float(cfg.horizon_days) * hazard_at(cfg, day)))
    label = F.col("churn_day").isNotNull() & (F.col("churn_day") <= day + cfg.horizon_days)
    return frame.select("customer_id", "day", score.alias("score"),
                        label.cast("double").alias("label"))


def ceiling_auc(snapshots: DataFrame) -> float | None:
    """Area under ROC of the hidden score (None when a class is missing)."""
    classes = snapshots.agg(F.countDistinct("label")).first()[0]
    if classes < 2:
        return None
    evaluator = BinaryClassificationEvaluator(
        rawPredictionCol="score", labelCol="label", metricName="areaUnderROC"
    )
    return float(evaluator.evaluate(snapshots))
