"""The shared Hive metastore's schema in PostgreSQL, made once before any Spark process uses it.

Spark's built-in Hive client can create the metastore's tables itself
(``datanucleus.schema.autoCreateAll``), but it creates each lazily, on a second connection,
in the middle of the first transaction that needs it; on PostgreSQL the foreign keys it then
adds wait for locks that open transaction holds, and the first ``CREATE TABLE`` hangs.
So the whole schema is made up front by DataNucleus' own SchemaTool from the Hive
metastore's object model (``package.jdo`` in the ``hive-metastore`` jar pyspark ships),
with the naming settings the Hive client uses.
"""

from __future__ import annotations

import subprocess
import tempfile
import zipfile
from pathlib import Path

from features import jars, jdk, lakehouse
from features.cluster import postgres

SCHEMA_TOOL = "org.datanucleus.store.schema.SchemaTool"
# What Hive's ObjectStore sets for DataNucleus (HiveConf defaults), so that SchemaTool names
# tables and columns as the metastore client will look for them.
HIVE_DATANUCLEUS = {
    "datanucleus.identifierFactory": "datanucleus1",
    "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
}


class MetastoreError(RuntimeError):
    """The metastore schema could not be made."""


def has_schema(server: postgres.PostgresServer, database: str) -> bool:
    """Whether ``database`` holds a Hive metastore schema already."""
    found = postgres.psql(
        server,
        "select count(*) from information_schema.tables where table_name = 'DBS'",
        database=database,
    )
    return int(found.strip() or 0) > 0


def _java() -> str:
    found = jdk.choose()
    if found is None:
        raise MetastoreError(f"no JDK found; {jdk.WHERE}")
    return str(found.home / "bin" / "java")


def init_schema(server: postgres.PostgresServer, database: str) -> bool:
    """Create the metastore schema in ``database`` unless it is there; True when created."""
    postgres.ensure_database(server, database)
    if has_schema(server, database):
        return False
    spark_jars = lakehouse.spark_home() / "jars"
    metastore_jar = next(iter(sorted(spark_jars.glob("hive-metastore-*.jar"))), None)
    if metastore_jar is None:
        raise MetastoreError(f"no hive-metastore jar in {spark_jars}")
    driver = jars.ensure_jars((jars.POSTGRES_JDBC,))[0]
    with tempfile.TemporaryDirectory(prefix="metastore-schema-") as tmp:
        work = Path(tmp)
        with zipfile.ZipFile(metastore_jar) as archive:
            (work / "package.jdo").write_bytes(archive.read("package.jdo"))
        settings = {
            "javax.jdo.option.ConnectionURL": server.jdbc_url(database),
            "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "javax.jdo.option.ConnectionUserName": server.user,
            "javax.jdo.option.ConnectionPassword": server.password,
            **HIVE_DATANUCLEUS,
        }
        (work / "datanucleus.properties").write_text(
            "".join(f"{key}={value}\n" for key, value in settings.items())
        )
        proc = subprocess.run(
            [
                _java(),
                "-cp",
                f"{spark_jars}/*:{driver}",
                SCHEMA_TOOL,
                "-create",
                "-api",
                "JDO",
                "-props",
                "datanucleus.properties",
                "package.jdo",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    if proc.returncode != 0 or not has_schema(server, database):
        raise MetastoreError(
            f"DataNucleus SchemaTool could not create the metastore schema in {database} "
            f"(exit {proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}"
        )
    return True
