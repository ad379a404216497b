"""PNG plots (ROC, precision-recall, lift, top weights) and a Markdown report beside them.

Plots are drawn from the aggregates in a :class:`~models_ml.training.TrainResult`
(curve points, lift table, weights); nothing here touches Spark.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from models_ml.training import TrainResult


def plot_roc(curve: list[dict[str, float]], path: Path, *, auc: float | None = None) -> Path:
    """ROC curve (false positive rate vs recall) as PNG."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(
        [p["fpr"] for p in curve],
        [p["recall"] for p in curve],
        label=f"model (AUC {auc:.3f})" if auc is not None else "model",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate (recall)",
        title="ROC curve (held out)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_pr(
    curve: list[dict[str, float]],
    path: Path,
    *,
    auc: float | None = None,
    base_rate: float | None = None,
) -> Path:
    """Precision-recall curve as PNG, with the positive rate as the chance line."""
    fig, ax = plt.subplots(figsize=(5, 5))
    points = curve[1:] or curve
    ax.plot(
        [p["recall"] for p in points],
        [p["precision"] for p in points],
        label=f"model (AUC-PR {auc:.3f})" if auc is not None else "model",
    )
    if base_rate is not None:
        ax.axhline(base_rate, linestyle="--", color="grey", label=f"positive rate {base_rate:.3f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall (held out)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_lift(lift: list[dict[str, Any]], path: Path) -> Path:
    """Lift by risk decile (bars) and cumulative capture of positives (line) as PNG."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = [row["group"] for row in lift]
    ax.bar(groups, [row["lift"] for row in lift], color="tab:blue", label="lift")
    ax.axhline(1.0, linestyle="--", color="grey")
    ax.set(
        xlabel="risk decile (10 = highest scores, as in predictions.churn_scores)",
        ylabel="lift",
        title="Lift by risk decile",
    )
    ax.set_xticks(groups)
    ax.invert_xaxis()  # riskiest on the left, where the capture starts
    twin = ax.twinx()
    twin.plot(
        groups,
        [row["cumulative_capture"] for row in lift],
        color="tab:orange",
        marker="o",
        label="cumulative capture",
    )
    twin.set(ylabel="share of positives captured", ylim=(0, 1.02))
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center right")
    return _save(fig, path)


def plot_weights(
    weights: list[tuple[str, float]], path: Path, *, top: int = 15, kind: str = "coefficient"
) -> Path:
    """Horizontal bars of the ``top`` largest coefficients or importances as PNG."""
    shown = list(reversed(weights[:top]))
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.5))
    colors = ["tab:red" if w > 0 else "tab:blue" for _, w in shown]
    ax.barh([name for name, _ in shown], [w for _, w in shown], color=colors)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set(xlabel=kind, title=f"Top {len(shown)} features by |{kind}|")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    """Write a figure as PNG and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of ``rows``."""

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    result: TrainResult,
    out_dir: Path | str,
    *,
    title: str = "Model report",
    notes: list[str] | None = None,
) -> Path:
    """Write the plots and ``report.md`` of a training result into ``out_dir``.

    Classifiers get ``roc.png``, ``pr.png``, ``lift.png`` and ``weights.png``; regressors
    ``weights.png``.  ``notes`` are extra lines under the held-out metrics.  Returns the
    path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    metrics = result.metrics
    kind = "coefficient" if hasattr(result.model.stages[-1], "coefficients") else "importance"
    sections = [
        f"# {title}",
        "",
        f"- family: `{cfg.family}`, label: `{cfg.label_col}`, tuning: `{cfg.tuning}` "
        f"({cfg.num_folds} folds)"
        if cfg.tuning == "cv"
        else f"- family: `{cfg.family}`, label: `{cfg.label_col}`, tuning: `tvs` "
        f"(train ratio {cfg.train_ratio})",
        f"- split: `{result.split_kind}`; training {result.windows['train']}, "
        f"held out {result.windows['holdout']}",
        f"- features: {len(cfg.numeric_cols)} numeric, {len(cfg.categorical_cols)} categorical"
        + (f", {len(cfg.text_cols)} text" if cfg.text_cols else "")
        + f" ({len(result.feature_slots)} vector slots)",
        f"- best parameters: `{result.best_params}`",
        "",
        "## Held-out metrics",
        "",
        _table([{"metric": k, "value": float(v)} for k, v in metrics.items()], ["metric", "value"]),
        "",
        *[f"- {note}" for note in notes or []],
        *([""] if notes else []),
        f"## Tuning ({result.tuning_metric} per grid point)",
        "",
        _table(result.grid_metrics, list(result.grid_metrics[0]) if result.grid_metrics else []),
        "",
    ]
    if cfg.is_classifier:
        plot_roc(result.curve, out / "roc.png", auc=metrics.get("areaUnderROC"))
        plot_pr(
            result.curve,
            out / "pr.png",
            auc=metrics.get("areaUnderPR"),
            base_rate=metrics.get("positive_rate"),
        )
        plot_lift(result.lift, out / "lift.png")
        sections += [
            f"Threshold {result.threshold:.4f} (maximises F1 on a validation slice of the "
            "training part)"
            if cfg.threshold is None
            else f"Threshold {cfg.threshold} (fixed)",
            "",
            "## Lift by risk decile",
            "",
            _table(
                result.lift,
                [
                    "group",
                    "n",
                    "positives",
                    "rate",
                    "lift",
                    "cumulative_capture",
                    "cumulative_lift",
                ],
            ),
            "",
            "![ROC](roc.png) ![Precision-recall](pr.png)",
            "",
            "![Lift](lift.png)",
            "",
        ]
    if result.weights:
        plot_weights(result.weights, out / "weights.png", kind=kind)
        sections += [
            f"## Top features by |{kind}|",
            "",
            _table([{"feature": n, kind: w} for n, w in result.weights[:15]], ["feature", kind]),
            "",
            "![Weights](weights.png)",
            "",
        ]
    path = out / "report.md"
    path.write_text("\n".join(sections))
    return path
