"""The generator: deterministic for a seed, the landing layout, churn, the ceiling AUC."""

from __future__ import annotations

import dataclasses

import pyspark.sql.functions as F
import pytest
from pyspark.testing import assertDataFrameEqual

from features.generate import customers, risk, source_frames
from features.generate.config import GeneratorConfig
from features.lakehouse import settings
from features.schemas import SOURCES
from tests.spark.telco_data import TINY, tiny_lake

pytestmark = pytest.mark.spark


def _day_of_file():
    return F.regexp_extract(F.input_file_name(), r"/(\d{4}-\d{2}-\d{2})/", 1)


def _usage(spark, cfg: GeneratorConfig):
    state = customers.customer_state(spark, cfg)
    return source_frames(spark, cfg, state)["usage"].select(*SOURCES["usage"].columns, "d")


def _chats(spark, cfg: GeneratorConfig):
    state = customers.customer_state(spark, cfg)
    return source_frames(spark, cfg, state)["chats"].select("value", "d")


def test_landing_files_match_a_regeneration_with_other_partitioning(spark) -> None:
    tiny_lake(spark)
    landing = settings().landing_dir
    files = spark.read.parquet(*[str(landing / "usage" / d.isoformat()) for d in TINY.dates])
    files = files.withColumn("d", _day_of_file())
    again = _usage(spark, dataclasses.replace(TINY, partitions=7))
    assertDataFrameEqual(files, again)
    folders = [landing / "chats" / d.isoformat() for d in TINY.dates]
    chats = spark.read.text([str(folder) for folder in folders if folder.exists()])
    chats = chats.withColumn("d", _day_of_file())
    assertDataFrameEqual(chats, _chats(spark, dataclasses.replace(TINY, partitions=5)))


def test_other_seed_gives_other_data(spark) -> None:
    one = _usage(spark, TINY)
    other = _usage(spark, dataclasses.replace(TINY, seed=TINY.seed + 1))
    assert one.exceptAll(other).count() > 0.9 * one.count()


def test_landing_layout_and_counts(spark) -> None:
    summary = tiny_lake(spark)
    landing = settings().landing_dir
    assert (landing / "usage" / "2026-01-01" / "part-00000.parquet").exists()
    header = (landing / "invoices" / "2026-01-02").glob("part-*.csv")
    for path in header:
        assert path.read_text().splitlines()[0] == ",".join(SOURCES["invoices"].columns)
    assert (landing / "chats" / "2026-01-03" / "part-00000.jsonl").exists()
    assert (landing / "plans" / "2026-01-01").exists()
    assert (landing / "plans" / TINY.date_of(TINY.rise_day).isoformat()).exists()
    assert summary.rows["usage"] > 10 * TINY.customers * TINY.days * 0.5
    assert all(
        summary.rows[name] > 0
        for name in ("customers", "plans", "subscriptions", "invoices", "chats", "usage")
    )
    run = spark.table("ops.generator_runs").where(f"seed = {TINY.seed}").first()
    assert run["customers"] == TINY.customers and run["rows"]["usage"] == summary.rows["usage"]


def test_churned_customers_fall_silent_and_usage_falls_before(spark) -> None:
    cfg = dataclasses.replace(TINY, customers=300, days=60, dirt=TINY.dirt.none(), partitions=2)
    state = customers.customer_state(spark, cfg).cache()
    usage = source_frames(spark, cfg, state)["usage"]
    daily = (
        usage.groupBy("customer_id", "day")
        .count()
        .join(state.select("customer_id", "churn_day"), "customer_id")
        .where(F.col("churn_day").isNotNull())
    )
    after = daily.where(F.col("day") >= F.col("churn_day")).count()
    assert after == 0
    window = (
        daily.select(
            F.when(F.col("day") >= F.col("churn_day") - 10, "last10")
            .when(F.col("day") < F.col("churn_day") - 35, "before")
            .alias("phase"),
            "count",
        )
        .where(F.col("phase").isNotNull())
        .groupBy("phase")
        .agg(F.avg("count"))
        .collect()
    )
    means = {row[0]: row[1] for row in window}
    assert means["last10"] < 0.7 * means["before"]
    state.unpersist()


def test_ceiling_auc_is_learnable_signal(spark) -> None:
    cfg = GeneratorConfig(customers=400, days=60, seed=3, snapshot_every=15)
    state = customers.customer_state(spark, cfg)
    snapshots = risk.risk_snapshots(spark, cfg, state).cache()
    positives = snapshots.where("label = 1").count()
    assert positives >= 10
    auc = risk.ceiling_auc(snapshots)
    snapshots.unpersist()
    assert auc is not None and auc > 0.7


def test_truth_says_when_an_injected_price_rise_reaches_each_customer(spark) -> None:
    """``changed_from``: from the change's day for a customer on the plan then, from their
    move for one who moves onto it later, never for one who left it before."""
    from features.generate.config import Change

    cfg = GeneratorConfig(
        customers=400,
        days=60,
        seed=3,
        changes=(Change(kind="price_rise", day=30, target="plus", factor=1.5),),
    )
    state = customers.customer_state(spark, cfg)
    truth = {
        row.customer_id: row.changed_from
        for row in risk.truth_rows(cfg, state).select("customer_id", "changed_from").collect()
    }
    seen = set()
    for row in state.select("customer_id", "active_day", "plan0", "plan1", "change_day").collect():
        starts = []
        if row.plan0 == "plus" and (row.change_day is None or row.change_day > 30):
            starts.append(max(30, row.active_day))
        if row.change_day is not None and row.plan1 == "plus":
            starts.append(max(30, row.change_day, row.active_day))
        expected = min(starts) if starts else None
        assert truth[row.customer_id] == expected, row
        seen.add((row.plan0 == "plus", row.change_day is not None, expected is not None))
    # Customers who stayed on the plan, who left it, and who never had it all occur.
    assert {(True, False, True), (False, False, False)} <= seen
    assert any(plan0 and moved for plan0, moved, _ in seen)
