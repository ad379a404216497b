"""The champion over MLflow's model server (``mlflow models serve``), on loopback.

MLflow's Spark flavor serves the column named ``prediction``.  For a classifier that is the
label, so the registered copy of a churn pipeline carries its probability vector there
instead (MLflow's documented way: ``probabilityCol="prediction"``, ``predictionCol=""``):
a client gets ``[P(stay), P(churn)]`` per row, the numbers batch scoring writes.  Loading
the registered model for Spark (:func:`restore_output_cols`) puts the usual columns back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel

from features import jdk

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROBABILITY = "probability"
PREDICTION = "prediction"


class InsecureModelServer(ValueError):
    """A model server asked to listen beyond loopback: MLflow's server checks no logins."""


class ModelServerError(RuntimeError):
    """The model server did not start, or stopped by itself."""


def _probabilistic(stage: object) -> bool:
    return hasattr(stage, "setProbabilityCol") and hasattr(stage, "setPredictionCol")


def serving_copy(model: PipelineModel) -> PipelineModel:
    """The pipeline as MLflow's pyfunc serves it: a probabilistic classifier's probability
    vector as its ``prediction`` output; any other pipeline unchanged."""
    last: Any = model.stages[-1]
    if not _probabilistic(last):
        return model
    served = last.copy()
    served.setProbabilityCol(PREDICTION).setPredictionCol("")
    return PipelineModel(stages=[*model.stages[:-1], served])


def restore_output_cols(model: PipelineModel) -> PipelineModel:
    """Undo :func:`serving_copy` on a loaded model (scoring reads ``probability``)."""
    last: Any = model.stages[-1]
    if _probabilistic(last) and last.getProbabilityCol() == PREDICTION:
        last.setProbabilityCol(PROBABILITY).setPredictionCol(PREDICTION)
    return model


def check_host(host: str) -> None:
    """Refuse an address beyond loopback (MLflow's model server has no authentication)."""
    if host not in LOOPBACK:
        raise InsecureModelServer(
            f"serve-model: {host} is beyond loopback and MLflow's model server checks no "
            "logins: serve on 127.0.0.1 and put an authenticating reverse proxy in front"
        )


def server_command(*, host: str, port: int, model_uri: str) -> list[str]:
    """``mlflow models serve`` for ``model_uri`` in this environment, one worker."""
    mlflow = Path(sys.executable).with_name("mlflow")
    return [
        str(mlflow),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        "1",
    ]


def start(
    *, host: str, port: int, model_uri: str, tracking_uri: str, root: Path, timeout: float = 240.0
) -> subprocess.Popen:
    """Start the model server in its own process group; return once it answers ``/ping``.

    Its Spark (MLflow loads a Spark model in a local session of its own) reads no lake
    settings (``SPARK_CONF_DIR`` an empty folder): it needs MLlib only, and must not take the
    lake's metastore.  Output goes to ``<root>/logs/model-server.log``.
    """
    check_host(host)
    conf = root / "artifacts" / "model-server-conf"
    conf.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # MLflow runs uvicorn by name: this environment's scripts first on the PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, SPARK_CONF_DIR=str(conf), PATH=path)
    jdk.use(env)  # the lake's JDK for the server's Spark too
    log = (logs / "model-server.log").open("ab")
    process = subprocess.Popen(
        server_command(host=host, port=port, model_uri=model_uri),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout
    url = f"http://{'[::1]' if host == '::1' else host}:{port}/ping"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ModelServerError(
                f"the model server exited with code {process.returncode}; "
                f"see {logs / 'model-server.log'}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    stop(process)
    raise ModelServerError(
        f"the model server did not answer {url} within {timeout:.0f} s; "
        f"see {logs / 'model-server.log'}"
    )


def stop(process: subprocess.Popen, *, grace: float = 30.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
