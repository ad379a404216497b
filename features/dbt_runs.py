"""dbt invoked in-process on the lake's session: one way to call it and read what failed.

The daily job's ``dbt_build`` step and the tests' dbt runs both go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from features.dbt_contracts import DBT_PROJECT

# dbt-spark sets it to DYNAMIC, on the whole session, before each partition overwrite of
# an incremental model (the feature marts), and leaves it so.
PARTITION_OVERWRITE_MODE = "spark.sql.sources.partitionOverwriteMode"


def invoke(args: Sequence[str], *, project: Path = DBT_PROJECT, callbacks: Sequence = ()):
    """Run ``dbt ARGS`` in this process on the ``session`` target of ``project`` (its
    profiles beside it); return dbt's result (``dbtRunnerResult``).

    The session's partition overwrite mode is put back afterwards: dbt-spark leaves it
    DYNAMIC, which would turn a later ``overwrite`` of a partitioned table in this process
    (outside dbt) into the replacement of only the partitions written.
    """
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    before = active.conf.get(PARTITION_OVERWRITE_MODE, None) if active is not None else None
    try:
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
    finally:
        session = active or SparkSession.getActiveSession()
        if session is not None:
            if before is None:
                session.conf.unset(PARTITION_OVERWRITE_MODE)
            else:
                session.conf.set(PARTITION_OVERWRITE_MODE, before)


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
