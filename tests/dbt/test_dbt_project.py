"""The dbt project on a tiny bronze layer: build, tests, incremental == full refresh."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from tests.dbt.bronze_fixture import BRONZE_SCHEMA, batch_two, write_bronze
from tests.dbt.dbt_runner import PROJECT, VARS, dbt
from tests.dbt.dbt_runner import failures as _failures

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def built(feature_marts):
    return feature_marts


def test_build_creates_every_mart_as_delta(built) -> None:
    for table in (
        "features.customer_usage_daily",
        "features.customer_billing",
        "features.customer_support",
        "ml.churn_labels",
    ):
        detail = built.sql(f"describe detail {table}").first()
        assert detail.format == "delta", table
    partitions = built.sql("describe detail features.customer_usage_daily").first()
    assert list(partitions.partitionColumns) == ["feature_date"]


def test_usage_features_count_duplicates_once_and_stop_at_churn(built) -> None:
    usage = built.table("features.customer_usage_daily")
    day2 = usage.where("customer_id = 1 and feature_date = '2026-01-02'").first()
    # calls of 60 s on day 1 and 120 s on day 2; the duplicate of day 1 counts once.
    assert day2.call_minutes_7d == pytest.approx(3.0)
    assert usage.where("customer_id = 2").agg({"feature_date": "max"}).first()[0].day == 6
    assert usage.where("customer_id = 3").agg({"feature_date": "min"}).first()[0].day == 3


def test_billing_follows_plan_changes_and_price_rises(built) -> None:
    billing = {
        (row.customer_id, row.feature_date.day): row
        for row in built.table("features.customer_billing").collect()
    }
    assert billing[(1, 4)].contract_type == "month-to-month"
    assert billing[(1, 4)].monthly_charge == 20.0
    assert billing[(1, 5)].contract_type == "one-year"
    assert billing[(1, 5)].monthly_charge == 50.0
    assert billing[(1, 5)].plan_changes_365d == 1
    assert billing[(2, 5)].monthly_charge == 25.0  # the basic plan's price rise
    assert billing[(2, 4)].failed_payments_90d == 1
    assert billing[(2, 4)].open_balance == 20.0
    assert billing[(1, 4)].late_payments_90d == 1
    assert billing[(1, 4)].open_balance == 0.0


def test_support_scores_chats_with_the_lexicon(built) -> None:
    support = {
        (row.customer_id, row.feature_date.day): row
        for row in built.table("features.customer_support").collect()
    }
    angry = support[(2, 5)]
    assert angry.chats_30d == 1
    assert angry.negative_chat_share_90d == 1.0
    assert angry.cancel_mentions_90d == 1
    assert angry.competitor_mentions_90d == 1
    assert angry.days_since_last_chat == 1
    assert support[(1, 5)].negative_chat_share_90d == 0.0
    assert support[(1, 4)].days_since_last_chat is None


def _resent(event_id: str, *, duration_s: int, batch_day: int) -> tuple:
    """A later copy of a landed call, with other content (the first copy must win)."""
    from tests.dbt.bronze_fixture import _lineage, _ts

    return (event_id, 1, _ts(1, 9), "call", duration_s, None, False, False, "cell0") + _lineage(
        batch_day
    )


INCREMENTAL = (
    "stg_bronze__usage_events",
    "int_usage_events_summed_daily",
    "customer_usage_daily",
    "customer_billing",
    "customer_support",
)


def test_incremental_run_corrects_late_days_and_equals_full_refresh(built) -> None:
    spark = built
    batch = batch_two()
    batch["usage"].append(_resent("c1-1", duration_s=9999, batch_day=10))
    write_bronze(spark, BRONZE_SCHEMA, batch, mode="append")
    result = dbt("run", "--select", "stg_bronze__usage_events+")
    assert result.success, _failures(result)
    tables = {
        name: spark.table(name)
        for name in (
            "staging.stg_bronze__usage_events",
            "staging.int_usage_events_summed_daily",
            "features.customer_usage_daily",
            "features.customer_billing",
            "features.customer_support",
        )
    }
    incremental = {name: frame.toPandas() for name, frame in tables.items()}

    staged = incremental["staging.stg_bronze__usage_events"]
    first_call = staged[staged.event_id == "c1-1"]
    assert len(first_call) == 1 and first_call.iloc[0].duration_s == 60
    assert str(first_call.iloc[0]._batch_date) == "2026-01-01"
    usage = incremental["features.customer_usage_daily"]
    day3 = usage[(usage.customer_id == 1) & (usage.feature_date.astype(str) == "2026-01-03")].iloc[
        0
    ]
    # 180 s on day 3 plus the 600 s call that landed late, on 2026-01-10.
    assert day3.call_minutes_7d == pytest.approx((60 + 120 + 180 + 600) / 60)
    assert str(day3.created_timestamp) == "2026-01-10 23:59:59"
    assert usage.feature_date.astype(str).max() == "2026-01-10"
    support = incremental["features.customer_support"]
    days = support[support.customer_id == 1].sort_values("feature_date")
    days = days[days.feature_date.astype(str) >= "2026-01-03"]
    # The chat of 2026-01-03 that landed on 2026-01-10 corrects every day from the 3rd
    # (customer 1 also chatted on the 5th).
    assert list(days.days_since_last_chat) == [0, 1, 0, 1, 2, 3, 4, 5]
    assert list(days.chats_30d) == [1, 1, 2, 2, 2, 2, 2, 2]
    assert str(days.iloc[0].created_timestamp) == "2026-01-10 23:59:59"
    billing = incremental["features.customer_billing"]
    billing = billing[billing.customer_id == 1]
    billing = billing.set_index(billing.feature_date.astype(str))
    # The payment of 2026-01-04, sent again on 2026-01-10 dated 2026-01-08 and on time: the
    # 4th to the 7th lose it (the day of its earlier copy is recomputed too).
    assert billing.loc["2026-01-03"].open_balance == 20.0
    assert billing.loc["2026-01-04"].open_balance == 20.0
    assert billing.loc["2026-01-04"].late_payments_90d == 0
    assert billing.loc["2026-01-08"].open_balance == 0.0
    assert str(billing.loc["2026-01-08"].created_timestamp) == "2026-01-10 23:59:59"

    # A rerun with nothing new landed changes nothing.
    result = dbt("run", "--select", *INCREMENTAL)
    assert result.success, _failures(result)
    for name, frame in incremental.items():
        assertDataFrameEqual(
            spark.table(name), spark.createDataFrame(frame, schema=tables[name].schema)
        )

    result = dbt("run", "--select", *INCREMENTAL, "--full-refresh")
    assert result.success, _failures(result)
    for name, frame in incremental.items():
        full = spark.table(name)
        assertDataFrameEqual(spark.createDataFrame(frame, schema=full.schema), full)

    result = dbt("test", "--select", *INCREMENTAL)
    assert result.success, _failures(result)


def test_tests_since_checks_only_rows_of_later_batches(built) -> None:
    """An old bad row fails the staging tests, but not with tests_since after its batch."""
    from tests.dbt.bronze_fixture import D, _ts

    spark = built
    # batch 2026-01-02, ingested after everything else
    lineage = ("landing/test/2026-01-02", D(2026, 1, 2), _ts(20, 23))
    bad = ("bad-1", 1, _ts(2, 8), "fax", 5, None, False, False, "cell0") + lineage
    write_bronze(spark, BRONZE_SCHEMA, {"usage": [bad]}, mode="append")
    try:
        result = dbt("run", "--select", "stg_bronze__usage_events")
        assert result.success, _failures(result)
        result = dbt("test", "--select", "stg_bronze__usage_events")
        assert not result.success
        checked = next(r for r in result.result if "column_rules" in r.node.name)
        assert str(checked.status) == "fail"
        rules = spark.sql(checked.node.compiled_code).where("event_id = 'bad-1'").collect()
        assert [r.failed_rules for r in rules] == ["event_type not in ('call', 'sms', 'data')"]

        scoped = VARS[:-1] + ", tests_since: '2026-01-03'}"
        result = dbt("test", "--select", "stg_bronze__usage_events", vars=scoped)
        assert result.success, _failures(result)
        result = dbt(
            "test",
            "--select",
            "stg_bronze__usage_events",
            vars=VARS[:-1] + ", tests_since: 'last week'}",
        )
        assert not result.success
        assert "tests_since must be a date" in " ".join(_failures(result))
    finally:
        for table in (f"{BRONZE_SCHEMA}.usage_events", "staging.stg_bronze__usage_events"):
            spark.sql(f"delete from {table} where event_id = 'bad-1'")


def test_column_rules_keep_each_single_tests_meaning_and_name_what_a_row_breaks(built) -> None:
    """A mart's rules run as one query (tests/generic/column_rules.sql): a null passes a range
    and an accepted-values rule (as accepted_range and accepted_values let it), fails a
    not-null rule and an expression (as expression_is_true fails it); bounds are inclusive;
    both rows of a key seen twice fail its uniqueness, a key of two columns is the pair (its
    nulls alike, as unique_combination_of_columns groups them); each failing row names every
    rule it breaks."""
    spark = built
    mart = "features.customer_billing"
    template = spark.table(mart).where("customer_id = 1").orderBy("feature_date").first()
    far = "feature_date >= date'2099-01-01'"

    def row(day: int, **values) -> dict:
        return {
            **template.asDict(),
            "feature_date": dt.date(2099, 1, day),
            "event_timestamp": dt.datetime(2099, 1, day, 23, 59, 59),
            "created_timestamp": dt.datetime(2099, 1, day, 23, 59, 59),
            **values,
        }

    rows = [
        row(1, customer_id=None, tenure_days=-1, contract_type="weekly"),
        row(2, created_timestamp=dt.datetime(2099, 1, 1)),
        row(3, created_timestamp=None, late_payments_90d=-2),
        # nulls in a range and an accepted-values column pass, as in the single tests
        row(4, monthly_charge=None, contract_type=None),
        row(5),
        row(5, tenure_days=-5),
        row(5, customer_id=2, tenure_days=0),  # another customer's day 5: not a repeat
        row(6, customer_id=None),
        row(6, customer_id=None),
    ]
    spark.createDataFrame(rows, spark.table(mart).schema).write.format("delta").mode(
        "append"
    ).saveAsTable(mart)
    try:
        result = dbt("test", "--select", "customer_billing")
        assert not result.success
        failed = [r for r in result.result if "column_rules" in r.node.name]
        assert len(failed) == 1 and str(failed[0].status) == "fail"
        assert failed[0].failures == 7
        found = sorted(
            (r.feature_date.day, r.failed_rules)
            for r in spark.sql(failed[0].node.compiled_code).where(far).collect()
        )
        twice = "(customer_id, feature_date) is not unique"
        assert found == [
            (
                1,
                "customer_id is null; tenure_days < 0; "
                "contract_type not in ('month-to-month', 'one-year', 'two-year')",
            ),
            (2, "not (created_timestamp >= event_timestamp)"),
            (
                3,
                "created_timestamp is null; late_payments_90d < 0; "
                "not (created_timestamp >= event_timestamp)",
            ),
            (5, twice),
            (5, f"{twice}; tenure_days < 0"),
            (6, f"customer_id is null; {twice}"),
            (6, f"customer_id is null; {twice}"),
        ]
        # the other tests of the mart do not see these rows as failures
        assert all(str(r.status) == "pass" for r in result.result if r is not failed[0])
    finally:
        spark.sql(f"delete from {mart} where {far}")

    # An upper bound: 1 passes, above it fails.
    mart = "features.customer_support"
    template = spark.table(mart).where("customer_id = 1").orderBy("feature_date").first()
    shares = {1: 1.0, 2: 1.5, 3: 0.0}
    spark.createDataFrame(
        [row(day, negative_chat_share_90d=share) for day, share in shares.items()],
        spark.table(mart).schema,
    ).write.format("delta").mode("append").saveAsTable(mart)
    try:
        result = dbt("test", "--select", "customer_support")
        failed = [r for r in result.result if "column_rules" in r.node.name]
        found = [
            (r.feature_date.day, r.failed_rules)
            for r in spark.sql(failed[0].node.compiled_code).where(far).collect()
        ]
        assert found == [(2, "negative_chat_share_90d > 1")]
    finally:
        spark.sql(f"delete from {mart} where {far}")


def test_docs_generate_works(built) -> None:
    result = dbt("docs", "generate")
    assert result.success, result.exception
    assert (PROJECT / "target" / "catalog.json").is_file()


def test_contract_rejects_a_changed_column_type(built, tmp_path) -> None:
    result = dbt("compile", "--select", "customer_usage_daily")
    assert result.success
    from dbt.cli.main import dbtRunner

    # A model whose SQL no longer matches its contract fails the build loudly.
    broken = PROJECT / "models" / "marts" / "features" / "customer_support.sql"
    original = broken.read_text()
    try:
        broken.write_text(
            original.replace(
                "cast(chats_30d as bigint) as chats_30d", "cast(chats_30d as string) as chats_30d"
            )
        )
        args = [
            "run",
            "--select",
            "customer_support",
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(PROJECT),
            "--target",
            "session",
            "--vars",
            VARS,
        ]
        # An incremental run stops on the changed schema (on_schema_change: fail) ...
        result = dbtRunner().invoke(args)
        assert not result.success
        assert "out of sync" in " ".join(_failures(result)).lower()
        # ... and a full refresh, which creates the table again, on the contract.
        result = dbtRunner().invoke([*args, "--full-refresh"])
        assert not result.success
        assert "contract" in " ".join(_failures(result)).lower()
    finally:
        broken.write_text(original)
