"""The offline store's choice of point-in-time strategy by the training frame's shape, no JVM.

The range strategy pays where entity rows are few per key against the feature rows their
TTL windows reach (monthly snapshots); the sort where every key has an entity row most days,
where a view has no TTL, or where the entity rows are too many to broadcast.
"""

from __future__ import annotations

import pytest

from features.offline_store import asof

DAY = 86_400
KEYS = ("customer_id",)


def _view(ttl_days: int, keys: tuple[str, ...] = KEYS) -> asof.ViewRequest:
    # The planner reads the keys and the TTL only; the rows are never touched.
    return asof.ViewRequest(
        name=f"ttl{ttl_days}",
        join_keys=keys,
        rows=None,  # type: ignore[arg-type]
        features=("x",),
        event_timestamp_column="event_timestamp",
        ttl_seconds=ttl_days * DAY,
    )


def _stats(rows_per_key: int, *, keys: int = 10_000, span_days: int = 300) -> asof.EntityStats:
    return asof.EntityStats(
        rows=rows_per_key * keys, span_seconds=span_days * DAY, distinct_keys={KEYS: keys}
    )


def test_snapshots_over_a_year_take_the_range_strategy() -> None:
    # 6 snapshots in 300 days, TTL 30: about 0.55 pairs per feature row in reach.
    stats = _stats(6)
    assert asof.pairs_per_feature_row(stats, KEYS, 30 * DAY) == pytest.approx(6 * 30 / 330)
    assert asof.choose_strategy([_view(30), _view(30)], stats) == "range"


def test_dense_frames_long_ttls_and_no_ttl_take_the_sort() -> None:
    assert asof.choose_strategy([_view(30)], _stats(300)) == "sort"  # every key, every day
    assert asof.choose_strategy([_view(365)], _stats(6)) == "sort"  # 6 x 365 / 665 pairs
    assert asof.choose_strategy([_view(30), _view(0)], _stats(6)) == "sort"  # TTL 0: no limit
    assert asof.choose_strategy([_view(30)], None) == "sort"  # nothing known of the frame
    many = _stats(1, keys=asof.RANGE_MAX_ENTITY_ROWS + 1)
    assert asof.choose_strategy([_view(30)], many) == "sort"  # too many to broadcast
    # The range strategy reads the entity frame twice: a frame with rand() might differ.
    drawn = asof.EntityStats(
        rows=60_000, span_seconds=300 * DAY, distinct_keys={KEYS: 10_000}, deterministic=False
    )
    assert asof.choose_strategy([_view(30)], drawn) == "sort"


def test_a_forced_strategy_is_kept_and_checked() -> None:
    assert asof.choose_strategy([_view(30)], _stats(300), strategy="range") == "range"
    assert asof.choose_strategy([_view(30)], _stats(6), strategy="sort") == "sort"
    with pytest.raises(ValueError, match="needs a TTL on every view"):
        asof.choose_strategy([_view(0)], _stats(6), strategy="range")
    with pytest.raises(ValueError, match="must be one of"):
        asof.choose_strategy([_view(30)], _stats(6), strategy="hash")


def test_each_group_of_join_keys_gets_its_own_strategy() -> None:
    cells = ("region_id", "cell_id")
    stats = asof.EntityStats(
        rows=60_000, span_seconds=300 * DAY, distinct_keys={KEYS: 10_000, cells: 9}
    )
    chosen = asof.strategies([_view(30), _view(30, cells)], stats)
    assert chosen == {KEYS: "range", cells: "sort"}
