"""What the command line refuses before anything starts, and the settings that keep the lake's
servers to this machine.  No JVM: every command here must answer before Spark starts (a
session asked for fails the test)."""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import textwrap

import pytest

from features import cli, console, lakehouse, sql_server


@pytest.fixture
def no_spark(tmp_path, monkeypatch):
    """An empty lake under tmp_path, and a SparkSession that must not be asked for."""
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path))

    def forbidden(*args, **kwargs):
        raise AssertionError("the command started Spark before checking its arguments")

    monkeypatch.setattr(lakehouse, "spark_session", forbidden)
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "--from", "2026-01-08", "--to", "2026-01-01"],
        ["daily", "--from", "2026-01-08", "--to", "2026-01-01"],
        ["monitor", "--from", "2026-01-08", "--to", "2026-01-01"],
        ["train", "--from", "2026-01-08", "--to", "2026-01-01"],
    ],
)
def test_a_reversed_range_is_refused(no_spark, capsys, argv) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err == f"features {argv[0]}: --from 2026-01-08 is after --to 2026-01-01; "
        "give the earlier date first\n"
    )


@pytest.mark.parametrize(
    "argv, said",
    [
        (["daily", "--date", "2026-01-08", "--from", "2026-01-01"], "not both"),
        (["ingest", "--from", "2026-01-01"], "give --date, or --from and --to"),
        (["train", "--task", "next_invoice", "--family", "gbt"], "not a regressor"),
        (["train", "--family", "linear"], "not a classifier"),
        (["train", "--task", "next_invoice", "--text-features"], "churn task only"),
    ],
)
def test_impossible_options_are_refused(no_spark, capsys, argv, said) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


def test_an_impossible_date_is_refused_by_the_parser(no_spark, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["score", "--date", "2026-02-30"])
    assert exited.value.code == 2
    assert "not a date (YYYY-MM-DD): '2026-02-30'" in capsys.readouterr().err


def test_scoring_without_a_model_names_the_command_that_makes_one(no_spark, capsys) -> None:
    assert cli.main(["score", "--date", "2026-03-01"]) == 2
    err = capsys.readouterr().err
    assert "no churn model in the lake" in err and "`features train`" in err
    assert cli.main(["monitor", "--date", "2026-03-01"]) == 2


def test_an_unknown_model_version_is_refused(no_spark, capsys) -> None:
    for version in (1, 3):
        (no_spark / "artifacts" / "models" / "churn" / str(version)).mkdir(parents=True)
    assert cli.main(["score", "--date", "2026-03-01", "--version", "99"]) == 2
    err = capsys.readouterr().err
    assert err == "features score: the lake has no churn model version 99; its versions: 1, 3\n"


def test_serving_sql_beyond_loopback_needs_ldap(no_spark, capsys, monkeypatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_THRIFT_LDAP_URL", raising=False)
    assert cli.main(["serve-sql", "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert "InsecureServer: listening on 0.0.0.0 would let anyone" in err
    assert "--ldap-url" in err
    assert cli.main(["serve-sql", "--ldap-url", "ldap://127.0.0.1:389"]) == 1
    assert "--ldap-url and --ldap-base-dn go together" in capsys.readouterr().err


def test_the_thrift_command_is_safe_by_default(tmp_path) -> None:
    cfg = lakehouse.LakehouseSettings(root=tmp_path)
    command = sql_server.thrift_command(cfg, port=10001)
    assert "spark.sql.runSQLOnFiles=false" in command
    assert "hive.server2.thrift.bind.host=127.0.0.1" in command
    assert "hive.server2.authentication=NONE" in command
    with pytest.raises(sql_server.InsecureServer):
        sql_server.thrift_command(cfg, host="0.0.0.0")
    with pytest.raises(sql_server.InsecureServer):
        sql_server.thrift_command(cfg, host="lakehouse.example.com")
    auth = sql_server.LdapAuth(url="ldap://ldap.example.com", base_dn="ou=people,dc=example")
    exposed = sql_server.thrift_command(cfg, host="0.0.0.0", auth=auth)
    assert "hive.server2.authentication=LDAP" in exposed
    assert "hive.server2.authentication.ldap.url=ldap://ldap.example.com" in exposed
    assert "hive.server2.authentication.ldap.baseDN=ou=people,dc=example" in exposed
    assert sql_server.LdapAuth.from_env({}) is None
    with pytest.raises(sql_server.InsecureServer, match="BASE_DN"):
        sql_server.LdapAuth.from_env({"LAKEHOUSE_THRIFT_LDAP_URL": "ldap://x"})


def test_drivers_listen_on_loopback_unless_told_otherwise(tmp_path) -> None:
    def conf(**env):
        return lakehouse.spark_conf(
            lakehouse.LakehouseSettings.from_env({"LAKEHOUSE_ROOT": str(tmp_path), **env})
        )

    for master in ("local[2]", "spark://127.0.0.1:7077", "spark://localhost:7077"):
        found = conf(SPARK_MASTER=master)
        assert found["spark.driver.bindAddress"] == found["spark.driver.host"] == "127.0.0.1"
    assert "spark.driver.bindAddress" not in conf(SPARK_MASTER="spark://10.0.0.5:7077")
    told = conf(SPARK_MASTER="spark://10.0.0.5:7077", LAKEHOUSE_DRIVER_HOST="10.0.0.2")
    assert told["spark.driver.bindAddress"] == "10.0.0.2"


def test_a_held_lake_is_named_with_its_holder(tmp_path) -> None:
    """Derby's lock is a POSIX record lock on metastore_db/dbex.lck; a process holding one
    there stands for a JVM with the metastore open (tests/e2e/test_sql_server.py has a real
    Thrift Server hold it)."""
    cfg = lakehouse.LakehouseSettings(root=tmp_path)
    lakehouse.check_lake_free(cfg, wait_s=0)  # no metastore yet: free
    cfg.metastore_dir.mkdir()
    lock = cfg.metastore_dir / "dbex.lck"
    lock.write_bytes(b"")
    lakehouse.check_lake_free(cfg, wait_s=0)  # a file nobody locks: free
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(lock)!r}, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(lakehouse.LakeInUse) as held:
            lakehouse.check_lake_free(cfg, wait_s=1)
        assert f"lake {tmp_path} is in use by process {holder.pid}" in str(held.value)
        assert "features cluster up" in str(held.value)
    finally:
        holder.kill()
        holder.wait()
    lakehouse.check_lake_free(cfg, wait_s=0)  # its lock went with it
    fd = os.open(lock, os.O_RDWR)  # and this process's own lock never counts against it
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        lakehouse.check_lake_free(cfg, wait_s=0)
    finally:
        os.close(fd)


def test_a_missing_table_names_the_command_that_makes_it() -> None:
    line = (
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `staging`.`int_customer_days_spanned` "
        "cannot be found. Verify the spelling and correctness of the schema and catalog."
    )
    assert console.missing_table_line(line) == (
        "table staging.int_customer_days_spanned does not exist in this lake yet: "
        "`features daily` (its dbt build) makes it"
    )
    assert "features score" in console.missing_table_line(
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `predictions`.`churn_scores` cannot be found."
    )
    assert console.missing_table_line("AnalysisException: something else") is None


def test_every_option_of_every_command_says_what_it_does() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, command in commands.choices.items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert not undocumented
    assert "(default: 10000)" in commands.choices["serve-sql"].format_help()
    assert "75 days" in commands.choices["generate"].format_help()
    assert "features env" in parser.format_help()


def test_env_prints_what_a_shell_needs_for_the_lake(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path))
    monkeypatch.setattr(lakehouse, "spark_session", lambda *a, **k: pytest.fail("Spark"))
    assert cli.main(["env"]) == 0
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("export ")
    )
    assert exports["LAKEHOUSE_ROOT"] == str(tmp_path)
    assert exports["SPARK_CONF_DIR"] == str(tmp_path / "conf")
    assert (tmp_path / "conf" / "spark-defaults.conf").read_text().count(
        f"spark.sql.warehouse.dir {tmp_path / 'warehouse'}"
    ) == 1
    assert exports["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/artifacts/mlflow.db"
    assert (tmp_path / "artifacts" / "feast").is_dir()  # Feast's registry goes there
    from mlflow import MlflowClient

    default = MlflowClient(exports["MLFLOW_TRACKING_URI"]).get_experiment("0")
    assert default.artifact_location.startswith((tmp_path / "artifacts" / "mlruns").as_uri())


def test_mlflow_runs_are_named_for_what_they_are() -> None:
    from models_ml import registry

    assert (
        registry.run_name(
            {
                "name": "churn",
                "version": 3,
                "family": "logistic",
                "holdout_window": {"rows": 9, "end": "2026-03-30T00:00:00"},
            }
        )
        == "churn v3 logistic to 2026-03-30"
    )
    assert registry.run_name({"name": "next_invoice", "family": "linear"}) == "next_invoice linear"


def test_modules_preloaded_beside_the_block_and_a_broken_one_left_to_its_caller(
    tmp_path, monkeypatch
) -> None:
    """``spark_session(preload=...)`` imports the commands' libraries while the JVM launches:
    in a thread beside the block, done when the block ends; a module that fails to import
    raises nothing there (the caller's own import reports it)."""
    import threading

    (tmp_path / "preload_slow.py").write_text("import time\ntime.sleep(0.5)\nLOADED = True\n")
    (tmp_path / "preload_broken.py").write_text("raise ImportError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("preload_slow", "preload_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with lakehouse.importing_meanwhile(["preload_broken", "preload_slow"]):
        beside = [thread.name for thread in threading.enumerate()]
    assert "lakehouse-preload" in beside
    assert sys.modules["preload_slow"].LOADED is True
    assert "preload_broken" not in sys.modules
    with pytest.raises(ImportError, match="broken on purpose"):
        __import__("preload_broken")
