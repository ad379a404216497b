"""Benchmark: ``torch_mlp`` trained on a GPU against the same training on CPU processes.

Question: how much faster does ``TorchMLPClassifier`` fit with ``useGpu=True`` (one process
per GPU, NCCL) than with CPU processes (gloo), on the same rows of a generated lake?

Baseline (measured in the same run, same session, same rows): the CPU fit, ``--cpu-processes``
processes (2).  The rows are the churn job's training rows read through Feast's
``get_historical_features`` and featurized by the pipeline's feature stages once (cached);
``--repeat`` copies them to give the GPU more to do.  Each fit runs the same epochs and
grid point; the script prints the seconds of each fit, the ratio GPU / CPU, the held-out
ROC AUC of each (the latest snapshot), and the peak RSS.  Without a GPU (or without Spark's
GPU resources: ``bench/gpu_check.sh`` sets them) it runs the CPU fit only and says so.

Usage (on a lake the daily job has built, e.g. the demo's)::

    LAKEHOUSE_ROOT=/tmp/lake .venv/bin/python bench/bench_torch_gpu.py
"""

from __future__ import annotations

import argparse
import time

from benchkit import PeakMemory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="copies of the training rows")
    parser.add_argument("--cpu-processes", type=int, default=2)
    parser.add_argument("--gpu-processes", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    from features import feast_repo, lakehouse
    from models_ml import churn, lake
    from models_ml.config import LABEL, SCALED
    from models_ml.split import prepare, split_holdout
    from models_ml.torch_mlp import TorchMLPClassifier
    from models_ml.tuning import featurize

    spark = lakehouse.spark_session()
    store = feast_repo.feature_store()
    start = churn.default_start(spark, churn.lake_days(spark)[0], log=lambda line: None)
    entities = lake.training_entities(spark, start=start)
    frame, _ = lake.historical_features(store, entities)
    config = lake.model_config(store, family="torch_mlp", max_iter=args.epochs)
    split = split_holdout(prepare(frame, config), config)
    features, _ = featurize(split.train, config)
    train = features.transform(split.train).select(SCALED, LABEL)
    if args.repeat > 1:
        copies = spark.range(args.repeat).withColumnRenamed("id", "_copy")
        train = train.crossJoin(copies).drop("_copy")
    train = train.cache()
    holdout = features.transform(split.holdout).select(SCALED, LABEL).cache()
    rows = train.count()
    holdout.count()
    gpu_ready = torch.cuda.is_available() and "gpu" in spark.sparkContext.resources
    print(
        f"lake {lakehouse.settings().root}: {rows:,} training rows x "
        f"{len(train.first()[SCALED])} slots, {args.epochs} epochs; "
        f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}"
        f"{'' if gpu_ready or not torch.cuda.is_available() else ' (Spark has no gpu resource)'}"
    )
    auc = BinaryClassificationEvaluator(labelCol=LABEL, rawPredictionCol="rawPrediction")
    runs = [("cpu", False, args.cpu_processes)]
    if gpu_ready:
        runs.append(("gpu", True, args.gpu_processes))
    seconds: dict[str, float] = {}
    with PeakMemory() as memory:
        for name, use_gpu, processes in runs:
            memory.phase = name
            estimator = TorchMLPClassifier(
                featuresCol=SCALED,
                labelCol=LABEL,
                maxIter=args.epochs,
                numProcesses=processes,
                useGpu=use_gpu,
            )
            started = time.perf_counter()
            model = estimator.fit(train)
            seconds[name] = time.perf_counter() - started
            print(
                f"{name}: {processes} process(es), fit {seconds[name]:.1f} s, held-out AUC "
                f"{auc.evaluate(model.transform(holdout)):.4f}, peak RSS "
                f"{memory.phase_peaks[name] / 2**30:.2f} GiB",
                flush=True,
            )
    if "gpu" in seconds:
        print(
            f"GPU / CPU fit time: {seconds['gpu'] / seconds['cpu']:.2f}x "
            f"({seconds['cpu'] / seconds['gpu']:.2f}x faster)"
        )
    else:
        print("no GPU run: this machine has no GPU Spark can hand to TorchDistributor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
