"""The drift monitor's decision rule, the training window and injected changes, without a JVM.

The chi-square test is checked by simulation: samples drawn from one distribution must be
flagged at about the rule's level, however often their PSI alone passes 0.1.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from features import drift
from features.generate.config import Change, GeneratorConfig
from features.generate.customers import price_steps

SHARES = np.array([0.1] * 10)


def _flags(
    rng: np.random.Generator,
    *,
    baseline_shares,
    current_shares,
    n_base: int,
    n_cur: int,
    trials: int,
    rule: drift.DriftRule,
    features: int = 1,
):
    """(share of trials with PSI > min_psi, share flagged by the rule)."""
    psi_over = flagged = 0
    for _ in range(trials):
        base = rng.multinomial(n_base, baseline_shares)
        cur = rng.multinomial(n_cur, current_shares)
        index = drift.population_stability(base / n_base, cur / n_cur)
        p_value = drift.homogeneity_p_value(base, cur, min_expected=rule.min_expected)
        psi_over += index > rule.min_psi
        flagged += index > rule.min_psi and p_value < rule.level(features)
    return psi_over / trials, flagged / trials


def test_noise_passes_psi_alone_but_not_the_rule() -> None:
    rng = np.random.default_rng(7)
    rule = drift.DriftRule()
    psi_over, flagged = _flags(
        rng,
        baseline_shares=SHARES,
        current_shares=SHARES,
        n_base=80,
        n_cur=80,
        trials=2000,
        rule=rule,
    )
    # PSI > 0.1 between two samples of one distribution is common at this size ...
    assert psi_over > 0.3
    # ... but the rule flags about its level at most (alpha = 0.01 for one feature).
    assert flagged < 0.02


def test_the_test_holds_its_level_on_many_features() -> None:
    """37 features a day at alpha 0.01: a day without change flags one rarely."""
    rng = np.random.default_rng(11)
    rule = drift.DriftRule()
    days = 300
    flagged_days = 0
    for _ in range(days):
        _, flagged = _flags(
            rng,
            baseline_shares=SHARES,
            current_shares=SHARES,
            n_base=200,
            n_cur=200,
            trials=37,
            rule=rule,
            features=37,
        )
        flagged_days += flagged > 0
    assert flagged_days / days < 0.03


def test_a_real_shift_is_flagged_and_a_large_sample_alone_is_not_enough() -> None:
    rng = np.random.default_rng(3)
    rule = drift.DriftRule()
    moved = np.array([0.01, 0.01, 0.02, 0.06, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2])
    _, flagged = _flags(
        rng,
        baseline_shares=SHARES,
        current_shares=moved,
        n_base=200,
        n_cur=200,
        trials=200,
        rule=rule,
        features=37,
    )
    assert flagged > 0.95
    # A tiny shift is significant on a million rows, yet below the PSI that matters.
    slight = np.array([0.098] * 5 + [0.102] * 5)
    base = (SHARES * 1_000_000).astype(int)
    cur = (slight * 1_000_000).astype(int)
    assert drift.homogeneity_p_value(base, cur) < 1e-6
    assert drift.population_stability(base / base.sum(), cur / cur.sum()) < rule.min_psi


def test_sparse_buckets_are_pooled_before_testing() -> None:
    # One current row in a bucket the baseline saw once in 10,000: unpooled, its term
    # alone would be a chi-square of ~100; pooled with its neighbours it is one row more.
    baseline = [999.9, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 3000, 0.1]
    current = [10, 10, 10, 10, 10, 10, 10, 10, 10, 29, 1]
    assert drift.homogeneity_p_value(baseline, current) > 0.5
    assert drift.homogeneity_p_value([5, 5], [5, 5]) == pytest.approx(1.0)
    assert drift.homogeneity_p_value([100], [3]) == 1.0  # one bucket: nothing to test
    assert drift.homogeneity_p_value([0, 0], [3, 4]) == 1.0
    with pytest.raises(ValueError, match="2 baseline buckets but 3 current"):
        drift.homogeneity_p_value([1, 2], [1, 2, 3])


def test_rule_checks_its_settings() -> None:
    assert drift.DriftRule().level(37) == pytest.approx(0.01 / 37)
    assert drift.DriftRule().level(0) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="alpha"):
        drift.DriftRule(alpha=0)
    with pytest.raises(ValueError, match="min_psi"):
        drift.DriftRule(min_psi=-1)


def test_training_starts_at_the_first_snapshot_with_whole_windows() -> None:
    from models_ml import churn

    first = dt.date(2026, 1, 1)
    weekly = [first + dt.timedelta(days=d) for d in range(28, 400, 7)]
    complete = churn.complete_windows_from(first)
    assert complete == dt.date(2026, 4, 1)
    # A young lake (the demo: 90 days, snapshots up to day 56): every snapshot is kept.
    assert (
        churn.training_start([d for d in weekly if d <= first + dt.timedelta(days=56)], first)
        is None
    )
    # Three whole snapshots are not enough to tune and hold out; four are.
    three = [d for d in weekly if d < complete + dt.timedelta(days=21)]
    assert churn.training_start(three, first) is None
    four = [d for d in weekly if d < complete + dt.timedelta(days=28)]
    assert churn.training_start(four, first) == complete
    assert churn.training_start(weekly, first, lookback_days=30) == first + dt.timedelta(days=30)


def test_changes_parse_and_say_what_they_move() -> None:
    change = Change.parse("kind=data_drop, day=60, target=north, factor=0.3")
    assert change == Change(kind="data_drop", day=60, target="north", factor=0.3)
    assert change.moves == ("data_mb_7d", "data_mb_30d", "data_mb_90d")
    assert Change.parse("kind=price_rise,day=5,target=basic").factor == 0.5
    with pytest.raises(ValueError, match="unknown kind 'outage'"):
        Change.parse("kind=outage,day=3")
    with pytest.raises(ValueError, match="kind= and day= are required"):
        Change.parse("kind=data_drop")
    with pytest.raises(ValueError, match="key=value pairs"):
        Change.parse("kind=data_drop,day=3,colour=red")
    with pytest.raises(ValueError, match="factor > 0"):
        Change(kind="data_drop", day=3, factor=0)
    # A target that matches nothing would change nothing, silently: refused.
    with pytest.raises(ValueError, match="price_rise target 'all' is none of basic"):
        Change(kind="price_rise", day=3)
    with pytest.raises(ValueError, match="data_drop target 'nort' is none of north"):
        Change.parse("kind=data_drop,day=3,target=nort")
    with pytest.raises(ValueError, match="day must be >= 1"):
        Change(kind="data_drop", day=0)


def test_price_rises_stack_on_the_price_of_their_day() -> None:
    plain = price_steps(GeneratorConfig(days=100, price_rise_day=40))
    assert plain["basic"] == [(-365, 15.0)]
    assert plain["standard"] == [(-365, 25.0), (40, 30.0)]
    changed = price_steps(
        GeneratorConfig(
            days=100,
            price_rise_day=40,
            changes=(
                Change(kind="price_rise", day=70, target="standard", factor=1.5),
                Change(kind="price_rise", day=20, target="basic", factor=2.0),
                Change(kind="price_rise", day=200, target="max", factor=2.0),  # after the window
            ),
        )
    )
    assert changed["standard"] == [(-365, 25.0), (40, 30.0), (70, 45.0)]
    assert changed["basic"] == [(-365, 15.0), (20, 30.0)]
    assert changed["max"] == [(-365, 50.0)]


def test_auc_interval_says_how_sure_a_hold_out_can_be() -> None:
    from models_ml.evaluate import auc_interval

    small = auc_interval(0.84, positives=7, negatives=45)
    large = auc_interval(0.84, positives=700, negatives=4500)
    assert small[0] < 0.72 and small[1] > 0.95  # 52 rows: anything from fair to excellent
    assert large[1] - large[0] < 0.04 and large[0] < 0.84 < large[1]
    # By hand, A = 0.8, 50 + 50 cases: Q1 = 2/3, Q2 = 0.7111, variance 4.951 / 2500.
    low, high = auc_interval(0.8, positives=50, negatives=50)
    assert (high - low) / (2 * 1.959964) == pytest.approx(0.04450, abs=0.00005)
    assert auc_interval(0.7, positives=0, negatives=10) == (0.0, 1.0)
