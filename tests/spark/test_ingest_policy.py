"""The ingestion policy on feeds that misbehave, one class of dirt per test.

Every test writes its own small landing files by hand for batch dates after the tiny
lake's window (the customers they name are the tiny lake's, already in bronze) and checks
what bronze, quarantine, ``quarantine.landing_files`` and the run log say; the rows of
those dates are removed afterwards, so the tests after these see the tiny lake as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pyspark.sql.functions as F
import pytest

from features.ingest import BatchCounts, SchemaMismatch, ingest_batches, landing_changes
from features.lakehouse import settings
from features.schemas import QUARANTINED_FILES_TABLE, SOURCES
from tests.spark.telco_data import TINY, tiny_lake

pytestmark = pytest.mark.spark

FIRST = TINY.start + dt.timedelta(days=TINY.days + 30)
DATES = [FIRST + dt.timedelta(days=i) for i in range(10)]
USAGE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.int64()),
        ("event_at", pa.timestamp("us", tz="UTC")),
        ("event_type", pa.string()),
        ("duration_s", pa.int32()),
        ("bytes", pa.int64()),
        ("is_dropped", pa.bool_()),
        ("is_roaming", pa.bool_()),
        ("cell_id", pa.string()),
    ]
)


@pytest.fixture(scope="module")
def customers(spark):
    """Two customer ids bronze knows (the tiny lake's)."""
    tiny_lake(spark)
    if not spark.catalog.tableExists("bronze.customers"):
        ingest_batches(spark, TINY.dates, sources=["customers"])
    ids = [
        row[0]
        for row in spark.table("bronze.customers")
        .select("customer_id")
        .where("customer_id is not null")
        .distinct()
        .orderBy("customer_id")
        .limit(2)
        .collect()
    ]
    yield ids
    for source in SOURCES.values():
        for database in ("bronze", "quarantine"):
            table = f"{database}.{source.table}"
            if spark.catalog.tableExists(table):
                spark.sql(f"delete from {table} where _batch_date >= '{FIRST.isoformat()}'")
    if spark.catalog.tableExists(QUARANTINED_FILES_TABLE):
        spark.sql(
            f"delete from {QUARANTINED_FILES_TABLE} where _batch_date >= '{FIRST.isoformat()}'"
        )
    for source in SOURCES.values():
        for date in DATES:
            shutil.rmtree(_folder(source.name, date), ignore_errors=True)


def _folder(source: str, day: dt.date):
    return settings().landing_dir / source / day.isoformat()


def _usage_rows(customer: int, day: dt.date, n: int, prefix: str) -> list[dict]:
    at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return [
        {
            "event_id": f"{prefix}-{i}",
            "customer_id": customer,
            "event_at": at,
            "event_type": "call",
            "duration_s": 60,
            "bytes": 0,
            "is_dropped": False,
            "is_roaming": False,
            "cell_id": "cell-0001",
        }
        for i in range(n)
    ]


def _write_usage(day: dt.date, name: str, rows: list[dict]) -> None:
    folder = _folder("usage", day)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, USAGE_SCHEMA), folder / name)


def _write_text(source: str, day: dt.date, name: str, data: bytes | str) -> None:
    folder = _folder(source, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _reasons(spark, table: str, day: dt.date) -> dict[str, int]:
    rows = (
        spark.table(f"quarantine.{table}")
        .where(F.col("_batch_date") == day)
        .groupBy("reason")
        .count()
        .collect()
    )
    return {row["reason"]: row["count"] for row in rows}


def _runs(spark, day: dt.date):
    return (
        spark.table("ops.pipeline_runs")
        .where(F.col("batch_date") == day)
        .orderBy(F.col("finished_at").desc())
        .collect()
    )


def test_unreadable_and_stray_files_do_not_stop_the_batch(spark, customers) -> None:
    """A truncated Parquet file is quarantined whole (recorded with its size, kept where it
    landed), a JSON file of one cut-short line has that line quarantined, a README is
    ignored, and the rest of the batch, a good payments file beside them included, is
    ingested; a rerun changes nothing."""
    day = DATES[0]
    good = _usage_rows(customers[0], day, 3, "good")
    _write_usage(day, "part-00000.parquet", good)
    _write_usage(day, "whole.parquet", _usage_rows(customers[1], day, 50, "lost"))
    whole = (_folder("usage", day) / "whole.parquet").read_bytes()
    (_folder("usage", day) / "part-00001.parquet").write_bytes(whole[: len(whole) // 2])
    (_folder("usage", day) / "whole.parquet").unlink()
    _write_text("usage", day, "README.txt", "usage extract, see the wiki\n")
    _write_text(
        "payments",
        day,
        "part-00000.csv",
        "payment_id,invoice_id,customer_id,amount,status,paid_at\n"
        f"91,92,{customers[0]},25.0,on_time,{day} 08:00:00\n",
    )
    chat = json.dumps(
        {
            "chat_id": "g1",
            "customer_id": customers[0],
            "chat_at": f"{day}T10:00:00Z",
            "channel": "app",
            "summary": "Asked about roaming",
        }
    )
    _write_text("chats", day, "part-00000.jsonl", chat + "\n")
    archive = gzip.compress(((chat.replace("g1", "g2") + "\n") * 200).encode())
    _write_text("chats", day, "part-00001.jsonl.gz", archive[: len(archive) // 2])
    # A one-record file cut short (a small day's truncated re-send): its line is dirt, not
    # a file without columns.
    _write_text("chats", day, "part-00002.jsonl", chat.replace("g1", "g3")[:30] + "\n")
    for attempt in range(2):
        lines: list[str] = []
        results = ingest_batches(
            spark, [day], sources=["usage", "payments", "chats"], log=lines.append
        )
        assert results["usage"][day] == BatchCounts(read=3, ingested=3, quarantined=0)
        assert results["payments"][day] == BatchCounts(read=1, ingested=1, quarantined=0)
        assert results["chats"][day] == BatchCounts(read=2, ingested=1, quarantined=1)
        assert _reasons(spark, "support_chats", day) == {"malformed_record": 1}
        name = f"landing/usage/{day.isoformat()}/part-00001.parquet"
        archive_name = f"landing/chats/{day.isoformat()}/part-00001.jsonl.gz"
        assert sorted(results.quarantined_files) == sorted([name, archive_name])
        assert results.ignored == [f"landing/usage/{day.isoformat()}/README.txt"]
        files = (
            spark.table(QUARANTINED_FILES_TABLE)
            .where(F.col("_batch_date") == day)
            .orderBy("source")
            .collect()
        )
        assert [(r["source"], r["source_file"], r["size"]) for r in files] == [
            ("chats", archive_name, len(archive) // 2),
            ("usage", name, len(whole) // 2),
        ], attempt
        assert files[0]["reason"].startswith("not a readable JSON lines file: ")
        assert files[1]["reason"].startswith("not a readable Parquet file: ")
        assert any(line.startswith(f"ingest: {name} quarantined whole: ") for line in lines)
        assert (settings().root / name).exists()  # kept where it landed
    run = next(r for r in _runs(spark, day) if r["step"] == "bronze.usage_events")
    assert run["status"] == "succeeded" and "1 quarantined whole: " + name in run["message"]
    assert spark.table("bronze.usage_events").where(F.col("_batch_date") == day).count() == 3


def test_a_file_that_fails_when_read_is_quarantined_whole(spark, customers) -> None:
    """A Parquet file whose footer is fine but whose pages are not fails only when read:
    found by reading each file alone, quarantined whole, the others ingested."""
    day = DATES[1]
    _write_usage(day, "part-00000.parquet", _usage_rows(customers[0], day, 4, "fine"))
    rows = [
        dict(row, cell_id=f"cell-{i:06d}" * 20)
        for i, row in enumerate(_usage_rows(customers[1], day, 2000, "broken"))
    ]
    _write_usage(day, "part-00001.parquet", rows)
    path = _folder("usage", day) / "part-00001.parquet"
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(8, len(data) - footer - 8, 7):
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    results = ingest_batches(spark, [day], sources=["usage"])
    assert results["usage"][day] == BatchCounts(read=4, ingested=4, quarantined=0)
    assert list(results.quarantined_files) == [
        f"landing/usage/{day.isoformat()}/part-00001.parquet"
    ]


def test_row_level_dirt_goes_to_quarantine_with_its_reason(spark, customers) -> None:
    """Non-finite and out-of-range numbers, decimals in integer columns, a value outside the
    allowed ones, events dated 1900 or 2099, text in a JSON number, invalid UTF-8 (in JSON
    text and in a Parquet string): each row
    to quarantine with its reason and raw record, the rest of its file ingested."""
    day = DATES[2]
    cid = customers[0]
    at = f"{day} 08:00:00"
    payments = [
        "payment_id,invoice_id,customer_id,amount,status,paid_at",
        f"1,11,{cid},25.0,on_time,{at}",
        f"2,12,{cid},NaN,on_time,{at}",
        f"3,13,{cid},Infinity,late,{at}",
        f"4,14,{cid},1e400,late,{at}",
        f"5,15,12.5,25.0,on_time,{at}",
        f"6,7400000007.9,{cid},25.0,on_time,{at}",
        f"7,17,{cid},25.0,refunded,{at}",
        f"8,18,{cid},25.0,failed,1900-01-01 00:00:00",
        f"9,19,{cid},25.0,failed,2099-01-01 00:00:00",
    ]
    _write_text("payments", day, "part-00000.csv", "\n".join(payments) + "\n")
    usage = _usage_rows(cid, day, 3, "u")
    usage[1]["duration_s"] = 2**31 - 1
    table = pa.Table.from_pylist(usage, USAGE_SCHEMA)
    cells = pa.array([b"cell-0001", b"cell-0001", b"cell-\xff01"], pa.binary())
    # Parquet's string type promises UTF-8; writers need not check it (viewed, not cast).
    table = table.set_column(
        table.schema.get_field_index("cell_id"), "cell_id", cells.view(pa.string())
    )
    _folder("usage", day).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, _folder("usage", day) / "part-00000.parquet")
    chat = {
        "chat_id": "c1",
        "customer_id": cid,
        "chat_at": f"{day}T10:00:00Z",
        "channel": "app",
        "summary": "Customer asks about roaming, done",
        "agent": {"agent_id": "a001", "team": "care", "tenure_months": 5},
    }
    lines = [
        json.dumps(chat).encode(),
        json.dumps(dict(chat, chat_id="c2", customer_id="abc")).encode(),
        json.dumps(dict(chat, chat_id="c3", customer_id=12.5)).encode(),
        json.dumps(dict(chat, chat_id="c4", summary="caf\u00e9"), ensure_ascii=False)
        .encode()
        .replace(b"caf\xc3\xa9", b"caf\xe9"),
        json.dumps(dict(chat, chat_id="c5", chat_at="1900-01-01T00:00:00Z")).encode(),
        json.dumps(dict(chat, chat_id="c6", agent="n/a")).encode(),
    ]  # not an object
    _write_text("chats", day, "part-00000.jsonl", b"\n".join(lines) + b"\n")
    results = ingest_batches(spark, [day], sources=["payments", "usage", "chats"])
    assert _reasons(spark, "payments", day) == {
        "non_finite: amount": 3,
        "wrong_type: customer_id": 1,
        "wrong_type: invoice_id": 1,
        "not_allowed: status": 1,
        "out_of_range: paid_at": 2,
    }
    assert results["payments"][day] == BatchCounts(read=9, ingested=1, quarantined=8)
    assert _reasons(spark, "usage_events", day) == {
        "out_of_range: duration_s": 1,
        "invalid_encoding": 1,
    }
    assert _reasons(spark, "support_chats", day) == {
        "wrong_type: customer_id": 2,
        "invalid_encoding": 1,
        "out_of_range: chat_at": 1,
        "malformed_record": 1,
    }
    assert results["chats"][day] == BatchCounts(read=6, ingested=1, quarantined=5)
    raw = {
        row["reason"]: row["raw_record"]
        for row in spark.table("quarantine.payments").where(F.col("_batch_date") == day).collect()
    }
    assert raw["wrong_type: invoice_id"] == payments[6]  # the record as sent
    bronze = spark.table("bronze.payments").where(F.col("_batch_date") == day).collect()
    assert [(r["payment_id"], r["invoice_id"], r["amount"]) for r in bronze] == [(1, 11, 25.0)]


def test_a_batch_sent_again_clean_empties_its_quarantine(spark, customers) -> None:
    """A batch landed again replaces what its earlier ingestion quarantined, also when the
    new files quarantine nothing (ingestion skips the quarantine write only where the table
    holds no row of the batch); a batch with nothing to quarantine, now or before, makes no
    commit to the quarantine table."""
    day, other = DATES[8], DATES[9]
    rows = _usage_rows(customers[0], day, 3, "again")
    rows[1]["duration_s"] = 2**31 - 1
    _write_usage(day, "part-00000.parquet", rows)
    ingest_batches(spark, [day], sources=["usage"])
    assert _reasons(spark, "usage_events", day) == {"out_of_range: duration_s": 1}
    _write_usage(day, "part-00000.parquet", _usage_rows(customers[0], day, 3, "again"))
    results = ingest_batches(spark, [day], sources=["usage"])
    assert results["usage"][day] == BatchCounts(read=3, ingested=3, quarantined=0)
    assert _reasons(spark, "usage_events", day) == {}
    history = "describe history quarantine.usage_events limit 1"
    before = spark.sql(history).first()["version"]
    _write_usage(other, "part-00000.parquet", _usage_rows(customers[1], other, 2, "clean"))
    results = ingest_batches(spark, [other], sources=["usage"])
    assert results["usage"][other] == BatchCounts(read=2, ingested=2, quarantined=0)
    assert spark.sql(history).first()["version"] == before


def test_a_quoted_newline_is_one_record(spark, customers) -> None:
    """RFC 4180: a quoted field may hold a line break; the record is read whole, and the
    counts agree with an independent count of the file's records."""
    day = DATES[3]
    text = (
        "customer_id,churned_at,reason\n"
        f'{customers[0]},{day} 09:00:00,"too expensive,\nand the app is slow"\n'
        f'{customers[1]},{day} 10:00:00,the 5" screen broke\n'  # a stray quote is text
        f"{customers[1]},{day} 11:00:00,moved abroad\n"
    )
    _write_text("churn", day, "part-00000.csv", text)
    records = len(list(csv.reader(io.StringIO(text)))) - 1
    results = ingest_batches(spark, [day], sources=["churn"])
    assert results["churn"][day] == BatchCounts(read=records, ingested=records, quarantined=0)
    reasons = [
        row["reason"]
        for row in spark.table("bronze.churn_events").where(F.col("_batch_date") == day).collect()
    ]
    assert sorted(reasons) == sorted(
        ["too expensive,\nand the app is slow", 'the 5" screen broke', "moved abroad"]
    )


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("customer_id,churned_at,reason,_batch_date", "_batch_date"),
        ("customer_id,churned_at,reason,Reason", "Reason"),
    ],
)
def test_a_bad_column_stops_the_batch_before_any_write(spark, customers, header, column) -> None:
    """Validation runs over every source before any write: a good payments file validated
    before the bad churn file is not written either."""
    day = DATES[4]
    _write_text(
        "payments",
        day,
        "part-00000.csv",
        "payment_id,invoice_id,customer_id,amount,status,paid_at\n"
        f"41,42,{customers[0]},25.0,on_time,{day} 08:00:00\n",
    )
    fields = {
        "customer_id": str(customers[0]),
        "churned_at": f"{day} 01:00:00",
        "reason": "price",
        "Reason": "price",
        "_batch_date": str(day),
    }
    _write_text(
        "churn",
        day,
        "part-00000.csv",
        header + "\n" + ",".join(fields[name] for name in header.split(",")) + "\n",
    )
    try:
        with pytest.raises(SchemaMismatch) as error:
            ingest_batches(spark, [day], sources=["payments", "churn"])
        message = str(error.value)
        assert f"landing/churn/{day.isoformat()}/part-00000.csv" in message
        assert f"'{column}'" in message
        for table in ("bronze.payments", "bronze.churn_events"):
            assert spark.table(table).where(F.col("_batch_date") == day).count() == 0, table
        run = _runs(spark, day)[0]
        assert (run["step"], run["status"]) == ("validate", "failed")
        assert f"'{column}'" in run["message"]
    finally:
        shutil.rmtree(_folder("churn", day))
        shutil.rmtree(_folder("payments", day))


def test_json_columns_that_differ_only_in_case_across_files_stop_the_batch(
    spark, customers
) -> None:
    day = DATES[4]
    chat = {
        "chat_id": "k1",
        "customer_id": customers[0],
        "chat_at": f"{day}T10:00:00Z",
        "channel": "app",
        "summary": "Asked about roaming",
    }
    _write_text("chats", day, "part-00000.jsonl", json.dumps(dict(chat, note="a")) + "\n")
    _write_text(
        "chats", day, "part-00001.jsonl", json.dumps(dict(chat, chat_id="k2", Note="b")) + "\n"
    )
    try:
        with pytest.raises(SchemaMismatch, match="'Note'.*differ only in case"):
            ingest_batches(spark, [day], sources=["chats"])
        assert spark.table("bronze.support_chats").where(F.col("_batch_date") == day).count() == 0
    finally:
        shutil.rmtree(_folder("chats", day))


def test_text_that_is_not_json_lines_stops_the_batch(spark, customers) -> None:
    """A CSV extract saved as .jsonl in the chats folder (no line of it an object) is
    refused whole, naming the file, unlike a one-record file cut short (whose line is row
    dirt); so is a file of tab-indented objects, which parse, without the channel."""
    day = DATES[4]
    name = f"landing/chats/{day.isoformat()}/part-00000.jsonl"
    try:
        _write_text(
            "chats",
            day,
            "part-00000.jsonl",
            f"chat_id,customer_id,chat_at\nx1,{customers[0]},{day} 10:00:00\n",
        )
        with pytest.raises(SchemaMismatch, match=f"{name} lacks column "):
            ingest_batches(spark, [day], sources=["chats"])
        chat = {
            "chat_id": "t1",
            "customer_id": customers[0],
            "chat_at": f"{day}T10:00:00Z",
            "summary": "Asked about roaming",
        }
        _write_text("chats", day, "part-00000.jsonl", "\t" + json.dumps(chat) + "\n")
        with pytest.raises(SchemaMismatch, match=f"{name} lacks column 'channel'"):
            ingest_batches(spark, [day], sources=["chats"])
        assert spark.table("bronze.support_chats").where(F.col("_batch_date") == day).count() == 0
    finally:
        shutil.rmtree(_folder("chats", day))


def test_a_day_whose_usage_cannot_be_read_is_waiting(spark, customers) -> None:
    """Only a truncated usage file landed: it is quarantined whole, and the date waits for
    a readable one (the daily job must not train or score on a day without usage)."""
    day = DATES[7]
    _write_usage(day, "whole.parquet", _usage_rows(customers[0], day, 20, "cut"))
    whole = (_folder("usage", day) / "whole.parquet").read_bytes()
    (_folder("usage", day) / "part-00000.parquet").write_bytes(whole[: len(whole) // 2])
    (_folder("usage", day) / "whole.parquet").unlink()
    results = ingest_batches(spark, [day], sources=["usage"])
    assert results.waiting == {day: ["usage"]}
    assert list(results.quarantined_files) == [
        f"landing/usage/{day.isoformat()}/part-00000.parquet"
    ]
    assert results["usage"][day] == BatchCounts(read=0, ingested=0, quarantined=0)


def test_a_late_delivery_waits_and_is_ingested_when_it_lands(spark, customers) -> None:
    """A date without its usage file is waiting (run log), not done; a file that lands for
    a date ingested already is seen as a change, and ingesting it settles the change."""
    day = DATES[5]
    _write_text(
        "payments",
        day,
        "part-00000.csv",
        "payment_id,invoice_id,customer_id,amount,status,paid_at\n"
        f"31,32,{customers[0]},25.0,on_time,{day} 08:00:00\n",
    )
    results = ingest_batches(spark, [day])
    assert results.waiting == {day: ["usage"]}
    waiting = [r for r in _runs(spark, day) if r["step"] == "delivery"]
    assert waiting and waiting[0]["status"] == "waiting" and "usage" in waiting[0]["message"]
    assert day not in landing_changes(spark, until=day)
    _write_usage(day, "part-00000.parquet", _usage_rows(customers[0], day, 2, "late"))
    assert day in landing_changes(spark, until=day)
    results = ingest_batches(spark, [day])
    assert results.waiting == {}
    assert results["usage"][day].ingested == 2
    assert day not in landing_changes(spark, until=day)
    _write_usage(day, "part-00001.parquet", _usage_rows(customers[1], day, 3, "later"))
    assert day in landing_changes(spark, until=day)
    ingest_batches(spark, [day])
    assert day not in landing_changes(spark, until=day)
    assert spark.table("bronze.usage_events").where(F.col("_batch_date") == day).count() == 5


def test_the_daily_job_waits_for_a_date_without_files(spark, customers, capsys) -> None:
    """Nothing landed for the date: the command says so in one line and exits 75 (try
    again later); ingest is recorded as waiting and nothing after it ran."""
    from features import cli

    day = DATES[6]
    code = cli.main(["daily", "--date", day.isoformat()])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.WAITING_EXIT
    assert len(err) == 1 and f"{day} is waiting for its deliveries (nothing under" in err[0]
    daily = [r for r in _runs(spark, day) if r["pipeline"] == "daily"]
    assert [(r["step"], r["status"]) for r in daily] == [("ingest", "waiting")]
