"""Benchmark: the gradient boosted family's default search against early stopping.

Question: does a GBT search with more trees, stopped early (depth 3 or 5, up to
``max_trees`` trees, stopped on a tenth of each fit's rows: ``early_stopping=0.1``) reach a
higher held-out ROC AUC than the default grid (depth 3 or 5 by 10 or 20 trees), and at what
cost?

Baseline ("grid": the default grid, measured in the same run, same session):
maxDepth (3, 5) x maxIter (10, 20), no early stopping.  Both are tuned by 3-fold cross-validation
on the same training rows and judged on the same held-out rows of two public churn
datasets under ``../shared/data/real``: BigML's (its own training and test files) and IBM
Telco (20% of the customers, by a hash of the id).  The script prints per dataset and
search the held-out ROC AUC, the seconds of ``train`` (split, tuning, threshold, judging),
the trees of the chosen model, the ratio of seconds to the baseline, and the peak RSS.

Usage::

    .venv/bin/python bench/bench_gbt_search.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchkit import PeakMemory

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real"
OLD_GRID = (("maxDepth", (3, 5)), ("maxIter", (10, 20)))  # the default grid


def _datasets(spark):
    """(name, training frame, held-out frame or None, config options) per dataset."""
    read = spark.read.option("header", True).option("inferSchema", True)
    bigml_train = read.csv(str(REAL / "churn-bigml-80.csv")).cache()
    bigml_test = read.csv(str(REAL / "churn-bigml-20.csv")).cache()
    telco = read.csv(str(REAL / "Telco-Customer-Churn.csv")).cache()
    return [
        ("bigml", bigml_train, bigml_test, {"label_col": "Churn"}),
        (
            "telco",
            telco,
            None,
            {
                "label_col": "Churn",
                "positive_label": "Yes",
                "id_cols": ("customerID",),
                "numeric_cols": ("TotalCharges",),
            },
        ),
    ]


def main() -> None:
    os.environ.setdefault("LAKEHOUSE_ROOT", tempfile.mkdtemp(prefix="bench-gbt-"))
    from features import lakehouse
    from models_ml import ModelConfig, Split, prepare, train

    spark = lakehouse.spark_session()
    rows = []
    with PeakMemory() as memory:
        for name, frame, test, options in _datasets(spark):
            for search, grid, stopping in (
                ("grid", OLD_GRID, 0.0),
                ("early", (("maxDepth", (3, 5)),), 0.1),
            ):
                memory.phase = f"{name} {search}"
                config = ModelConfig.from_schema(
                    frame.schema,
                    family="gbt",
                    tuning="cv",
                    num_folds=3,
                    param_grid=grid,
                    early_stopping=stopping,
                    **options,
                )
                split = None
                if test is not None:
                    split = Split(
                        train=prepare(frame, config), holdout=prepare(test, config), kind="hash"
                    )
                started = time.perf_counter()
                result = train(frame, config, split=split)
                seconds = time.perf_counter() - started
                trees = result.model.stages[-1].getNumTrees
                rows.append((name, search, result.metrics["areaUnderROC"], seconds, trees))
                print(
                    f"{name:6} {search:9} AUC {result.metrics['areaUnderROC']:.4f}  "
                    f"{seconds:6.1f} s  {trees:3d} trees  best {result.best_params}",
                    flush=True,
                )
    print()
    for name in dict.fromkeys(r[0] for r in rows):
        old = next(r for r in rows if r[0] == name and r[1] == "grid")
        new = next(r for r in rows if r[0] == name and r[1] == "early")
        print(
            f"{name:6} AUC {old[2]:.4f} -> {new[2]:.4f} ({new[2] - old[2]:+.4f}); "
            f"seconds {old[3]:.1f} -> {new[3]:.1f} ({new[3] / old[3]:.2f}x the grid)"
        )
    print(f"peak RSS {memory.peak / 2**30:.2f} GiB (JVM {memory.jvm_peak / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
