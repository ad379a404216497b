"""``features daily``: one date (or a backfill window) from landing files to predictions.

Steps, each recorded in ``ops.pipeline_runs`` under pipeline ``daily`` and the batch date:
ingest the landing batches -> ``dbt build`` -> ``feast apply`` + materialize ->
retrain when due (weekly, or after drift) -> score the date -> monitor feature drift.
A step that already succeeded for the date is skipped, so a failed run resumes from its
failed step and a rerun of a finished date changes nothing, unless files landed since: a
late file (for this date or an earlier one already asked for) is ingested by the next run,
and the steps after ingest run again.  A date still waiting for a daily source's delivery
records ingest as ``waiting`` and stops there (:class:`BatchWaiting`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from features import console, days, dbt_contracts, dbt_runs, feast_repo, lakehouse, runlog

PIPELINE = "daily"
STEPS: tuple[str, ...] = ("ingest", "dbt_build", "feast", "train", "score", "monitor")
DBT_PROJECT = dbt_contracts.DBT_PROJECT
# Churners a matured score date needs before its realized AUC can make retraining due.
MIN_POSITIVES = 10
# What the steps import, imported while the JVM starts (lakehouse.spark_session's preload).
LIBRARIES: tuple[str, ...] = (
    "feast",
    "dbt.cli.main",
    "dbt.adapters.spark",
    "models_ml.churn",
    "models_ml.monitoring",
)


class StepFailed(RuntimeError):
    """A step of the daily job failed; rerunning the date resumes from it."""


class NothingIngested(RuntimeError):
    """The lake has no data at all: nothing landed for the dates and nothing before."""


class BatchWaiting(RuntimeError):
    """The date's deliveries have not all landed: ingest waits, nothing after it runs."""


@dataclasses.dataclass(frozen=True)
class DailyOptions:
    """How the daily job runs.

    Attributes:
        retrain: ``auto`` (when no model exists or the newest is ``retrain_every_days``
            old), ``always`` or ``never``.
        retrain_every_days: Age of the newest model, in batch days, that makes it due.
        force: Rerun steps that already succeeded for the date.
        tuning: The training's tuning: ``cv`` (cross-validation over expanding windows of
            snapshots) or ``tvs`` (one forward train/validation split, cheaper); the model's default
            when ``None``.
        family: The churn model's family when it retrains (``logistic``, ``gbt`` or
            ``torch_mlp``); the model's default (logistic) when ``None``.
        text_features: When it retrains, also read the chats' text (``recent_chat_text``).
        min_realized_auc: Realized ROC AUC of a matured score date below which the model
            is retrained (``ops.model_performance``).
    """

    retrain: str = "auto"
    retrain_every_days: int = 7
    force: bool = False
    tuning: str | None = None
    family: str | None = None
    text_features: bool = False
    min_realized_auc: float = 0.6


def succeeded_steps(spark: SparkSession, day: dt.date) -> set[str]:
    """Steps of the daily job that already succeeded for ``day``."""
    runs = runlog.read_runs(spark, pipeline=PIPELINE).where(
        (F.col("batch_date") == F.lit(day)) & (F.col("status") == "succeeded")
    )
    return {row.step for row in runs.select("step").distinct().collect()}


def run_dbt_build(*, tests_since: dt.date | None = None, log: Callable[[str], None] = print) -> int:
    """``dbt build`` of the project on the session target, in this process.

    dbt's per-node lines go to ``<root>/logs/dbt.log`` (and to the console only when
    :func:`features.console.configure` was asked to be verbose); a terminal sees one
    progress line instead.

    Args:
        tests_since: The first batch date of the run: the tests of the tables that grow
            every day check only what batches since then made or changed (the var
            ``tests_since``, see ``dbt_project/macros/tests_since.sql``).  None: every row.
        log: Where the closing line goes.

    Returns:
        The number of nodes built and tested.
    """
    root = lakehouse.settings().root
    # dbt's unit tests check the models' SQL on fixed inputs, not the day's data: they run
    # in development and CI (`make test`), as dbt advises, not in every production build.
    args = [
        "build",
        "--log-path",
        str(console.log_dir(root)),
        "--exclude-resource-type",
        "unit_test",
    ]
    if not console.is_verbose():
        args += ["--log-level", "none", "--log-level-file", "debug"]
    if tests_since is not None:
        args += ["--vars", json.dumps({"tests_since": tests_since.isoformat()})]
    progress = _DbtProgress(enabled=sys.stdout.isatty() and not console.is_verbose())
    try:
        result = dbt_runs.invoke(args, project=DBT_PROJECT, callbacks=[progress])
    finally:
        progress.close()
    if not result.success:
        raise StepFailed(
            "dbt build failed: "
            + "; ".join(dbt_runs.failures(result)[:5])
            + f" (dbt's log: {console.log_dir(root) / 'dbt.log'})"
        )
    nodes = len(list(result.result))
    log(f"dbt: build succeeded ({nodes} nodes)")
    return nodes


class _DbtProgress:
    """A dbt callback that keeps one ``dbt build: N nodes done`` line up to date on a
    terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.done = 0
        self.shown = False

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if event.info.name != "NodeFinished":
            return
        self.done += 1
        sys.stdout.write(f"\r  dbt build: {self.done} nodes done")
        sys.stdout.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()


def _first_names(names: Sequence[str], shown: int = 4) -> str:
    """The first ``shown`` names, then ``...`` when there are more (a step line stays one
    line; ``ops.feature_drift`` has them all)."""
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _retrain_reason(
    spark: SparkSession, day: dt.date, options: DailyOptions, notes: list[str] | None = None
) -> str | None:
    """Why the model must be trained on ``day`` (None: it need not be).

    Due when asked to, when there is no model, when the newest is ``retrain_every_days``
    batch days old, when the realized ROC AUC of its latest matured score date fell below
    ``min_realized_auc`` (with at least ``MIN_POSITIVES`` churners to judge by), or when the
    last monitored day before ``day`` flagged drift on features the model leans on (see
    :func:`models_ml.monitoring.leaned_on`); but not for drift again within
    the label horizon (30 days) of a retraining for drift or for its realized AUC: the
    newest labels a model can learn from are that old, so a second model would not know the
    change any better.  Why drift or performance did not make it due goes to ``notes``.
    """
    from features import drift
    from models_ml import churn, model_store, monitoring

    notes = notes if notes is not None else []
    if options.retrain == "always":
        return "retrain=always"
    if options.retrain == "never":
        return None
    serving = churn.serving_version()
    if serving is None:
        return "no model yet"
    trainings = runlog.read_runs(spark, pipeline=PIPELINE).where(
        (F.col("step") == "train")
        & (F.col("status") == "succeeded")
        & ~F.col("message").startswith("not due")
    )
    latest = trainings.agg(
        F.max("batch_date"),
        F.max(
            F.when(
                F.col("message").contains("(drift on ")
                | F.col("message").contains("(realized AUC "),
                F.col("batch_date"),
            )
        ),
    ).first()
    assert latest is not None  # an aggregate has a row
    trained, for_change = latest
    horizon = churn.LABEL_HORIZON_DAYS
    cooling = for_change is not None and (day - for_change).days < horizon

    def held(found: str) -> None:
        ripe = for_change + dt.timedelta(days=horizon)
        notes.append(
            f"{found}, but retrained for a change on {for_change}: "
            f"no newer labels to learn from until {ripe}"
        )

    if trained is None or (day - trained).days >= options.retrain_every_days:
        return f"model older than {options.retrain_every_days} days"
    newest = str(serving)
    if spark.catalog.tableExists(monitoring.PERFORMANCE_TABLE):
        realized = (
            spark.table(monitoring.PERFORMANCE_TABLE)
            .where(
                (F.col("model_name") == churn.MODEL_NAME)
                & (F.col("model_version") == newest)
                & (F.col("labels_known_on") < F.lit(day))
                & F.col("auc").isNotNull()
            )
            .orderBy(F.desc("score_date"))
            .limit(1)
            .collect()
        )
        if realized:
            row = realized[0]
            if row.auc < options.min_realized_auc:
                found = (
                    f"realized AUC {row.auc:.3f} on {row.score_date} below "
                    f"{options.min_realized_auc}"
                )
                if row.positives < MIN_POSITIVES:
                    notes.append(f"{found}, but only {row.positives} churners to judge by")
                elif cooling:
                    held(found)
                else:
                    return found
    if not spark.catalog.tableExists(drift.DRIFT_TABLE):
        return None
    last = spark.table(drift.DRIFT_TABLE).where(
        (F.col("model_name") == churn.MODEL_NAME)
        & (F.col("model_version") == newest)
        & (F.col("score_date") < F.lit(day))
        & (F.col("kind") != monitoring.PREDICTION)
    )
    latest = last.agg(F.max("score_date")).first()[0]
    if latest is None:
        return None
    drifted = sorted(
        r.feature
        for r in last.where((F.col("score_date") == F.lit(latest)) & F.col("drifted")).collect()
    )
    if not drifted:
        return None
    leaned = monitoring.leaned_on(model_store.read_metadata(churn.MODEL_NAME, serving))
    used = [name for name in drifted if leaned is None or name in leaned]
    if not used:
        notes.append(
            f"drift on {latest} in {_first_names(drifted)}, features the model barely uses"
        )
        return None
    found = f"drift on {latest} in {len(used)} features ({_first_names(used)})"
    if cooling:
        held(found)
        return None
    return found


def run_daily(
    spark: SparkSession,
    dates: Sequence[dt.date],
    *,
    options: DailyOptions | None = None,
    log: Callable[[str], None] = print,
    detail: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Run the daily job for the batches of ``dates``; score the last of them.

    Args:
        spark: The lakehouse session.
        dates: Batch dates to ingest (one for a daily run, many for a backfill).
        options: Retraining and rerun options.
        log: Where the step lines go (one as a step starts, one as it ends: on a terminal
            the second replaces the first).
        detail: Where the steps' own detail lines go (``log`` by default; the command line
            sends them to the log file, see :func:`features.console.detail`).

    Returns:
        Step name to what happened (``ran``, ``skipped``, ``not due``).
    """
    from features import ingest
    from models_ml import churn, model_store, monitoring

    options = options or DailyOptions()
    if not dates:
        raise ValueError("run_daily: no batch date given")
    day = max(dates)
    detail = detail or log
    on_terminal = log is print and sys.stdout.isatty() and not console.is_verbose()
    lakehouse.ensure_databases(spark)
    lakehouse.remove_orphan_table_dirs(spark, log=log)
    runlog.ensure_table(spark)
    done = set() if options.force else succeeded_steps(spark, day)
    late = ingest.landing_changes(spark, until=day)
    if "ingest" in done and late:  # files landed since: ingest them, and redo what follows
        log(
            f"[daily {day}] ingest: files landed since the last run for "
            f"{', '.join(d.isoformat() for d in late)}; ingesting them"
        )
        done = set()
    run_id = runlog.new_run_id()
    outcome: dict[str, str] = {}

    def ingest_step() -> str:
        wanted = sorted(set(dates) | set(late))
        counts = ingest.ingest_batches(spark, wanted, log=detail)
        if not counts and (
            not spark.catalog.tableExists("bronze.customers")
            or spark.table("bronze.customers").limit(1).count() == 0
        ):
            raise NothingIngested(
                f"no landing files under {lakehouse.settings().landing_dir} for "
                f"{min(dates)}..{day} and nothing ingested before: deliver the sources' "
                "files there (landing/<source>/..., see README) or run `features generate`"
            )
        for date, missing in sorted(counts.waiting.items()):
            if date != day:
                detail(f"[daily {day}] ingest: {date} waits for {', '.join(missing)}")
        if day in counts.waiting:
            landing = lakehouse.settings().landing_dir
            what = (
                f"{', '.join(counts.waiting[day])} (no readable file under "
                f"{landing / counts.waiting[day][0] / day.isoformat()} yet): ingested "
                "what landed"
                if counts.delivered.get(day)
                else f"its deliveries (nothing under {landing}/<source>/{day} yet)"
            )
            raise BatchWaiting(
                f"{day} is waiting for {what}; dbt, training, scoring and monitoring wait. "
                f"Run `features daily --date {day}` again when the files land"
            )
        every = [c for per_day in counts.values() for c in per_day.values()]
        extra = [d for d in late if d not in set(dates)]
        return (
            f"{sum(c.read for c in every):,} records read, "
            f"{sum(c.quarantined for c in every):,} quarantined"
            + (f" (late files of {', '.join(d.isoformat() for d in extra)} too)" if extra else "")
            + (
                f"; {len(counts.quarantined_files)} file(s) quarantined whole"
                if counts.quarantined_files
                else ""
            )
        )

    def dbt_step() -> str:
        nodes = run_dbt_build(tests_since=min(dates), log=detail)
        return f"{nodes} models, seeds and tests ok"

    def feast_step() -> str:
        end = days.end_of_day(day)
        with console.libraries_to_log():
            views, changed = feast_repo.apply_changes()
            feast_repo.materialize_incremental(end)
        applied = f"applied {len(changed)} change(s)" if changed else "registry unchanged"
        return f"{', '.join(views)}: {applied}; materialized to {end.isoformat()}"

    def train_step() -> str:
        whole = churn.trained_for(day)
        if whole is not None:  # an earlier attempt trained it, then died before recording
            earlier = model_store.read_metadata(churn.MODEL_NAME, whole)
            return (
                f"v{whole} trained by an earlier attempt "
                f"({earlier.get('retrain_reason') or 'reason not kept'})"
            )
        notes: list[str] = []
        reason = _retrain_reason(spark, day, options, notes)
        if reason is None:
            return "; ".join(["not due", *notes])
        detail(f"[daily {day}] train: due ({reason})")
        overrides: dict[str, Any] = {"tuning": options.tuning} if options.tuning else {}
        if options.family:
            overrides["family"] = options.family
        if options.text_features:
            overrides["text_features"] = True
        try:
            with console.libraries_to_log():
                run = churn.train_churn_model(
                    spark, batch_date=day, retrain_reason=reason, log=detail, **overrides
                )
        except churn.NotEnoughData as young:
            if model_store.saved_versions(churn.MODEL_NAME):  # a model serves on: retraining failed
                raise
            return f"not possible yet: {young}"
        promotion = run.saved.metadata.get("promotion") or {}
        role = "champion" if model_store.is_champion_choice(run.saved.metadata) else "challenger"
        return (
            f"v{run.saved.version} auc={run.result.metrics.get('areaUnderROC', 0):.3f} "
            f"{role}: {promotion.get('reason', '')} ({reason})"
        )

    def score_step() -> str:
        if not model_store.saved_versions(churn.MODEL_NAME):
            return "not possible yet: no model (see train)"
        with console.libraries_to_log():
            rows = churn.score_day(spark, day, log=detail)
        return f"{rows:,} customers scored"

    def monitor_step() -> str:
        if not model_store.saved_versions(churn.MODEL_NAME):
            return "not possible yet: no model (see train)"
        with console.libraries_to_log():
            check = monitoring.monitor_day(spark, day, log=detail)
        parts = [
            f"drift in {len(check.drifted)} of {check.rows} features "
            f"({_first_names(check.drifted)})"
            if check.drifted
            else f"no drift in {check.rows} features"
        ]
        if check.scores is not None:
            parts.append("scores drifted" if check.scores.drifted else "scores stable")
        for row in check.performance[-1:]:
            parts.append(
                f"realized AUC on {row['score_date']}: "
                + (f"{row['auc']:.3f}" if row["auc"] is not None else "n/a")
            )
        return "; ".join(parts)

    actions = {
        "ingest": ingest_step,
        "dbt_build": dbt_step,
        "feast": feast_step,
        "train": train_step,
        "score": score_step,
        "monitor": monitor_step,
    }
    for step in STEPS:
        if step in done:
            log(f"[daily {day}] {step}: already succeeded, skipped")
            outcome[step] = "skipped"
            continue
        if on_terminal:  # the closing line overwrites this one
            sys.stdout.write(f"[daily {day}] {step} ...\r")
            sys.stdout.flush()
        else:
            log(f"[daily {day}] {step} ...")
        started = time.perf_counter()
        waiting: BatchWaiting | None = None
        try:
            with runlog.record_step(
                spark, pipeline=PIPELINE, step=step, batch_date=day, run_id=run_id
            ) as record:
                try:
                    message = actions[step]()
                except BatchWaiting as error:
                    waiting = error
                    record.finish(status="waiting", message=str(error))
                else:
                    record.finish(status="succeeded", message=message)
            if waiting is not None:
                raise waiting
        except BaseException:
            if on_terminal:  # the failure's message must not land on the step's line
                state = "waiting" if waiting is not None else "failed"
                sys.stdout.write(f"\033[K[daily {day}] {step}: {state}\n")
                sys.stdout.flush()
            raise
        outcome[step] = message
        line = f"[daily {day}] {step}: {message} ({time.perf_counter() - started:.0f}s)"
        log(f"\033[K{line}" if on_terminal else line)
    return outcome
