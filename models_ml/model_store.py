"""Fitted models in the lake, versioned, with their metadata and report.

Lake layout, under the lakehouse root::

    artifacts/models/<name>/<version>/model/          the PipelineModel (MLlib format)
    artifacts/models/<name>/<version>/metadata.json   features, sources, window, params, metrics
    artifacts/models/<name>/<version>/report/         report.md and its PNG plots

MLflow's tracking and registry: :mod:`models_ml.registry`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.ml import PipelineModel

from features import lakehouse
from models_ml.report import write_report

if TYPE_CHECKING:
    from models_ml.training import TrainResult

METADATA_FILE = "metadata.json"


class ModelNotFound(LookupError):
    """No saved model under the name (and version) asked for."""


@dataclasses.dataclass(frozen=True)
class SavedModel:
    """A model saved in the lake.

    Attributes:
        name: Model name (``churn``).
        version: Integer version, 1 for the first save of a name.
        path: Its directory, ``<root>/artifacts/models/<name>/<version>``.
        metadata: The content of ``metadata.json``.
    """

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]


def models_dir(root: Path | None = None) -> Path:
    """``<lakehouse root>/artifacts/models``."""
    base = root if root is not None else lakehouse.settings().root
    return Path(base) / "artifacts" / "models"


def jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts only; NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) or hasattr(value, "item"):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_metadata(
    result: TrainResult,
    *,
    name: str,
    feature_service: str | None = None,
    source_versions: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata saved beside a model.

    Args:
        result: The training result.
        name: Model name.
        feature_service: Feast feature service the features came from (``churn_v1``).
        source_versions: Delta version of every feature table read, ``{table: version}``.
        extra: Anything else worth keeping (e.g. the entity frame's query).
    """
    import pyspark

    cfg = result.config
    return jsonable(
        {
            "name": name,
            "created_at": datetime.now(UTC).isoformat(),
            "family": cfg.family,
            "task": "classification" if cfg.is_classifier else "regression",
            "label": cfg.label_col,
            "feature_service": feature_service,
            "feature_names": list(cfg.feature_cols),
            "numeric_features": list(cfg.numeric_cols),
            "categorical_features": list(cfg.categorical_cols),
            "text_features": list(cfg.text_cols),
            "feature_slots": result.feature_slots,
            "id_columns": list(cfg.id_cols),
            "timestamp_column": cfg.timestamp_col,
            "source_versions": dict(source_versions or {}),
            "split": result.split_kind,
            "training_window": result.windows.get("train"),
            "holdout_window": result.windows.get("holdout"),
            "config": cfg.to_dict(),
            "params": result.best_params,
            "tuning": {"metric": result.tuning_metric, "grid": result.grid_metrics},
            "threshold": result.threshold,
            "metrics": result.metrics,
            "lift": result.lift,
            "top_weights": [[n, w] for n, w in result.weights[:30]],
            # every feature's largest weight over its slots (a categorical has one per value)
            "feature_weights": _feature_weights(result.weights),
            "spark_version": pyspark.__version__,
            **dict(extra or {}),
        }
    )


def _feature_weights(weights: list[tuple[str, float]]) -> dict[str, float]:
    """The largest absolute weight of each feature over its slots (``plan=basic`` is a slot
    of ``plan``)."""
    largest: dict[str, float] = {}
    for slot, weight in weights:
        name = str(slot).split("=", 1)[0]
        largest[name] = max(largest.get(name, 0.0), abs(float(weight)))
    return largest


def is_champion_choice(metadata: Mapping[str, Any]) -> bool:
    """Whether training chose this version as ``champion`` (metadata of models saved
    before the comparison existed: yes)."""
    return bool((metadata.get("promotion") or {}).get("promoted", True))


def _versions(base: Path) -> list[int]:
    """Existing integer versions under a model's directory."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())


def save_model(
    result: TrainResult,
    *,
    name: str,
    feature_service: str | None = None,
    source_versions: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
    with_report: bool = True,
    report_notes: list[str] | None = None,
    root: Path | None = None,
) -> SavedModel:
    """Save the fitted pipeline, its metadata and report as the next version of ``name``.

    Args:
        result: The training result.
        name: Model name; its versions live under ``<root>/artifacts/models/<name>/``.
        feature_service: Feast feature service of the features.
        source_versions: Delta version of every feature table read.
        extra: More metadata.
        with_report: Also write the report and plots into ``report/``.
        report_notes: Extra lines for the report's metrics section.
        root: Lakehouse root; the settings' by default.
    """
    base = models_dir(root) / name
    version = (_versions(base) or [0])[-1] + 1
    path = base / str(version)
    metadata = build_metadata(
        result,
        name=name,
        feature_service=feature_service,
        source_versions=source_versions,
        extra=extra,
    )
    metadata["version"] = version
    # Written aside and renamed into place: a crash leaves no half version behind
    # (``_versions`` lists only whole numbers), and a reader never sees one.
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{version}-", dir=base))
    result.model.write().save(str(staging / "model"))
    if with_report:
        write_report(result, staging / "report", title=f"{name} v{version}", notes=report_notes)
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
    os.rename(staging, path)
    return SavedModel(name=name, version=version, path=path, metadata=metadata)


def load_model(
    name: str, *, version: int | None = None, root: Path | None = None
) -> tuple[PipelineModel, dict[str, Any]]:
    """Load a saved model (the latest version by default) and its metadata.

    Raises:
        ModelNotFound: When the name or version has not been saved.
    """
    base = models_dir(root) / name
    versions = _versions(base)
    chosen = version if version is not None else (versions[-1] if versions else None)
    if chosen is None or chosen not in versions:
        raise ModelNotFound(
            f"load_model: no model {name!r} version {version or 'latest'} under {base} "
            f"(saved versions: {versions}); train and save_model it first"
        )
    path = base / str(chosen)
    metadata = json.loads((path / METADATA_FILE).read_text())
    return PipelineModel.load(str(path / "model")), metadata


def saved_versions(name: str, *, root: Path | None = None) -> list[int]:
    """Versions of ``name`` saved in the lake, oldest first."""
    return _versions(models_dir(root) / name)


def read_metadata(name: str, version: int, *, root: Path | None = None) -> dict[str, Any]:
    """The metadata of a saved version, without loading its model."""
    return json.loads((models_dir(root) / name / str(version) / METADATA_FILE).read_text())


def discard_version(name: str, version: int, *, root: Path | None = None) -> None:
    """Remove a saved version (moved aside first, so it vanishes in one rename)."""
    path = models_dir(root) / name / str(version)
    if path.is_dir():
        doomed = path.with_name(f".partial-discarded-{version}")
        shutil.rmtree(doomed, ignore_errors=True)
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
