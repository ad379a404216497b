"""The generator's own ceiling: AUC of its hidden risk score on the churn labels it made.

Besides the ceiling over the generator's own snapshots, the hidden state of every customer
(episode onset and end, hazards) is kept in ``ops.generator_truth`` so that a model can be
judged against the hidden score *on its own held-out rows* (:func:`ceiling_on`): two AUCs
over different customer-snapshots are not comparable on a small lake.
"""

from __future__ import annotations

import dataclasses
import json

import pyspark.sql.functions as F
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import Column, DataFrame, SparkSession

from features.generate.config import GeneratorConfig
from features.generate.customers import hazard_at, in_episode


def snapshot_days(cfg: GeneratorConfig) -> list[int]:
    """Snapshot day indexes whose label horizon lies (almost) inside the window."""
    return list(range(cfg.snapshot_every, cfg.days - cfg.horizon_days + 1, cfg.snapshot_every))


TRUTH_TABLE = "ops.generator_truth"
TRUTH_COLUMNS = (
    "customer_id",
    "active_day",
    "onset_day",
    "episode_end",
    "hazard_pre",
    "hazard_post",
)


def hidden_score(cfg: GeneratorConfig, day: Column) -> Column:
    """The hidden risk score of a customer-state row on a day-index column.

    In an episode: above 1, rising with the days since its onset; after an episode that
    ended without a churn: 0 (a customer has one episode at most); otherwise the chance that
    an episode starts within the label horizon.  Never uses the drawn churn day.
    """
    return (
        F.when(in_episode(day), 1.0 + F.least(day - F.col("onset_day"), F.lit(35)) / 35.0)
        .when(day >= F.col("episode_end"), 0.0)
        .otherwise(1.0 - F.exp(-float(cfg.horizon_days) * hazard_at(cfg, day)))
    )


def truth_rows(cfg: GeneratorConfig, state: DataFrame) -> DataFrame:
    """The hidden state per customer with the settings :func:`hidden_score` needs.

    ``changes`` is the JSON list of the injected changes (kind, day, date, target, factor,
    the features each moves); ``changed_from`` the first day an injected change applies to
    the customer (their region's data drop, or the price of the plan they are on, from the
    change's day, their activation or their move to that plan; null if none does), whether
    or not they are still a customer then.
    """
    changes = json.dumps(
        [
            {
                **dataclasses.asdict(change),
                "date": cfg.date_of(change.day).isoformat(),
                "moves": list(change.moves),
            }
            for change in cfg.changes
        ]
    )
    touched = F.lit(None).cast("int")

    def earliest(current, hit, start):
        return F.when(hit, F.least(F.coalesce(current, start), start)).otherwise(current)

    for change in cfg.changes:
        day = F.lit(change.day)
        if change.kind == "data_drop":
            hit = F.lit(True) if change.target == "all" else F.col("region") == change.target
            touched = earliest(touched, hit, F.greatest(day, F.col("active_day")))
            continue
        # plan0 until the plan change (if any), plan1 from it
        moved = F.col("change_day")
        on_first = (F.col("plan0") == change.target) & (moved.isNull() | (moved > day))
        touched = earliest(touched, on_first, F.greatest(day, F.col("active_day")))
        on_second = moved.isNotNull() & (F.col("plan1") == change.target)
        touched = earliest(touched, on_second, F.greatest(day, moved, F.col("active_day")))
    return state.select(
        *TRUTH_COLUMNS,
        F.lit(cfg.seed).cast("bigint").alias("seed"),
        F.lit(cfg.start).alias("start_date"),
        F.lit(cfg.rise_day).alias("rise_day"),
        F.lit(cfg.horizon_days).alias("horizon_days"),
        F.lit(changes).alias("changes"),
        touched.cast("int").alias("changed_from"),
    )


def write_truth(cfg: GeneratorConfig, state: DataFrame) -> None:
    """Replace ``ops.generator_truth`` by this generation's hidden state (one Delta commit)."""
    truth_rows(cfg, state).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true"
    ).saveAsTable(TRUTH_TABLE)


def ceiling_on(
    frame: DataFrame, *, customer_col: str, timestamp_col: str, label_col: str
) -> tuple[float | None, int]:
    """AUC of the hidden score on ``frame``'s own rows and labels, and the rows it scored.

    Args:
        frame: Customer-snapshots with a 0/1 label, e.g. a model's held-out rows.
        customer_col: Customer id column.
        timestamp_col: Snapshot instant; its date is the day the score is taken on.
        label_col: The label column.

    Returns:
        ``(auc, rows)``; ``(None, 0)`` without ``ops.generator_truth`` or with one class only.
    """
    spark = frame.sparkSession
    if not spark.catalog.tableExists(TRUTH_TABLE):
        return None, 0
    truth = spark.table(TRUTH_TABLE)
    settings_row = truth.select("start_date", "rise_day", "horizon_days").first()
    if settings_row is None:
        return None, 0
    cfg = GeneratorConfig(
        customers=1,
        days=1,
        start=settings_row["start_date"],
        price_rise_day=settings_row["rise_day"],
        horizon_days=settings_row["horizon_days"],
    )
    rows = frame.select(
        F.col(customer_col).cast("bigint").alias("customer_id"),
        F.datediff(F.to_date(F.col(timestamp_col)), F.lit(cfg.start)).alias("day"),
        F.col(label_col).cast("double").alias("label"),
    ).join(truth.select(*TRUTH_COLUMNS), "customer_id")
    scored = rows.select(hidden_score(cfg, F.col("day")).alias("score"), "label").cache()
    try:
        count = scored.count()
        return ceiling_auc(scored), count
    finally:
        scored.unpersist()


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
    score = hidden_score(cfg, day)
    label = F.col("churn_day").isNotNull() & (F.col("churn_day") <= day + cfg.horizon_days)
    return frame.select(
        "customer_id", "day", score.alias("score"), label.cast("double").alias("label")
    )


def ceiling_auc(snapshots: DataFrame) -> float | None:
    """Area under ROC of the hidden score (None when a class is missing)."""
    classes = snapshots.agg(F.countDistinct("label")).first()[0]
    if classes < 2:
        return None
    evaluator = BinaryClassificationEvaluator(
        rawPredictionCol="score", labelCol="label", metricName="areaUnderROC"
    )
    return float(evaluator.evaluate(snapshots))
