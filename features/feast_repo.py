"""Feast over the lakehouse: the feature repository, applied and materialized in-process.

The repository itself (``feature_repo/``) is declarations only; this module opens it
with the lakehouse's settings (registry and online store under the lakehouse root) on
the one SparkSession, so that Feast's Spark code finds our session already configured.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from features import dbt_contracts, lakehouse

if TYPE_CHECKING:  # Feast is imported when a store is made, not with this module
    from feast import FeatureStore

REPO_PATH = Path(__file__).resolve().parent.parent / "feature_repo"


def repo_path() -> Path:
    """Return the Feast repository directory (``LAKEHOUSE_FEATURE_REPO`` overrides)."""
    return Path(os.environ.get("LAKEHOUSE_FEATURE_REPO") or REPO_PATH)


def yaml_path() -> Path:
    """The repository's configuration: ``feature_store.yaml``, or ``LAKEHOUSE_FEAST_YAML``.

    The cluster setup uses ``feature_store.cluster.yaml`` (SQL registry, Redis online store)
    over the same declarations; a relative name is looked up in the repository.
    """
    chosen = Path(os.environ.get("LAKEHOUSE_FEAST_YAML") or "feature_store.yaml")
    return chosen if chosen.is_absolute() else repo_path() / chosen


def _prepare(cfg: lakehouse.LakehouseSettings | None = None) -> lakehouse.LakehouseSettings:
    cfg = cfg or lakehouse.settings()
    os.environ["LAKEHOUSE_ROOT"] = str(cfg.root)
    (cfg.artifacts_dir / "feast").mkdir(parents=True, exist_ok=True)
    lakehouse.spark_session(cfg)
    return cfg


def feature_store(cfg: lakehouse.LakehouseSettings | None = None) -> FeatureStore:
    """Return a ``FeatureStore`` over ``feature_repo/`` and the lakehouse."""
    from feast import FeatureStore

    _prepare(cfg)
    return FeatureStore(repo_path=str(repo_path()), fs_yaml_file=yaml_path())


def apply(cfg: lakehouse.LakehouseSettings | None = None) -> list[str]:
    """Run ``feast apply`` on the repository when it changes anything; return the names of
    the feature views.

    What would change is asked first (:func:`changes`); an apply that would change nothing
    is not run, so the registry is not rewritten (nor its views' timestamps moved).
    """
    return apply_changes(cfg)[0]


def apply_changes(cfg: lakehouse.LakehouseSettings | None = None) -> tuple[list[str], list[str]]:
    """Like :func:`apply`; returns ``(feature view names, what changed)``."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import _get_repo_contents, apply_total

    cfg = _prepare(cfg)
    path = repo_path()
    config = load_repo_config(path, yaml_path())
    if config.registry.registry_type == "file":
        _set_aside_unreadable_registry(Path(config.registry.path))
    _import_from(path)
    previous = Path.cwd()
    os.chdir(path)
    try:
        store = feature_store(cfg)
        contents = _get_repo_contents(path, config.project, config)
        retyped = dbt_contracts.type_changes(store.list_feature_views(), contents.feature_views)
        if retyped:
            raise FeatureTypeChanged(
                f"feast apply refused: {'; '.join(retyped)}. A model trained on a feature "
                f"would read values of another type: give the column a new name in the mart "
                f"and its contract (drop the old one when no model uses it), or delete the "
                f"view (`feast delete VIEW`) and apply again"
            )
        changed = changes(store, contents)
        if changed:
            apply_total(config, path, skip_source_validation=False)
    finally:
        os.chdir(previous)
    if changed:  # the registry was rewritten: read it afresh
        store = feature_store(cfg)
    return sorted(view.name for view in store.list_feature_views()), changed


class FeatureTypeChanged(RuntimeError):
    """A registered feature's type differs from its mart's dbt contract."""


_IMPORTED_FROM: list[str] = []


def _import_from(path: Path) -> None:
    """Make the repository's modules importable from ``path``, read afresh.

    Feast imports them by their path relative to the working directory, as ``feast apply``
    does when run inside the repository; a process that applies again (or another
    repository) must not get the modules an earlier apply imported.
    """
    for earlier in _IMPORTED_FROM:
        while earlier in sys.path:
            sys.path.remove(earlier)
    _IMPORTED_FROM[:] = [str(path)]
    sys.path.insert(0, str(path))
    for module in path.glob("*.py"):
        sys.modules.pop(module.stem, None)


def changes(store, contents) -> list[str]:  # store: FeatureStore, contents: RepoContents
    """What applying ``contents`` would change in the store's registry, one line per object.

    Feast stamps a data source with the time it is constructed and again whenever it is
    applied, and compares a feature view's source stamps included: by Feast's own plan
    every view changes at every apply.  Property differences that are only those stamps
    (the ``meta`` of the protos) are left out here.
    """
    from feast.diff.property_diff import TransitionType
    from feast.feature_view import DUMMY_ENTITY_NAME

    registry_diff, _, _ = store.plan(contents)
    lines = []
    for diff in registry_diff.feast_object_diffs:
        kind = diff.feast_object_type.name.lower().replace("_", " ")
        if diff.transition_type == TransitionType.UNCHANGED or diff.name == DUMMY_ENTITY_NAME:
            continue
        if diff.transition_type == TransitionType.UPDATE:
            real = [
                p.property_name
                for p in diff.feast_object_property_diffs
                if p.property_name != "meta" and not _only_stamps(p.val_existing, p.val_declared)
            ]
            if real:
                lines.append(f"update {kind} {diff.name}: {', '.join(real)}")
            continue
        lines.append(f"{diff.transition_type.name.lower()} {kind} {diff.name}")
    return lines


def _only_stamps(existing, declared) -> bool:
    """Whether two property values (protos, or repeated protos) differ only in the ``meta``
    messages they hold at any depth (Feast's created/updated timestamps)."""
    left, right = _without_meta(existing), _without_meta(declared)
    return left is not None and left == right


def _without_meta(value):
    """A proto (or a list of them) as plain data without any ``meta``; None for others."""
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import Message

    def strip(data):
        if isinstance(data, dict):
            return {k: strip(v) for k, v in data.items() if k != "meta"}
        if isinstance(data, list):
            return [strip(v) for v in data]
        return data

    if isinstance(value, Message):
        return strip(MessageToDict(value))
    try:
        items = list(value)
    except TypeError:
        return None
    if not all(isinstance(item, Message) for item in items):
        return None
    return [strip(MessageToDict(item)) for item in items]


def _set_aside_unreadable_registry(registry: Path) -> None:
    """Move a registry file that does not parse out of the way, so apply can rebuild it.

    Feast's file registry is rewritten in place; a process killed mid-write leaves it
    truncated.  Everything in it comes from the repository's definitions, which apply
    writes again; only materialization marks are lost, and the next materialization
    starts over at ``end - ttl``.
    """
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
    from google.protobuf.message import DecodeError

    if not registry.is_file():
        return
    try:
        RegistryProto.FromString(registry.read_bytes())
    except DecodeError:
        aside = registry.with_name(f"{registry.name}.unreadable")
        os.replace(registry, aside)
        print(
            f"feast: registry {registry} did not parse (a crash mid-write?); "
            f"moved to {aside} and rebuilt by apply",
            file=sys.stderr,
        )


def materialize_incremental(
    end: dt.datetime, cfg: lakehouse.LakehouseSettings | None = None
) -> dict[str, dt.datetime]:
    """Load the latest feature values up to ``end`` into the online store.

    Feast starts a view's first incremental materialization at *now* minus its TTL, which
    finds nothing in a lake whose days lie in the past (a backfill, the demo). A view that
    was never materialized is therefore first materialized over ``[end - ttl, end]``, the
    values an online read at ``end`` may serve; later calls continue incrementally from
    where the previous one ended.  Returns each view's start.
    """
    store = feature_store(cfg)
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    starts: dict[str, dt.datetime] = {}
    first_time = []
    for view in store.list_feature_views():
        if view.most_recent_end_time is None and view.ttl:
            first_time.append(view.name)
            starts[view.name] = end - view.ttl
        else:
            starts[view.name] = view.most_recent_end_time or end
    for name in first_time:
        store.materialize(start_date=starts[name], end_date=end, feature_views=[name])
    rest = [name for name in starts if name not in first_time]
    if rest:
        store.materialize_incremental(end_date=end, feature_views=rest)
    return starts
