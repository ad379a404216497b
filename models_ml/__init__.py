"""Churn (and sibling) models on any Spark frame: MLlib pipelines tuned by time.

The library, one concept per module (as ``pyspark.ml`` has ``pipeline``, ``tuning``,
``evaluation``):

- :mod:`~models_ml.config`: :class:`ModelConfig`, the one place a model is configured.
- :mod:`~models_ml.pipeline`: :func:`build_pipeline`, the unfitted MLlib ``Pipeline``.
- :mod:`~models_ml.split`: :func:`prepare` (the label) and the held-out part (:class:`Split`).
- :mod:`~models_ml.tuning`: :class:`TimeSeriesCrossValidator` and :func:`tune`.
- :mod:`~models_ml.training`: :func:`train`, which splits, tunes and judges.
- :mod:`~models_ml.evaluate`: metrics, curves and the lift table, computed in Spark.
- :mod:`~models_ml.report`: PNG plots and a Markdown report.
- :mod:`~models_ml.model_store`: versions of a model in the lake with their metadata.
- :mod:`~models_ml.registry`: MLflow's tracking runs, registry and aliases.
- :mod:`~models_ml.serving`, :mod:`~models_ml.online`, :mod:`~models_ml.onnx_runtime`:
  the model served.

On the lake, thin task modules: :mod:`~models_ml.lake` (the training path every task
shares: entity rows, Feast's historical features, save and register),
:mod:`~models_ml.churn` (train, promote, score a day), :mod:`~models_ml.next_invoice`,
:mod:`~models_ml.monitoring` (drift and realized performance).

On any labelled frame (a Feast retrieval's ``to_spark_df()``, a CSV read by Spark)::

    config = ModelConfig.from_schema(
        frame.schema, label_col="is_churned", id_cols=("customer_id",),
        timestamp_col="event_timestamp", family="logistic",
    )
    result = train(frame, config)              # result.metrics, result.lift, result.model
    saved = save_model(result, name="churn")   # <lake>/artifacts/models/churn/<version>
    log_to_mlflow(result, name="churn", metadata=saved.metadata,
                  report_dir=saved.path / "report")          # alias 'champion'
    model = load_registered("churn")                         # models:/churn@champion
"""

from __future__ import annotations

from models_ml.config import ConfigError, ModelConfig
from models_ml.model_store import SavedModel, load_model, save_model
from models_ml.pipeline import build_pipeline
from models_ml.registry import load_registered, log_to_mlflow, promote
from models_ml.report import write_report
from models_ml.split import Split, prepare, split_holdout
from models_ml.training import TrainResult, score, train
from models_ml.tuning import TimeSeriesCrossValidator, tune

__all__ = [
    "ConfigError",
    "ModelConfig",
    "SavedModel",
    "Split",
    "TimeSeriesCrossValidator",
    "TrainResult",
    "build_pipeline",
    "load_model",
    "load_registered",
    "log_to_mlflow",
    "prepare",
    "promote",
    "save_model",
    "score",
    "split_holdout",
    "train",
    "tune",
    "write_report",
]
