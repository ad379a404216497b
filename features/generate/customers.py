"""Customers and their hidden churn model: one row of latent state per customer.

Each customer has observable drivers (contract, network quality -> dropped calls, payment
stress -> late/failed payments, exposure to a price rise) and a hidden noise term.  They set
a daily hazard of a *dissatisfaction episode*; during an episode usage falls, calls drop more
often and angry chats mentioning cancelling or competitors appear; most episodes end in churn
10-35 days after they start.  So churn follows behaviour that features of the past can see.
"""

from __future__ import annotations

import calendar
import math

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from features.generate.config import GeneratorConfig
from features.generate.hashing import normal, pick, uniform, weighted

REGIONS = ["north", "south", "east", "west", "central"]
CONTRACTS = [("month-to-month", 0.5), ("one-year", 0.3), ("two-year", 0.2)]
PLANS: list[tuple[str, str, float, int]] = [
    ("basic", "Basic", 15.0, 2),
    ("standard", "Standard", 25.0, 10),
    ("plus", "Plus", 35.0, 30),
    ("max", "Max", 50.0, 100),
]
RAISED_PLANS = {"standard": 1.20, "plus": 1.15}


def day_date(cfg: GeneratorConfig, day: Column) -> Column:
    """Date of a day-index column."""
    return F.date_add(F.lit(cfg.start), day.cast("int"))


def day_time(cfg: GeneratorConfig, day: Column, seconds: Column) -> Column:
    """Timestamp at ``seconds`` after midnight of a day-index column (UTC)."""
    epoch = _epoch(cfg)
    return F.timestamp_seconds(F.lit(epoch) + day.cast("long") * 86400 + seconds.cast("long"))


def _epoch(cfg: GeneratorConfig) -> int:
    return calendar.timegm(cfg.start.timetuple())


def customer_state(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
    """Return the latent state of every customer (day columns are indexes from ``start``)."""
    seed = cfg.seed
    cid = F.col("customer_id")

    def u(salt: str) -> Column:
        return uniform(seed, salt, cid)

    plan_ids = [plan[0] for plan in PLANS]
    frame = spark.range(1, cfg.customers + 1).withColumnRenamed("id", "customer_id")
    frame = frame.select(
        "customer_id",
        F.when(u("new") < cfg.new_customer_share, F.floor(u("signup") * cfg.days))
        .otherwise(-1 - F.floor(u("age") * 1000))
        .cast("int")
        .alias("signup_day"),
        pick(REGIONS, u("region")).alias("region"),
        weighted([("consumer", 0.8), ("business", 0.2)], u("segment")).alias("segment"),
        (1950 + F.floor(u("birth") * 55)).cast("int").alias("birth_year"),
        weighted(CONTRACTS, u("contract")).alias("contract_type"),
        weighted(
            [("basic", 0.3), ("standard", 0.35), ("plus", 0.25), ("max", 0.1)], u("plan")
        ).alias("plan0"),
        (0.02 + 0.12 * F.pow(u("network"), 2)).alias("drop_base"),
        F.pow(u("stress"), 3).alias("stress"),
        (0.4 + 1.2 * u("intensity")).alias("usage_mult"),
        (0.02 * u("roam")).alias("roam_p"),
        F.format_string("cell-%04d", F.floor(u("cell") * 500).cast("int")).alias("home_cell"),
        (0.5 * normal(seed, "noise", cid)).alias("noise"),
    )
    frame = frame.withColumn("active_day", F.greatest(F.col("signup_day"), F.lit(0)))
    change = F.col("active_day") + 1 + F.floor(u("change_day") * (cfg.days - F.col("active_day")))
    next_plan = F.element_at(
        F.array(*[F.lit(p) for p in plan_ids[1:] + plan_ids[:1]]),
        F.array_position(F.array(*[F.lit(p) for p in plan_ids]), F.col("plan0")).cast("int"),
    )
    frame = frame.select(
        "*",
        F.when((u("change") < 0.1) & (change < cfg.days), change.cast("int")).alias("change_day"),
        next_plan.alias("plan1"),
        (0.03 + 0.30 * F.col("stress")).alias("late_p"),
        (0.01 + 0.12 * F.col("stress")).alias("fail_p"),
    )
    rise = cfg.rise_day
    plan_at_rise = F.when(F.col("change_day") <= rise, F.col("plan1")).otherwise(F.col("plan0"))
    exposed = plan_at_rise.isin(*RAISED_PLANS) & (F.col("active_day") < rise)
    log_hazard = (
        F.lit(math.log(cfg.base_hazard))
        + F.when(F.col("contract_type") == "month-to-month", 0.9)
        .when(F.col("contract_type") == "two-year", -0.6)
        .otherwise(0.0)
        + 12.0 * (F.col("drop_base") - 0.06)
        + 5.0 * (F.col("late_p") - 0.10)
        + F.col("noise")
    )
    frame = frame.select(
        "*",
        exposed.alias("is_price_exposed"),
        F.exp(log_hazard).alias("hazard_pre"),
        F.exp(log_hazard + F.when(exposed, 1.3).otherwise(0.0)).alias("hazard_post"),
    )
    # Onset of the episode: invert the piecewise-constant cumulative hazard.
    draw = -F.log(1.0 - u("onset"))
    before = F.greatest(F.lit(rise) - F.col("active_day"), F.lit(0))
    onset = F.when(
        draw < F.col("hazard_pre") * before, F.col("active_day") + draw / F.col("hazard_pre")
    ).otherwise(
        F.greatest(F.col("active_day"), F.lit(rise))
        + (draw - F.col("hazard_pre") * before) / F.col("hazard_post")
    )
    frame = frame.withColumn("onset_day", F.least(F.floor(onset), F.lit(10**6)).cast("int"))
    delay = (10 + F.floor(u("delay") * 26)).cast("int")
    churns = u("churns") < cfg.churn_given_episode
    frame = frame.select(
        "*",
        (F.col("onset_day") + delay).alias("episode_end"),
        F.when(churns & (F.col("onset_day") + delay < cfg.days), F.col("onset_day") + delay)
        .cast("int")
        .alias("churn_day"),
    )
    return frame


def hazard_at(cfg: GeneratorConfig, day: Column) -> Column:
    """The customer's episode hazard on a day-index column."""
    return F.when(day >= cfg.rise_day, F.col("hazard_post")).otherwise(F.col("hazard_pre"))


def in_episode(day: Column) -> Column:
    """Whether the customer is inside a dissatisfaction episode on ``day``."""
    return (day >= F.col("onset_day")) & (day < F.col("episode_end"))


def churn_reason(cfg: GeneratorConfig) -> Column:
    """The stated reason of a churn: the strongest driver, else a competitor's offer."""
    return (
        F.when(F.col("is_price_exposed") & (F.col("churn_day") >= cfg.rise_day), "price")
        .when(F.col("drop_base") > 0.09, "network")
        .when(F.col("late_p") > 0.15, "billing")
        .otherwise(
            pick(
                ["competitor", "competitor", "service", "moving"],
                uniform(cfg.seed, "reason", F.col("customer_id")),
            )
        )
    )


def customers_rows(cfg: GeneratorConfig, state: DataFrame) -> DataFrame:
    """Customer records: one at activation, a second for the 5% whose segment changes."""
    u = uniform(cfg.seed, "update", F.col("customer_id"))
    update_day = (
        F.col("active_day")
        + 1
        + F.floor(
            uniform(cfg.seed, "update_day", F.col("customer_id")) * (cfg.days - F.col("active_day"))
        )
    )
    base = state.select(
        "customer_id",
        "signup_day",
        "region",
        "segment",
        "birth_year",
        F.col("active_day").alias("day"),
    )
    updated = state.where(
        (u < 0.05)
        & (update_day < cfg.days)
        & (F.col("churn_day").isNull() | (update_day < F.col("churn_day")))
    ).select(
        "customer_id",
        "signup_day",
        "region",
        F.when(F.col("segment") == "consumer", "business").otherwise("consumer").alias("segment"),
        "birth_year",
        update_day.cast("int").alias("day"),
    )
    seconds = F.floor(uniform(cfg.seed, "cust_t", F.col("customer_id"), F.col("day")) * 3600 * 6)
    return base.unionByName(updated).select(
        "customer_id",
        day_date(cfg, F.col("signup_day")).alias("signup_date"),
        "region",
        "segment",
        "birth_year",
        day_time(cfg, F.col("day"), seconds).alias("updated_at"),
        "day",
    )


def price_steps(cfg: GeneratorConfig) -> dict[str, list[tuple[int, float]]]:
    """Each plan's prices as ``(from day, price)``, oldest first: the catalogue price, the
    built-in price rise, then the injected ``price_rise`` changes (each on the price of its
    day)."""
    steps: dict[str, list[tuple[int, float]]] = {}
    for pid, _, price, _ in PLANS:
        moves = (
            [(cfg.rise_day, RAISED_PLANS[pid])]
            if pid in RAISED_PLANS and cfg.rise_day < cfg.days
            else []
        )
        moves += [
            (change.day, change.factor)
            for change in cfg.changes
            if change.kind == "price_rise" and change.target == pid and change.day < cfg.days
        ]
        current, timeline = price, [(-365, price)]
        for day, factor in sorted(moves):
            current = round(current * factor, 2)
            timeline.append((day, current))
        steps[pid] = timeline
    return steps


def plans_rows(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
    """The plan catalogue on day 0, and each new price on the day it takes effect (a price
    that holds from day 0 on is billed but, as always, not sent as a new catalogue row)."""
    names = {pid: (name, gb) for pid, name, _, gb in PLANS}
    rows = [
        (pid, names[pid][0], price, names[pid][1], day, max(day, 0))
        for pid, timeline in price_steps(cfg).items()
        for day, price in timeline
        if day == timeline[0][0] or day > 0
    ]
    frame = spark.createDataFrame(
        rows,
        "plan_id string, plan_name string, monthly_price double, data_gb int, "
        "effective_day int, day int",
    )
    return frame.select(
        "plan_id",
        "plan_name",
        "monthly_price",
        "data_gb",
        day_date(cfg, F.col("effective_day")).alias("effective_from"),
        day_time(cfg, F.col("day"), F.lit(0)).alias("updated_at"),
        "day",
    )


def subscriptions_rows(cfg: GeneratorConfig, state: DataFrame) -> DataFrame:
    """Subscription records: opened, closed by a plan change (and the new one), ended by churn."""
    cid = F.col("customer_id")
    churn = F.col("churn_day")
    changed = F.col("change_day").isNotNull() & (churn.isNull() | (F.col("change_day") < churn))
    first = state.select(
        (cid * 10 + 1).alias("subscription_id"),
        "customer_id",
        F.col("plan0").alias("plan_id"),
        "contract_type",
        F.col("signup_day").alias("start_day"),
        F.lit(None).cast("int").alias("end_day"),
        F.col("active_day").alias("day"),
    )
    closed = state.where(changed).select(
        (cid * 10 + 1).alias("subscription_id"),
        "customer_id",
        F.col("plan0").alias("plan_id"),
        "contract_type",
        F.col("signup_day").alias("start_day"),
        (F.col("change_day") - 1).alias("end_day"),
        F.col("change_day").alias("day"),
    )
    second = state.where(changed).select(
        (cid * 10 + 2).alias("subscription_id"),
        "customer_id",
        F.col("plan1").alias("plan_id"),
        "contract_type",
        F.col("change_day").alias("start_day"),
        F.lit(None).cast("int").alias("end_day"),
        F.col("change_day").alias("day"),
    )
    ended = state.where(churn.isNotNull()).select(
        (cid * 10 + F.when(changed, 2).otherwise(1)).alias("subscription_id"),
        "customer_id",
        F.when(changed, F.col("plan1")).otherwise(F.col("plan0")).alias("plan_id"),
        "contract_type",
        F.when(changed, F.col("change_day")).otherwise(F.col("signup_day")).alias("start_day"),
        churn.alias("end_day"),
        churn.alias("day"),
    )
    frame = first.unionByName(closed).unionByName(second).unionByName(ended)
    return frame.select(
        "subscription_id",
        "customer_id",
        "plan_id",
        "contract_type",
        day_date(cfg, F.col("start_day")).alias("start_date"),
        day_date(cfg, F.col("end_day")).alias("end_date"),
        day_time(cfg, F.col("day"), F.lit(7 * 3600) + F.col("subscription_id") % 3600).alias(
            "updated_at"
        ),
        "day",
    )


def churn_rows(cfg: GeneratorConfig, state: DataFrame) -> DataFrame:
    """Churn events on the day they happen."""
    seconds = 8 * 3600 + F.floor(uniform(cfg.seed, "churn_t", F.col("customer_id")) * 36000)
    return state.where(F.col("churn_day").isNotNull()).select(
        "customer_id",
        day_time(cfg, F.col("churn_day"), seconds).alias("churned_at"),
        F.when(
            uniform(cfg.seed, "reason_note", F.col("customer_id")) < cfg.dirt.quoted_newline,
            F.concat(churn_reason(cfg), F.lit("\n(noted by the agent)")),
        )
        .otherwise(churn_reason(cfg))
        .alias("reason"),
        F.col("churn_day").alias("day"),
    )
