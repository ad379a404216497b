"""The ``torch_mlp`` family (:mod:`models_ml.torch_mlp`) on a small hand-written frame:
trained by ``TorchDistributor`` in two CPU processes through the same ``train`` as the
MLlib families, judged by the same evaluators, saved and loaded with its pipeline, and
served by MLflow's Spark flavor in a fresh process beside the text stage.

Needs the ``torch`` extra (``make test`` installs it; see ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pyspark.sql.functions as F
import pytest
from pyspark.ml import PipelineModel

import models_ml
from models_ml.text import ChatTextScorer
from models_ml.torch_mlp import TorchMLPClassifier, TorchMLPModel, gpu_present

pytestmark = [pytest.mark.ml, pytest.mark.torch]


def _ring_frame(spark, rows: int = 1200):
    """A label no linear model can draw: inside a ring of two features (plus noise)."""
    data = []
    for i in range(rows):
        x = math.sin(i * 12.9898) * 2.0
        y = math.cos(i * 78.233) * 2.0
        inside = 0.6 < math.hypot(x, y) < 1.6
        noisy = (i % 17) == 0
        label = int(inside != noisy)
        text = "I want to cancel and switch to a competitor" if label and i % 3 == 0 else None
        data.append((i, x, y, float(i % 5), text, label, i // 100))
    frame = spark.createDataFrame(
        data,
        "customer_id long, x double, y double, other double, recent_chat_text string, "
        "label int, week int",
    )
    return frame.withColumn(
        "snapshot", F.timestamp_seconds(F.lit(1_700_000_000) + F.lit(604_800) * F.col("week"))
    )


def _config(**changes):
    options = {
        "label_col": "label",
        "family": "torch_mlp",
        "id_cols": ("customer_id",),
        "timestamp_col": "snapshot",
        "numeric_cols": ("x", "y", "other"),
        "tuning": "tvs",
        "max_iter": 40,
        "param_grid": (("learningRate", (0.01,)),),
    }
    options.update(changes)
    return models_ml.ModelConfig(**options)


def test_torch_mlp_beats_a_linear_model_where_the_label_is_not_linear(spark, tmp_path):
    frame = _ring_frame(spark)
    config = _config(snapshot_dir=str(tmp_path / "snapshots"))
    result = models_ml.train(frame, config)
    final = result.model.stages[-1]
    assert isinstance(final, TorchMLPModel) and final.numFeatures == 3
    # the training snapshots were written by the fits and removed after each
    assert (tmp_path / "snapshots").exists() and not list((tmp_path / "snapshots").iterdir())
    linear = models_ml.train(frame, config.replace(family="logistic", param_grid=()))
    assert result.split_kind == linear.split_kind == "time"
    assert result.windows == linear.windows  # the same held-out rows
    assert {"areaUnderROC", "areaUnderPR", "f1"} <= set(result.metrics)
    assert result.metrics["areaUnderROC"] > 0.85
    assert result.metrics["areaUnderROC"] > linear.metrics["areaUnderROC"] + 0.15
    assert 0.0 < result.threshold < 1.0

    path = tmp_path / "pipeline"
    result.model.write().overwrite().save(str(path))
    loaded = PipelineModel.load(str(path))
    assert isinstance(loaded.stages[-1], TorchMLPModel)
    losses = loaded.stages[-1].getOrDefault("trainingLoss")
    assert len(losses) == 40 and losses[-1] < losses[0]
    before = {r.customer_id: r.score for r in result.score(frame).collect()}
    after = {
        r.customer_id: r.score
        for r in models_ml.score(loaded, frame, config=result.config).collect()
    }
    assert after == pytest.approx(before, abs=1e-12)


def test_fewer_rows_than_processes_trains_on_fewer_processes(spark, tmp_path):
    from pyspark.ml.linalg import Vectors

    one = spark.createDataFrame([(Vectors.dense([1.0, 2.0]), 1.0)], ["features", "label"])
    estimator = TorchMLPClassifier(numProcesses=2, maxIter=2, snapshotDir=str(tmp_path))
    model = estimator.fit(one)  # one row makes one file: one process
    assert model.numFeatures == 2 and len(model.getOrDefault("trainingLoss")) == 2
    with pytest.raises(ValueError, match="no training rows"):
        estimator.fit(one.limit(0))


def test_an_estimator_is_a_classifier_of_the_pipeline(spark):
    config = _config()
    estimator = models_ml.build_pipeline(config).getStages()[-1]
    assert isinstance(estimator, TorchMLPClassifier)
    assert estimator.getOrDefault(estimator.numProcesses) == 2
    assert estimator.getOrDefault(estimator.maxIter) == 40
    # GPU unless told: only where Spark has a gpu resource (none here: CPU processes).
    assert not estimator.isSet(estimator.useGpu) and not gpu_present(spark)
    assert _config(use_gpu=False).use_gpu is False
    assert config.is_classifier


def test_mlflow_spark_flavor_serves_torch_mlp_and_the_text_stage_in_a_fresh_process(
    spark, tmp_path
):
    import mlflow.spark

    frame = _ring_frame(spark, rows=300)
    config = _config(text_cols=("recent_chat_text",), max_iter=5, threshold=0.5)
    result = models_ml.train(frame, config)
    assert any(isinstance(s, ChatTextScorer) for s in result.model.stages)
    path = tmp_path / "mlflow_model"
    mlflow.spark.save_model(result.model, str(path))
    rows = frame.orderBy("customer_id").limit(20)
    rows.drop("snapshot").toPandas().to_json(
        tmp_path / "rows.json", orient="records", double_precision=15
    )
    expected = [r.probability[1] for r in result.model.transform(rows).collect()]
    # A process without torch's modules loaded: scoring needs numpy only.
    script = textwrap.dedent(
        f"""
        import json
        import sys
        from pathlib import Path
        import mlflow.spark
        import pandas as pd
        from features import lakehouse
        from pyspark.ml.functions import vector_to_array

        settings = lakehouse.LakehouseSettings(
            root=Path({str(tmp_path / "fresh")!r}), master="local[1]", ui_enabled=False
        )
        spark = lakehouse.spark_session(settings, metastore=False)
        model = mlflow.spark.load_model({str(path)!r})
        frame = spark.createDataFrame(pd.read_json({str(tmp_path / "rows.json")!r}))
        out = model.transform(frame).orderBy("customer_id")
        print(json.dumps([type(s).__name__ for s in model.stages]))
        print(json.dumps([r[0] for r in out.select(vector_to_array("probability")[1]).collect()]))
        print(json.dumps("torch" in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    stages = json.loads(lines[-3])
    assert "ChatTextScorer" in stages and stages[-1] == "TorchMLPModel"
    assert json.loads(lines[-2]) == pytest.approx(expected, abs=1e-9)
    assert json.loads(lines[-1]) is False
