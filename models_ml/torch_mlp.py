"""The ``torch_mlp`` family: a small PyTorch network trained by ``TorchDistributor``.

:class:`TorchMLPClassifier` is the last stage of the same pipeline as the MLlib families
(casts, medians, one-hot, assembled and scaled vector): its ``fit`` writes the feature
vectors and labels it is given to a Parquet snapshot (one file per training process; the
driver collects nothing), then ``pyspark.ml.torch.distributor.TorchDistributor`` starts
``numProcesses`` PyTorch processes (``torchrun``; ``localMode``: on the driver's machine,
else as a barrier Spark job on the executors), each reading its own files with pyarrow and
training one ``DistributedDataParallel`` replica (gloo on CPU, NCCL with ``useGpu``).
The weights come back as the fitted :class:`TorchMLPModel`.

The fitted model scores with numpy in a pandas UDF, so scoring, the evaluators, saving
(``DefaultParamsWritable``: the weights are params, saved with the ``PipelineModel``) and
MLflow's Spark flavor work without torch; training needs the ``torch`` extra
(``pip install -e '.[torch]'``).  Its output columns are those of MLlib's classifiers:
``rawPrediction`` and ``probability`` vectors and ``prediction``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasFeaturesCol,
    HasLabelCol,
    HasMaxIter,
    HasPredictionCol,
    HasProbabilityCol,
    HasRawPredictionCol,
    HasSeed,
)
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame, SparkSession

LOGGER = logging.getLogger(__name__)
# TorchDistributor gives its logger a handler of its own onto stderr when it finds none (and
# the root logger has none): its lines then belong in the log file with the rest.
logging.getLogger("TorchDistributor").addHandler(logging.NullHandler())


def available() -> bool:
    """Whether the ``torch`` extra is installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def gpu_present(spark: SparkSession) -> bool:
    """Whether Spark's driver has a ``gpu`` resource and torch sees a GPU."""
    if "gpu" not in spark.sparkContext.resources:
        return False
    import torch

    return bool(torch.cuda.is_available())


class _Params(HasFeaturesCol, HasPredictionCol, HasProbabilityCol, HasRawPredictionCol):
    """Output columns shared by the estimator and its model."""


class TorchMLPClassifier(
    Estimator,
    _Params,
    HasLabelCol,
    HasMaxIter,
    HasSeed,
    DefaultParamsReadable,
    DefaultParamsWritable,
):
    """A binary classifier: a multilayer perceptron trained with ``TorchDistributor``.

    Args:
        featuresCol, labelCol: The vector and the 0/1 label.
        hiddenLayers: Units of each hidden layer (ReLU).
        learningRate: Adam's step size.
        batchSize: Rows per step and process.
        maxIter: Epochs.
        numProcesses: Training processes (``DistributedDataParallel`` replicas).
        localMode: Start them on the driver's machine (else on the executors).
        useGpu: One GPU per process (NCCL).  Unset: when the driver's Spark has a ``gpu``
            resource (``spark.driver.resource.gpu.amount``, which TorchDistributor's local
            mode needs) and torch sees a GPU; else CPU processes.
        snapshotDir: Where the training snapshot is written (a folder every process can
            read; the system's temporary folder by default); it is removed after the fit.
    """

    hiddenLayers: Param[list[int]] = Param(
        Params._dummy(), "hiddenLayers", "units of each hidden layer", TypeConverters.toListInt
    )
    learningRate: Param[float] = Param(
        Params._dummy(), "learningRate", "Adam's step size", TypeConverters.toFloat
    )
    batchSize: Param[int] = Param(
        Params._dummy(), "batchSize", "rows per step and process", TypeConverters.toInt
    )
    numProcesses: Param[int] = Param(
        Params._dummy(), "numProcesses", "training processes", TypeConverters.toInt
    )
    localMode: Param[bool] = Param(
        Params._dummy(),
        "localMode",
        "start the processes on the driver's machine",
        TypeConverters.toBoolean,
    )
    useGpu: Param[bool] = Param(
        Params._dummy(), "useGpu", "one GPU per process", TypeConverters.toBoolean
    )
    snapshotDir: Param[str] = Param(
        Params._dummy(),
        "snapshotDir",
        "folder of the training snapshot (every process reads it)",
        TypeConverters.toString,
    )

    _input_kwargs: dict[str, Any]  # set by @keyword_only

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        hiddenLayers: list[int] | None = None,
        learningRate: float = 0.01,
        batchSize: int = 256,
        maxIter: int = 20,
        numProcesses: int = 2,
        localMode: bool = True,
        useGpu: bool | None = None,
        seed: int | None = None,
        snapshotDir: str | None = None,
    ) -> None:
        super().__init__()
        self._setDefault(
            hiddenLayers=[32, 16],
            learningRate=0.01,
            batchSize=256,
            maxIter=20,
            numProcesses=2,
            localMode=True,
            seed=42,
            snapshotDir=tempfile.gettempdir(),
        )
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def _fit(self, dataset: DataFrame) -> TorchMLPModel:
        import pyarrow.parquet as pq
        from pyspark.ml.torch.distributor import TorchDistributor

        processes = self.getOrDefault(self.numProcesses)
        use_gpu = (
            self.getOrDefault(self.useGpu)
            if self.isSet(self.useGpu)
            else gpu_present(dataset.sparkSession)
        )
        folder = Path(self.getOrDefault(self.snapshotDir)) / f"torch_mlp_{uuid.uuid4().hex}"
        rows = dataset.select(
            vector_to_array(F.col(self.getFeaturesCol()), "float32").alias("x"),
            F.col(self.getLabelCol()).cast("float").alias("y"),
        )
        try:
            # One file per process, rows spread at random: each reads only its own.
            rows.repartition(processes).write.mode("overwrite").parquet(str(folder))
            # Files with rows (the footers say): Spark writes none for an empty partition,
            # and one without rows when every partition is empty.
            files = [
                str(p)
                for p in sorted(folder.glob("*.parquet"))
                if pq.ParquetFile(p).metadata.num_rows
            ]
            if not files:
                raise ValueError("torch_mlp: no training rows to fit on")
            # Fewer rows than processes: fewer files, and as many processes.
            processes = min(processes, len(files))
            options = {
                "files": files,
                "hidden": self.getOrDefault(self.hiddenLayers),
                "lr": self.getOrDefault(self.learningRate),
                "batch": self.getOrDefault(self.batchSize),
                "epochs": self.getOrDefault(self.maxIter),
                "seed": self.getOrDefault(self.seed),
                "gpu": use_gpu,
            }
            distributor = TorchDistributor(
                num_processes=processes,
                local_mode=self.getOrDefault(self.localMode),
                use_gpu=use_gpu,
            )
            printed = io.StringIO()  # torchrun's output: to the log, not the console
            try:
                with contextlib.redirect_stdout(printed):
                    trained = distributor.run(train_worker, json.dumps(options))
            finally:
                LOGGER.info("TorchDistributor printed:\n%s", printed.getvalue())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if not trained:
            raise RuntimeError("torch_mlp: TorchDistributor returned no weights")
        model = TorchMLPModel(weights=json.dumps(trained["layers"]))
        model._set(
            featuresCol=self.getFeaturesCol(),
            predictionCol=self.getPredictionCol(),
            probabilityCol=self.getProbabilityCol(),
            rawPredictionCol=self.getRawPredictionCol(),
            trainingLoss=trained["losses"],
        )
        return model


def train_worker(options_json: str) -> dict[str, Any]:
    """One training process (run by ``TorchDistributor``; it imports torch itself).

    Reads its share of the snapshot's files, trains a ``DistributedDataParallel`` replica
    and returns the weights (``layers``: ``[[W, b], ...]`` as lists) and the mean training
    loss of each epoch.
    """
    import pyarrow.parquet as pq
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    options = json.loads(options_json)
    gpu = bool(options["gpu"]) and torch.cuda.is_available()
    if gpu:
        # TorchDistributor shows every process all the GPUs it picked: one each, by rank.
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if gpu else "gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        torch.manual_seed(int(options["seed"]))
        # The fit gives every process a file with rows at least.
        mine = options["files"][rank::world]
        if not mine:
            raise ValueError(f"torch_mlp: process {rank} of {world} has no training rows")
        table = pq.read_table(mine)
        x = torch.tensor(np.stack(table.column("x").to_pylist()), dtype=torch.float32)
        y = torch.tensor(table.column("y").to_numpy(zero_copy_only=False), dtype=torch.float32)
        # Every process takes the same number of steps per epoch (DistributedDataParallel
        # waits for every replica at each step); NCCL reduces tensors on the GPU only.
        batch = int(options["batch"])
        steps = torch.tensor([math.ceil(len(y) / batch)], device=device)
        dist.all_reduce(steps, op=dist.ReduceOp.MIN)
        layers: list[nn.Module] = []
        size = int(x.shape[1])
        for units in options["hidden"]:
            layers += [nn.Linear(size, int(units)), nn.ReLU()]
            size = int(units)
        layers.append(nn.Linear(size, 1))
        net = nn.Sequential(*layers).to(device)
        model = DistributedDataParallel(net, device_ids=[device.index] if gpu else None)
        optimizer = torch.optim.Adam(model.parameters(), lr=float(options["lr"]))
        loss_fn = nn.BCEWithLogitsLoss()
        x, y = x.to(device), y.to(device)
        generator = torch.Generator().manual_seed(int(options["seed"]) + rank)
        losses: list[float] = []
        for _ in range(int(options["epochs"])):
            order = torch.randperm(len(y), generator=generator).to(device)
            total = torch.zeros(1, device=device)
            for step in range(int(steps.item())):
                index = order[step * batch : (step + 1) * batch]
                optimizer.zero_grad()
                loss = loss_fn(model(x[index]).squeeze(1), y[index])
                loss.backward()
                optimizer.step()
                total += loss.detach()
            dist.all_reduce(total)
            losses.append(float(total.item()) / max(1, int(steps.item()) * world))
        # Every rank returns the weights (identical: DistributedDataParallel keeps the replicas
        # in step): TorchDistributor pickles each process's return value to one file, and the
        # last to finish wins.
        linear = [m for m in net if isinstance(m, nn.Linear)]
        return {
            "layers": [
                [m.weight.detach().cpu().tolist(), m.bias.detach().cpu().tolist()] for m in linear
            ],
            "losses": losses,
        }
    finally:
        dist.destroy_process_group()


def forward(layers: list[list[Any]], x: np.ndarray) -> np.ndarray:
    """The network's logit for each row of ``x`` (numpy; ReLU between layers)."""
    out = x.astype(np.float64)
    for i, (weight, bias) in enumerate(layers):
        out = out @ np.asarray(weight, dtype=np.float64).T + np.asarray(bias, dtype=np.float64)
        if i < len(layers) - 1:
            out = np.maximum(out, 0.0)
    return out[:, 0]


class TorchMLPModel(Model, _Params, DefaultParamsReadable, DefaultParamsWritable):
    """A fitted :class:`TorchMLPClassifier`: the weights, applied with numpy in a pandas UDF.

    Args:
        weights: ``[[W, b], ...]`` per layer, as JSON.
    """

    weights: Param[str] = Param(
        Params._dummy(), "weights", "[[W, b], ...] per layer, as JSON", TypeConverters.toString
    )
    trainingLoss: Param[list[float]] = Param(
        Params._dummy(),
        "trainingLoss",
        "mean training loss of each epoch",
        TypeConverters.toListFloat,
    )

    _input_kwargs: dict[str, Any]  # set by @keyword_only

    @keyword_only
    def __init__(self, *, weights: str | None = None) -> None:
        super().__init__()
        self._setDefault(trainingLoss=[])
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    @property
    def layers(self) -> list[list[Any]]:
        """The weights, ``[[W, b], ...]``."""
        return json.loads(self.getOrDefault(self.weights))

    @property
    def numFeatures(self) -> int:
        """The input vector's size."""
        return len(self.layers[0][0][0])

    def _transform(self, dataset: DataFrame) -> DataFrame:
        layers = self.layers

        @F.pandas_udf("double")  # type: ignore[call-overload]
        def logits(vectors: pd.Series) -> pd.Series:
            if vectors.empty:
                return pd.Series([], dtype="float64")
            return pd.Series(forward(layers, np.stack(vectors.to_numpy())), index=vectors.index)

        logit = "_torch_mlp_logit"
        scored = dataset.withColumn(logit, logits(vector_to_array(F.col(self.getFeaturesCol()))))
        p = F.lit(1.0) / (F.lit(1.0) + F.exp(-F.col(logit)))
        return scored.withColumns(
            {
                self.getRawPredictionCol(): array_to_vector(F.array(-F.col(logit), F.col(logit))),
                self.getProbabilityCol(): array_to_vector(F.array(F.lit(1.0) - p, p)),
                self.getPredictionCol(): (F.col(logit) > 0).cast("double"),
            }
        ).drop(logit)
