"""The unfitted MLlib pipeline: cast, impute, index, one-hot, assemble, scale, estimate."""

from __future__ import annotations

from typing import Any

from pyspark.ml import Estimator, Pipeline
from pyspark.ml.base import Transformer
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.param import Param
from pyspark.ml.regression import GBTRegressor, LinearRegression
from pyspark.ml.tuning import ParamGridBuilder

from models_ml.config import FEATURES, LABEL, SCALED, ConfigError, ModelConfig
from models_ml.text import ChatTextScorer, output_cols
from models_ml.torch_mlp import TorchMLPClassifier


def _quote(name: str) -> str:
    """A column name quoted for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def _column(name: str) -> str:
    """A reference to a column in Spark SQL, whatever its name.

    ``IDENTIFIER('`name`')`` rather than a bare backquoted name: with
    ``spark.sql.parser.quotedRegexColumnNames`` on (the lakehouse session sets it for
    Feast) a backquoted name with a space or a dot is read as a regular expression, which
    a function's argument may not be.
    """
    literal = _quote(name).replace("\\", "\\\\").replace("'", "\\'")
    return f"IDENTIFIER('{literal}')"


def numeric_stage_cols(config: ModelConfig) -> tuple[list[str], list[str]]:
    """Names of the cast and the imputed numeric columns the pipeline creates."""
    cast = [f"{c}__num" for c in config.numeric_cols]
    imputed = [f"{c}__imp" for c in config.numeric_cols]
    return cast, imputed


def build_estimator(config: ModelConfig) -> Estimator:
    """The final stage of the pipeline, from ``config.family``.

    It reads the scaled (or plain) feature vector and the 0/1 or numeric ``label``.
    """
    features = SCALED if config.standardize else FEATURES
    common: dict[str, Any] = {
        "featuresCol": features,
        "labelCol": LABEL,
        "maxIter": config.max_iter,
    }
    if config.family == "logistic":
        return LogisticRegression(family="binomial", tol=config.tol, **common)
    if config.family == "torch_mlp":
        return TorchMLPClassifier(
            **common,
            seed=config.seed,
            numProcesses=config.torch_processes,
            useGpu=config.use_gpu,
            snapshotDir=config.snapshot_dir,
        )
    if config.stops_early:
        common["maxIter"] = config.max_trees
    if config.family == "gbt":
        return GBTClassifier(seed=config.seed, **common)
    if config.family == "linear":
        return LinearRegression(tol=config.tol, **common)
    if config.family == "gbt_regressor":
        return GBTRegressor(seed=config.seed, **common)
    raise ConfigError(f"build_estimator: unknown family {config.family!r}")


def build_pipeline(config: ModelConfig) -> Pipeline:
    """Build the unfitted pipeline a config describes.

    Stages: numeric columns cast to double (blanks and unparseable strings become null),
    ``Imputer`` (median) for numerics, ``StringIndexer(handleInvalid='keep')`` and
    ``OneHotEncoder`` for categoricals, :class:`~models_ml.text.ChatTextScorer` (a pandas
    UDF) for each text column, ``VectorAssembler``, ``StandardScaler`` (unless
    ``standardize`` is off) and the estimator of ``config.family``.  The fitted model
    scores raw feature frames: the label column is not needed to score.

    Args:
        config: The model configuration.

    Returns:
        An unfitted :class:`pyspark.ml.Pipeline`; the estimator is its last stage.
    """
    stages: list[Estimator | Transformer] = []
    assembled: list[str] = []
    if config.numeric_cols:
        cast, imputed = numeric_stage_cols(config)
        casts = ", ".join(
            f"try_cast({_column(c)} as double) as {_quote(out)}"
            for c, out in zip(config.numeric_cols, cast, strict=True)
        )
        stages.append(SQLTransformer(statement=f"select *, {casts} from __THIS__"))
        stages.append(Imputer(inputCols=cast, outputCols=imputed, strategy="median"))
        assembled += imputed
    if config.categorical_cols:
        indexed = [f"{c}__idx" for c in config.categorical_cols]
        encoded = [f"{c}__ohe" for c in config.categorical_cols]
        stages.append(
            StringIndexer(
                inputCols=list(config.categorical_cols),
                outputCols=indexed,
                handleInvalid="keep",
                stringOrderType="frequencyDesc",
            )
        )
        stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
        assembled += encoded
    for column in config.text_cols:
        stages.append(ChatTextScorer(inputCol=column))
        assembled += output_cols(column)
    stages.append(VectorAssembler(inputCols=assembled, outputCol=FEATURES))
    if config.standardize:
        stages.append(StandardScaler(inputCol=FEATURES, outputCol=SCALED, withMean=False))
    stages.append(build_estimator(config))
    return Pipeline(stages=stages)


def param_maps(config: ModelConfig, estimator: Estimator) -> list[dict[Param, Any]]:
    """The grid of ``config.grid()`` over ``estimator``'s params, for the tuners."""
    builder = ParamGridBuilder()
    for name, values in config.grid().items():
        if not estimator.hasParam(name):
            raise ConfigError(
                f"param_grid: {type(estimator).__name__} has no param {name!r} "
                f"(family {config.family!r})"
            )
        param: Param = estimator.getParam(name)
        builder.addGrid(param, list(values))
    return builder.build()
