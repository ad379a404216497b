"""The one place a model is configured: columns, model family, tuning and threshold."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pyspark.sql import types as T

Family = Literal["logistic", "gbt", "linear", "gbt_regressor", "torch_mlp"]
Tuning = Literal["cv", "tvs"]

FAMILIES: tuple[str, ...] = ("logistic", "gbt", "linear", "gbt_regressor", "torch_mlp")
CLASSIFIERS: tuple[str, ...] = ("logistic", "gbt", "torch_mlp")

#: Parameter grids used when a config gives none: small, so tuning stays cheap.
DEFAULT_GRIDS: Mapping[str, tuple[tuple[str, tuple[Any, ...]], ...]] = {
    "logistic": (("regParam", (0.001, 0.01)), ("elasticNetParam", (0.0, 0.5))),
    "linear": (("regParam", (0.001, 0.01)), ("elasticNetParam", (0.0, 0.5))),
    # More trees (50 or 150) or early stopping reached no higher held-out AUC on the public
    # churn datasets (bench/bench_gbt_search.py), at up to four times the cost.
    "gbt": (("maxDepth", (3, 5)), ("maxIter", (10, 20))),
    "gbt_regressor": (("maxDepth", (3, 5)), ("maxIter", (10, 20))),
    # Each fit starts its PyTorch processes: two grid points keep tuning to a few fits.
    "torch_mlp": (("learningRate", (0.01, 0.001)),),
}

#: Column names the pipeline creates; feature frames must not use them.
LABEL = "label"
FEATURES = "features"
SCALED = "features_scaled"
FOLD = "_fold"
#: Without id columns: a hash of each row's own values, what hash splits key on.
ROW_ID = "_row_id"

_NUMERIC_TYPES = (T.NumericType, T.BooleanType)
_SKIPPED_TYPES = (
    T.TimestampType,
    T.TimestampNTZType,
    T.DateType,
    T.ArrayType,
    T.MapType,
    T.StructType,
    T.BinaryType,
)


class ConfigError(ValueError):
    """A model configuration that cannot work, with what to change."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """How one model is built, tuned, split and judged.

    The training frame holds one row per (entity, timestamp): feature columns, the label
    and optionally id and timestamp columns.  Everything else in this package reads its
    options from here.

    Attributes:
        label_col: Label column: 0/1 or boolean for classifiers (or any value with
            ``positive_label``), a number for regressors.
        family: ``logistic``, ``gbt`` or ``torch_mlp`` (classifiers; ``torch_mlp`` is a
            PyTorch network trained by ``TorchDistributor``, :mod:`models_ml.torch_mlp`),
            ``linear`` or ``gbt_regressor``.
        timestamp_col: When the features were known.  With it, the held-out set and the
            tuning folds are cut by time; without it, by a hash of ``id_cols``.
        id_cols: Entity keys; never features.  Without them a hash split keys on a hash of
            each row's values (identical rows fall on the same side).
        numeric_cols: Numeric features (strings that parse as numbers are cast; blanks
            and nulls are imputed with the training median).
        categorical_cols: Categorical features (indexed, unseen values kept, one-hot).
        text_cols: Support-chat texts (one chat per line, latest first), scored by the
            pandas-UDF stage :class:`~models_ml.text.ChatTextScorer` into numeric features.
        positive_label: Label value that means 1 when the label is not numeric (``"Yes"``).
        baseline_col: Regression only: a naive prediction to beat (e.g. last invoice).
        param_grid: ``((param, (values...)), ...)`` over the estimator's params;
            :data:`DEFAULT_GRIDS` when empty.
        max_iter: Iterations of the estimator when the grid does not set them (a gradient
            boosted family with ``early_stopping``: ``max_trees``; ``torch_mlp``: epochs).
        tol: The logistic family, and the linear one where MLlib iterates (an elastic net;
            its normal equations otherwise): a fit stops once an iteration changes the loss
            by less than this share (MLlib's ``tol``).  1e-4, scikit-learn's default, rather
            than MLlib's 1e-6: on the demo lake's churn training the final fit then stops
            after 11 iterations instead of 17, with the same best parameters and held-out
            metrics to five digits (bench/RESULTS.md, "Small runs").
        max_trees: Gradient boosted families with ``early_stopping``: the most trees (the
            fit stops adding them sooner).
        early_stopping: Gradient boosted families whose grid does not set ``maxIter``: the
            share of each fit's rows (a hash slice) that stops adding trees once another
            improves their loss by less than 0.01% (MLlib's ``validationIndicatorCol``);
            0 (the default) turns it off.
        tuning: ``cv`` (cross-validation; with a timestamp expanding windows in time, see
            :class:`~models_ml.tuning.TimeSeriesCrossValidator`) or ``tvs`` (one
            train/validation cut, forward in time, cheaper).
        num_folds: Folds of ``cv`` (with a timestamp, ``num_folds + 1`` time blocks).
        train_ratio: Share of the tuning data (the earliest, with a timestamp) fitted on in
            ``tvs``.
        parallelism: Models fitted at once while tuning (threads: small fits wait on Spark's
            scheduling more than on the cores, so more than the cores pays).
        holdout_fraction: Share of rows (the latest ones, with a timestamp) held out.
        holdout_start: With a timestamp: hold out rows at or after this instant instead.
        threshold: Fixed decision threshold; ``None`` picks the one maximising F1 on a
            validation slice of the training period.
        validation_fraction: Share of the training period used to pick the threshold.
        standardize: Scale the assembled features to unit variance.
        seed: Seed of every random choice.
        torch_processes: ``torch_mlp``: training processes (``TorchDistributor``).
        use_gpu: ``torch_mlp``: one GPU per process; ``None`` (the default): when Spark's
            driver has a ``gpu`` resource and torch sees a GPU, else CPU processes.
        snapshot_dir: ``torch_mlp``: folder of the training snapshot the processes read
            (the system's temporary folder by default).
    """

    label_col: str
    family: Family = "logistic"
    timestamp_col: str | None = None
    id_cols: tuple[str, ...] = ()
    numeric_cols: tuple[str, ...] = ()
    categorical_cols: tuple[str, ...] = ()
    text_cols: tuple[str, ...] = ()
    positive_label: str | None = None
    baseline_col: str | None = None
    param_grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    max_iter: int = 30
    tol: float = 1e-4
    max_trees: int = 200
    early_stopping: float = 0.0
    tuning: Tuning = "cv"
    num_folds: int = 3
    train_ratio: float = 0.75
    parallelism: int = 4
    holdout_fraction: float = 0.2
    holdout_start: datetime | None = None
    threshold: float | None = None
    validation_fraction: float = 0.2
    standardize: bool = True
    seed: int = 42
    torch_processes: int = 2
    use_gpu: bool | None = None
    snapshot_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("id_cols", "numeric_cols", "categorical_cols", "text_cols"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(
            self, "param_grid", tuple((str(k), tuple(v)) for k, v in self.param_grid)
        )
        if self.family not in FAMILIES:
            raise ConfigError(f"ModelConfig: family {self.family!r} is not one of {FAMILIES}")
        if self.tuning not in ("cv", "tvs"):
            raise ConfigError(f"ModelConfig: tuning {self.tuning!r} is not 'cv' or 'tvs'")
        if not self.feature_cols:
            raise ConfigError(
                "ModelConfig: no feature columns; give numeric_cols/categorical_cols "
                "or build the config with ModelConfig.from_schema"
            )
        roles = (self.numeric_cols, self.categorical_cols, self.text_cols)
        overlap = {c for i, a in enumerate(roles) for b in roles[i + 1 :] for c in set(a) & set(b)}
        reserved = {self.label_col, self.timestamp_col, self.baseline_col, *self.id_cols}
        clash = (set(self.feature_cols) & reserved) | overlap
        if clash:
            raise ConfigError(
                f"ModelConfig: columns {sorted(c for c in clash if c)} are used twice "
                "(feature and label/id/timestamp/baseline, or in two of numeric, categorical "
                "and text)"
            )
        if self.num_folds < 2:
            raise ConfigError("ModelConfig: num_folds must be at least 2")
        if not 0.0 < self.tol < 1.0:
            raise ConfigError("ModelConfig: tol must lie strictly between 0 and 1")
        if self.torch_processes < 1:
            raise ConfigError("ModelConfig: torch_processes must be at least 1")
        if not 0.0 <= self.early_stopping < 1.0:
            raise ConfigError("ModelConfig: early_stopping must lie in [0, 1)")
        for name in ("holdout_fraction", "train_ratio", "validation_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"ModelConfig: {name} must lie strictly between 0 and 1")
        if self.baseline_col and self.is_classifier:
            raise ConfigError("ModelConfig: baseline_col is for regression families only")

    @property
    def is_classifier(self) -> bool:
        """Whether the family predicts a 0/1 label (else a number)."""
        return self.family in CLASSIFIERS

    @property
    def is_boosted(self) -> bool:
        """Whether the family is gradient boosted trees."""
        return self.family in ("gbt", "gbt_regressor")

    @property
    def stops_early(self) -> bool:
        """Whether tuning fits stop adding trees on a held-aside slice."""
        return self.is_boosted and self.early_stopping > 0 and "maxIter" not in self.grid()

    @property
    def feature_cols(self) -> tuple[str, ...]:
        """Input feature columns: numeric first, then categorical, then text."""
        return self.numeric_cols + self.categorical_cols + self.text_cols

    def grid(self) -> dict[str, tuple[Any, ...]]:
        """The parameter grid to tune over, as ``{param name: values}``."""
        return dict(self.param_grid or DEFAULT_GRIDS[self.family])

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (for model metadata)."""
        out = dataclasses.asdict(self)
        out["holdout_start"] = self.holdout_start.isoformat() if self.holdout_start else None
        out["param_grid"] = {k: list(v) for k, v in self.grid().items()}
        return out

    @classmethod
    def from_schema(
        cls,
        schema: T.StructType,
        *,
        label_col: str,
        id_cols: Sequence[str] = (),
        timestamp_col: str | None = None,
        exclude: Iterable[str] = (),
        numeric_cols: Sequence[str] | None = None,
        categorical_cols: Sequence[str] | None = None,
        text_cols: Sequence[str] = (),
        **options: Any,
    ) -> ModelConfig:
        """Infer the feature columns from a frame's schema.

        Numbers and booleans become numeric features, strings categorical; ids, the label,
        the timestamp, ``baseline_col``, ``exclude`` and date/time/complex columns are
        left out.  Columns named in ``numeric_cols`` / ``categorical_cols`` take that role
        whatever their type (e.g. a numeric column read as string).

        Args:
            schema: Schema of the training frame.
            label_col: Label column.
            id_cols: Entity keys.
            timestamp_col: Time column, if any.
            exclude: Further columns that are not features.
            numeric_cols: Columns forced numeric.
            categorical_cols: Columns forced categorical.
            text_cols: Text columns (never inferred: a string column is categorical).
            **options: Any other :class:`ModelConfig` field.
        """
        forced_num = tuple(numeric_cols or ())
        forced_cat = tuple(categorical_cols or ())
        skip = {label_col, timestamp_col, options.get("baseline_col"), *id_cols, *exclude}
        skip |= {*forced_num, *forced_cat, *text_cols}
        numeric: list[str] = list(forced_num)
        categorical: list[str] = list(forced_cat)
        for field in schema.fields:
            if field.name in skip or isinstance(field.dataType, _SKIPPED_TYPES):
                continue
            if isinstance(field.dataType, _NUMERIC_TYPES):
                numeric.append(field.name)
            elif isinstance(field.dataType, T.StringType):
                categorical.append(field.name)
        return cls(
            label_col=label_col,
            id_cols=tuple(id_cols),
            timestamp_col=timestamp_col,
            numeric_cols=tuple(numeric),
            categorical_cols=tuple(categorical),
            text_cols=tuple(text_cols),
            **options,
        )
