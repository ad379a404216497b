"""Rows apart for judging: the label the estimators read, and the held-out part.

With a timestamp nothing is ever judged on data older than what it was fitted on: the
held-out part is the latest rows (every training row is at or before the cutoff, every
held-out row after it).  Without one (cross-sectional data such as the IBM Telco
benchmark) a hash of the id columns picks the held-out rows: deterministic, independent
of partitioning.  How the training part is cut again for tuning: :mod:`models_ml.tuning`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import pyspark.sql.functions as F
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from models_ml.config import FOLD, LABEL, ROW_ID, ConfigError, ModelConfig

_HASH_BUCKETS = 10_000
#: Up to this many distinct instants, time blocks are cut between exact instants.
EXACT_INSTANTS = 10_000


@dataclasses.dataclass(frozen=True)
class Split:
    """A training part and a later (or hashed-apart) held-out part.

    Attributes:
        train: Rows to fit and tune on.
        holdout: Rows to judge on.
        kind: ``time`` or ``hash``.
        cutoff: ``time``: training rows are at or before it, held-out rows after it.
    """

    train: DataFrame
    holdout: DataFrame
    kind: Literal["time", "hash"]
    cutoff: datetime | None = None


def prepare(frame: DataFrame, config: ModelConfig) -> DataFrame:
    """Add the double ``label`` the estimators read; drop rows without a label.

    Classifiers: ``label_col == positive_label`` when that is set, else the 0/1 or
    boolean column cast to double.  Regressors: the column cast to double.  Without
    ``id_cols``, also ``_row_id``: a hash of the row's own values, which hash splits key on.
    """
    missing = [
        c
        for c in (config.label_col, config.timestamp_col, *config.id_cols, *config.feature_cols)
        if c and c not in frame.columns
    ]
    if missing:
        raise ConfigError(
            f"prepare: the training frame lacks columns {missing} named in the ModelConfig "
            f"(it has {frame.columns})"
        )
    source = F.col(config.label_col)
    if config.is_classifier and config.positive_label is not None:
        label = F.when(source.isNull(), None).otherwise(
            (source.cast("string") == F.lit(config.positive_label)).cast("double")
        )
    else:
        label = source.cast("double")
    if not config.id_cols and ROW_ID not in frame.columns:
        frame = frame.withColumn(ROW_ID, F.xxhash64(*[F.col(c) for c in frame.columns]))
    return frame.withColumn(LABEL, label).where(F.col(LABEL).isNotNull())


def hash_unit(frame: DataFrame, config: ModelConfig, salt: str) -> F.Column:
    """A deterministic number in [0, 1) per row, from the id columns (or, without them,
    the ``_row_id`` of :func:`prepare`) and a salt."""
    ids = [F.col(c).cast("string") for c in (config.id_cols or (ROW_ID,))]
    hashed = F.xxhash64(F.lit(f"{salt}:{config.seed}"), *ids)
    return F.pmod(hashed, F.lit(_HASH_BUCKETS)) / F.lit(float(_HASH_BUCKETS))


def _epoch_seconds(column: str) -> F.Column:
    """A column read as a timestamp, in epoch seconds (double)."""
    return F.unix_micros(F.col(column).cast("timestamp")) / F.lit(1e6)


def order_value(frame: DataFrame, column: str) -> F.Column:
    """A column that orders rows in time, as a double: epoch seconds for timestamps and
    dates, the value itself for numbers."""
    kind = frame.schema[column].dataType
    if isinstance(kind, (T.TimestampType, T.TimestampNTZType, T.DateType, T.StringType)):
        return _epoch_seconds(column)
    return F.col(column).cast("double")


def seconds(config: ModelConfig) -> F.Column:
    """The timestamp column as epoch seconds (double)."""
    if config.timestamp_col is None:
        raise ConfigError("a cut by time needs timestamp_col")
    return _epoch_seconds(config.timestamp_col)


def time_cut(frame: DataFrame, config: ModelConfig, quantile: float) -> float:
    """Epoch seconds that cut ``frame`` by time: rows at or before go first.

    The ``quantile`` of the timestamps, moved so that both sides keep rows whenever the
    frame has two distinct instants (weekly snapshots give few: the 0.8 quantile of
    three snapshots is the last one, which would leave nothing after the cut).
    """
    value = seconds(config)
    (cut,) = frame.select(value.alias("_s")).approxQuantile("_s", [quantile], 0.0001)
    bounds = frame.agg(F.min(value), F.max(value)).first()
    assert bounds is not None  # an aggregate has a row
    low, high = bounds
    if high is None:
        return cut
    if cut >= high:
        before_last = frame.where(value < F.lit(high)).agg(F.max(value)).first()[0]
        return before_last if before_last is not None else cut
    return max(cut, low)


def block_cuts(frame: DataFrame, value: F.Column, fractions: Sequence[float]) -> list[float]:
    """Values that cut ``frame`` into contiguous blocks, rows ``<= cut`` going first.

    At most :data:`EXACT_INSTANTS` distinct values (weekly snapshots): cuts between whole
    instants, each leaving ``fractions[i]`` of the instants at or before it (at least one,
    and always one after).  More: approximate quantiles of the rows.  Null values fall in
    no block.
    """
    values = frame.select(value.alias("_v")).where(F.col("_v").isNotNull())
    instants = values.distinct()
    if instants.limit(EXACT_INSTANTS + 1).count() <= EXACT_INSTANTS:
        found = sorted(row[0] for row in instants.collect())
        if len(found) < 2:
            return [found[0]] * len(fractions) if found else []
        last = len(found) - 2
        return [found[min(last, max(0, int(q * len(found)) - 1))] for q in fractions]
    return values.approxQuantile("_v", list(fractions), 0.0001)


def split_holdout(frame: DataFrame, config: ModelConfig) -> Split:
    """Split a prepared frame into training and held-out parts.

    With ``timestamp_col``: rows after the cutoff are held out, where the cutoff is the
    ``1 - holdout_fraction`` quantile of the timestamps (or just before
    ``holdout_start``).  All rows sharing a timestamp fall on the same side.  Rows with a
    null timestamp are dropped.  Without it: a hash of ``id_cols`` picks
    ``holdout_fraction`` of the rows.
    """
    if config.timestamp_col is None:
        unit = hash_unit(frame, config, "holdout")
        return Split(
            train=frame.where(unit >= config.holdout_fraction),
            holdout=frame.where(unit < config.holdout_fraction),
            kind="hash",
        )
    ts = F.col(config.timestamp_col).cast("timestamp")
    timed = frame.where(ts.isNotNull())
    if config.holdout_start is not None:
        start = F.lit(config.holdout_start).cast("timestamp")
        train, holdout = timed.where(ts < start), timed.where(ts >= start)
        cutoff = config.holdout_start
    else:
        cut = time_cut(timed, config, 1.0 - config.holdout_fraction)
        cutoff = datetime.fromtimestamp(cut, tz=UTC)
        train = timed.where(seconds(config) <= F.lit(cut))
        holdout = timed.where(seconds(config) > F.lit(cut))
    return Split(train=train, holdout=holdout, kind="time", cutoff=cutoff)


def hash_folds(frame: DataFrame, config: ModelConfig, *, folds: int) -> DataFrame:
    """Add the integer fold column ``_fold`` in ``[0, folds)`` from a hash of the id
    columns (cross-sectional data; time-ordered data is folded by
    :class:`models_ml.tuning.TimeSeriesCrossValidator`)."""
    unit = hash_unit(frame, config, "fold")
    return frame.withColumn(FOLD, F.floor(unit * folds).cast("int"))
