"""Churn (and sibling) models: a generic MLlib pipeline over any customer feature frame.

The modules, one concept each:

- :mod:`~models_ml.churn.config`: :class:`ModelConfig`, the one place a model is configured.
- :mod:`~models_ml.churn.pipeline`: :func:`build_pipeline`, the unfitted MLlib ``Pipeline``.
- :mod:`~models_ml.churn.train`: the time-aware split, tuning and :func:`train`.
- :mod:`~models_ml.churn.evaluate`: metrics, curves and the lift table, computed in Spark.
- :mod:`~models_ml.churn.report`: PNG plots and a Markdown report.
- :mod:`~models_ml.churn.persist`: the model in the lake with its metadata, and in MLflow.

A training job over Feast calls it with any Spark frame of features, label and timestamp::

    frame = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service("churn_v1")
    ).to_spark_df()
    config = ModelConfig.from_schema(
        frame.schema, label_col="is_churned", id_cols=("customer_id",),
        timestamp_col="event_timestamp", family="logistic",
    )
    result = train(frame, config)
    saved = save_model(result, name="churn", feature_service="churn_v1",
                       source_versions={"features.customer_billing": 12, ...})
    log_to_mlflow(result, name="churn", metadata=saved.metadata,
                  report_dir=saved.path / "report")          # alias 'champion'
    model = load_registered("churn")                         # models:/churn@champion
"""

from __future__ import annotations

from models_ml.churn.config import ModelConfig
from models_ml.churn.persist import (
    load_model,
    load_registered,
    log_to_mlflow,
    promote,
    save_model,
)
from models_ml.churn.pipeline import build_pipeline
from models_ml.churn.report import write_report
from models_ml.churn.train import TrainResult, score, train

__all__ = [
    "ModelConfig",
    "TrainResult",
    "build_pipeline",
    "load_model",
    "load_registered",
    "log_to_mlflow",
    "promote",
    "save_model",
    "score",
    "train",
    "write_report",
]
