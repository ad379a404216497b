"""The console and the log files: no JVM, no Spark session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from features import cli, console, lakehouse


@pytest.fixture(autouse=True)
def _process_logging_restored():
    """Each test leaves this process's logging as it found it (later tests run pipelines)."""
    import logging

    handlers = list(logging.getLogger().handlers)
    level = logging.getLogger().level
    configured = dict(console._configured)
    yield
    for handler in logging.getLogger().handlers:
        if handler not in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()
    logging.getLogger().setLevel(level)
    console.LOGGER.handlers = []
    console._configured.clear()
    console._configured.update(configured)


JAVA_ERROR = (
    "An error occurred while calling o123.sql.\n"
    ": org.apache.spark.sql.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view "
    "`bronze`.`nothing` cannot be found.\n"
    "\tat org.apache.spark.sql.catalyst.analysis.package$AnalysisErrorAt.failAnalysis(x.scala:1)\n"
    "\tat org.apache.spark.sql.catalyst.analysis.CheckAnalysis.$anonfun(x.scala:2)\n"
    "\t... 200 more\n"
)


def test_log4j_config_sends_the_jvm_to_a_file_and_quiets_recovered_errors(tmp_path) -> None:
    path = console.write_log4j_config(tmp_path)
    text = path.read_text()
    assert path == tmp_path / "logs" / "log4j2.properties"
    assert f"appender.file.fileName = {tmp_path / 'logs' / 'spark.log'}" in text
    assert "rootLogger.level = warn" in text
    assert "Console" not in text  # no console appender: nothing of the JVM on the terminal
    assert "org.apache.hadoop.hive.metastore.HiveAlterHandler\nlogger.q" in text
    before = path.stat().st_mtime_ns
    console.write_log4j_config(tmp_path)  # unchanged: not rewritten
    assert path.stat().st_mtime_ns == before


def test_spark_conf_points_the_jvm_at_the_log_config_and_loopback(tmp_path) -> None:
    cfg = lakehouse.LakehouseSettings.from_env({"LAKEHOUSE_ROOT": str(tmp_path)})
    conf = lakehouse.spark_conf(cfg)
    assert (
        f"-Dlog4j2.configurationFile=file:{tmp_path / 'logs' / 'log4j2.properties'}"
        in conf["spark.driver.extraJavaOptions"]
    )
    assert conf["spark.driver.bindAddress"] == conf["spark.driver.host"] == "127.0.0.1"
    cluster = lakehouse.spark_conf(
        lakehouse.LakehouseSettings.from_env(
            {"LAKEHOUSE_ROOT": str(tmp_path), "SPARK_MASTER": "spark://10.0.0.5:7077"}
        )
    )
    assert "spark.driver.bindAddress" not in cluster  # executors elsewhere must reach it


def test_a_child_started_inside_jvm_output_to_log_writes_to_the_file(tmp_path, capfd) -> None:
    with console.jvm_output_to_log(tmp_path) as log_file:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; print('from the child'); "
                "print('child error', file=sys.stderr); time.sleep(0.2); "
                "print('later')",
            ]
        )
    print("after the block")
    child.wait()
    out, err = capfd.readouterr()
    assert "from the child" not in out + err and "later" not in out + err
    assert "after the block" in out
    logged = log_file.read_text()
    assert "from the child" in logged and "child error" in logged and "later" in logged


def test_first_line_drops_java_frames_and_python_traceback() -> None:
    error = RuntimeError(JAVA_ERROR)
    line = console.first_line(error)
    assert line.startswith("RuntimeError: An error occurred")
    assert "\tat " not in line and "more" not in line
    assert len(console.first_line(ValueError("x" * 2000))) <= 400
    assert console.first_line(KeyError()) == "KeyError"


def test_failure_message_names_the_command_the_error_and_the_log() -> None:
    message = console.failure_message("sql", ValueError("no such table"), Path("/l/f.log"))
    assert message.splitlines() == [
        "features sql: failed: ValueError: no such table",
        "  full trace: /l/f.log",
    ]


def test_a_failing_command_prints_one_line_and_logs_the_trace(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path))

    def broken_session(*args, **kwargs):
        raise RuntimeError(JAVA_ERROR)

    monkeypatch.setattr(lakehouse, "spark_session", broken_session)
    code = cli.main(["sql", "select * from bronze.nothing"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 2, err  # the failure and the log's path, nothing else
    assert err.startswith("features sql: failed: RuntimeError: An error occurred")
    log = tmp_path / "logs" / "features.log"
    assert f"full trace: {log}" in err
    logged = log.read_text()
    assert "Traceback" in logged and "failAnalysis" in logged and "broken_session" in logged


def test_help_mentions_the_log_files_and_verbose() -> None:
    text = cli.build_parser().format_help()
    assert "--verbose" in text and "features.log" in text


def test_detail_lines_reach_the_console_only_when_verbose(tmp_path, capsys) -> None:
    console.configure(tmp_path, verbose=False)
    console.detail("quiet detail")
    console.configure(tmp_path, verbose=True)
    console.detail("loud detail")
    console.configure(tmp_path, verbose=False)
    out = capsys.readouterr().out
    assert "quiet detail" not in out and "loud detail" in out
    logged = (tmp_path / "logs" / "features.log").read_text()
    assert "quiet detail" in logged and "loud detail" in logged


def test_libraries_print_to_the_log_unless_verbose(tmp_path, capsys) -> None:
    console.configure(tmp_path, verbose=False)
    with console.libraries_to_log():
        print("Created feature view customer_usage")
    out = capsys.readouterr().out
    assert "Created feature view" not in out
    assert "Created feature view" in (tmp_path / "logs" / "features.log").read_text()


@pytest.mark.parametrize(
    "rows, cores, expected", [(3_000, 2, 1), (250_000, 2, 2), (10_000_000, 16, 16), (0, 8, 1)]
)
def test_tuning_partitions_follow_the_data_not_the_shuffle(rows, cores, expected) -> None:
    from models_ml.tuning import tuning_partitions

    assert tuning_partitions(rows, cores) == expected
