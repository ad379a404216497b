"""dbt invoked in-process on the lake's session: one way to call it and read what failed.

The daily job's ``dbt_build`` step and the tests' dbt runs both go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from features.dbt_contracts import DBT_PROJECT


def invoke(args: Sequence[str], *, project: Path = DBT_PROJECT, callbacks: Sequence = ()):
    """Run ``dbt ARGS`` in this process on the ``session`` target of ``project`` (its
    profiles beside it); return dbt's result (``dbtRunnerResult``)."""
    from dbt.cli.main import dbtRunner

    return dbtRunner(callbacks=list(callbacks)).invoke(
        [
            *args,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target",
            "session",
        ]
    )


def failures(result) -> list[str]:
    """What did not succeed in a dbt result: ``node: status message`` per node, or the
    exception that stopped dbt before any node ran."""
    if result.result is None:
        return [str(result.exception)]
    try:
        nodes = list(result.result)
    except TypeError:
        return [str(result.result)]
    return [
        f"{r.node.name}: {r.status} {r.message}"
        for r in nodes
        if str(r.status) not in ("success", "pass")
    ]
