"""Feature drift by population stability index (PSI), computed in Spark.

A *profile* is the baseline of a training set, a small JSON-serialisable dict stored with the
model::

    baseline = profile(train, numeric_cols=["tenure_days"], categorical_cols=["plan_id"])
    drift = psi(baseline, scoring_frame)              # one FeatureDrift per feature
    write_drift(spark, drift, score_date=day, model_name="churn", model_version="3")
    plot_drift(drift, artifacts / "drift.png", title=f"churn v3 on {day}")

Buckets of a numeric feature are cut at approximate quantiles of the training set: the
deduplicated inner edges are stored, the outer bins run to -inf and +inf (implicit, so the
profile stays strict JSON), a value ``x`` falls in bin ``i`` = the number of edges ``<= x``,
and null or NaN go to a separate null bucket.  A categorical feature has one bucket for each of
its ``top_n`` most frequent training categories, one ``other`` bucket for everything else
(categories unseen in training included) and one null bucket.  Then, over all buckets,
``PSI = sum((a - e) * ln(a / e))`` with ``a`` the current share, ``e`` the baseline share, both
floored at a small epsilon.  Rule of thumb: below 0.1 stable, 0.1 to 0.2 moderate, above 0.2
drifted.

PSI alone cannot tell a shift from sampling noise: between two samples of one distribution its
expected value is about ``(buckets - 1) * (1/n_baseline + 1/n_current)``, 0.09 for ten bins and
two hundred rows each.  So a feature is *drifted* only when both hold (:class:`DriftRule`):

- the shift is large enough to matter: PSI above ``min_psi`` (0.1, the rule of thumb's
  "moderate"), which keeps a large lake from flagging shifts too small to act on;
- it is unlikely to be noise: a chi-square test of homogeneity between the baseline's and the
  day's bucket counts gives a p-value below ``alpha / features`` (Bonferroni: ``alpha`` = 0.01
  is the chance that a day with no change flags any feature at all).  Adjacent buckets are
  pooled until each expects at least ``min_expected`` rows in both samples, where the
  chi-square approximation holds.  A baseline whose rows repeat entities (a customer in many
  training snapshots) counts as ``effective_rows`` independent rows, not as its row count.

Every feature is bucketed in one ``select`` and counted in one aggregation, so a profile or a
comparison costs one pass over the data however many features there are; only the counts per
bucket reach the driver.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql.types import BooleanType, NumericType
from scipy.stats import chi2

from features import runlog

DRIFT_TABLE = "ops.feature_drift"
DRIFT_DDL = (
    "score_date date, model_name string, model_version string, feature string, kind string, "
    "psi double, drifted boolean, baseline_rows bigint, current_rows bigint, "
    "computed_at timestamp, p_value double"
)
PROFILE_FORMAT = "feature-profile/1"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_BINS = 10
DEFAULT_TOP_N = 50
EPSILON = 1e-4
RELATIVE_ERROR = 1e-3

# Bucket ids shared by the profile and the comparison: bins and categories count from 0.
_NULL = -1
_OTHER = -2


@dataclasses.dataclass(frozen=True)
class DriftRule:
    """When a feature counts as drifted: a shift that is both large and not noise.

    Attributes:
        min_psi: PSI the shift must exceed (0.1: "moderate" by the rule of thumb).
        alpha: Chance that a day without change flags any feature; each of ``k`` features
            compared at once is tested at ``alpha / k`` (Bonferroni).
        min_expected: Rows each pooled bucket must expect in both samples.
    """

    min_psi: float = 0.1
    alpha: float = 0.01
    min_expected: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"DriftRule: alpha must be in (0, 1), got {self.alpha}")
        if self.min_psi < 0 or self.min_expected <= 0:
            raise ValueError(
                "DriftRule: min_psi must be >= 0 and min_expected > 0, got "
                f"{self.min_psi} and {self.min_expected}"
            )

    def level(self, features: int) -> float:
        """The p-value below which one of ``features`` features compared at once drifts."""
        return self.alpha / max(1, features)


DEFAULT_RULE = DriftRule()


@dataclasses.dataclass(frozen=True)
class FeatureDrift:
    """The drift of one feature between a baseline profile and a current frame.

    Attributes:
        feature: Column name.
        kind: ``numeric`` or ``categorical``.
        psi: Population stability index over all buckets.
        bins: Buckets compared (bins or categories, plus the ``other`` and null buckets).
        rows: Rows of the current frame.
        baseline_rows: Rows of the training set the profile was taken from.
        p_value: Chi-square test of homogeneity of the two samples' bucket counts.
        drifted: PSI above the rule's ``min_psi`` and ``p_value`` below its level.
    """

    feature: str
    kind: str
    psi: float
    bins: int
    rows: int
    baseline_rows: int
    p_value: float = 1.0
    drifted: bool = False

    def is_drifted(self) -> bool:
        """Whether the comparison flagged the feature (see :class:`DriftRule`)."""
        return self.drifted


def profile(
    frame: DataFrame,
    *,
    numeric_cols: Sequence[str] = (),
    categorical_cols: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    top_n: int = DEFAULT_TOP_N,
    relative_error: float = RELATIVE_ERROR,
    effective_rows: int | None = None,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The baseline distribution of each feature of a training set.

    Three small Spark jobs whatever the number of features: the quantiles of all numeric
    columns, the top categories of all categorical ones, and the counts per bucket.  Cache
    ``frame`` first if it is expensive to recompute.

    Args:
        frame: The training set.
        numeric_cols: Numeric features, bucketed at approximate quantiles.
        categorical_cols: Categorical features (any type, compared as strings).
        bins: Quantile bins per numeric feature before deduplicating equal edges.
        top_n: Categories kept per categorical feature; the rest share an ``other`` bucket.
        relative_error: Relative error of ``approxQuantile``.
        effective_rows: Independent rows the frame is worth, when its rows repeat entities
            (e.g. the distinct customers of many training snapshots); its rows by default.
        reference: What the frame is (kept as is in the profile, e.g. which snapshots).

    Returns:
        ``{"format", "rows", "bins", "top_n", "features": {name: {...}}}``; each numeric feature
        holds ``edges`` (inner edges), ``shares`` (one more than edges) and ``null_share``;
        each categorical one ``categories``, ``shares``, ``other_share`` and ``null_share``.
        Plain lists, floats and ints: it survives ``json.dumps(..., allow_nan=False)``.
        ``effective_rows`` and ``reference`` say what sample the shares come from.
    """
    if bins < 2:
        raise ValueError(f"profile: bins must be at least 2, got {bins}")
    if top_n < 1:
        raise ValueError(f"profile: top_n must be at least 1, got {top_n}")
    numeric_cols, categorical_cols = list(numeric_cols), list(categorical_cols)
    _check_columns(frame, numeric_cols, categorical_cols)
    features: dict[str, dict[str, Any]] = {}
    if numeric_cols:
        probabilities = [i / bins for i in range(1, bins)]
        values = frame.select([_numeric(c).alias(c) for c in numeric_cols])
        quantiles = values.approxQuantile(numeric_cols, probabilities, relative_error)
        for name, cuts in zip(numeric_cols, quantiles, strict=True):
            features[name] = {"kind": NUMERIC, "edges": sorted({float(c) for c in cuts})}
    for name, categories in _top_categories(frame, categorical_cols, top_n).items():
        features[name] = {"kind": CATEGORICAL, "categories": categories}
    features = {name: features[name] for name in numeric_cols + categorical_cols}
    counts = _bucket_counts(frame, features, F.lit(0)).get(0, {name: {} for name in features})
    rows = _rows(counts)
    if rows == 0:
        raise ValueError("profile: the frame has no rows; a baseline needs a training set")
    for name, spec in features.items():
        shares = [count / rows for count in _aligned(counts[name], spec)]
        if spec["kind"] == NUMERIC:
            spec.update(shares=shares[:-1], null_share=shares[-1])
        else:
            spec.update(shares=shares[:-2], other_share=shares[-2], null_share=shares[-1])
    if effective_rows is not None and not 0 < effective_rows <= rows:
        raise ValueError(f"profile: effective_rows must be in 1..{rows}, got {effective_rows}")
    return {
        "format": PROFILE_FORMAT,
        "rows": rows,
        "effective_rows": int(effective_rows or rows),
        "bins": bins,
        "top_n": top_n,
        "reference": dict(reference or {}),
        "features": features,
    }


def psi(
    baseline: dict[str, Any],
    frame: DataFrame,
    *,
    features: Sequence[str] | None = None,
    epsilon: float = EPSILON,
    rule: DriftRule = DEFAULT_RULE,
) -> list[FeatureDrift]:
    """The PSI and p-value of each feature of ``baseline`` between it and ``frame``.

    One pass over ``frame`` for all features: one ``select`` of bucket ids, one aggregation
    of counts per feature and bucket.

    Args:
        baseline: A profile from :func:`profile` (or its JSON round trip).
        frame: The current data, e.g. the feature frame of a scoring day.
        features: Compare only these features of the baseline (all by default).
        epsilon: Floor of a share, so that an empty bucket counts but stays finite.
        rule: When a feature counts as drifted; its significance level is split over the
            features compared.

    Returns:
        One :class:`FeatureDrift` per feature, in the baseline's order.
    """
    whole = psi_by(baseline, frame, F.lit(0), features=features, epsilon=epsilon, rule=rule)
    if not whole:
        raise ValueError("psi: the current frame has no rows; there is nothing to compare")
    return whole[0]


def psi_by(
    baseline: dict[str, Any],
    frame: DataFrame,
    group: Column,
    *,
    features: Sequence[str] | None = None,
    epsilon: float = EPSILON,
    rule: DriftRule = DEFAULT_RULE,
) -> dict[Any, list[FeatureDrift]]:
    """:func:`psi` for each value of ``group`` (e.g. the date of many scoring days), in one
    pass over ``frame``: one aggregation of counts per group, feature and bucket.

    Returns:
        Group value to one :class:`FeatureDrift` per feature; groups without rows are absent.
    """
    specs = _specs(baseline, features)
    columns = set(frame.columns)  # one schema round trip, not one per feature
    missing = [name for name in specs if name not in columns]
    if missing:
        raise ValueError(
            f"psi: the frame lacks feature(s) {missing} of the baseline "
            f"(frame columns: {frame.columns}); select them into the frame or pass features="
        )
    by_group = _bucket_counts(frame, specs, group)
    return {
        key: _compare(baseline, specs, counts, epsilon=epsilon, rule=rule)
        for key, counts in sorted(by_group.items())
    }


def _compare(
    baseline: dict[str, Any],
    specs: dict[str, dict[str, Any]],
    counts: dict[str, dict[int, int]],
    *,
    epsilon: float,
    rule: DriftRule,
) -> list[FeatureDrift]:
    """One :class:`FeatureDrift` per feature from the current sample's bucket counts."""
    rows = _rows(counts)
    result = []
    level = rule.level(len(specs))
    effective = float(baseline.get("effective_rows") or baseline["rows"])
    for name, spec in specs.items():
        current = _aligned(counts[name], spec)
        actual = [count / rows for count in current]
        expected = _baseline_shares(spec)
        index = population_stability(expected, actual, epsilon=epsilon)
        p_value = homogeneity_p_value(
            [share * effective for share in expected], current, min_expected=rule.min_expected
        )
        result.append(
            FeatureDrift(
                feature=name,
                kind=spec["kind"],
                psi=index,
                bins=len(expected),
                rows=rows,
                baseline_rows=int(baseline["rows"]),
                p_value=p_value,
                drifted=index > rule.min_psi and p_value < level,
            )
        )
    return result


def homogeneity_p_value(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    min_expected: float = 5.0,
) -> float:
    """p-value of a chi-square test that two samples' bucket counts share one distribution.

    Adjacent buckets (bins are ordered; the null bucket comes last) are pooled until each
    pooled bucket expects at least ``min_expected`` rows in both samples under the hypothesis
    of one distribution; what is left at the end joins the last pooled bucket.  With one
    pooled bucket there is nothing to test: 1.0.

    Args:
        baseline: The baseline's counts per bucket (may be fractional: shares times its
            effective rows).
        current: The current sample's counts, aligned with ``baseline``.
        min_expected: Expected rows per pooled bucket and sample.
    """
    if len(baseline) != len(current):
        raise ValueError(
            f"homogeneity_p_value: {len(baseline)} baseline buckets but {len(current)} current ones"
        )
    n_base, n_cur = float(sum(baseline)), float(sum(current))
    total = n_base + n_cur
    if n_base <= 0 or n_cur <= 0:
        return 1.0
    need = min_expected * total / min(n_base, n_cur)  # pooled rows so both expect enough
    groups: list[list[float]] = []
    pending = [0.0, 0.0]
    for b, c in zip(baseline, current, strict=True):
        pending = [pending[0] + b, pending[1] + c]
        if pending[0] + pending[1] >= need:
            groups.append(pending)
            pending = [0.0, 0.0]
    if pending[0] + pending[1] > 0:
        if groups:
            groups[-1] = [groups[-1][0] + pending[0], groups[-1][1] + pending[1]]
        else:
            groups.append(pending)
    if len(groups) < 2:
        return 1.0
    statistic = 0.0
    for b, c in groups:
        pooled = (b + c) / total
        for observed, n in ((b, n_base), (c, n_cur)):
            expected = pooled * n
            statistic += (observed - expected) ** 2 / expected
    return float(chi2.sf(statistic, len(groups) - 1))


def population_stability(
    expected: Sequence[float],
    actual: Sequence[float],
    *,
    epsilon: float = EPSILON,
) -> float:
    """``sum((a - e) * ln(a / e))`` over aligned shares, each floored at ``epsilon``."""
    if len(expected) != len(actual):
        raise ValueError(
            f"population_stability: {len(expected)} expected shares but {len(actual)} actual ones"
        )
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, epsilon), max(a, epsilon)
        total += (a - e) * math.log(a / e)
    return total


def drifted_features(rows: Iterable[FeatureDrift]) -> list[str]:
    """Features flagged as drifted, largest PSI first."""
    drifted = [row for row in rows if row.drifted]
    return [row.feature for row in sorted(drifted, key=lambda row: (-row.psi, row.feature))]


def ensure_table(spark: SparkSession) -> str:
    """Create ``ops.feature_drift`` (partitioned by ``score_date``) if needed; return where."""
    if not spark.catalog.tableExists(DRIFT_TABLE):
        spark.sql("create database if not exists ops")
        spark.sql(
            f"create table if not exists {DRIFT_TABLE} ({DRIFT_DDL}) using delta "
            "partitioned by (score_date)"
        )
    return spark.sql(f"describe detail {DRIFT_TABLE}").first()["location"]


def write_drift(
    spark: SparkSession,
    rows: Sequence[FeatureDrift],
    *,
    score_date: dt.date,
    model_name: str,
    model_version: str,
) -> int:
    """Replace the drift rows of ``model_name`` on ``score_date`` in ``ops.feature_drift``.

    One Delta commit (``replaceWhere`` on the date and the model): a rerun of the same day
    leaves one set of rows, whatever model version wrote the earlier ones.  An empty ``rows``
    removes that day's rows of the model.

    Returns:
        Rows written.
    """
    return write_drift_days(
        spark, {score_date: rows}, model_name=model_name, model_version=model_version
    )


def write_drift_days(
    spark: SparkSession,
    by_day: dict[dt.date, Sequence[FeatureDrift]],
    *,
    model_name: str,
    model_version: str,
) -> int:
    """:func:`write_drift` for many days in one Delta commit (a backfill's monitoring).

    Returns:
        Rows written.
    """
    for score_date, rows in by_day.items():
        features = [row.feature for row in rows]
        repeated = sorted({name for name in features if features.count(name) > 1})
        if repeated:
            raise ValueError(
                f"write_drift: feature(s) {repeated} appear more than once for "
                f"{model_name} on {score_date}; pass one FeatureDrift per feature"
            )
    if not by_day:
        return 0
    location = ensure_table(spark)
    computed_at = runlog.utc_now()
    frame = spark.createDataFrame(
        [
            (
                score_date,
                model_name,
                str(model_version),
                row.feature,
                row.kind,
                float(row.psi),
                row.drifted,
                row.baseline_rows,
                row.rows,
                computed_at,
                float(row.p_value),
            )
            for score_date, rows in by_day.items()
            for row in rows
        ],
        DRIFT_DDL,
    )
    days = ", ".join(f"'{day.isoformat()}'" for day in sorted(by_day))
    condition = f"score_date in ({days}) and model_name = {_sql_string(model_name)}"
    # To the table's location, not saveAsTable: an overwrite through the Hive catalog would
    # also rewrite the table's schema in the metastore on every run.  mergeSchema: a table
    # from before p_value existed gains the column (null in old rows).
    frame.write.format("delta").mode("overwrite").option("replaceWhere", condition).option(
        "mergeSchema", "true"
    ).save(location)
    return sum(len(rows) for rows in by_day.values())


def plot_drift(
    rows: Sequence[FeatureDrift],
    path: Path,
    *,
    title: str,
    rule: DriftRule = DEFAULT_RULE,
) -> Path:
    """PSI per feature as a PNG of horizontal bars, largest on top, drifted ones in red.

    The dashed line is the rule's ``min_psi``; a bar past it stays blue when its p-value
    says the shift may be noise.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ordered = sorted(rows, key=lambda row: (-row.psi, row.feature))
    fig = Figure(figsize=(7.5, max(2.5, 1.2 + 0.32 * len(ordered))))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positions = list(range(len(ordered)))
    colors = ["tab:red" if row.drifted else "tab:blue" for row in ordered]
    ax.barh(positions, [row.psi for row in ordered], color=colors)
    ax.set_yticks(positions, [row.feature for row in ordered])
    ax.invert_yaxis()
    for position, row in zip(positions, ordered, strict=True):
        ax.annotate(
            f"{row.psi:.3f}",
            (row.psi, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    threshold = rule.min_psi
    line = ax.axvline(threshold, linestyle="--", color="grey", label=f"PSI {threshold:g}")
    top = max([threshold, *(row.psi for row in ordered)])
    ax.set(xlabel="population stability index", title=title, xlim=(0, top * 1.15))
    if not ordered:
        ax.text(0.5, 0.5, "no features", transform=ax.transAxes, ha="center", va="center")
    ax.legend(
        handles=[
            Patch(color="tab:red", label=f"drifted (PSI > {threshold:g}, not noise by chi-square)"),
            Patch(color="tab:blue", label="stable or noise"),
            line,
        ],
        loc="lower right",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    return path


def _check_columns(frame: DataFrame, numeric: list[str], categorical: list[str]) -> None:
    """Raise when the feature lists are empty, overlap or do not fit the frame's schema."""
    if not numeric and not categorical:
        raise ValueError("profile: no features given; pass numeric_cols and/or categorical_cols")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise ValueError(f"profile: {both} given as both numeric and categorical; pick one")
    types = {field.name: field.dataType for field in frame.schema.fields}
    missing = [name for name in numeric + categorical if name not in types]
    if missing:
        raise ValueError(
            f"profile: the frame lacks column(s) {missing} (frame columns: {frame.columns})"
        )
    for name in numeric:
        kind = types[name]
        if not isinstance(kind, NumericType) or isinstance(kind, BooleanType):
            raise ValueError(
                f"profile: numeric feature '{name}' has type {kind.simpleString()}; "
                "cast it to a number or pass it in categorical_cols"
            )


def _numeric(name: str) -> Column:
    """The column as double, NaN turned into null."""
    value = F.col(name).cast("double")
    return F.when(~F.isnan(value), value)


def _top_categories(
    frame: DataFrame,
    names: list[str],
    top_n: int,
) -> dict[str, list[str]]:
    """The ``top_n`` most frequent non-null categories of each column (ties by value)."""
    if not names:
        return {}
    pairs = F.array(
        *[
            F.struct(F.lit(name).alias("feature"), F.col(name).cast("string").alias("value"))
            for name in names
        ]
    )
    rank = F.row_number().over(
        Window.partitionBy("feature").orderBy(F.desc("count"), F.asc("value"))
    )
    top = (
        frame.select(F.inline(pairs))
        .where(F.col("value").isNotNull())
        .groupBy("feature", "value")
        .count()
        .withColumn("rank", rank)
        .where(F.col("rank") <= top_n)
        .collect()
    )
    found: dict[str, list[tuple[int, str]]] = {name: [] for name in names}
    for row in top:
        found[row["feature"]].append((row["rank"], row["value"]))
    return {name: [value for _, value in sorted(ranked)] for name, ranked in found.items()}


def _bucket(name: str, spec: dict[str, Any]) -> Column:
    """The bucket id of the column under ``spec``: bin or category index, other, or null.

    ``name`` must be a plain identifier (``_bucket_counts`` aliases the features so): a
    numeric column's bucket is SQL, one expression for the JVM to parse, where built of
    Columns each edge took four calls into the JVM (about a second for a monitored day's
    features).  The value is :func:`_numeric`'s (NaN as null), each edge the double it is
    (``repr`` reads back exactly).
    """
    if spec["kind"] == NUMERIC:
        number = f"(case when not isnan(cast({name} as double)) then cast({name} as double) end)"
        index = " + ".join(
            ["0"]
            + [
                f"cast({number} >= cast('{float(edge)!r}' as double) as int)"
                for edge in spec["edges"]
            ]
        )
        return F.expr(f"case when {number} is null then {_NULL} else {index} end")
    value = F.col(name).cast("string")
    categories = spec["categories"]
    if not categories:
        return F.when(value.isNull(), F.lit(_NULL)).otherwise(F.lit(_OTHER))
    position = F.array_position(F.array(*[F.lit(c) for c in categories]), value)
    return (
        F.when(value.isNull(), F.lit(_NULL))
        .when(position == 0, F.lit(_OTHER))
        .otherwise((position - 1).cast("int"))
    )


def _bucket_counts(
    frame: DataFrame,
    specs: dict[str, dict[str, Any]],
    group: Column,
) -> dict[Any, dict[str, dict[int, int]]]:
    """Rows per value of ``group``, feature and bucket id, in one pass and one aggregation;
    only the counts reach the driver.  Groups without rows are absent (a constant ``group``
    counts the whole frame)."""
    aliases = {name: f"_feature_{index}" for index, name in enumerate(specs)}
    pairs = F.array(
        *[
            F.struct(F.lit(name).alias("feature"), _bucket(aliases[name], spec).alias("bucket"))
            for name, spec in specs.items()
        ]
    )
    counted = (
        frame.select(
            group.alias("_group"), *[F.col(name).alias(alias) for name, alias in aliases.items()]
        )
        .select("_group", F.inline(pairs))
        .groupBy("_group", "feature", "bucket")
        .count()
        .collect()
    )
    groups: dict[Any, dict[str, dict[int, int]]] = {}
    for row in counted:
        counts = groups.setdefault(row["_group"], {name: {} for name in specs})
        counts[row["feature"]][int(row["bucket"])] = int(row["count"])
    return groups


def _rows(counts: dict[str, dict[int, int]]) -> int:
    """Rows of the frame: every feature puts each row in exactly one bucket."""
    return sum(next(iter(counts.values())).values()) if counts else 0


def _aligned(counts: dict[int, int], spec: dict[str, Any]) -> list[int]:
    """Counts in profile order: bins or categories, then ``other`` (categorical), then null."""
    if spec["kind"] == NUMERIC:
        ids = [*range(len(spec["edges"]) + 1), _NULL]
    else:
        ids = [*range(len(spec["categories"])), _OTHER, _NULL]
    return [counts.get(bucket, 0) for bucket in ids]


def _baseline_shares(spec: dict[str, Any]) -> list[float]:
    """The baseline's shares in the order of :func:`_aligned`."""
    if spec["kind"] == NUMERIC:
        return [*spec["shares"], spec["null_share"]]
    return [*spec["shares"], spec["other_share"], spec["null_share"]]


def _specs(
    baseline: dict[str, Any],
    features: Sequence[str] | None,
) -> dict[str, dict[str, Any]]:
    """The feature specs of a profile, checked, optionally restricted to ``features``."""
    if not isinstance(baseline, dict) or baseline.get("format") != PROFILE_FORMAT:
        found = baseline.get("format") if isinstance(baseline, dict) else type(baseline).__name__
        raise ValueError(
            f"psi: baseline is not a {PROFILE_FORMAT} profile (format {found!r}); "
            "build it with features.drift.profile"
        )
    specs = baseline["features"]
    if features is None:
        return dict(specs)
    unknown = [name for name in features if name not in specs]
    if unknown:
        raise ValueError(
            f"psi: feature(s) {unknown} are not in the baseline (profiled: {list(specs)})"
        )
    return {name: specs[name] for name in features}


def _sql_string(value: str) -> str:
    """``value`` as a Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
