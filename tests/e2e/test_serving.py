"""The champion served, started as an operator starts it, scoring like the batch job.

Uses the daily job's lake (its champion was registered by the daily job, with a signature
and an input example; its last day materialized into Feast's online store):
``features serve-model`` in a process of its own, a batch of one day's feature rows posted in
MLflow's scoring format, the answers compared with the batch scoring job's for the same
customers and day, then SIGTERM to the command; ``features predict`` and ``features
serve-model --online`` on the customers' features in the online store, compared with the
batch scores of the day materialized last.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e

FEATURES = str(Path(sys.executable).with_name("features"))


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def test_the_champion_served_by_mlflow_scores_like_the_batch_job(
    daily_lake, lakehouse_root
) -> None:
    import mlflow

    from features import feast_repo
    from models_ml import churn, lake, registry

    spark, dates = daily_lake.spark, daily_lake.dates
    day = dates[-1]
    registry.configure_mlflow()
    uri = f"models:/{churn.MODEL_NAME}@{registry.DEFAULT_ALIAS}"
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None and info.signature.inputs is not None
    assert info.saved_input_example_info is not None
    store = feast_repo.feature_store()
    columns = list(lake.model_config(store).feature_cols)
    assert set(info.signature.inputs.input_names()) == set(columns)

    churn.score_day(spark, day, log=lambda _: None)  # with the champion, as served below
    batch = {
        row["customer_id"]: row["churn_probability"]
        for row in spark.table(churn.PREDICTIONS_TABLE)
        .where(F.col("score_date") == F.lit(day))
        .collect()
    }
    rows = churn.day_features(spark, store, day).orderBy("customer_id").limit(12).toPandas()
    assert len(rows) == 12
    # Sent at full precision: pandas writes 10 digits by default, which moves a score by
    # about 1e-9, the tolerance below.
    sent = rows[columns].to_json(orient="split", index=False, double_precision=15)
    body = {"dataframe_split": json.loads(sent)}

    port = free_port()
    env = dict(os.environ, LAKEHOUSE_ROOT=str(lakehouse_root))
    process = subprocess.Popen(
        [FEATURES, "serve-model", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping", process)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            served = json.loads(answer.read())["predictions"]
        assert len(served) == len(rows)
        for customer, pair in zip(rows["customer_id"], served, strict=True):
            assert len(pair) == 2 and pair[0] + pair[1] == pytest.approx(1.0, abs=1e-12)
            assert pair[1] == pytest.approx(batch[int(customer)], abs=1e-9), customer
    finally:
        os.kill(process.pid, signal.SIGTERM)  # as a service manager stops it
        code = process.wait(timeout=90)
    output = process.stdout.read()
    assert code == 0, output
    assert "serve-model: stopped (SIGTERM)" in output
    with socket.socket() as sock:  # nothing listens any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    leftover = subprocess.run(
        ["pgrep", "-f", f"models serve .*-p {port}"], capture_output=True, text=True
    )
    assert leftover.stdout.strip() == "", leftover.stdout


def test_the_model_server_stays_on_loopback(lakehouse_root) -> None:
    proc = subprocess.run(
        [FEATURES, "serve-model", "--host", "0.0.0.0"],
        env=dict(os.environ, LAKEHOUSE_ROOT=str(lakehouse_root)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "beyond loopback" in proc.stderr and "authenticating reverse proxy" in proc.stderr


def _batch_scores(spark, day) -> dict:
    """The day's batch scores by the serving version (scored again: earlier tests may have
    rescored the day with another version)."""
    from models_ml import churn

    churn.score_day(spark, day, log=lambda _: None)
    return {
        row["customer_id"]: row
        for row in spark.table(churn.PREDICTIONS_TABLE)
        .where(F.col("score_date") == F.lit(day))
        .collect()
    }


def _same_as_batch(answers: list[dict], batch: dict, *, tolerance: float = 1e-9) -> None:
    for answer in answers:
        row = batch[answer["customer_id"]]
        assert answer["churn_probability"] == pytest.approx(
            row["churn_probability"], abs=tolerance
        ), answer
        assert answer["risk_decile"] == row["risk_decile"], answer
        assert answer["model_version"] == row["model_version"], answer
        assert "error" not in answer


@pytest.mark.parametrize("runtime", ["spark", "onnx"])
def test_online_scores_are_the_batch_scores_of_the_day_materialized(
    daily_lake, capsys, runtime
) -> None:
    """The daily job materialized its last day: ``features predict`` reads the customers'
    features from the online store and answers what batch scoring wrote for that day (the
    Spark runtime to 1e-9, the ONNX export within float32's precision); an unknown
    customer gets an answer saying so, not an exception."""
    from features import cli
    from models_ml import onnx_runtime

    spark, dates = daily_lake.spark, daily_lake.dates
    batch = _batch_scores(spark, dates[-1])
    ids = sorted(batch)
    unknown = max(ids) + 1_000_000
    asked = [*ids, unknown]
    assert cli.main(["predict", "--runtime", runtime, *[f"--customer-id={i}" for i in asked]]) == 0
    lines = capsys.readouterr().out.splitlines()
    answers = [json.loads(line) for line in lines]
    assert [a["customer_id"] for a in answers] == asked
    _same_as_batch(
        answers[:-1], batch, tolerance=1e-9 if runtime == "spark" else onnx_runtime.TOLERANCE
    )
    assert len({a["risk_decile"] for a in answers[:-1]}) >= 5  # the deciles are spread
    last = answers[-1]
    assert last["churn_probability"] is None and last["risk_decile"] is None
    assert last["model_version"] == answers[0]["model_version"]
    assert last["error"].startswith(f"no features in the online store for customer {unknown}")


def test_the_online_endpoint_answers_like_predict(daily_lake, lakehouse_root) -> None:
    """``features serve-model --online`` in a process of its own, beside this one's Spark,
    which holds the embedded metastore: its session must not need it.  Its runtime is the
    ONNX export (the onnx extra is installed with the tests).  One customer, then every
    customer of the day, then a bad request; SIGTERM stops it."""
    from models_ml import onnx_runtime

    spark, dates = daily_lake.spark, daily_lake.dates
    batch = _batch_scores(spark, dates[-1])
    ids = sorted(batch)
    port = free_port()
    env = dict(
        os.environ,
        LAKEHOUSE_ROOT=str(lakehouse_root),
        SPARK_MASTER="local[1]",
        LAKEHOUSE_DRIVER_MEMORY="1g",
    )
    process = subprocess.Popen(
        [FEATURES, "serve-model", "--online", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/ping", process)
        with urllib.request.urlopen(f"{url}/ping", timeout=60) as ping:
            assert json.loads(ping.read())["runtime"] == "onnx"
        with urllib.request.urlopen(f"{url}/predict?customer_id={ids[0]}", timeout=60) as one:
            answers = json.loads(one.read())["predictions"]
        assert [a["customer_id"] for a in answers] == ids[:1]
        _same_as_batch(answers, batch, tolerance=onnx_runtime.TOLERANCE)
        request = urllib.request.Request(
            f"{url}/predict",
            data=json.dumps({"customer_ids": ids}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as many:
            answers = json.loads(many.read())["predictions"]
        assert [a["customer_id"] for a in answers] == ids
        _same_as_batch(answers, batch, tolerance=onnx_runtime.TOLERANCE)
        for query in ("customer_id=abc", "customer_id=1.7", ""):
            with pytest.raises(urllib.error.HTTPError) as bad:
                urllib.request.urlopen(f"{url}/predict?{query}", timeout=60)
            assert bad.value.code == 400, query
            assert "customer ids" in json.loads(bad.value.read())["error"]
    finally:
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait(timeout=90)
    output = process.stdout.read()
    assert code == 0, output
    assert "serve-model: stopped (SIGTERM)" in output
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_onnx_export_scores_missing_and_unseen_values_like_spark(daily_lake) -> None:
    """Rows the online store may hold: a categorical feature missing or never seen in
    training, numeric features missing; the ONNX export answers what the Spark pipeline
    answers for each (the string indexer's "keep", the imputer's medians)."""
    from models_ml import online, onnx_runtime

    spark, dates = daily_lake.spark, daily_lake.dates
    _batch_scores(spark, dates[-1])
    scorer = online.OnlineScorer.load(spark, runtime="onnx")
    assert scorer.runtime == "onnx" and scorer.config.categorical_cols
    category = scorer.config.categorical_cols[0]
    numeric = list(scorer.config.numeric_cols)
    ids = [
        row["customer_id"]
        for row in spark.table("predictions.churn_scores")
        .where(F.col("score_date") == F.lit(dates[-1]))
        .orderBy("customer_id")
        .limit(4)
        .collect()
    ]
    rows = scorer.features(ids)
    rows[0][category] = None
    rows[1][category] = "no-such-contract"
    rows[2].update({name: None for name in numeric[:10]})
    rows[3].update({name: None for name in numeric})
    exact = scorer._spark_probabilities(rows)
    exported = scorer.onnx.probabilities(rows)
    for row, probability in zip(rows, exported, strict=True):
        assert probability == pytest.approx(
            exact[row["customer_id"]], abs=onnx_runtime.TOLERANCE
        ), row["customer_id"]
    assert len({round(p, 6) for p in exported}) > 1
