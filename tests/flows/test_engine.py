"""Engines (flows/engine.py) and ingest on Spark: the same rules, counts and quarantine as on DuckDB."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from test_ingest import GOOD_ROWS, MAPPED, write_csv

from configs.schema import ColumnMapping, EngineConfig
from flows.engine import connect, connect_config, engine_of
from flows.ingest import REASONS, IngestError, data_digest, load_transactions, microsecond_timestamps

# Small and polite on a shared machine: 2 cores, few shuffle partitions, no web UI.




def test_connect_duckdb_and_unknown_engine():
    assert engine_of(connect("duckdb")) == "duckdb"
    assert engine_of(connect_config(EngineConfig())) == "duckdb"
    with pytest.raises(ValueError, match="engine must be one of duckdb, spark, got 'polars'"):
        connect("polars")


def test_duckdb_draws_no_progress_bar_over_the_step_lines(tmp_path):
    """DuckDB's terminal progress bar (statements over 2 s) would break into `[k/n] ... done in` lines."""
    def progress_bar(con):
        return con.raw_sql("SELECT current_setting('enable_progress_bar')").fetchone()[0]

    assert progress_bar(connect("duckdb")) is False
    data = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    assert progress_bar(load_transactions(str(data), columns=MAPPED, workdir=tmp_path).connection) is False


@pytest.mark.spark
def test_spark_session_is_utc_and_takes_the_config(spark_backend):
    from flows.engine import active_spark_session

    session = active_spark_session()
    assert engine_of(spark_backend) == "spark"
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    assert session.conf.get("spark.sql.shuffle.partitions") == "4"
    assert session.sparkContext.master == "local[2]"
    # A config may not move the session off UTC.
    connect("spark", "local[2]", {"spark.sql.shuffle.partitions": "4", "spark.sql.session.timeZone": "Europe/Paris"})
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"


def test_spark_properties_hide_the_console_progress_bar_unless_the_config_asks():
    from flows.engine import session_properties

    local = session_properties("local[2]")
    assert local["spark.ui.showConsoleProgress"] == "false" and local["spark.sql.session.timeZone"] == "UTC"
    assert local["spark.ui.enabled"] == "false"
    cluster = session_properties("spark://head:7077", {"spark.ui.showConsoleProgress": "true", "spark.sql.session.timeZone": "UTC+2"})
    assert cluster["spark.ui.showConsoleProgress"] == "true" and cluster["spark.sql.session.timeZone"] == "UTC"
    assert "spark.ui.enabled" not in cluster


def on_both(path, tmp_path, spark_backend, **kwargs):
    """load_transactions on DuckDB and on Spark: (result or IngestError message) for each."""
    kwargs.setdefault("columns", MAPPED)
    outcomes = []
    for connection in (None, spark_backend):
        try:
            outcomes.append(load_transactions(str(path), workdir=tmp_path, connection=connection, **kwargs))
        except IngestError as exc:
            outcomes.append(str(exc))
    return outcomes


def assert_same_ingest(duck, spark):
    if isinstance(duck, str) or isinstance(spark, str):
        assert duck == spark
        return
    assert duck.report == spark.report
    assert duck.as_of == spark.as_of
    pd.testing.assert_frame_equal(duck.quarantine, spark.quarantine)
    columns = ["customer_id", "order_ts", "amount", "order_id", "category", "quantity"]
    clean_duck = microsecond_timestamps(duck.transactions.to_pandas()).sort_values(columns).reset_index(drop=True)
    clean_spark = microsecond_timestamps(spark.transactions.to_pandas()).sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(clean_duck, clean_spark)


# The bad-input fixtures of test_ingest.py, merged into few files (each Spark ingest costs seconds).
ROW_PROBLEMS = GOOD_ROWS + [
    ("", "2024-01-02", "3", "o6"),  # null id
    ("a", "2024-01-01", "10.5", "o1"),  # exact duplicate record of the first row
    ("z", "2024-03-05", "7", "o5"),  # order o5 already belongs to customer c (2024-03-01)
    ("d", "2030-01-01", "5", "o7"),  # after the as-of date
    ("d", "not a date", "1", "o9"),
    ("e", "2024-01-09", "abc", "o10"),
    # Values the two engines' own casts read differently are set aside on both (see ISO_TIMESTAMP).
    ("f", "2024", "1", "o11"),
    ("g", "2024-01-01T10:00:00+02:00", "1", "o12"),  # UTC offsets are converted to UTC on both
    ("g", "2024-01-01 23:30-0500", "1", "o17"),
    ("g", "2024-01-02 10:00:00.5+00", "1", "o18"),  # PostgreSQL's UTC: hours only
    ("g", "2024-01-03 10:00:00 -05:00", "1", "o19"),  # a space before the offset, zone names
    ("g", "2024-01-03 11:00 GMT+1", "1", "o20"),
    ("g", "2024-01-03 12:00:00.25 UTC", "1", "o21"),
    ("h", "2024-01-02T10:00:00Z", "NaN", "o13"),
    ("i", " 2024-01-03 ", "1d", "o14"),
    ("j", "2024-02-30", " 2.5 ", "o15"),
    ("k", "2024-1-4 7:05", "1e2", None),
    ("vif", "2024-01-05T08:30:00Z", "+.5", "o16"),  # Ibis's strip() would eat the 'v' and 'f' on Spark
    ("g", "2024-01-04 10:00:00.1234567", "1", "o22"),  # 7-9 digits of a second: cut to microseconds
    ("g", "2024-01-04T10:00:00.123456789+02:00", "1", "o23"),
    ("g", "2024-01-06Z", "1", "o24"),  # a date and 'Z'
]
CASES = {
    "row_problems": (ROW_PROBLEMS, {"as_of": date(2024, 12, 31), "max_invalid_share": 0.5}),
    "wrong_type_amount": ([(c, d, "n/a" if i % 2 else v, o) for i, (c, d, v, o) in enumerate(GOOD_ROWS)], {}),
    "custom_date_format": (
        [("a", "19970101", "1", "o1"), ("a", "19970205", "2", "o2"), ("b", "1997-02-05", "2", "o3")],
        {"date_format": "%Y%m%d", "max_invalid_share": 0.5},
    ),
    # Day-first dates that read month-first too, and amounts that look like dot-grouped thousands: warnings.
    "ambiguous_dates_and_dotted_amounts": (
        [("a", "01/02/2024", "1.299", "o1"), ("b", "05/03/2024", "2.450", "o2"), ("b", "06/03/2024", "7", "o3")],
        {"date_format": "%d/%m/%Y"},
    ),
    # Unix times (one with a fraction, one past the supported range) and amounts with thousands separators.
    "epoch_and_grouped_amounts": (
        [
            ("a", "1704067200", "1,587.65", "NULL"),
            ("a", "1704153600.5", "-12,000", "null"),
            ("b", "1706745600", "2,5", "o3"),
            ("b", "99999999999", "3", "o4"),
        ],
        {"date_format": "epoch", "max_invalid_share": 0.5},
    ),
}


@pytest.mark.spark
@pytest.mark.parametrize("case", sorted(CASES))
def test_ingest_csv_is_the_same_on_spark(case, tmp_path, spark_backend):
    rows, options = CASES[case]
    duck, spark = on_both(write_csv(tmp_path / "t.csv", rows), tmp_path, spark_backend, **options)
    assert_same_ingest(duck, spark)
    if case == "row_problems":
        assert spark.report["rows_set_aside"] == {
            "null_customer_id": 1,
            "unparseable_date": 3,  # 'not a date', '2024', '2024-02-30'; UTC offsets parse
            "non_numeric_amount": 3,
            "after_as_of": 1,
            "duplicate_record": 1,
            "conflicting_order_id": 1,
        }
        reasons = spark.quarantine.set_index("source_row")["reason"].to_dict()
        assert reasons[8] == "conflicting_order_id" and reasons[11] == "non_numeric_amount"
        assert {"g", "k", "vif"} <= set(spark.transactions.to_pandas()["customer_id"])
    elif case == "wrong_type_amount":
        assert "data row 2: value='n/a'" in spark
    elif case == "ambiguous_dates_and_dotted_amounts":
        warnings = " ".join(spark.report["warnings"])
        assert "also reads with day and month the other way round ('%m/%d/%Y')" in warnings
        assert "2 of 3 amounts in column 'value' have exactly three digits after the point" in warnings
    elif case == "epoch_and_grouped_amounts":
        # '2,5' (a decimal comma, set aside) beside '-12,000' (read as thousands): warned on both engines.
        assert "holds 1 amount(s) with a decimal comma, set aside" in " ".join(spark.report["warnings"])
        clean = duck.transactions.to_pandas().sort_values("order_ts")
        assert clean["amount"].tolist() == [1587.65, -12000.0]
        assert [str(ts) for ts in clean["order_ts"]] == ["2024-01-01 00:00:00", "2024-01-02 00:00:00.500000"]
        assert duck.report["rows_set_aside"] == {**dict.fromkeys(REASONS, 0), "non_numeric_amount": 1, "unparseable_date": 1}
    else:
        assert spark.report["rows_set_aside"]["unparseable_date"] == 1 and spark.as_of == date(1997, 2, 5)


@pytest.mark.spark
def test_a_database_table_with_nullable_numeric_columns_reads_the_same_on_both_engines(tmp_path, spark_backend, monkeypatch):
    """A NULL in a NUMERIC column failed the read on both engines (Decimal objects through pandas)."""
    import sqlite3

    monkeypatch.chdir(tmp_path)
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("create table o (customer_id text, order_ts timestamp, amount numeric(12,2), discount decimal(10,2))")
        db.executemany("insert into o values (?, ?, ?, ?)",
                       [("a", "2025-01-01", 3, None), ("b", "2025-01-02", 5.25, 1.5), ("c", "2025-01-03", None, None)])
    columns = ColumnMapping(customer_id="customer_id", order_ts="order_ts", amount="amount")
    duck, spark = on_both("sqlite:///shop.db#o", tmp_path, spark_backend, columns=columns, max_invalid_share=0.5)
    assert duck.report == spark.report and duck.report["rows_set_aside"]["non_numeric_amount"] == 1
    for result in (duck, spark):
        clean = result.transactions.to_pandas().sort_values("customer_id")
        assert clean["amount"].tolist() == [3.0, 5.25]
        assert result.quarantine["source_row"].tolist() == [3]


@pytest.mark.spark
def test_whole_number_float_ids_are_read_as_integers_on_both_engines(tmp_path, spark_backend):
    """pandas stores an integer id column with a missing value as float: 12345.0 is customer "12345"."""
    path = tmp_path / "float_ids.parquet"
    pd.DataFrame(
        {
            "customer_id": [12345.0, 12345.0, None, 777.0, -4.0],
            "order_ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-02", "2024-03-01", "2024-03-02"]),
            "amount": [10.0, 20.0, 5.0, 7.5, 1.0],
        }
    ).to_parquet(path, index=False)
    columns = ColumnMapping(customer_id="customer_id", order_ts="order_ts", amount="amount")
    duck, spark = on_both(path, tmp_path, spark_backend, columns=columns)
    assert_same_ingest(duck, spark)
    assert sorted(set(duck.transactions.to_pandas()["customer_id"])) == ["-4", "12345", "777"]
    assert duck.report["rows_set_aside"]["null_customer_id"] == 1


@pytest.mark.spark
def test_blanks_and_missing_value_markers_read_the_same_on_both_engines(tmp_path, spark_backend):
    """A tab or no-break space around an id is trimmed; "NULL", "\\N", NaN are no value (no customer "NULL")."""
    path = tmp_path / "markers.parquet"
    pd.DataFrame(
        {
            "customer_id": ["a", "a\t", "\u00a0a ", "NULL", "\\N", " nan ", "f", "v", "b\r\n", "N/A", "\u3000v\u2003", "a\t ", "NULL\n ", "\ufeffa\u2028"],
            "order_ts": pd.to_datetime(["2024-01-01"] * 14),
            "amount": [1.0] * 14,
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "NULL", "NULL", "null", "o7", " o8\t", "\u3000o9\t\u3000", "o10", "\u200bo11\x85"],
        }
    ).to_parquet(path, index=False)
    columns = ColumnMapping(customer_id="customer_id", order_ts="order_ts", amount="amount", order_id="order_id")
    duck, spark = on_both(path, tmp_path, spark_backend, columns=columns)
    assert_same_ingest(duck, spark)
    clean = duck.transactions.to_pandas()
    assert sorted(set(clean["customer_id"])) == ["a", "b", "f", "v"]
    assert clean["order_id"].isna().sum() == 3  # "NULL" order ids are no order id, not one shared order
    assert duck.report["rows_set_aside"]["null_customer_id"] == 5
    assert duck.report["rows_set_aside"]["conflicting_order_id"] == 0
    assert {"o9", "o11"} <= set(clean["order_id"])


@pytest.mark.spark
def test_a_csv_folder_is_read_by_column_name_and_rfc_quotes_on_both_engines(tmp_path, spark_backend):
    """Spark read every file in the first file's column order (a file with `tax,amount` read its tax
    as the amount) and kept "h""q" as written, splitting a quoted line break into two rows."""
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.csv").write_text('cust,when,value,tax\n"h""q",2024-01-01,10,1\nb,2024-01-02,20,2\n')
    (folder / "b.csv").write_text('cust,when,tax,value\nb,2024-01-03,3,30\n"multi\nline",2024-01-04,4,40\n')
    columns = ColumnMapping(customer_id="cust", order_ts="when", amount="value")
    duck, spark = on_both(folder, tmp_path, spark_backend, columns=columns, as_of=date(2024, 12, 31))
    assert_same_ingest(duck, spark)
    clean = spark.transactions.to_pandas().sort_values("order_ts")
    assert clean["customer_id"].tolist() == ['h"q', "b", "b", "multi\nline"]
    assert clean["amount"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert spark.report["rows_read"] == 4


@pytest.mark.spark
@pytest.mark.parametrize("layout", ["parquet", "csv", "glob"])
def test_hive_partition_columns_are_read_on_both_engines(tmp_path, spark_backend, layout):
    """Spark read the files of a category=books/ folder without the column DuckDB reads from the path."""
    frame = pd.DataFrame({"cust": ["a", "b", "c", "a"], "when": ["2024-01-01", "2024-02-01", "2025-01-01", "2025-02-01"],
                          "value": [1.0, 2.0, 3.0, 4.0], "category": ["x", "y", "x", "y"]})
    folder = tmp_path / "orders"
    for category, part in frame.groupby("category"):
        (folder / f"category={category}").mkdir(parents=True)
        rows = part.drop(columns="category")
        if layout == "csv":
            rows.to_csv(folder / f"category={category}" / "part.csv", index=False)
        else:
            rows.assign(when=pd.to_datetime(rows["when"])).to_parquet(folder / f"category={category}" / "part.parquet", index=False)
    source = folder / "*" / "*.parquet" if layout == "glob" else folder
    columns = ColumnMapping(customer_id="cust", order_ts="when", amount="value", category="category")
    duck, spark = on_both(source, tmp_path, spark_backend, columns=columns, as_of=date(2025, 12, 31))
    assert_same_ingest(duck, spark)
    clean = spark.transactions.to_pandas().sort_values(["customer_id", "order_ts"])
    assert clean["category"].tolist() == ["x", "y", "y", "x"]


@pytest.mark.spark
def test_ingest_parquet_folder_numbers_rows_in_file_order(tmp_path, spark_backend):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", None, "c", "d", "e", "a"],
            "order_ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2030-01-01", "2024-01-05", "2024-01-06"]),
            "amount": [1.0, 2.0, float("nan"), 4.0, -5.0, 0.0],
        }
    )
    folder = tmp_path / "parts"
    folder.mkdir()
    # Uneven files: Spark packs the larger one first, the row numbers must still follow the file names.
    frame.iloc[:1].to_parquet(folder / "part-0.parquet")
    frame.iloc[1:].to_parquet(folder / "part-1.parquet")
    duck, spark = on_both(folder, tmp_path, spark_backend, columns=ColumnMapping(), as_of=date(2024, 12, 31), max_invalid_share=0.5)
    assert_same_ingest(duck, spark)
    assert list(spark.quarantine["source_row"]) == [2, 3, 4]
    assert list(spark.quarantine["reason"]) == ["null_customer_id", "non_numeric_amount", "after_as_of"]


@pytest.mark.spark
@pytest.mark.slow
def test_cdnow_on_spark_matches_duckdb_and_the_published_size(tmp_path, spark_backend):
    duck = load_transactions("cdnow", columns=ColumnMapping(), workdir=tmp_path)
    spark = load_transactions("cdnow", columns=ColumnMapping(), workdir=tmp_path, connection=spark_backend)
    assert spark.report == duck.report
    assert spark.report["rows_used"] == 69_659 and spark.report["customers_used"] == 23_570
    assert len(data_digest(spark.connection)) == 16


def test_a_bad_spark_master_is_one_error_naming_the_config_key(tmp_path):
    """Checked before Spark starts: `foo` failed with "Java gateway process exited", and an unreachable
    spark://host:port after a minute of retries with the reason buried in Java stack traces."""
    import socket
    import subprocess
    import sys

    from flows.engine import SparkStartError, check_master

    config = tmp_path / "spark.yaml"
    config.write_text('engine: {name: spark, spark_master: "bogus-url"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "features", "--data", "cdnow-sample", "--config", str(config),
         "--workdir", str(tmp_path), "--out", str(tmp_path / "f.parquet")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "error: engine.spark_master 'bogus-url' is not a Spark master URL: use local[*]" in result.stderr
    assert "internal error" not in result.stderr and "hint: check engine.spark_master" in result.stderr
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(SparkStartError, match=rf"cannot reach engine.spark_master 'spark://127.0.0.1:{port}': "
                                              rf"nothing answers at 127.0.0.1:{port} \(Connection refused\)"):
        check_master(f"spark://127.0.0.1:{port}")
    with socket.socket() as listening:  # one of several masters answering is enough
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_master(f"spark://127.0.0.1:{port},127.0.0.1:{listening.getsockname()[1]}")
    for master in ("local", "local[*]", "local[2]", "local[4,2]", "yarn", "k8s://https://h:6443"):
        check_master(master)
    # An IPv6 master: "no host named '[::1]' is known" (the brackets were kept on the host).
    with socket.socket(socket.AF_INET6) as listening6:
        listening6.bind(("::1", 0))
        listening6.listen()
        check_master(f"spark://[::1]:{listening6.getsockname()[1]}")


def test_a_spark_start_error_names_the_innermost_java_cause():
    """"Error while instantiating 'org.apache.spark.sql.internal.SessionStateBuilder'" hid the reason."""
    from flows.engine import java_reason

    py4j = Exception(
        "An error occurred while calling None.org.apache.spark.sql.classic.SparkSession.\n"
        ": java.lang.IllegalArgumentException: Error while instantiating 'org.apache.spark.sql.internal.SessionStateBuilder':\n"
        "\tat org.apache.spark.sql.classic.SparkSession$.instantiateSessionState(SparkSession.scala:1083)\n"
        "Caused by: java.lang.reflect.InvocationTargetException\n"
        "Caused by: java.lang.IllegalArgumentException: spark.sql.shuffle.partitions should be int, but was abc\n"
        "\tat org.apache.spark.internal.config.ConfigHelpers$.toNumber(ConfigBuilder.scala:39)\n"
    )
    assert java_reason(py4j) == "IllegalArgumentException: spark.sql.shuffle.partitions should be int, but was abc"
    assert java_reason(Exception("Could not parse Master URL: 'bogus-url'")) == "Could not parse Master URL: 'bogus-url'"
    assert java_reason(Exception("")) == "Exception"


@pytest.mark.spark
def test_the_window_warnings_vipcast_expects_do_not_reach_the_terminal(spark_backend):
    """Each RFM rank logged "WARN WindowExec: No Partition Defined for Window operation!" between the
    step lines (10-20 lines a run); docs/scaling.md explains the global windows instead."""
    from flows.engine import KNOWN_SPARK_WARNINGS, active_spark_session

    jvm = active_spark_session().sparkContext._jvm
    for name in KNOWN_SPARK_WARNINGS:
        assert str(jvm.org.apache.logging.log4j.LogManager.getLogger(name).getLevel()) == "ERROR"
