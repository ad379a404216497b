"""The pandas-UDF stage that reads support-chat text (:mod:`models_ml.text`), on small
hand-written frames: what it scores, that a pipeline learns from it, and that it is saved
and loaded with the PipelineModel (MLflow's Spark flavor loads it in a fresh process in
``tests/ml/test_torch_mlp.py``)."""

from __future__ import annotations

import pandas as pd
import pytest
from pyspark.ml import PipelineModel

import models_ml
from models_ml.text import ChatTextScorer, score_texts

pytestmark = pytest.mark.ml

LEAVING = "Furious about dropped calls again, I want to cancel and switch to a competitor"
ADD_ON = "How to cancel the roaming add-on, explained"
PRAISE = "Thanks for the quick help, very happy with the service"


def test_scores_intent_not_words_and_reads_negation():
    scores = score_texts(
        pd.Series([LEAVING, ADD_ON, "Customer is not happy with the service", PRAISE, None]),
        decay=0.5,
    )
    assert scores["leave_intent"].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert scores["negative"].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert scores["chats"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    # Latest first: an older chat counts decay times the newer one.
    older = score_texts(pd.Series([f"{PRAISE}\n{LEAVING}", f"{LEAVING}\n\n{PRAISE}"]), decay=0.5)
    assert older["leave_intent"].tolist() == [0.5, 1.0]
    assert older["chats"].tolist() == [2.0, 2.0]


def _chat_frame(spark, rows: int = 400):
    """Customers whose label follows the intent of their chats, not the word "cancel"."""
    data = []
    for i in range(rows):
        leaving = i % 5 == 0
        text = LEAVING if leaving else (ADD_ON if i % 3 == 0 else (PRAISE if i % 7 else None))
        churned = 1 if (leaving and i % 2 == 0) or i % 37 == 0 else 0
        data.append((i, float(i % 11), text, churned))
    return spark.createDataFrame(
        data, "customer_id long, tenure double, recent_chat_text string, churned int"
    )


@pytest.fixture(scope="module")
def trained(spark):
    frame = _chat_frame(spark)
    config = models_ml.ModelConfig(
        label_col="churned",
        id_cols=("customer_id",),
        numeric_cols=("tenure",),
        text_cols=("recent_chat_text",),
        tuning="tvs",
        param_grid=(("regParam", (0.01,)),),
    )
    assert config.feature_cols == ("tenure", "recent_chat_text")
    return frame, models_ml.train(frame, config)


def test_a_pipeline_learns_from_the_text_and_saves_the_stage(trained, tmp_path):
    frame, result = trained
    stages = result.model.stages
    scorer = next(s for s in stages if isinstance(s, ChatTextScorer))
    assert scorer.getInputCol() == "recent_chat_text"
    slots = dict(result.weights)
    intent = "recent_chat_text=leave_intent"  # the slot of output_cols(...)[0]
    assert intent in result.feature_slots
    assert slots[intent] > 0  # leaving talk raises the score
    assert result.metrics["areaUnderROC"] > 0.8

    path = tmp_path / "pipeline"
    result.model.write().overwrite().save(str(path))
    loaded = PipelineModel.load(str(path))
    assert any(isinstance(s, ChatTextScorer) for s in loaded.stages)
    before = {r.customer_id: r.score for r in result.score(frame).collect()}
    after = {
        r.customer_id: r.score
        for r in models_ml.score(loaded, frame, config=result.config).collect()
    }
    assert after == pytest.approx(before, abs=1e-12)


def test_the_onnx_export_scores_the_text_as_spark_does(spark, trained):
    from models_ml import onnx_runtime

    frame, result = trained
    exported = onnx_runtime.OnnxPipeline(result.model, config=result.config, spark=spark)
    assert [s.getInputCol() for s in exported.texts] == ["recent_chat_text"]
    rows = frame.orderBy("customer_id").limit(40).collect()
    expected = [r.score for r in result.score(spark.createDataFrame(rows)).collect()]
    exported.verify([r.asDict() for r in rows], expected)  # raises beyond 1e-6
