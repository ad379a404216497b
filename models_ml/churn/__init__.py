"""Churn (and sibling) models: a generic MLlib pipeline over any customer feature frame.

The modules, one concept each:

- :mod:`~models_ml.churn.config`: :class:`ModelConfig`, the one place a model is configured.
- :mod:`~models_ml.churn.pipeline`: :func:`build_pipeline`, the unfitted MLlib ``Pipeline``.
- :mod:`~models_ml.churn.train`: the time-aware split, tuning and :func:`train`.
- :mod:`~models_ml.churn.evaluate`: metrics, curves and the lift table, computed in Spark.
- :mod:`~models_ml.churn.report`: PNG plots and a Markdown report.
- :mod:`~models_ml.churn.persist`: the model in the lake with its metadata, and in MLflow.
"""

from __future__ import annotations

from models_ml.churn.config import ModelConfig
from models_ml.churn.pipeline import build_pipeline

__all__ = ["ModelConfig", "build_pipeline"]
