"""Feature drift: profiles, PSI against hand computations, ops.feature_drift, the plot."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pyspark.sql.functions as F
import pytest

from features import drift

pytestmark = pytest.mark.spark


def _normal(spark, *, rows: int = 10_000, seed: int, shift: float = 0.0):
    """``x`` standard normal (plus ``shift``), ``plan`` 50/30/20 over a/b/c, ``n`` 0..99."""
    frame = spark.range(rows, numPartitions=2).select(
        "id", F.randn(seed=seed).alias("z"), F.rand(seed=seed + 1).alias("u")
    )
    return frame.select(
        (F.col("z") + F.lit(shift)).alias("x"),
        F.when(F.col("u") < 0.5, "a").when(F.col("u") < 0.8, "b").otherwise("c").alias("plan"),
        (F.col("id") % 100).alias("n"),
    )


def _by_feature(rows: list[drift.FeatureDrift]) -> dict[str, drift.FeatureDrift]:
    return {row.feature: row for row in rows}


@pytest.fixture(scope="module")
def train(spark):
    return _normal(spark, seed=1).cache()


@pytest.fixture(scope="module")
def baseline(train) -> dict:
    return drift.profile(train, numeric_cols=["x", "n"], categorical_cols=["plan"])


def test_profile_edges_shares_and_json_round_trip(spark, train, baseline) -> None:
    assert baseline["rows"] == baseline["effective_rows"] == 10_000
    assert baseline["reference"] == {}
    n = baseline["features"]["n"]
    # Deciles of 0..99 land on ties: approxQuantile may take either side of a boundary.
    assert n["edges"] == pytest.approx([float(e) for e in range(10, 100, 10)], abs=1.0)
    assert n["shares"] == pytest.approx([0.1] * 10, abs=0.011)
    x = baseline["features"]["x"]
    assert x["kind"] == "numeric" and len(x["shares"]) == len(x["edges"]) + 1 == 10
    assert x["edges"] == sorted(set(x["edges"]))
    assert x["null_share"] == 0.0 and sum(x["shares"]) == pytest.approx(1.0)
    # The shares are those of the stored edges: bin = number of edges <= value.
    values = np.array([row["x"] for row in train.select("x").collect()])
    bins = np.searchsorted(np.array(x["edges"]), values, side="right")
    assert x["shares"] == pytest.approx(list(np.bincount(bins, minlength=10) / len(values)))
    plan = baseline["features"]["plan"]
    assert plan["categories"] == ["a", "b", "c"]
    assert plan["shares"] == pytest.approx([0.5, 0.3, 0.2], abs=0.02)
    assert (plan["other_share"], plan["null_share"]) == (0.0, 0.0)

    text = json.dumps(baseline, allow_nan=False)  # strict JSON: no Infinity, no NaN
    again = json.loads(text)
    assert again == baseline
    current = _normal(spark, seed=7, shift=0.3)
    assert drift.psi(again, current) == drift.psi(baseline, current)


def test_profile_dedupes_edges_and_keeps_nulls_apart(spark) -> None:
    frame = spark.range(1000, numPartitions=2).select(
        (F.col("id") % 2).alias("flag"),
        F.when(F.col("id") % 4 != 0, F.col("id").cast("double")).alias("sparse"),
        F.when(F.col("id") % 5 != 0, F.lit(float("nan"))).alias("nan_or_null"),
    )
    found = drift.profile(frame, numeric_cols=["flag", "sparse", "nan_or_null"])["features"]
    assert found["flag"]["edges"] == [0.0, 1.0]
    assert found["flag"]["shares"] == pytest.approx([0.0, 0.5, 0.5])
    assert found["sparse"]["null_share"] == pytest.approx(0.25)
    assert sum(found["sparse"]["shares"]) == pytest.approx(0.75)
    # NaN counts as missing; a column with no numbers at all has no edges and one bin.
    assert found["nan_or_null"] == {
        "kind": "numeric",
        "edges": [],
        "shares": [0.0],
        "null_share": 1.0,
    }


def test_profile_folds_rare_categories_into_other(spark) -> None:
    # Category k appears (8 - k) * 10 times: h most often, a least.
    rows = [(name,) for k, name in enumerate("hgfedcba") for _ in range((8 - k) * 10)]
    rows += [(None,)] * 40
    frame = spark.createDataFrame(rows, "c string")
    spec = drift.profile(frame, categorical_cols=["c"], top_n=3)["features"]["c"]
    total = len(rows)
    assert spec["categories"] == ["h", "g", "f"]
    assert spec["shares"] == pytest.approx([80 / total, 70 / total, 60 / total])
    assert spec["other_share"] == pytest.approx(150 / total)
    assert spec["null_share"] == pytest.approx(40 / total)


def test_same_distribution_gives_psi_near_zero(spark, train, baseline) -> None:
    assert all(row.psi == 0.0 for row in drift.psi(baseline, train))
    fresh = drift.psi(baseline, _normal(spark, seed=11))
    assert [row.feature for row in fresh] == ["x", "n", "plan"]
    assert all(row.psi < 0.01 for row in fresh), fresh
    assert drift.drifted_features(fresh) == []
    assert all(row.p_value > 1e-3 and not row.drifted for row in fresh), fresh
    # On 20 rows the PSI of noise passes 0.1, and the chi-square test says it is noise.
    small = drift.psi(baseline, _normal(spark, rows=20, seed=12), features=["x", "plan"])
    assert max(row.psi for row in small) > 0.1 and drift.drifted_features(small) == []
    assert {(row.kind, row.rows, row.baseline_rows) for row in fresh} == {
        ("numeric", 10_000, 10_000),
        ("categorical", 10_000, 10_000),
    }
    assert _by_feature(fresh)["x"].bins == 11 and _by_feature(fresh)["plan"].bins == 5


def test_shifted_numeric_is_flagged(spark, baseline) -> None:
    found = _by_feature(drift.psi(baseline, _normal(spark, seed=11, shift=1.0)))
    assert found["x"].psi > 0.2 and found["x"].is_drifted() and found["x"].p_value < 1e-12
    assert found["plan"].psi < 0.01 and found["n"].psi < 0.01
    assert drift.drifted_features(found.values()) == ["x"]
    # A smaller shift drifts less: PSI is monotone in the size of the shift here.
    small = _by_feature(drift.psi(baseline, _normal(spark, seed=11, shift=0.25)))["x"].psi
    assert 0.01 < small < found["x"].psi


def test_new_or_reweighted_category_is_flagged(spark, baseline) -> None:
    frame = spark.range(1000, numPartitions=2)
    new = frame.select(F.when(F.col("id") % 10 < 6, "d").otherwise("a").alias("plan"))
    moved = frame.select(F.when(F.col("id") % 10 < 8, "c").otherwise("a").alias("plan"))
    unseen = drift.psi(baseline, new, features=["plan"])[0]
    reweighted = drift.psi(baseline, moved, features=["plan"])[0]
    assert unseen.psi > 0.2 and reweighted.psi > 0.2
    assert drift.drifted_features([unseen, reweighted]) == ["plan", "plan"]


def test_null_shift_alone_is_detected(spark, baseline) -> None:
    current = (
        _normal(spark, seed=11)
        .withColumn("u", F.rand(seed=5))
        .select(
            *[F.when(F.col("u") >= 0.3, F.col(name)).alias(name) for name in ("x", "n", "plan")]
        )
    )
    found = drift.psi(baseline, current)
    assert all(row.psi > 0.2 for row in found), found
    # The values that are there have not moved: without the nulls nothing drifts.
    present = drift.psi(baseline, current.where(F.col("x").isNotNull()), features=["x"])
    assert present[0].psi < 0.01


def test_psi_matches_hand_computation(spark) -> None:
    baseline = {
        "format": drift.PROFILE_FORMAT,
        "rows": 200,
        "bins": 3,
        "top_n": 2,
        "features": {
            "x": {
                "kind": "numeric",
                "edges": [1.0, 2.5],
                "shares": [0.2, 0.5, 0.25],
                "null_share": 0.05,
            },
            "c": {
                "kind": "categorical",
                "categories": ["a", "b"],
                "shares": [0.6, 0.3],
                "other_share": 0.1,
                "null_share": 0.0,
            },
        },
    }
    xs = [0.5, 1.0, 1.0, 2.0, 2.5, 3.0, 7.0, None, 2.4, float("nan")]
    cs = ["a", "a", "b", "z", None, "a", "b", "b", "q", "a"]
    frame = spark.createDataFrame(list(zip(xs, cs, strict=True)), "x double, c string")
    found = _by_feature(drift.psi(baseline, frame))

    def hand(expected: list[float], actual: list[float]) -> float:
        e = np.maximum(np.array(expected), drift.EPSILON)
        a = np.maximum(np.array(actual), drift.EPSILON)
        return float(np.sum((a - e) * np.log(a / e)))

    values = np.array([np.nan if v is None else v for v in xs])
    known = values[~np.isnan(values)]
    bins = np.bincount(np.searchsorted([1.0, 2.5], known, side="right"), minlength=3)
    x_actual = [*(bins / 10), np.isnan(values).sum() / 10]
    assert x_actual == pytest.approx([0.1, 0.4, 0.3, 0.2])
    assert found["x"].psi == pytest.approx(hand([0.2, 0.5, 0.25, 0.05], x_actual), rel=1e-12)
    c_actual = [0.4, 0.3, 0.2, 0.1]  # a, b, other (z, q), null
    assert found["c"].psi == pytest.approx(hand([0.6, 0.3, 0.1, 0.0], c_actual), rel=1e-12)
    # The empty null bucket of the baseline counts at epsilon: (0.1 - 1e-4) * ln(0.1 / 1e-4).
    assert found["c"].psi > (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert (found["x"].bins, found["c"].bins, found["x"].rows) == (4, 4, 10)
    # The p-value is the chi-square test's on the baseline's counts and the frame's.
    assert found["x"].p_value == pytest.approx(
        drift.homogeneity_p_value([200 * share for share in (0.2, 0.5, 0.25, 0.05)], [1, 4, 3, 2]),
        rel=1e-12,
    )
    # Ten rows: every bucket pooled into one, nothing to test.
    assert found["x"].p_value == found["c"].p_value == 1.0
    # A baseline whose rows repeat entities weighs as its effective rows: less sure.
    more = frame.crossJoin(spark.range(30)).drop("id")
    full = _by_feature(drift.psi(baseline, more))["c"]
    repeated = _by_feature(drift.psi({**baseline, "effective_rows": 40}, more))["c"]
    assert full.p_value < repeated.p_value < 1.0 and repeated.psi == full.psi


def test_psi_is_one_pass_whatever_the_number_of_features(spark) -> None:
    wide = spark.range(500, numPartitions=2).select(
        *[((F.col("id") * (k + 3)) % 97).alias(f"f{k}") for k in range(12)],
        *[(F.col("id") % (k + 2)).cast("string").alias(f"c{k}") for k in range(6)],
    )
    numeric, categorical = [f"f{k}" for k in range(12)], [f"c{k}" for k in range(6)]
    full = drift.profile(wide, numeric_cols=numeric, categorical_cols=categorical)
    context, tracker = spark.sparkContext, spark.sparkContext.statusTracker()

    def jobs(group: str, features: list[str]) -> int:
        context.setJobGroup(group, group)
        try:
            drift.psi(full, wide, features=features)
        finally:
            context.setLocalProperty("spark.jobGroup.id", None)
        return len(tracker.getJobIdsForGroup(group))

    one = jobs("drift-one-feature", ["f0"])
    assert one >= 1
    assert jobs("drift-all-features", numeric + categorical) == one


def test_write_drift_replaces_the_day_of_the_model(spark, baseline) -> None:
    rows = drift.psi(baseline, _normal(spark, rows=500, seed=3, shift=1.0))
    day, other_day = dt.date(2026, 3, 1), dt.date(2026, 3, 2)

    def of(model: str, when: dt.date):
        table = spark.table(drift.DRIFT_TABLE)
        return table.where((F.col("model_name") == model) & (F.col("score_date") == when))

    assert (
        drift.write_drift(spark, rows, score_date=day, model_name="t_drift", model_version="1") == 3
    )
    first = {r["feature"]: r for r in of("t_drift", day).collect()}
    assert set(first) == {"x", "n", "plan"}
    assert first["x"]["drifted"] is True and first["plan"]["drifted"] is False
    assert first["x"]["p_value"] == pytest.approx(_by_feature(rows)["x"].p_value)
    assert first["x"]["psi"] == pytest.approx(_by_feature(rows)["x"].psi)
    assert (first["x"]["baseline_rows"], first["x"]["current_rows"]) == (10_000, 500)
    assert first["x"]["kind"] == "numeric" and first["x"]["model_version"] == "1"

    from delta.tables import DeltaTable

    history = DeltaTable.forName(spark, drift.DRIFT_TABLE)
    before = history.history(1).first()["version"]
    calm = [dataclasses.replace(row, drifted=False) for row in rows]
    drift.write_drift(spark, calm, score_date=day, model_name="t_drift", model_version="2")
    assert history.history(1).first()["version"] == before + 1  # one commit
    again = of("t_drift", day).collect()
    assert len(again) == 3
    assert {r["model_version"] for r in again} == {"2"}
    assert not any(r["drifted"] for r in again)
    assert min(r["computed_at"] for r in again) >= max(r["computed_at"] for r in first.values())

    drift.write_drift(
        spark, rows[:2], score_date=other_day, model_name="t_drift", model_version="2"
    )
    drift.write_drift(
        spark, rows[:1], score_date=day, model_name="t_drift_other", model_version="1"
    )
    counts = (
        spark.table(drift.DRIFT_TABLE)
        .where(F.col("model_name").startswith("t_drift"))
        .groupBy("model_name", "score_date")
        .count()
        .collect()
    )
    assert {(r["model_name"], r["score_date"]): r["count"] for r in counts} == {
        ("t_drift", day): 3,
        ("t_drift", other_day): 2,
        ("t_drift_other", day): 1,
    }
    detail = spark.sql(f"describe detail {drift.DRIFT_TABLE}").first()
    assert list(detail["partitionColumns"]) == ["score_date"]


def test_write_drift_rejects_a_feature_twice(spark, baseline) -> None:
    rows = drift.psi(baseline, _normal(spark, rows=200, seed=3), features=["x"])
    with pytest.raises(ValueError, match="more than once"):
        drift.write_drift(
            spark,
            rows * 2,
            score_date=dt.date(2026, 3, 1),
            model_name="t_drift_twice",
            model_version="1",
        )


def test_plot_drift_writes_a_png(tmp_path) -> None:
    rows = [
        drift.FeatureDrift(
            feature=f"f{k}",
            kind="numeric",
            psi=psi,
            bins=11,
            rows=100,
            baseline_rows=1000,
            p_value=1e-9 if psi > 0.2 else 0.5,
            drifted=psi > 0.2,
        )
        for k, psi in enumerate([0.05, 0.9, 0.21, 0.0])
    ]
    path = drift.plot_drift(rows, tmp_path / "plots" / "drift.png", title="drift on 2026-03-01")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000
    assert drift.drifted_features(rows) == ["f1", "f2"]
    empty = drift.plot_drift([], tmp_path / "empty.png", title="nothing")
    assert empty.stat().st_size > 0


def test_errors_say_what_and_where(spark, baseline) -> None:
    frame = spark.createDataFrame([("a", 1.0)], "s string, v double")
    with pytest.raises(ValueError, match="numeric feature 's' has type string"):
        drift.profile(frame, numeric_cols=["s"])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['w'\]"):
        drift.profile(frame, numeric_cols=["v", "w"])
    with pytest.raises(ValueError, match="no rows"):
        drift.profile(frame.where("false"), numeric_cols=["v"])
    with pytest.raises(ValueError, match=r"lacks feature\(s\) \['x', 'n', 'plan'\]"):
        drift.psi(baseline, frame)
    with pytest.raises(ValueError, match="not a feature-profile/1 profile"):
        drift.psi({"rows": 3}, frame)
