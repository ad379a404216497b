"""``features demo``: the main job end to end on a small embedded lake.

Generates a few thousand customers over a few months of landing files, backfills all
but the last day with the daily job (ingest -> dbt build -> Feast -> train -> score),
runs the last day as an ordinary daily run, and shows what came out: the model's
metrics and report, the ten riskiest customers, and a SQL query on the predictions.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time

from features import console, lakehouse


def _log(message: str) -> None:
    print(message, flush=True)


def holdout_ceiling(spark, metadata: dict) -> dict:  # spark: SparkSession
    """AUC of the generator's hidden risk score on a churn model's own held-out rows.

    On generated data (``ops.generator_truth`` exists) this is the fair ceiling of the
    model's held-out AUC: same customers, same snapshots, same labels, the rows of
    ``ml.churn_labels`` in the hold-out window the model's metadata saved.  It is computed
    here, where the generator is known, and never by the training itself (which runs on
    lakes that no generator made).

    Returns:
        ``{"auc": ..., "rows": ...}``; ``{"auc": None, "rows": 0}`` when the model was not
        split by time (a hash split's held-out rows are no window) or without the
        generator's truth.
    """
    import pyspark.sql.functions as F

    from features.generate import risk
    from models_ml import lake

    window = metadata.get("holdout_window") or {}
    if metadata.get("split") != "time" or not window.get("start") or not window.get("end"):
        return {"auc": None, "rows": 0}
    instant = F.col("event_timestamp")
    held = lake.training_entities(spark).where(
        (instant >= F.lit(window["start"]).cast("timestamp"))
        & (instant <= F.lit(window["end"]).cast("timestamp"))
    )
    auc, rows = risk.ceiling_on(
        held, customer_col="customer_id", timestamp_col="event_timestamp", label_col="label"
    )
    return {"auc": auc, "rows": rows}


def run(*, customers: int, days: int, seed: int, reset: bool = True) -> int:
    """Build a small lake from scratch and run the whole pipeline over it.

    Args:
        customers: Number of synthetic customers.
        days: Days of history to generate (at least 75: labels need 28 days of history
            and a 30-day horizon).
        seed: Seed of the generator.
        reset: Start from an empty lake (the metastore and warehouse are removed).

    Returns:
        The process exit code.
    """
    from features.daily import LIBRARIES, DailyOptions, run_daily
    from features.generate import GeneratorConfig, generate
    from models_ml import churn, lake, model_store

    if days < 75:
        raise SystemExit(
            "features demo: --days must be at least 75 (28 days of history "
            "before the first label snapshot, and its 30-day horizon)"
        )
    clock = time.perf_counter()
    cfg = lakehouse.settings()
    if reset:
        for path in (cfg.warehouse_dir, cfg.metastore_dir, cfg.landing_dir, cfg.artifacts_dir):
            shutil.rmtree(path, ignore_errors=True)
    spark = lakehouse.spark_session(cfg, preload=LIBRARIES)
    lakehouse.ensure_databases(spark)
    _log(f"[demo] lakehouse at {cfg.root}")

    config = GeneratorConfig(customers=customers, days=days, seed=seed)
    started = time.perf_counter()
    summary = generate(spark, config, log=console.detail)
    _log(
        f"[demo] generated {sum(summary.rows.values()):,} records over {days} days for "
        f"{customers:,} customers ({time.perf_counter() - started:.0f}s)"
    )
    dates = [config.start + dt.timedelta(days=i) for i in range(days)]

    _log(f"[demo] backfill {dates[0]} .. {dates[-2]} with the daily job")
    run_daily(
        spark, dates[:-1], options=DailyOptions(retrain="always"), log=_log, detail=console.detail
    )
    _log(f"[demo] daily run of {dates[-1]}")
    run_daily(spark, dates[-1:], log=_log, detail=console.detail)

    _, metadata = model_store.load_model(churn.MODEL_NAME, version=churn.serving_version())
    metrics = metadata.get("metrics", {})
    auc = metrics.get("areaUnderROC")
    ceiling = summary.ceiling_auc
    _log("")
    _log("=" * 72)
    _log(
        f"model {churn.MODEL_NAME} v{metadata.get('version')} (the champion) trained on "
        f"{lake.FEATURE_SERVICE}"
    )
    for name in sorted(metrics):
        _log(f"  {name:<24}{metrics[name]:.4f}")
    same_rows = holdout_ceiling(spark, metadata)["auc"]
    if auc is not None and same_rows:
        _log(
            f"  held-out ROC AUC {auc:.3f} vs the generator's hidden score on the same rows "
            f"{same_rows:.3f} ({100 * auc / same_rows:.0f}% of it)"
        )
    if ceiling:
        _log(f"  generator's ceiling over all its snapshots: {ceiling:.3f}")
    report_dir = (
        model_store.models_dir() / churn.MODEL_NAME / str(metadata.get("version")) / "report"
    )
    _log(f"report: {report_dir}")
    _log("")
    _log(f"ten riskiest customers on {dates[-1]}:")
    spark.sql(
        f"""
        select customer_id, round(churn_probability, 4) as churn_probability, risk_decile
        from {churn.PREDICTIONS_TABLE}
        where score_date = '{dates[-1]}'
        order by churn_probability desc, customer_id
        limit 10
        """
    ).show(truncate=False)
    query = (
        f"select score_date, risk_decile, count(*) as customers, "
        f"round(avg(churn_probability), 4) as avg_probability "
        f"from {churn.PREDICTIONS_TABLE} group by score_date, risk_decile "
        f"order by score_date, risk_decile desc"
    )
    _log(f'features sql "{query}"')
    spark.sql(query).show(n=40, truncate=False)
    _log(f"[demo] done in {time.perf_counter() - clock:.0f}s")
    return 0
