"""Benchmark: online scores per request, warm, against Feast's online read alone.

Question: how long does an application wait for a churn score by customer id
(``features predict``, ``features serve-model --online``), for one customer and for 100 in
one request, once everything is loaded?

The baseline (the floor), measured in the same run and process: Feast's
``get_online_features`` of the churn feature service alone, for the same customers, which
every online path pays.  Paths measured, each warm (a few requests first, not counted):

- ``spark``: :meth:`models_ml.online.OnlineScorer.predict` in this process with the
  Spark runtime (Feast's read, then the champion's Spark pipeline on a frame of the rows);
- ``onnx``: the same with the pipeline exported to ONNX and run by onnxruntime (the default
  when the ``onnx`` extra is installed);
- ``http``: the ONNX scorer through ``serve-model --online``'s HTTP server on loopback (a
  thread of this process), one ``GET /predict`` per request.

It also prints the largest difference between the two runtimes' probabilities over every
customer of the day (ONNX-ML computes in float32).

The lake: ``--root`` of a lake with a champion and a materialized online store (``make demo``
leaves one under ./lakehouse), else a fresh one made with ``features demo --customers
--days`` under a temporary directory.  Peak RSS is of this process and its JVM.

Usage::

    .venv/bin/python bench/bench_online.py --root lakehouse        # the demo's lake
    .venv/bin/python bench/bench_online.py --customers 300 --days 80
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchkit import PeakMemory

REPO = Path(__file__).resolve().parent.parent
FEATURES = str(Path(sys.executable).with_name("features"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="a lake with a champion (default: a new one)")
    parser.add_argument("--customers", type=int, default=300, help="for a new lake")
    parser.add_argument("--days", type=int, default=80, help="for a new lake")
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="timed requests of one customer (a quarter as many of 100)",
    )
    parser.add_argument("--keep", action="store_true", help="keep a new lake afterwards")
    return parser.parse_args(argv)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return at(0.50), at(0.99)


def timed(
    call: Callable[[list[int]], object], batches: list[list[int]], warm: int = 5
) -> list[float]:
    """Seconds per call of ``call`` on each batch, after ``warm`` calls not counted."""
    for batch in batches[:warm]:
        call(batch)
    seconds = []
    for batch in batches:
        started = time.perf_counter()
        call(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    root = args.root.resolve() if args.root else Path(tempfile.mkdtemp(prefix="bench_online_"))
    env = {**os.environ, "LAKEHOUSE_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    print(f"bench: online scores, {os.cpu_count()} cores, lake {root}", flush=True)
    if not args.root:
        started = time.perf_counter()
        proc = subprocess.run(
            [FEATURES, "demo", "--customers", str(args.customers), "--days", str(args.days)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"bench_online: features demo failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        print(f"lake made by features demo in {time.perf_counter() - started:.0f} s", flush=True)
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    sys.path.insert(0, str(REPO))
    from features import console, lakehouse
    from models_ml import lake, online

    with PeakMemory() as memory, console.libraries_to_log():
        spark = lakehouse.spark_session(metastore=False)
        by_spark = online.OnlineScorer.load(spark, runtime="spark")
        scorer = online.OnlineScorer.load(spark, runtime="onnx")
        if scorer.score_date is None:
            raise SystemExit(
                f"bench_online: v{scorer.version} was never batch-scored "
                "(`features score --date D`)"
            )
        scores = online._predictions(spark)
        ids = sorted(
            row[0]
            for row in scores.where(f"score_date = '{scorer.score_date}'")
            .select("customer_id")
            .collect()
        )
        if len(ids) < 100:
            raise SystemExit(f"bench_online: {len(ids)} customers scored; 100 needed")
        rng = random.Random(7)
        ones = [[rng.choice(ids)] for _ in range(args.requests)]
        hundreds = [rng.sample(ids, 100) for _ in range(max(10, args.requests // 4))]
        service = scorer.store.get_feature_service(lake.FEATURE_SERVICE)

        def feast_only(batch: list[int]) -> object:
            return scorer.store.get_online_features(
                features=service, entity_rows=[{"customer_id": c} for c in batch]
            ).to_dict()

        server = online.make_server(scorer, host="127.0.0.1", port=0)
        port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def over_http(batch: list[int]) -> object:
            query = "&".join(f"customer_id={c}" for c in batch)
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/predict?{query}", timeout=60
            ) as answer:
                return json.loads(answer.read())

        exact = {a["customer_id"]: a["churn_probability"] for a in by_spark.predict(ids)}
        exported = {a["customer_id"]: a["churn_probability"] for a in scorer.predict(ids)}
        differ = max(abs(exact[c] - exported[c]) for c in ids if exact[c] is not None)
        results = {}
        for name, call in (
            ("feast (floor)", feast_only),
            ("spark", by_spark.predict),
            ("onnx", scorer.predict),
            ("http (onnx)", over_http),
        ):
            results[(name, 1)] = percentiles(timed(call, ones))
            results[(name, 100)] = percentiles(timed(call, hundreds))
        server.shutdown()
        server.server_close()
        spark.stop()

    print()
    print(f"{'path':<16}{'customers':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 x floor':>13}")
    for (name, size), (p50, p99) in results.items():
        floor = results[("feast (floor)", size)][0]
        print(f"{name:<16}{size:>10}{p50:>9.1f}{p99:>9.1f}{p50 / floor:>13.1f}")
    print(
        f"largest difference between the runtimes' probabilities over {len(ids)} customers: "
        f"{differ:.1e}"
    )
    print(
        f"model v{scorer.version}, deciles from the batch scores of {scorer.score_date}; "
        f"{len(ones)} requests of 1 customer, {len(hundreds)} of 100; peak RSS "
        f"{memory.peak / 2**30:.2f} GiB (JVM {memory.jvm_peak / 2**30:.2f} GiB)"
    )
    print(
        "target (issue: serving): p99 under 100 ms for one customer: "
        f"spark {results[('spark', 1)][1]:.0f} ms, onnx {results[('onnx', 1)][1]:.1f} ms, "
        f"http (onnx) {results[('http (onnx)', 1)][1]:.1f} ms"
    )
    if not (args.keep or args.root):
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
