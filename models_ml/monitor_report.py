"""One page a person can read: the monitor's last days as an HTML report with plots.

``write_report(spark, day)`` reads ``ops.feature_drift`` and ``ops.model_performance`` for the
``days`` up to ``day`` and writes ``artifacts/monitoring/report_<day>.html`` (and a copy as
``report.html``), self-contained (the plots are PNGs drawn with matplotlib, embedded as data
URIs) so that it opens from disk, in a browser or a mail:

1. feature drift: PSI per feature and day as a heat map, flagged cells marked;
2. score drift: PSI of the day's scores against the baseline day, flagged days marked;
3. realized performance: ROC AUC of each matured score date with its 95% interval, and the
   mean predicted probability beside the churn rate that followed (calibration);
4. the latest day's features, largest PSI first, with p-values and what was flagged.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from features import drift, lakehouse
from models_ml import churn, monitoring

DEFAULT_DAYS = 30


def write_report(
    spark: SparkSession,
    day: dt.date,
    *,
    days: int = DEFAULT_DAYS,
    rule: drift.DriftRule = drift.DEFAULT_RULE,
    out_dir: Path | None = None,
) -> Path:
    """Write the monitoring report of the ``days`` up to ``day``; return its path.

    ``rule`` is the one the monitor flagged with (the page explains it).
    """
    out_dir = out_dir or lakehouse.settings().artifacts_dir / "monitoring"
    start = day - dt.timedelta(days=days - 1)
    drift_rows = _rows(spark, drift.DRIFT_TABLE, "score_date", start, day)
    performance = _rows(spark, monitoring.PERFORMANCE_TABLE, "score_date", None, day)
    features = [r for r in drift_rows if r["kind"] != monitoring.PREDICTION]
    scores = [r for r in drift_rows if r["kind"] == monitoring.PREDICTION]
    latest = [r for r in features if r["score_date"] == day]
    sections = [
        f"<h1>Churn model monitoring, {start} to {day}</h1>",
        "<p>Each day the features of every active customer, and their scores, are compared "
        "with the model's baseline (the same on the day it was trained). A feature is "
        "<b>flagged</b> when its population stability index exceeds "
        f"{rule.min_psi} and a chi-square test says the shift is not noise "
        f"(p below {rule.alpha} / number of features).</p>",
        "<h2>Feature drift</h2>",
        _figure(_heatmap(features), "PSI per feature and day", "feature-drift")
        if features
        else "<p class='empty'>No monitored day in this window.</p>",
        "<h2>Score drift</h2>",
        _figure(_score_plot(scores, rule), "PSI of the day's scores", "score-drift")
        if scores
        else "<p class='empty'>No scored day was compared in this window.</p>",
        "<h2>Realized performance</h2>",
        _figure(_performance_plot(performance), "Realized ROC AUC and calibration", "performance")
        if performance
        else "<p class='empty'>No score date has matured labels yet (they "
        f"are known {monitoring.HORIZON_DAYS} days after it).</p>",
        f"<h2>Features on {day}</h2>",
        _table(latest) if latest else f"<p class='empty'>{day} was not monitored.</p>",
    ]
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Monitoring {day}</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "img{max-width:100%}table{border-collapse:collapse}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:right}td:first-child{text-align:left}"
        "tr.flagged{background:#fde2e1}.empty{color:#777}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"report_{day}.html"
    for target in (path, out_dir / "report.html"):  # each whole or not at all
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(page, encoding="utf-8")
        partial.replace(target)
    return path


def _rows(
    spark: SparkSession, table: str, column: str, start: dt.date | None, end: dt.date
) -> list[dict]:
    """The model's rows of ``table`` with ``column`` in [start, end], as dicts."""
    if not spark.catalog.tableExists(table):
        return []
    frame = spark.table(table).where(
        (F.col("model_name") == churn.MODEL_NAME) & (F.col(column) <= F.lit(end))
    )
    if start is not None:
        frame = frame.where(F.col(column) >= F.lit(start))
    return [row.asDict() for row in frame.orderBy(column).collect()]


def _figure(fig, caption: str, name: str) -> str:
    """A matplotlib figure as an embedded PNG with a caption."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f"<figure id='{name}'><img alt='{html.escape(caption)}' "
        f"src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}"
        "</figcaption></figure>"
    )


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _heatmap(rows: list[dict]):
    """PSI per feature (rows, most drifted on top) and day (columns); flagged cells x."""
    import numpy as np

    days = sorted({r["score_date"] for r in rows})
    worst: dict[str, float] = {}
    for r in rows:
        worst[r["feature"]] = max(worst.get(r["feature"], 0.0), r["psi"])
    features = sorted(worst, key=lambda name: (-worst[name], name))
    grid = np.full((len(features), len(days)), np.nan)
    flagged = []
    for r in rows:
        i, j = features.index(r["feature"]), days.index(r["score_date"])
        grid[i, j] = r["psi"]
        if r["drifted"]:
            flagged.append((j, i))
    fig = _new_figure(max(6.0, 2.5 + 0.32 * len(days)), max(3.0, 1.0 + 0.24 * len(features)))
    ax = fig.add_subplot()
    image = ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=max(0.3, np.nanmax(grid)))
    if flagged:
        ax.scatter(
            [j for j, _ in flagged],
            [i for _, i in flagged],
            marker="x",
            color="black",
            label="flagged",
        )
        ax.legend(loc="upper right", fontsize=8)
    ax.set_yticks(range(len(features)), features, fontsize=7)
    ax.set_xticks(range(len(days)), [d.strftime("%m-%d") for d in days], rotation=90, fontsize=7)
    fig.colorbar(image, ax=ax, label="PSI")
    ax.set_title("Feature drift (PSI) by day")
    fig.tight_layout()
    return fig


def _score_plot(rows: list[dict], rule: drift.DriftRule):
    """The scores' PSI per day, flagged days in red, the PSI floor dashed."""
    fig = _new_figure(8, 3)
    ax = fig.add_subplot()
    days = [r["score_date"] for r in rows]
    ax.plot(days, [r["psi"] for r in rows], marker="o", color="tab:blue", label="scores PSI")
    hot = [r for r in rows if r["drifted"]]
    if hot:
        ax.scatter(
            [r["score_date"] for r in hot],
            [r["psi"] for r in hot],
            color="tab:red",
            zorder=3,
            label="flagged",
        )
    ax.axhline(rule.min_psi, linestyle="--", color="grey", label="PSI floor")
    ax.set(ylabel="PSI", title="Score drift against the baseline day")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _performance_plot(rows: list[dict]):
    """Realized AUC with its interval (left); mean score beside realized churn (right)."""
    fig = _new_figure(10, 3.5)
    auc_ax, cal_ax = fig.subplots(1, 2)
    judged = [r for r in rows if r["auc"] is not None]
    if judged:
        days = [r["score_date"] for r in judged]
        aucs = [r["auc"] for r in judged]
        errors = [
            [a - r["auc_ci_low"] for a, r in zip(aucs, judged, strict=True)],
            [r["auc_ci_high"] - a for a, r in zip(aucs, judged, strict=True)],
        ]
        auc_ax.errorbar(days, aucs, yerr=errors, marker="o", capsize=3)
    auc_ax.axhline(0.5, linestyle=":", color="grey")
    auc_ax.set(ylim=(0, 1), ylabel="ROC AUC", title="Realized AUC (95% interval)")
    days = [r["score_date"] for r in rows]
    cal_ax.plot(days, [r["mean_probability"] for r in rows], marker="o", label="mean score")
    cal_ax.plot(days, [r["churn_rate"] for r in rows], marker="s", label="churned in 30 days")
    cal_ax.set(ylabel="share", title="Calibration")
    cal_ax.legend(fontsize=8)
    for ax in (auc_ax, cal_ax):
        for label in ax.get_xticklabels():
            label.set_rotation(45)
    fig.tight_layout()
    return fig


def _table(rows: list[dict]) -> str:
    """The day's features, largest PSI first; flagged rows highlighted."""
    ordered = sorted(rows, key=lambda r: (-r["psi"], r["feature"]))
    body = "".join(
        f"<tr class='{'flagged' if r['drifted'] else ''}'><td>{html.escape(r['feature'])}</td>"
        f"<td>{r['kind']}</td><td>{r['psi']:.3f}</td>"
        f"<td>{(r.get('p_value') if r.get('p_value') is not None else float('nan')):.2g}</td>"
        f"<td>{'yes' if r['drifted'] else ''}</td><td>{r['current_rows']:,}</td></tr>"
        for r in ordered
    )
    return (
        "<table id='latest'><tr><th>feature</th><th>kind</th><th>PSI</th><th>p-value</th>"
        f"<th>flagged</th><th>rows</th></tr>{body}</table>"
    )
