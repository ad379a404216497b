"""Invoices and payments: monthly bills on each customer's billing day, paid on time or not."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from features.generate.config import GeneratorConfig
from features.generate.customers import day_date, day_time, price_steps
from features.generate.hashing import dirt_kind, uniform


def _price(cfg: GeneratorConfig, plan: Column, day: Column) -> Column:
    """Monthly price of ``plan`` on ``day`` (with the price rise and injected changes)."""
    expr = None
    for pid, timeline in price_steps(cfg).items():
        value = F.lit(timeline[0][1])
        for start, price in timeline[1:]:
            value = F.when(day >= start, F.lit(price)).otherwise(value)
        expr = F.when(plan == pid, value) if expr is None else expr.when(plan == pid, value)
    assert expr is not None, "no plans"
    return expr


def invoices(spark: SparkSession, cfg: GeneratorConfig, state: DataFrame) -> DataFrame:
    """One invoice per active customer per month, issued on the signup day of month."""
    n = cfg.customers
    grid = spark.range(0, n * cfg.days, numPartitions=max(1, cfg.usage_partitions() // 4))
    grid = grid.select(
        F.expr(f"id div {n}").cast("int").alias("day"), (F.col("id") % n + 1).alias("customer_id")
    )
    cols = [
        "customer_id",
        "signup_day",
        "active_day",
        "churn_day",
        "change_day",
        "plan0",
        "plan1",
        "late_p",
        "fail_p",
    ]
    frame = grid.join(F.broadcast(state.select(*cols)), "customer_id")
    day = F.col("day")
    bill_dom = F.least(F.dayofmonth(day_date(cfg, F.col("signup_day"))), F.lit(28))
    frame = frame.where(
        (day >= F.col("active_day"))
        & (F.col("churn_day").isNull() | (day <= F.col("churn_day")))
        & (F.dayofmonth(day_date(cfg, day)) == bill_dom)
    )
    plan = F.when(F.col("change_day") <= day, F.col("plan1")).otherwise(F.col("plan0"))
    month = F.year(day_date(cfg, day)) * 12 + F.month(day_date(cfg, day))
    return frame.select(
        (F.col("customer_id") * 100000 + month).alias("invoice_id"),
        "customer_id",
        day.alias("day"),
        _price(cfg, plan, day).alias("amount"),
        "late_p",
        "fail_p",
    )


def invoice_rows(cfg: GeneratorConfig, bills: DataFrame) -> DataFrame:
    """Invoice records in the landing contract (day = issue day)."""
    day = F.col("day")
    return bills.select(
        "invoice_id",
        "customer_id",
        day_date(cfg, day).alias("invoice_date"),
        day_date(cfg, day).alias("period_start"),
        F.date_sub(F.add_months(day_date(cfg, day), 1), 1).alias("period_end"),
        "amount",
        day_date(cfg, day + 14).alias("due_date"),
        day_time(cfg, day, F.lit(6 * 3600) + F.col("customer_id") % 3600).alias("issued_at"),
        "day",
    )


def payment_rows(cfg: GeneratorConfig, bills: DataFrame) -> DataFrame:
    """Payments: on time (1-13 days), late (15-30 days) or failed at the due date then retried."""
    iid = F.col("invoice_id")
    u_status = uniform(cfg.seed, "pay", iid)
    status = (
        F.when(u_status < F.col("fail_p"), "failed")
        .when(u_status < F.col("fail_p") + F.col("late_p"), "late")
        .otherwise("on_time")
    )
    delay = (
        F.when(status == "on_time", 1 + F.floor(uniform(cfg.seed, "pay_d", iid) * 13))
        .when(status == "late", 15 + F.floor(uniform(cfg.seed, "pay_d", iid) * 16))
        .otherwise(14)
        .cast("int")
    )
    first = bills.select(
        (iid * 10 + 1).alias("payment_id"),
        "invoice_id",
        "customer_id",
        "amount",
        status.alias("status"),
        (F.col("day") + delay).alias("day"),
    )
    retry = first.where(F.col("status") == "failed").select(
        (F.col("invoice_id") * 10 + 2).alias("payment_id"),
        "invoice_id",
        "customer_id",
        "amount",
        F.lit("late").alias("status"),
        (F.col("day") + 7 + F.floor(uniform(cfg.seed, "retry", F.col("invoice_id")) * 10))
        .cast("int")
        .alias("day"),
    )
    frame = first.unionByName(retry).where(F.col("day") < cfg.days)
    seconds = F.floor(uniform(cfg.seed, "pay_t", F.col("payment_id")) * 86400)
    return frame.select(
        "payment_id",
        "invoice_id",
        "customer_id",
        "amount",
        "status",
        day_time(cfg, F.col("day"), seconds).alias("paid_at"),
        "day",
    )


def csv_dirt(cfg: GeneratorConfig, frame: DataFrame, *, salt: str, key: str) -> DataFrame:
    """Add a ``dirt`` column to a billing extract (one kind per record at most)."""
    dirt = cfg.dirt
    return frame.withColumn(
        "dirt",
        dirt_kind(
            uniform(cfg.seed, salt, F.col(key)),
            [
                ("malformed", dirt.malformed),
                ("unparseable_timestamp", dirt.unparseable_timestamp),
                ("unknown_customer", dirt.unknown_customer),
                ("missing_key", dirt.missing_key),
                ("duplicate", dirt.duplicate),
                ("non_finite", dirt.non_finite),
                ("wrong_type", dirt.wrong_type),
            ],
        ),
    )
