"""Benchmark: the churn model's families, with and without the chat-text stage, on one lake.

Questions: does reading the support chats' text (``recent_chat_text`` through the pandas-UDF
stage :class:`models_ml.text.ChatTextScorer`, beside the lexicon counts dbt computes) move
the held-out ROC AUC?  Does ``torch_mlp`` (a PyTorch network trained by
``TorchDistributor``, two CPU processes) beat logistic regression and gradient boosted
trees on the same held-out rows, and at what cost?

Baseline (measured in the same run, same session, same rows): ``logistic`` without the text
stage, the churn job's default before the text feature existed.  Every variant reads the
same entity rows (the churn job's window: the snapshots with whole 90-day windows) through
Feast's ``get_historical_features`` and is judged on the same held-out rows (the latest
snapshot); the script prints per variant the held-out ROC AUC with its 95% interval, the
seconds of ``train`` (split, tuning, threshold, judging), the ratio of seconds to the
baseline, the peak RSS, and which variant won.  It writes the table as Markdown to
``--out`` when given.

It needs a lake the daily job has built, e.g. the demo's::

    LAKEHOUSE_ROOT=/tmp/famlake .venv/bin/features demo
    LAKEHOUSE_ROOT=/tmp/famlake .venv/bin/python bench/bench_model_families.py

``--families`` picks the families (``torch_mlp`` needs the torch extra).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchkit import PeakMemory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families",
        default="logistic,gbt,torch_mlp",
        help="comma-separated families (default: logistic,gbt,torch_mlp)",
    )
    parser.add_argument("--tuning", choices=("cv", "tvs"), default="cv")
    parser.add_argument("--out", type=Path, help="write the table as Markdown here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from features import feast_repo, lakehouse
    from models_ml import churn, lake

    spark = lakehouse.spark_session()
    store = feast_repo.feature_store()
    start = churn.default_start(spark, churn.lake_days(spark)[0], log=lambda line: None)
    entities = lake.training_entities(spark, start=start).cache()
    snapshots = entities.select("event_timestamp").distinct().count()
    print(
        f"lake {lakehouse.settings().root}: {entities.count():,} entity rows, {snapshots} "
        f"snapshots from {start}; tuning {args.tuning}"
    )
    rows = []
    with PeakMemory() as memory:
        for family in args.families.split(","):
            for text in (False, True):
                config = lake.model_config(
                    store, family=family, tuning=args.tuning, text_features=text
                )
                if family != "logistic":
                    config = config.replace(param_grid=())  # the family's default grid
                name = f"{family}{' + text' if text else ''}"
                memory.phase = name
                started = time.perf_counter()
                trained = lake.train_on_service(
                    store,
                    entities,
                    config,
                    label="churned_within_30d",
                    snapshots=snapshots,
                    log=lambda line: None,
                )
                seconds = time.perf_counter() - started
                trained.frame.unpersist()
                m = trained.result.metrics
                rows.append(
                    {
                        "variant": name,
                        "auc": m["areaUnderROC"],
                        "low": m["auc_ci_low"],
                        "high": m["auc_ci_high"],
                        "pr_auc": m["areaUnderPR"],
                        "holdout": trained.result.windows["holdout"]["rows"],
                        "seconds": seconds,
                        "peak_gib": memory.phase_peaks[name] / 2**30,
                    }
                )
                print(
                    f"{name:<18} AUC {m['areaUnderROC']:.4f} "
                    f"[{m['auc_ci_low']:.4f}, {m['auc_ci_high']:.4f}]  "
                    f"PR AUC {m['areaUnderPR']:.4f}  {seconds:6.1f} s",
                    flush=True,
                )
    baseline = rows[0]["seconds"]
    best = max(rows, key=lambda r: r["auc"])
    lines = [
        "| variant | held-out ROC AUC (95% CI) | PR AUC | held-out rows | train s "
        "| x baseline | peak RSS GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['auc']:.4f} ({r['low']:.4f}-{r['high']:.4f}) | "
            f"{r['pr_auc']:.4f} | {r['holdout']:,} | {r['seconds']:.1f} | "
            f"{r['seconds'] / baseline:.2f}x | {r['peak_gib']:.2f} |"
        )
    lines.append("")
    lines.append(
        f"Won: {best['variant']} (AUC {best['auc']:.4f}); baseline {rows[0]['variant']} "
        f"{rows[0]['auc']:.4f}. Peak RSS of the run {memory.peak / 2**30:.2f} GiB."
    )
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
