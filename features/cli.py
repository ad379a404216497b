"""The ``features`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from features import console, jdk, lakehouse


def _prepare_lake() -> lakehouse.LakehouseSettings:
    """Everything a fresh lake needs before any tool runs on it, without Spark: its Spark
    settings (``<root>/conf``), Feast's registry folder, MLflow's store (its experiments'
    artifacts under the lake)."""
    from models_ml import registry

    cfg = lakehouse.settings()
    lakehouse.write_lake_conf(cfg)
    (cfg.artifacts_dir / "feast").mkdir(parents=True, exist_ok=True)
    with console.libraries_to_log():
        registry.configure_mlflow(cfg.root)
    return cfg


def _cmd_setup(args: argparse.Namespace) -> int:
    paths = lakehouse.jars.ensure_delta_jars()
    print(f"Delta jars cached: {', '.join(str(p) for p in paths)}")
    # The cluster setup's shared metastore needs PostgreSQL's driver: cached now, offline later.
    driver = lakehouse.jars.ensure_jars((lakehouse.jars.POSTGRES_JDBC,))
    print(f"PostgreSQL JDBC driver cached: {driver[0]}")
    # Before the defaults are written: they map the archive once it is there.
    _record_class_archive()
    print(
        f"Spark defaults written: {lakehouse.write_spark_defaults()} (and spark-env.sh "
        "beside it: shell tools follow LAKEHOUSE_ROOT)"
    )
    cfg = _prepare_lake()
    print(
        f"Lake at {cfg.root}: Spark settings in {lakehouse.lake_conf_dir(cfg)}, Feast's "
        f"registry in {cfg.artifacts_dir / 'feast'}, MLflow's store in "
        f"{cfg.artifacts_dir / 'mlflow.db'}"
    )
    if args.databases:
        spark = lakehouse.spark_session()
        names = lakehouse.ensure_databases(spark)
        print(f"Lakehouse at {cfg.root}: databases {', '.join(names)}")
        from features import ingest

        made = ingest.ensure_all_tables(spark)
        if made:
            print(
                f"Bronze and quarantine tables created empty (filled by their first "
                f"delivery): {', '.join(made)}"
            )
    return 0


def _record_class_archive() -> None:
    """Record the JVM's class archive of this environment once (a start of Spark paid once
    per machine, not per process); a failure only costs the speed-up, and says where to look."""
    from features import jvm_archive

    if not jvm_archive.enabled():
        print(f"JVM class archive off ({jvm_archive.SWITCH}=0)")
        return
    try:
        recorded = jvm_archive.record()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        print(f"JVM class archive not recorded: {error}; Spark starts without it")
        return
    path = jvm_archive.archive_path()
    if recorded is None:
        print(f"JVM class archive in place: {path}")
    else:
        size = recorded[0].stat().st_size / 2**20
        print(
            f"JVM class archive recorded in {recorded[1]:.0f} s: {path} ({size:.0f} MiB; "
            "every Spark start of this environment maps it)"
        )


def environment(cfg: lakehouse.LakehouseSettings) -> dict[str, str]:
    """The variables a shell needs for plain ``dbt``, ``spark-sql``, ``feast`` and ``mlflow``
    to work on the lake of ``cfg``."""
    from features import feast_repo
    from features.daily import DBT_PROJECT as project
    from models_ml import registry

    tracking, artifacts = registry.mlflow_uris(cfg.root)
    java = jdk.choose()
    return {
        **({"JAVA_HOME": str(java.home)} if java else {}),
        "LAKEHOUSE_ROOT": str(cfg.root),
        "SPARK_CONF_DIR": str(lakehouse.lake_conf_dir(cfg)),
        "DBT_PROJECT_DIR": str(project),
        "DBT_PROFILES_DIR": str(project),
        "FEAST_REPO": str(feast_repo.repo_path()),
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_BACKEND_STORE_URI": tracking,  # mlflow ui / mlflow server
        "MLFLOW_DEFAULT_ARTIFACT_ROOT": artifacts,
    }


def _cmd_env(args: argparse.Namespace) -> int:
    import shlex

    cfg = _prepare_lake()
    print(f'# the lake at {cfg.root}: eval "$(features env)" in a shell, then for example')
    print("#   dbt build --target session        (dbt_project/, on this lake's Spark settings)")
    print('#   feast -c "$FEAST_REPO" feature-views list')
    print("#   mlflow ui                         (runs and registered models, on 127.0.0.1:5000)")
    for key, value in environment(cfg).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from features import feast_repo

    lakehouse.spark_session(preload=("feast",))
    with console.libraries_to_log():
        views, changed = feast_repo.apply_changes()
    for line in changed:
        print(f"  {line}")
    print(
        f"feature views {', '.join(views)}: "
        + (f"{len(changed)} change(s) applied" if changed else "nothing changed")
    )
    return 0


def _cmd_materialize(args: argparse.Namespace) -> int:
    from features import days, feast_repo

    end = days.end_of_day(args.date_to)
    lakehouse.spark_session(preload=("feast",))
    with console.libraries_to_log():
        starts = feast_repo.materialize_incremental(end)
    for view, start in sorted(starts.items()):
        print(f"  {view:<18} {start.isoformat()} .. {end.isoformat()}")
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    spark = lakehouse.spark_session()
    frame = spark.sql(args.query)
    frame.show(n=args.limit, truncate=False)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from features import demo

    return demo.run(customers=args.customers, days=args.days, seed=args.seed, reset=not args.keep)


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While a server runs in the foreground: SIGTERM (a service manager) and SIGHUP (a
    terminal's hangup) stop it as Ctrl-C does, by raising ``KeyboardInterrupt`` with the
    signal's name, so that the server's processes go with this one."""
    import signal

    def stop_on(signum: int, _frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop_on) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_serve_sql(args: argparse.Namespace) -> int:
    from features import sql_server

    auth = sql_server.LdapAuth.from_env()
    if args.ldap_url or args.ldap_base_dn:
        if not (args.ldap_url and args.ldap_base_dn):
            raise sql_server.InsecureServer("serve-sql: --ldap-url and --ldap-base-dn go together")
        auth = sql_server.LdapAuth(url=args.ldap_url, base_dn=args.ldap_base_dn)

    # The server's JVM, in a process group of its own, goes with this process instead of
    # holding the lake.
    with _stopped_by_signals():
        process = sql_server.start(host=args.host, port=args.port, auth=auth)
        login = " -n <user> -p <password>" if auth else ""
        who = f"LDAP logins against {auth.url}" if auth else "no login: loopback only"
        print(
            f"Spark Thrift Server on {args.host}:{args.port} over {lakehouse.settings().root}"
            f" ({who})\n"
            f"  beeline -u jdbc:hive2://{args.host}:{args.port}/default{login}\n"
            "  dbt ... --target thrift\n"
            "Ctrl-C (or SIGTERM) stops it.",
            flush=True,
        )
        try:
            code = process.wait()
        except KeyboardInterrupt as stop:
            sql_server.stop(process)
            print(f"serve-sql: stopped ({str(stop) or 'SIGINT'}); the lake is free", flush=True)
            return 0
        raise sql_server.ThriftServerError(
            f"the Thrift Server exited by itself with code {code}; see "
            f"{lakehouse.settings().root / 'thrift-server.log'}"
        )


def _cmd_serve_model(args: argparse.Namespace) -> int:
    from models_ml import churn, registry, serving

    try:
        serving.check_host(args.host)
    except serving.InsecureModelServer as error:
        raise UsageError(str(error)) from None
    if args.online:
        return _serve_online(args)
    if args.runtime is not None:
        raise UsageError(
            "serve-model: --runtime goes with --online (MLflow's server runs the Spark model)"
        )
    root = lakehouse.settings().root
    if registry.champion_version(churn.MODEL_NAME, root=root) is None:
        raise UsageError(
            f"serve-model: no champion of {churn.MODEL_NAME!r} in this lake's "
            "registry yet; `features train` (or `features daily`) makes one"
        )
    tracking, _ = registry.mlflow_uris(root)
    uri = f"models:/{churn.MODEL_NAME}@{registry.DEFAULT_ALIAS}"
    with _stopped_by_signals():
        process = serving.start(
            host=args.host, port=args.port, model_uri=uri, tracking_uri=tracking, root=root
        )
        print(
            f"MLflow model server for {uri} on http://{args.host}:{args.port} (no login: "
            "loopback only)\n"
            f"  curl -s http://{args.host}:{args.port}/invocations -H 'Content-Type: "
            'application/json\' -d \'{"dataframe_split": {"columns": [...], "data": '
            "[[...]]}}'\n"
            "  answers [P(stay), P(churn)] per row; Ctrl-C (or SIGTERM) stops it.",
            flush=True,
        )
        try:
            code = process.wait()
        except KeyboardInterrupt as stop:
            serving.stop(process)
            print(f"serve-model: stopped ({str(stop) or 'SIGINT'})", flush=True)
            return 0
        raise serving.ModelServerError(
            f"the model server exited by itself with code {code}; see "
            f"{root / 'logs' / 'model-server.log'}"
        )


def _online_scorer(runtime: str):  # -> OnlineScorer
    """The online scorer, or a usage error when the lake has no model yet (or the runtime
    asked for cannot run it)."""
    from models_ml import online

    try:
        with console.libraries_to_log():
            scorer = online.OnlineScorer.load(runtime=runtime)
    except (online.NoModel, online.RuntimeUnavailable) as error:
        raise UsageError(f"features: {error}") from None
    if scorer.note:
        console.LOGGER.info("online scores: %s", scorer.note)
    return scorer


def _serve_online(args: argparse.Namespace) -> int:
    from models_ml import churn, online

    runtime = args.runtime or "auto"
    scorer = _online_scorer(runtime)
    server = online.make_server(scorer, host=args.host, port=args.port, runtime=runtime)
    url = f"http://{'[::1]' if args.host == '::1' else args.host}:{args.port}"
    decided = (
        f"risk deciles from the batch scores of {scorer.score_date}"
        if scorer.score_date
        else "no risk deciles: this version has no batch scores yet"
    )
    print(
        f"Online scores of {churn.MODEL_NAME} v{scorer.version} ({scorer.runtime}) from "
        f"Feast's online store on {url} (no login: loopback only; {decided}; a newer "
        f"model or score date is picked up within {online.REFRESH_S:.0f} s)\n"
        f"  curl -s '{url}/predict?customer_id=1&customer_id=2'\n"
        "  Ctrl-C (or SIGTERM) stops it.",
        flush=True,
    )
    with _stopped_by_signals():
        try:
            with console.libraries_to_log():
                server.serve_forever()
        except KeyboardInterrupt as stop:
            print(f"serve-model: stopped ({str(stop) or 'SIGINT'})", flush=True)
            return 0
        finally:
            server.server_close()
    return 0


# What scores online (models_ml.online.RUNTIMES; not imported here: no Spark to parse).
_RUNTIMES = ("auto", "onnx", "spark")


def _cmd_predict(args: argparse.Namespace) -> int:
    scorer = _online_scorer(args.runtime)
    with console.libraries_to_log():
        answers = scorer.predict(args.customer_ids)
    for answer in answers:
        print(json.dumps(answer))
    return 0


def _parse_date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from error


def _parse_change(text: str):
    from features.generate.config import Change

    try:
        return Change.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _cmd_generate(args: argparse.Namespace) -> int:
    from features.generate import DirtRates, GeneratorConfig, generate

    spark = lakehouse.spark_session()
    lakehouse.ensure_databases(spark)
    rate = args.dirt_rate
    dirt = DirtRates() if rate is None else DirtRates.none() if rate == 0 else DirtRates.every(rate)
    config = GeneratorConfig(
        customers=args.customers,
        days=args.days,
        start=args.start,
        seed=args.seed,
        dirt=dirt,
        changes=tuple(args.change),
    )
    if args.days < 75:
        print(
            f"note: {args.days} days: the daily job will ingest, build and serve this lake, "
            f"but {_YOUNG_LAKE}"
        )
    summary = generate(spark, config, log=console.detail)
    for name, count in summary.rows.items():
        print(f"  {name:<14}{count:>14,}")
    if not summary.rows.get("churn"):
        print(
            "note: no customer churned in these days: training waits for the first churn "
            "(the daily job says 'not possible yet' until then)"
        )
    return 0


class UsageError(ValueError):
    """The command's arguments cannot work: said before anything starts."""


def _check_window(start, end, *, command: str) -> None:
    """Refuse a ``--from`` after ``--to``."""
    if start and end and start > end:
        raise UsageError(
            f"features {command}: --from {start} is after --to {end}; give the earlier date first"
        )


def _batch_dates(args: argparse.Namespace, *, command: str) -> list:
    """The batch dates of ``--date``, or of ``--from`` .. ``--to`` inclusive.

    Raises:
        UsageError: neither, both, half a range, or a reversed one.
    """
    import datetime as dt

    if args.date and (args.date_from or args.date_to):
        raise UsageError(f"features {command}: give --date, or --from and --to, not both")
    if args.date:
        return [args.date]
    if not (args.date_from and args.date_to):
        raise UsageError(f"features {command}: give --date, or --from and --to")
    _check_window(args.date_from, args.date_to, command=command)
    span = (args.date_to - args.date_from).days
    return [args.date_from + dt.timedelta(days=i) for i in range(span + 1)]


def _check_saved_version(version: int | None, *, command: str) -> None:
    """Refuse, before Spark starts, a model version the lake does not have (or no model)."""
    from models_ml import churn, model_store

    versions = model_store.saved_versions(churn.MODEL_NAME)
    if not versions:
        raise UsageError(
            f"features {command}: no churn model in the lake at {lakehouse.settings().root} "
            "yet; `features train` (or `features daily`, which trains when due) makes one"
        )
    if version is not None and version not in versions:
        raise UsageError(
            f"features {command}: the lake has no churn model version {version}; "
            f"its versions: {', '.join(map(str, versions))}"
        )


def _cmd_ingest(args: argparse.Namespace) -> int:
    from features.ingest import ingest_batches

    dates = _batch_dates(args, command="ingest")
    spark = lakehouse.spark_session()
    lakehouse.ensure_databases(spark)
    results = ingest_batches(spark, dates, sources=args.source or None, log=console.detail)
    for name, counts in results.items():
        read = sum(c.read for c in counts.values())
        ingested = sum(c.ingested for c in counts.values())
        held = sum(c.quarantined for c in counts.values())
        print(f"  {name:<14} read {read:>12,}  ingested {ingested:>12,}  quarantined {held:>10,}")
    return 0


def _check_torch(family: str | None, *, command: str) -> None:
    """Refuse ``torch_mlp`` before Spark starts when PyTorch is not installed."""
    if family != "torch_mlp":
        return
    from models_ml import torch_mlp

    if not torch_mlp.available():
        raise UsageError(
            f"features {command}: --family torch_mlp needs PyTorch, an optional extra: "
            "pip install -e '.[torch]' (about 2.7 GB to download)"
        )


def _cmd_daily(args: argparse.Namespace) -> int:
    from features.daily import LIBRARIES, DailyOptions, run_daily

    dates = _batch_dates(args, command="daily")
    _check_torch(args.family, command="daily")
    spark = lakehouse.spark_session(preload=LIBRARIES)
    outcome = run_daily(
        spark,
        dates,
        options=DailyOptions(
            retrain=args.retrain,
            force=args.force,
            tuning=args.tuning,
            family=args.family,
            text_features=args.text_features,
            **(
                {"min_realized_auc": args.min_realized_auc}
                if args.min_realized_auc is not None
                else {}
            ),
        ),
        detail=console.detail,
    )
    print(f"daily {max(dates)}: " + "; ".join(f"{k}: {v}" for k, v in outcome.items()))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from models_ml import churn, next_invoice
    from models_ml.config import CLASSIFIERS

    _check_window(args.date_from, args.date_to, command="train")
    window = {"start": args.date_from, "end": args.date_to}
    if args.task == "next_invoice" and args.text_features:
        raise UsageError("features train: --text-features is for the churn task only")
    if args.task == "next_invoice":
        family = args.family or "linear"
        if family not in next_invoice.PARAM_GRIDS:
            takes = ", ".join(sorted(next_invoice.PARAM_GRIDS))
            raise UsageError(
                f"features train: --family {family} is not a regressor; the "
                f"next-invoice task takes {takes}"
            )
    elif args.family and args.family not in CLASSIFIERS:
        raise UsageError(
            f"features train: --family {args.family} is not a classifier; the "
            f"churn task takes {', '.join(CLASSIFIERS)}"
        )
    _check_torch(args.family, command="train")
    spark = lakehouse.spark_session(preload=("feast",))
    run: Any
    if args.task == "next_invoice":
        run = next_invoice.train_next_invoice_model(
            spark, family=family, tuning=args.tuning, log=console.detail, **window
        )
        name = next_invoice.MODEL_NAME
    else:
        overrides = {
            "tuning": args.tuning,
            "text_features": args.text_features,
            **({"family": args.family} if args.family else {}),
        }
        with console.libraries_to_log():
            run = churn.train_churn_model(
                spark, **window, promote=args.promote, log=console.detail, **overrides
            )
        name = churn.MODEL_NAME
        from models_ml import model_store

        role = "champion" if model_store.is_champion_choice(run.saved.metadata) else "challenger"
        print(
            f"model {name} v{run.saved.version} is the {role}: "
            f"{run.saved.metadata['promotion']['reason']}"
        )
    metrics = run.result.metrics
    print(
        f"model {name} v{run.saved.version}: "
        + ", ".join(f"{k}={metrics[k]:.4f}" for k in sorted(metrics))
    )
    entry = f"; registry {run.registered.model_uri}" if run.registered else ""
    print(f"saved {run.saved.path}; report {run.report_path}{entry}")
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    from models_ml import monitoring

    dates = _batch_dates(args, command="monitor")
    _check_saved_version(args.version, command="monitor")
    spark = lakehouse.spark_session(preload=("feast",))
    with console.libraries_to_log():
        checks = monitoring.monitor_days(spark, dates, version=args.version, log=console.detail)
    for day, check in checks.items():
        flagged = ", ".join(check.drifted) or "nothing"
        score = (
            ""
            if check.scores is None
            else f"; scores {'drifted' if check.scores.drifted else 'stable'}"
        )
        print(f"  {day}: {check.rows} features, flagged {flagged}{score}")
    last = checks[max(checks)]
    for row in last.performance:
        auc = f"{row['auc']:.3f}" if row["auc"] is not None else "n/a"
        print(
            f"  realized on {row['score_date']}: AUC {auc}, {row['positives']} of "
            f"{row['rows']} churned"
        )
    if last.report:
        print(f"report: {last.report}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from models_ml import churn

    _check_saved_version(args.version, command="score")
    spark = lakehouse.spark_session(preload=("feast",))
    with console.libraries_to_log():
        rows = churn.score_day(
            spark, args.date, version=args.version, promoted=args.promoted, log=console.detail
        )
    print(f"{churn.PREDICTIONS_TABLE}: {rows:,} customers scored for {args.date}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from features import runlog

    spark = lakehouse.spark_session()
    runs = runlog.read_runs(spark, pipeline=args.pipeline)
    runs.select(
        "pipeline",
        "step",
        "batch_date",
        "status",
        "started_at",
        "finished_at",
        "rows_read",
        "rows_written",
        "rows_quarantined",
        "message",
    ).show(n=args.limit, truncate=60)
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    import shlex

    from features.cluster import stack

    servers = stack.stack_for(workers=args.workers)
    if args.action == "down":
        stack.down(servers)
        return 0
    env = stack.up(servers) if args.action == "up" else stack.environment(servers)
    print("# point the lake's processes at the cluster setup:")
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


_ENVIRONMENT = """\
environment:
  LAKEHOUSE_ROOT      the lake: warehouse, metastore, landing files, artifacts (./lakehouse)
  SPARK_MASTER        Spark's master (local[*]); the cluster setup's: features cluster env
  LAKEHOUSE_DRIVER_MEMORY, LAKEHOUSE_SHUFFLE_PARTITIONS, LAKEHOUSE_METASTORE_URL,
  LAKEHOUSE_DRIVER_HOST, LAKEHOUSE_SPARK_UI, LAKEHOUSE_DBT_THREADS: see README, Configuration
  plain dbt, spark-sql, feast and mlflow on this lake: eval "$(features env)"

Details, library warnings and the full trace of a failure go to
<LAKEHOUSE_ROOT>/logs/features.log; the JVM's log to logs/spark.log.
"""

_YOUNG_LAKE = (
    "training needs 75 days of data (a label snapshot needs 28 days of history "
    "before it and a 30-day horizon after it, and tuning needs several snapshots) "
    "and at least one churned customer"
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless there is none to show or it says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action) or ""


def _dates(command: argparse.ArgumentParser, what: str, note: str = "") -> None:
    command.add_argument("--date", type=_parse_date, help=f"the one batch date to {what}")
    command.add_argument(
        "--from",
        dest="date_from",
        type=_parse_date,
        metavar="DATE",
        help=f"first batch date to {what} (with --to){note}",
    )
    command.add_argument(
        "--to",
        dest="date_to",
        type=_parse_date,
        metavar="DATE",
        help="last batch date, inclusive (with --from)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``features`` command."""
    formatter = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="features",
        description=__doc__,
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the steps' detail lines and dbt's per-node lines",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=text, description=text, formatter_class=formatter, **kwargs
        )

    setup = command(
        "setup",
        "cache Delta's jars, write Spark's settings (shell tools then follow "
        "LAKEHOUSE_ROOT), make the lake's folders, MLflow store, databases and "
        "empty bronze tables",
    )
    setup.add_argument(
        "--no-databases",
        dest="databases",
        action="store_false",
        help="skip creating the databases (no Spark started)",
    )
    setup.set_defaults(func=_cmd_setup)

    env = command(
        "env",
        "print the exports that make plain dbt, spark-sql, feast and mlflow "
        'work on this lake (eval "$(features env)")',
    )
    env.set_defaults(func=_cmd_env)

    sql = command("sql", "run one SQL statement over the lake and print the result")
    sql.add_argument("query", help="a Spark SQL statement")
    sql.add_argument("--limit", type=int, default=50, help="rows to print at most")
    sql.set_defaults(func=_cmd_sql)

    serve = command(
        "serve-sql",
        "start a Spark Thrift Server over the lake (beeline, JDBC, "
        "dbt --target thrift); SIGTERM or Ctrl-C stops it",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; any other than loopback needs LDAP",
    )
    serve.add_argument("--port", type=int, default=10000, help="port to listen on")
    serve.add_argument(
        "--ldap-url",
        metavar="URL",
        help="clients log in against this LDAP directory, ldap://host:port "
        "(or $LAKEHOUSE_THRIFT_LDAP_URL; none: no login, loopback only)",
    )
    serve.add_argument(
        "--ldap-base-dn",
        metavar="DN",
        help="where the users are: user U binds as uid=U,DN (or $LAKEHOUSE_THRIFT_LDAP_BASE_DN)",
    )
    serve.set_defaults(func=_cmd_serve_sql)

    model = command(
        "serve-model",
        "serve the champion churn model over MLflow's model "
        "server on loopback (POST /invocations); SIGTERM or Ctrl-C "
        "stops it",
    )
    model.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on: loopback only (the server has no logins)",
    )
    model.add_argument("--port", type=int, default=5001, help="port to listen on")
    model.add_argument(
        "--online",
        action="store_true",
        help="serve online scores instead: GET /predict?customer_id=N (the "
        "customers' latest features from Feast's online store, scored "
        "by the lake's serving version; as `features predict`)",
    )
    model.set_defaults(func=_cmd_serve_model)
    runtime_help = (
        "what scores online: onnx (the pipeline in onnxruntime, float32, under a "
        "millisecond; the onnx extra), spark (exact, ~250 ms), auto: onnx when "
        "installed (default: auto)"
    )
    model.add_argument("--runtime", choices=_RUNTIMES, help="with --online: " + runtime_help)

    predict = command(
        "predict",
        "score customers on their latest features in Feast's online "
        "store with the serving churn model; one JSON object per "
        "customer and line",
    )
    predict.add_argument(
        "--customer-id",
        dest="customer_ids",
        type=int,
        action="append",
        required=True,
        metavar="N",
        help="a customer to score; repeatable",
    )
    predict.add_argument("--runtime", choices=_RUNTIMES, default="auto", help=runtime_help)
    predict.set_defaults(func=_cmd_predict)

    demo = command(
        "demo",
        "the main job end to end on a small embedded lake: generate, "
        "backfill with training, then one more day",
    )
    demo.add_argument("--customers", type=int, default=1000, help="synthetic customers")
    demo.add_argument(
        "--days", type=int, default=90, help=f"days of history, at least 75 ({_YOUNG_LAKE})"
    )
    demo.add_argument("--seed", type=int, default=7, help="the generator's seed")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the existing lake instead of starting from an empty one",
    )
    demo.set_defaults(func=_cmd_demo)

    gen = command(
        "generate",
        "write synthetic landing batches for every day (and the "
        "generator's truth to ops.generator_truth)",
    )
    gen.add_argument("--customers", type=int, default=1000, help="synthetic customers")
    gen.add_argument("--days", type=int, default=60, help=f"days of batches; {_YOUNG_LAKE}")
    gen.add_argument(
        "--start",
        type=_parse_date,
        default=_parse_date("2026-01-01"),
        help="first day (YYYY-MM-DD)",
    )
    gen.add_argument("--seed", type=int, default=7, help="the generator's seed")
    gen.add_argument(
        "--dirt-rate",
        type=float,
        default=None,
        help="share of records of each kind of dirt, and of folders with file-level "
        "dirt (0 for clean data); by default the generator's own rates "
        "(features/generate/config.py: DirtRates)",
    )
    gen.add_argument(
        "--change",
        type=_parse_change,
        action="append",
        default=[],
        metavar="kind=K,day=N,target=T,factor=F",
        help="inject a change from day index N on, recorded in "
        "ops.generator_truth: kind=data_drop (target: a region, or all) "
        "or kind=price_rise (target: a plan id); repeatable",
    )
    gen.set_defaults(func=_cmd_generate)

    ingest = command("ingest", "ingest landing batches into bronze and quarantine")
    _dates(ingest, "ingest")
    ingest.add_argument(
        "--source", action="append", help="only this source (repeatable; default: every source)"
    )
    ingest.set_defaults(func=_cmd_ingest)

    daily = command(
        "daily",
        "the daily job: ingest, dbt build, Feast, retrain when due, "
        "score, monitor; a rerun resumes where a failed one stopped",
    )
    _dates(daily, "run", note="; a range is a backfill: every batch ingested, the last day scored")
    daily.add_argument(
        "--retrain",
        choices=("auto", "always", "never"),
        default="auto",
        help="auto: when the model is old, performs worse, or leaned-on features drift",
    )
    daily.add_argument("--force", action="store_true", help="rerun steps that succeeded")
    daily.add_argument(
        "--tuning",
        choices=("cv", "tvs"),
        help="training's tuning when it retrains (default: cross-validation)",
    )
    daily.add_argument(
        "--family",
        choices=("logistic", "gbt", "torch_mlp"),
        help="the churn model's family when it retrains (default: logistic; torch_mlp "
        "needs the torch extra)",
    )
    daily.add_argument(
        "--text-features",
        action="store_true",
        help="when it retrains, also read the support chats' text (recent_chat_text) with "
        "the pandas-UDF text stage",
    )
    daily.add_argument(
        "--min-realized-auc",
        type=float,
        metavar="AUC",
        help="retrain when the realized ROC AUC of the latest matured score "
        "date falls below this (default: 0.6)",
    )
    daily.set_defaults(func=_cmd_daily)

    train = command("train", "train a model through Feast and register it (MLflow)")
    train.add_argument(
        "--task",
        choices=("churn", "next_invoice"),
        default="churn",
        help="churn classification, or the next invoice's amount (regression)",
    )
    train.add_argument(
        "--from",
        dest="date_from",
        type=_parse_date,
        metavar="DATE",
        help="first label snapshot date of the training window (default: the "
        "first with a whole 90-day history)",
    )
    train.add_argument(
        "--to",
        dest="date_to",
        type=_parse_date,
        metavar="DATE",
        help="last label snapshot date of the training window (default: the last labelled one)",
    )
    train.add_argument(
        "--family",
        choices=("logistic", "gbt", "torch_mlp", "linear", "gbt_regressor"),
        help="model family (default: logistic for churn, linear for next_invoice; "
        "torch_mlp: a PyTorch network trained by TorchDistributor, the torch extra)",
    )
    train.add_argument(
        "--text-features",
        action="store_true",
        help="churn: also read the support chats' text (recent_chat_text) with the "
        "pandas-UDF text stage (models_ml.text)",
    )
    train.add_argument(
        "--promote",
        action="store_true",
        help="make the new churn model the champion without comparing it "
        "with the current one (by default it must beat it by 0.005 AUC "
        "on the held-out rows neither was trained on)",
    )
    train.add_argument(
        "--tuning",
        choices=("cv", "tvs"),
        default="cv",
        help="cv: expanding windows in time (TimeSeriesCrossValidator); tvs: one forward split",
    )
    train.set_defaults(func=_cmd_train)

    score = command("score", "score every active customer of a date into predictions.churn_scores")
    score.add_argument("--date", type=_parse_date, required=True, help="the day to score")
    which = score.add_mutually_exclusive_group()
    which.add_argument(
        "--version", type=int, help="saved model version (default: the champion's, else the newest)"
    )
    which.add_argument(
        "--promoted", action="store_true", help="the registry's promoted (champion) version"
    )
    score.set_defaults(func=_cmd_score)

    apply = command(
        "apply",
        "register feature_repo/ in Feast's registry (feast apply), saying "
        "what changed, or that nothing did",
    )
    apply.set_defaults(func=_cmd_apply)

    materialize = command(
        "materialize",
        "load the latest feature values up to a day into Feast's online store "
        "(a view never materialized starts at that day minus its TTL, where "
        "plain `feast materialize-incremental` starts at today minus it)",
    )
    materialize.add_argument(
        "--to",
        dest="date_to",
        type=_parse_date,
        required=True,
        metavar="DATE",
        help="the last day whose values to load",
    )
    materialize.set_defaults(func=_cmd_materialize)

    monitor = command(
        "monitor",
        "feature and score drift of days against the champion's "
        "baselines, realized performance, and the HTML report",
    )
    _dates(monitor, "monitor")
    monitor.add_argument(
        "--version", type=int, help="saved model version (default: the champion's, else the newest)"
    )
    monitor.set_defaults(func=_cmd_monitor)

    status = command("status", "the last runs from ops.pipeline_runs")
    status.add_argument("--pipeline", help="only this pipeline (daily, ingest ...)")
    status.add_argument("--limit", type=int, default=30, help="rows to print at most")
    status.set_defaults(func=_cmd_status)

    cluster = command(
        "cluster", "start/stop a local Spark standalone cluster, PostgreSQL and Redis"
    )
    cluster.add_argument(
        "action",
        choices=("up", "down", "env"),
        help="up: start (and print the environment); down: stop; env: print the environment only",
    )
    cluster.add_argument("--workers", type=int, default=2, help="Spark workers")
    cluster.set_defaults(func=_cmd_cluster)
    return parser


# A date still waiting for its files: try again later (sysexits' EX_TEMPFAIL), which a
# scheduler can tell from a failure.
WAITING_EXIT = 75


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``features`` command line."""
    from pyspark import SparkContext

    args = build_parser().parse_args(argv)
    already = SparkContext._active_spark_context  # a caller's own session stays up
    had_jvm = SparkContext._gateway is not None
    root = lakehouse.settings().root
    log_path = None
    try:
        log_path = console.configure(root, verbose=args.verbose)
    except OSError as error:  # an unwritable root: the command says so itself
        print(f"features: cannot write logs under {root}: {error}", file=sys.stderr)
    try:
        # One JDK for every JVM this command starts (the session's, servers', daemons').
        jdk.use()
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"features {args.command}: interrupted", file=sys.stderr)
        return 130
    except UsageError as error:  # nothing started: the message is the whole story
        console.LOGGER.info("features %s refused: %s", args.command, error)
        print(error, file=sys.stderr)
        return 2
    except Exception as error:  # one line for a person, the whole trace in the log
        if type(error).__name__ == "BatchWaiting":  # not a failure: files yet to land
            console.LOGGER.info("features %s waits: %s", args.command, error)
            print(f"features {args.command}: {error}", file=sys.stderr)
            return WAITING_EXIT
        console.LOGGER.exception("features %s failed", args.command)
        print(console.failure_message(args.command, error, log_path), file=sys.stderr)
        return 1
    finally:
        if SparkContext._active_spark_context is not already:
            _stop_spark(stop_jvm=not had_jvm)


def _stop_spark(*, stop_jvm: bool, timeout_s: float = 60) -> None:
    """Stop the SparkSession this command started and wait for its JVM to exit.

    The JVM no longer shares the console's streams (it logs to its file), so without this
    the command would return while its JVM still shuts down, holding the embedded
    metastore that the next command needs.
    """
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:
        return
    process = getattr(context._gateway, "proc", None)
    try:
        context.stop()
    except Exception:  # noqa: BLE001 - the command's own outcome is what matters now
        console.LOGGER.exception("stopping Spark failed")
    if stop_jvm and process is not None:
        try:
            process.stdin.close()  # the gateway exits when its parent's pipe closes
            process.wait(timeout=timeout_s)
        except Exception:  # noqa: BLE001
            console.LOGGER.exception("waiting for Spark's JVM failed")
        # A later session in this process starts a JVM of its own.
        SparkContext._gateway = None
        SparkContext._jvm = None


if __name__ == "__main__":
    sys.exit(main())
