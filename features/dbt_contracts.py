"""The dbt marts' enforced contracts as Feast's schemas: a feature is declared once.

A mart's columns, with their types, are written in its dbt YAML (``contract: enforced``,
which ``dbt build`` checks against the table it writes).  The feature views of
``feature_repo/`` take their fields from there (:func:`feast_fields`), so a column added to a
mart with its contract reaches Feast without a second edit.  A contract type Feast cannot
hold stops ``feast apply`` at once with the column, the mart and the YAML file; a feature
whose type changes under a registered view stops the lake's apply (:func:`type_changes`,
used by :func:`features.feast_repo.apply_changes`): models trained on the old type would
read the new one.

No JVM and no dbt parse: the YAML is read as it is (what dbt's manifest would say of these
keys).  The dbt project is ``DBT_PROJECT_DIR`` when set (as for dbt itself), else the
repository's ``dbt_project/``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"

# dbt-spark's contract types (Spark SQL's names) and the Feast type each one is served as.
_FEAST_TYPES = {
    "bigint": "Int64",
    "long": "Int64",
    "int": "Int32",
    "integer": "Int32",
    "smallint": "Int32",
    "tinyint": "Int32",
    "double": "Float64",
    "float": "Float32",
    "real": "Float32",
    "string": "String",
    "boolean": "Bool",
    "timestamp": "UnixTimestamp",
    "binary": "Bytes",
}


#: The Feast field tag that carries a column's ``meta: feature_role`` (``text``).
ROLE_TAG = "feature_role"


class ContractError(ValueError):
    """A mart's dbt contract cannot declare its Feast features (the message says where)."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a mart's contract."""

    name: str
    data_type: str
    description: str = ""
    #: ``meta: feature_role`` of the column (``text``: a string models read as text).
    role: str | None = None


@dataclasses.dataclass(frozen=True)
class Contract:
    """A model's enforced contract: its columns in order, and the YAML that declares it."""

    model: str
    columns: tuple[Column, ...]
    path: Path


def project_dir() -> Path:
    """The dbt project: ``DBT_PROJECT_DIR``, else the repository's ``dbt_project/``."""
    return Path(os.environ.get("DBT_PROJECT_DIR") or DBT_PROJECT)


def contract(model: str, *, project: Path | None = None) -> Contract:
    """The enforced contract of dbt model ``model``, read from its YAML under ``models/``.

    Raises:
        ContractError: when no YAML declares the model, its contract is not enforced, or a
            column has no ``data_type``.
    """
    project = project or project_dir()
    for path in sorted((project / "models").rglob("*.yml")):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            if entry.get("name") != model:
                continue
            where = path.relative_to(project.parent)
            enforced = ((entry.get("config") or {}).get("contract") or {}).get("enforced")
            if not enforced:
                raise ContractError(
                    f"dbt model {model} has no enforced contract ({where}): "
                    f"add `config: contract: enforced: true` with its columns' "
                    f"data types"
                )
            columns = []
            for column in entry.get("columns") or []:
                if not column.get("data_type"):
                    raise ContractError(
                        f"{model}.{column.get('name')} has no data_type in "
                        f"{where}: an enforced contract types every column"
                    )
                columns.append(
                    Column(
                        column["name"],
                        str(column["data_type"]).strip().lower(),
                        column.get("description") or "",
                        (column.get("meta") or {}).get("feature_role"),
                    )
                )
            return Contract(model, tuple(columns), path)
    raise ContractError(
        f"no YAML under {project / 'models'} declares dbt model {model}: a "
        f"Feast view of it takes its features from the model's contract"
    )


def feast_type_name(data_type: str) -> str | None:
    """The Feast type (by name) a contract type is served as; None when Feast has none."""
    return _FEAST_TYPES.get(data_type.strip().lower())


def feast_fields(table: str, *, leave_out: Iterable[str], project: Path | None = None) -> list:
    """The Feast fields of mart ``table`` (``schema.model``): its contract's columns in order,
    without ``leave_out`` (join keys, timestamps, partition column).

    Raises:
        ContractError: when the contract is missing, or a column's type has no Feast type
            (the message names the column, the mart and the YAML).
    """
    from feast import Field, types

    found = contract(table.split(".")[-1], project=project)
    skip = set(leave_out)
    fields = []
    for column in found.columns:
        if column.name in skip:
            continue
        name = feast_type_name(column.data_type)
        if name is None:
            raise ContractError(
                f"column {column.name} of mart {table} has contract type {column.data_type!r}, "
                f"which Feast cannot serve ({found.path}); give it one of "
                f"{', '.join(sorted(_FEAST_TYPES))}"
            )
        fields.append(
            Field(
                name=column.name,
                dtype=getattr(types, name),
                description=column.description,
                tags={ROLE_TAG: column.role} if column.role else {},
            )
        )
    return fields


def source_fields(source, *, join_keys: Sequence[str]) -> list:
    """:func:`feast_fields` of the mart that ``source`` (a SparkSource) reads: its contract's
    columns other than the join keys and the source's time and partition columns."""
    times = [source.timestamp_field, source.created_timestamp_column, source.date_partition_column]
    return feast_fields(source.table, leave_out=[*join_keys, *[t for t in times if t]])


def type_changes(registered: Iterable, declared: Iterable) -> list[str]:
    """Features whose type differs between registered and declared feature views.

    Args:
        registered: The registry's feature views.
        declared: The repository's feature views about to be applied.

    Returns:
        One line per changed feature: view, column, old and new type, and the mart
        (the view's ``mart`` tag) whose contract declares it.
    """
    before = {view.name: view for view in registered}
    lines = []
    for view in declared:
        old = before.get(view.name)
        if old is None:
            continue
        old_types = {field.name: field.dtype for field in old.features}
        for field in view.features:
            if field.name in old_types and old_types[field.name] != field.dtype:
                mart = view.tags.get("mart", "its mart")
                lines.append(
                    f"column {field.name} of mart {mart} (feature view {view.name}) "
                    f"changed type {old_types[field.name]} -> {field.dtype}"
                )
    return lines
