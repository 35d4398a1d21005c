"""Ingest: sources, the set-aside rules and the reconciliation report (flows/ingest.py)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from configs.schema import ColumnMapping
from flows.ingest import DateError, IngestError, holds_rows_of, load_transactions, parse_source

MAPPED = ColumnMapping(customer_id="cust", order_ts="when", amount="value", order_id="oid")

GOOD_ROWS = [
    ("a", "2024-01-01", "10.5", "o1"),
    ("a", "2024-01-01", "4.5", "o2"),  # same day, another order
    ("b", "2024-01-05", "-4", "o3"),  # refund
    ("c", "2024-02-01", "0", "o4"),  # $0 order
    ("c", "2024-03-01", "5", "o5"),
]


def write_csv(path: Path, rows, header=("cust", "when", "value", "oid")) -> Path:
    frame = pd.DataFrame(rows, columns=list(header))
    frame.to_csv(path, index=False)
    return path


def load(path, tmp_path, **kwargs):
    kwargs.setdefault("columns", MAPPED)
    return load_transactions(str(path), workdir=tmp_path, **kwargs)


def test_a_newer_extract_holds_the_rows_an_earlier_run_used(tmp_path):
    """Weekly files in dated folders share a name: the same shop's newer extract holds the earlier run's
    rows up to its date (as many, the same net revenue); another shop's file does not."""
    (tmp_path / "w1").mkdir(), (tmp_path / "w2").mkdir(), (tmp_path / "other").mkdir()
    earlier = load(write_csv(tmp_path / "w1" / "orders.csv", GOOD_ROWS[:3]), tmp_path).report
    assert earlier["as_of"] == "2024-01-05" and earlier["rows_used"] == 3
    newer = load(write_csv(tmp_path / "w2" / "orders.csv", GOOD_ROWS), tmp_path)
    assert holds_rows_of(newer, earlier)
    changed = [GOOD_ROWS[0], ("b", "2024-01-04", "10.01", "o2"), *GOOD_ROWS[2:]]  # one amount differs by a cent
    assert not holds_rows_of(load(write_csv(tmp_path / "other" / "orders.csv", changed), tmp_path), earlier)
    fewer = [row for row in GOOD_ROWS if row[3] != "o1"]
    assert not holds_rows_of(load(write_csv(tmp_path / "other" / "orders.csv", fewer), tmp_path), earlier)
    assert not holds_rows_of(newer, {"as_of": "2024-01-05"})  # a report without the counts (an older run)
    # Pulled on a morning: the next extract holds the rest of that day (the warning came back every week).
    morning = [("a", "2024-01-01 09:00", "10", "o1"), ("b", "2024-01-08 04:30", "20", "o2")]
    rest_of_day = [*morning, ("c", "2024-01-08 15:00", "5", "o3"), ("a", "2024-01-12 10:00", "7", "o4")]
    first = load(write_csv(tmp_path / "w1" / "orders.csv", morning), tmp_path).report
    assert holds_rows_of(load(write_csv(tmp_path / "w2" / "orders.csv", rest_of_day), tmp_path), first)


def test_clean_csv_keeps_refunds_and_zero_orders(tmp_path):
    result = load(write_csv(tmp_path / "t.csv", GOOD_ROWS), tmp_path)
    report = result.report
    assert report["rows_read"] == 5 and report["rows_used"] == 5
    assert sum(report["rows_set_aside"].values()) == 0
    assert report["net_revenue"] == pytest.approx(16.0)
    assert report["refund_rows"] == 1 and report["refund_amount"] == -4.0
    assert report["zero_amount_rows"] == 1
    assert result.as_of == date(2024, 3, 1)
    frame = result.transactions.to_pandas()
    assert list(frame.columns) == ["customer_id", "order_ts", "amount", "order_id", "category", "quantity"]
    assert frame["amount"].dtype == "float64"
    assert len(result.quarantine) == 0


def test_missing_column_names_file_and_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", GOOD_ROWS, header=("cust", "when", "price", "oid"))
    with pytest.raises(IngestError) as err:
        load(path, tmp_path)
    message = str(err.value)
    assert str(path) in message and "missing column 'value' (for amount)" in message
    assert "columns found: 'cust', 'when', 'price', 'oid'" in message


def test_empty_input(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("cust,when,value,oid\n")
    with pytest.raises(IngestError, match="empty.csv: the input has no rows"):
        load(path, tmp_path)


def test_no_usable_row_is_an_error_naming_why(tmp_path):
    path = write_csv(tmp_path / "t.csv", GOOD_ROWS)
    with pytest.raises(IngestError, match=r"no usable rows \(set aside: after_as_of=5\): every row is after the as-of date 2023-12-31"):
        load(path, tmp_path, as_of=date(2023, 12, 31))
    mixed = write_csv(tmp_path / "mixed.csv", [(None, "2023-01-01", "1", "o1"), ("a", "2024-01-02", "2", "o2")])
    with pytest.raises(IngestError) as err:
        load(mixed, tmp_path, as_of=date(2023, 12, 31))
    assert "no usable rows (set aside: " in str(err.value) and "after_as_of=1" in str(err.value)
    assert "every row is after" not in str(err.value)
    # The row that reads is after the date: said so though another row's null id hid it before.
    assert str(err.value).endswith(": 1 row(s) are after the as-of date 2023-12-31 (a later --as-of uses them)")


def test_float_ids_keep_fractions_and_huge_values_as_text(tmp_path):
    path = tmp_path / "ids.parquet"
    frame = pd.DataFrame({"cust": [3.0, 12.5, 1e300, 2.0**60], "when": pd.to_datetime(["2024-01-01"] * 4), "value": [1.0] * 4})
    frame.to_parquet(path, index=False)
    ids = load(path, tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value")).transactions.to_pandas()
    assert sorted(ids["customer_id"]) == sorted(["3", "12.5", "1e+300", "1.152921504606847e+18"])


def test_wrong_type_amount_column_is_an_error_with_examples(tmp_path):
    rows = [(c, d, "n/a" if i % 2 else v, o) for i, (c, d, v, o) in enumerate(GOOD_ROWS)]
    with pytest.raises(IngestError) as err:
        load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    message = str(err.value)
    assert "column 'value' (for amount) does not hold numbers below 10^15 either way (a decimal point, an optional sign" in message
    assert "decimal commas as in 260,67, currency signs and (5.00) negatives are not read" in message and "in 2 of 5 rows" in message
    # The limit that stopped the run, and the setting that sets such rows aside instead, are named.
    assert "(empty values included; more than source.max_invalid_share, 1%: fix the column, or raise" in message
    assert "data row 2: value='n/a'" in message


def test_the_bad_date_count_says_which_rows_it_counts(tmp_path):
    """Rows without a customer id are set aside for that, not counted against the dates: the message said
    "in 2 of 4 rows" when every date failed (guest rows left out of the count, not of the total)."""
    rows = [("1", "12/13/2009 7:45", "5", "o1"), ("", "12/13/2009 8:00", "6", "o2"), ("", "12/14/2009 8:00", "7", "o3"),
            ("2", "12/15/2009 9:00", "8", "o4")]
    with pytest.raises(IngestError, match=r"in 2 of the 2 rows with a customer id \(empty values included; 2 rows without "
                                          r"one are set aside as null_customer_id; more than source.max_invalid_share"):
        load(write_csv(tmp_path / "t.csv", rows), tmp_path, date_format="%d/%m/%Y %H:%M")


def test_unparseable_dates_over_tolerance_is_an_error(tmp_path):
    rows = GOOD_ROWS + [("d", "31/12/2024", "1", "o9")]
    with pytest.raises(IngestError) as err:
        load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    assert "column 'when' (for order_ts) does not hold dates" in str(err.value)
    assert "data row 6: when='31/12/2024'" in str(err.value)


def test_few_unparseable_dates_and_amounts_are_set_aside_within_tolerance(tmp_path):
    rows = GOOD_ROWS + [("d", "not a date", "1", "o9"), ("e", "2024-01-09", "abc", "o10")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, max_invalid_share=0.2)
    assert result.report["rows_set_aside"]["unparseable_date"] == 1
    assert result.report["rows_set_aside"]["non_numeric_amount"] == 1
    assert result.report["rows_used"] == 5
    assert sorted(result.quarantine["reason"]) == ["non_numeric_amount", "unparseable_date"]
    # The raw value is kept so the row can be fixed and reloaded.
    assert "not a date" in set(result.quarantine["raw_order_ts"])


def test_custom_date_format(tmp_path):
    rows = [("a", "19970101", "1", "o1"), ("a", "19970205", "2", "o2")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, date_format="%Y%m%d")
    assert result.as_of == date(1997, 2, 5)


def test_null_ids_duplicates_conflicts_and_future_rows_are_set_aside(tmp_path):
    rows = GOOD_ROWS + [
        ("", "2024-01-02", "3", "o6"),  # null id
        ("a", "2024-01-01", "10.5", "o1"),  # exact duplicate record of the first row
        ("z", "2024-03-05", "7", "o5"),  # order o5 already belongs to customer c (2024-03-01)
        ("d", "2030-01-01", "5", "o7"),  # after the as-of date
    ]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2024, 12, 31))
    aside = result.report["rows_set_aside"]
    assert aside == {
        "null_customer_id": 1,
        "unparseable_date": 0,
        "non_numeric_amount": 0,
        "after_as_of": 1,
        "duplicate_record": 1,
        "conflicting_order_id": 1,
    }
    assert result.report["rows_used"] == 5
    # Customers whose every row was set aside are still accounted for.
    assert result.report["customers_only_in_quarantine"] == 2  # d (future) and z (conflicting order)
    assert set(result.quarantine["source_row"]) == {6, 7, 8, 9}


def test_every_row_is_accounted_for(tmp_path):
    rows = GOOD_ROWS + [("", "2024-01-02", "3", "o6"), ("d", "2030-01-01", "5", "o7")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2024, 6, 30))
    report = result.report
    assert report["rows_used"] + sum(report["rows_set_aside"].values()) == report["rows_read"] == 7
    assert len(result.quarantine) == 2


def test_parquet_file_folder_and_glob(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "order_ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:2].to_parquet(folder / "part-0.parquet")
    frame.iloc[2:].to_parquet(folder / "part-1.parquet")
    for src in (folder / "part-0.parquet", folder, folder / "part-*.parquet"):
        result = load_transactions(str(src), columns=ColumnMapping(), workdir=tmp_path)
        expected = 2 if str(src).endswith("part-0.parquet") else 3
        assert result.report["rows_used"] == expected


def test_rows_set_aside_from_several_parquet_files_keep_their_position_and_raw_values(tmp_path):
    """Row numbers run on across files in name order; the quarantine shows the value as it was."""
    folder = tmp_path / "parts"
    folder.mkdir()
    first = pd.DataFrame({"customer_id": ["a", "b"], "order_ts": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "amount": [1.0, float("nan")], "order_id": ["o1", "o2"]})
    second = pd.DataFrame({"customer_id": ["c", None, "a", "d"],
                           "order_ts": pd.to_datetime(["2024-01-03", "2024-01-03", "2024-01-01", "2024-01-04"]),
                           "amount": [3.0, 4.0, 1.0, 5.0], "order_id": ["o3", "o4", "o1", "o3"]})
    first.to_parquet(folder / "part-0.parquet")
    second.to_parquet(folder / "part-1.parquet")
    result = load_transactions(str(folder), columns=ColumnMapping(order_id="order_id"), workdir=tmp_path, max_invalid_share=0.5)
    quarantine = result.quarantine
    assert list(quarantine["source_row"]) == [2, 4, 5, 6]
    assert list(quarantine["reason"]) == ["non_numeric_amount", "null_customer_id", "duplicate_record", "conflicting_order_id"]
    assert pd.isna(quarantine["raw_amount"].iloc[0]) and pd.isna(quarantine["amount"].iloc[0])
    assert pd.isna(quarantine["raw_customer_id"].iloc[1]) and list(quarantine["raw_customer_id"].iloc[2:]) == ["a", "d"]
    assert result.report["rows_read"] == 6 and result.report["rows_used"] == 2
    assert result.report["customers_read"] == 4 and result.report["customers_used"] == 2
    assert result.report["customers_only_in_quarantine"] == 2


def test_sqlite_table(tmp_path):
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        con.execute("create table orders (cust text, when_ text, value real, oid text)")
        con.executemany("insert into orders values (?, ?, ?, ?)", [(c, d, float(v), o) for c, d, v, o in GOOD_ROWS])
    cols = ColumnMapping(customer_id="cust", order_ts="when_", amount="value", order_id="oid")
    result = load_transactions(f"sqlite:///{db}#orders", columns=cols, workdir=tmp_path)
    assert result.report["rows_used"] == 5
    assert result.report["net_revenue"] == pytest.approx(16.0)


def test_sqlite_url_is_read_the_sqlalchemy_way_and_a_missing_file_is_not_created(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    with sqlite3.connect(tmp_path / "in" / "shop.db") as con:
        con.execute("create table orders (cust text, when_ text, value real, oid text)")
        con.executemany("insert into orders values (?, ?, ?, ?)", [(c, d, float(v), o) for c, d, v, o in GOOD_ROWS])
    monkeypatch.chdir(tmp_path)
    cols = ColumnMapping(customer_id="cust", order_ts="when_", amount="value", order_id="oid")
    assert load_transactions("sqlite:///in/shop.db#orders", columns=cols, workdir=tmp_path).report["rows_used"] == 5
    with pytest.raises(IngestError, match=r"no such database file: .*/in/nope\.db"):
        load_transactions("sqlite:///in/nope.db#orders", columns=cols, workdir=tmp_path)
    assert not (tmp_path / "in" / "nope.db").exists()


def test_database_source_needs_a_table():
    with pytest.raises(IngestError, match="needs a table"):
        parse_source("sqlite:///shop.db")


def test_unknown_path_lists_builtins():
    with pytest.raises(IngestError, match="no such file or folder .*cdnow"):
        parse_source("/no/such/file.csv")


def test_cdnow_builtin_matches_the_published_size(tmp_path):
    result = load_transactions("cdnow", columns=ColumnMapping(), workdir=tmp_path)
    report = result.report
    assert report["rows_read"] == report["rows_used"] == 69_659
    assert report["customers_used"] == 23_570
    assert report["zero_amount_rows"] == 80
    assert result.as_of == date(1998, 6, 30)


def test_timestamps_with_utc_offsets_are_converted_to_utc(tmp_path):
    rows = [
        ("a", "2024-03-01T10:00:00+02:00", "1", "o1"),
        ("b", "2024-03-01 23:30-0500", "2", "o2"),
        ("c", "2024-03-01T10:00:00Z", "3", "o3"),
    ]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    frame = result.transactions.to_pandas().set_index("customer_id")["order_ts"]
    assert str(frame["a"]) == "2024-03-01 08:00:00"
    assert str(frame["b"]) == "2024-03-02 04:30:00"
    assert str(frame["c"]) == "2024-03-01 10:00:00"


def test_missing_value_markers_blanks_and_nan_ids(tmp_path):
    """'NULL' or '\\N' is no id (no customer "NULL", no order "NULL" shared by everyone); a tab
    around an id is trimmed; a float id column's NaN (as pyarrow or Polars write it) is no id."""
    rows = [("a", "2024-01-01", "1", "NULL"), ("a\t", "2024-01-02", "2", "NULL"), ("NULL", "2024-01-03", "3", "o3"),
            ("\\N", "2024-01-04", "4", "o4"), ("b", "2024-01-05", "5", "n/a"),
            # A tab or line break inside the blanks at an end: "a\t " was customer "a\t".
            ("a\t ", "2024-01-06 ", "6\r\n ", "o6\t "), ("\u3000b\t\u3000", "2024-01-07\t ", "7", " o7"),
            ("NULL\n ", "2024-01-08", "8", "o8"),
            # Line and paragraph separators, NEL, zero-width space, a stray BOM.
            ("\ufeffa\u2028", "\u20282024-01-09", "\u200b9\u2029", "o9\x85")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    assert result.report["rows_set_aside"]["null_customer_id"] == 3
    assert result.report["rows_set_aside"]["conflicting_order_id"] == 0
    assert result.report["rows_used"] == 6
    clean = result.transactions.to_pandas()
    assert sorted(set(clean["customer_id"])) == ["a", "b"]
    assert set(clean["order_id"].dropna()) == {"o6", "o7", "o9"} and clean["amount"].sum() == 1 + 2 + 5 + 6 + 7 + 9
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nan_ids.parquet"
    pq.write_table(
        pa.table({"cust": pa.array([1.0, float("nan"), 2.0], from_pandas=False),
                  "when": pa.array(pd.to_datetime(["2024-01-01"] * 3)), "value": [1.0, 2.0, 3.0]}),
        path,
    )
    result = load(path, tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    assert sorted(set(result.transactions.to_pandas()["customer_id"])) == ["1", "2"]
    assert result.report["rows_set_aside"]["null_customer_id"] == 1


def test_many_rows_set_aside_for_one_reason_are_a_warning_with_an_example(tmp_path):
    rows = [(f"c{i}", "2024-01-01", "1", f"o{i}") for i in range(1_000)] + [("c1", "2024-01-02", "$5", "o-x")] * 2
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    assert result.report["warnings"] == [
        "2 of 1,002 rows (0.2%) set aside as non_numeric_amount (e.g. data row 1001: '$5'); they are in the quarantine file"
    ]
    assert load(write_csv(tmp_path / "few.csv", rows[:1_001]), tmp_path).report["warnings"] == []
    # Order lines told apart by an unmapped SKU look like copies: the warning says what matched and what to do.
    lines = [(f"c{i}", "2024-01-01", "1", f"o{i}") for i in range(1_000)] + [("c1", "2024-01-02", "5", "o-y")] * 3
    assert load(write_csv(tmp_path / "lines.csv", lines), tmp_path).report["warnings"] == [
        "2 of 1,003 rows (0.2%) set aside as duplicate_record (e.g. data row 1002: 'o-y'); they are in the quarantine "
        "file: each repeats an earlier row's order id, customer, time and amount (and category and quantity, when "
        "mapped); if these are distinct lines of one order told apart only by an unmapped column (a SKU), map "
        "order_id to a line id, or leave order_id unmapped"
    ]


def test_spreadsheet_amounts_with_thousands_separators_are_numbers(tmp_path):
    rows = [("a", "2024-01-01", "1,587.65", "o1"), ("a", "2024-01-02", "-12,000", "o2"), ("b", "2024-01-03", "2,5", "o3")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, max_invalid_share=0.5)
    assert sorted(result.transactions.to_pandas()["amount"]) == [-12000.0, 1587.65]
    assert result.report["rows_set_aside"]["non_numeric_amount"] == 1  # a decimal comma is not guessed


def test_unix_times_cover_the_whole_last_day_of_the_range(tmp_path):
    """2199-12-31 12:00 in epoch seconds was set aside as unparseable while the same instant as text was
    read (the epoch range ended at that day's first midnight); 1900-01-01 00:00 is the first second read."""
    rows = [("a", "7258075200", "1", "o1"), ("b", "7258118399", "2", "o2"), ("c", "7258118400", "3", "o3"),
            ("d", "-2208988800", "4", "o4"), ("e", "-2208988801", "5", "o5"), ("f", "1704153600", "6", "o6")]
    for unit, scale in (("epoch", 1), ("epoch_ms", 1000)):
        scaled = [(who, str(int(when) * scale), amount, order) for who, when, amount, order in rows]
        result = load(write_csv(tmp_path / f"{unit}.csv", scaled), tmp_path, date_format=unit, as_of=date(2024, 1, 2),
                      max_invalid_share=0.5)
        set_aside = {reason: n for reason, n in result.report["rows_set_aside"].items() if n}
        assert set_aside == {"after_as_of": 2, "unparseable_date": 2}, unit
        assert sorted(result.transactions.to_pandas()["customer_id"]) == ["d", "f"], unit


def test_unix_times_and_a_bad_date_format(tmp_path):
    rows = [("a", "1704067200000", "1", "o1"), ("b", "1704153600000", "2", "o2")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, date_format="epoch_ms")
    assert result.as_of == date(2024, 1, 2)
    with pytest.raises(IngestError, match=r"source.date_format '%s' is not a date format .*'epoch'"):
        load(write_csv(tmp_path / "t.csv", rows), tmp_path, date_format="%s")
    with pytest.raises(IngestError, match=r"set source.date_format for others, e.g. '%d/%m/%Y', or 'epoch'"):
        load(write_csv(tmp_path / "t.csv", rows), tmp_path)


def test_a_stray_far_future_date_does_not_become_the_default_as_of(tmp_path):
    rows = [(f"c{i % 50}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", "1", f"o{i}") for i in range(2_000)]
    path = write_csv(tmp_path / "t.csv", [*rows, ("c1", "2099-01-01", "5", "typo")])
    with pytest.raises(IngestError) as err:
        load(path, tmp_path)
    message = str(err.value)
    assert "the last order date 2099-01-01 stands apart from the data: 1 of 2,001 rows" in message
    assert "data row 2001: when='2099-01-01'" in message and "pass --as-of 2024-12-28" in message
    assert load(path, tmp_path, as_of=date(2024, 12, 31)).report["rows_set_aside"]["after_as_of"] == 1
    with pytest.raises(IngestError, match="the as-of date 9999-12-31 is outside the supported range"):
        load(path, tmp_path, as_of=date(9999, 12, 31))
    assert load(write_csv(tmp_path / "small.csv", [*GOOD_ROWS, ("c", "2026-01-01", "1", "o9")]), tmp_path).as_of == date(2026, 1, 1)
    # One row is 0.33% of 300 (above 0.1%), but it follows 75 years without orders.
    path = write_csv(tmp_path / "t300.csv", [*rows[:300], ("c1", "2099-01-01", "5", "typo")])
    with pytest.raises(IngestError, match="the last order date 2099-01-01 stands apart from the data: 1 of 301 rows"):
        load(path, tmp_path)
    # Two typos: the suggested --as-of steps over both (it named 2050-06-01, itself a lone row).
    path = write_csv(tmp_path / "two.csv", [*rows, ("c1", "2099-01-01", "5", "typo"), ("c2", "2050-06-01", "5", "typo2")])
    with pytest.raises(IngestError) as err:
        load(path, tmp_path)
    assert "the others end 2050-06-01" in str(err.value)
    assert "pass --as-of 2024-12-28 to set them aside (2050-06-01 stands apart too)" in str(err.value)
    # A shop's last month after a quiet spell under a year is data, not a typo.
    quiet = [*rows[:300], ("c1", "2025-09-01", "5", "late1"), ("c2", "2025-09-02", "5", "late2")]
    assert load(write_csv(tmp_path / "quiet.csv", quiet), tmp_path).as_of == date(2025, 9, 2)


def test_csv_files_that_cannot_be_split_into_columns(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(IngestError, match="empty.csv: the file is empty"):
        load(tmp_path / "empty.csv", tmp_path)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("cust,when,value,oid\na,2024-01-01,1,o1\nb,2024-01-02,2,o2,extra,fields\n")
    with pytest.raises(IngestError, match="ragged.csv: line 3 has 6 fields where the header has 4"):
        load(ragged, tmp_path)
    # The file's own line numbers: blank lines above it and a quoted line break counted (it said line 4).
    ragged.write_text('\ncust,when,value,oid\na,2024-01-01,1,"o\n1"\n\nb,2024-01-02,2,o2,extra\n')
    with pytest.raises(IngestError, match="ragged.csv: line 6 has 5 fields where the header has 4"):
        load(ragged, tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("cust,when,value,oid\nJos\xe9,2024-01-01,1,o1\n".encode("latin-1"))
    with pytest.raises(IngestError, match=r"latin.csv: line 2 is not UTF-8 text \(byte 0xe9 in 'Jos.,2024-01-01,1,o1'; a "
                                          r"Windows-1252 or Latin-1 export\?\): save the file as UTF-8"):
        load(latin, tmp_path)
    # Far down the file (a real export's first accent): the bytes surface only when every row is read.
    rows = "".join(f"c{i},2024-01-{1 + i % 28:02d},1,o{i}\n" for i in range(25_000))
    latin.write_bytes(("cust,when,value,oid\n" + rows + "z,2024-01-05,1,Caf\xe9\n").encode("cp1252"))
    with pytest.raises(IngestError, match=r"latin.csv: line 25002 is not UTF-8 text \(byte 0xe9"):
        load(latin, tmp_path)
    # The line itself, not DuckDB's quote of the line before it.
    latin.write_bytes("cust,when,value,oid\na,2024-01-01,1,o1\nb,2024-01-02,2,\"x, y\"\nc,2024-01-03,3,C\xf4te\n".encode("cp1252"))
    with pytest.raises(IngestError, match=r"latin.csv: line 4 is not UTF-8 text \(byte 0xf4 in 'c,2024-01-03,3,C.te'"):
        load(latin, tmp_path)


def test_a_mapped_column_named_twice_in_a_csv_header_is_refused(tmp_path):
    # The reader renames the second "value" to "value_1": reading the first one would be a guess.
    folder = tmp_path / "orders"
    folder.mkdir()
    (folder / "a.csv").write_text("cust,when,value,oid\na,2024-01-01,1,o1\n")
    (folder / "b.csv").write_text("cust;when;value;oid; value \nb;2024-01-02;2;o2;99\n")
    with pytest.raises(IngestError, match=r"b.csv: the header names column 'value' 2 times \(columns 3, 5\)"):
        load(folder, tmp_path)
    # With a byte-order mark, or told apart by case only (the reader renames Value to value_1).
    (folder / "b.csv").write_text("\ufeffcust,when,Value,oid,value\nb,2024-01-02,2,o2,99\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"b.csv: the header names column 'value' 2 times \(columns 3, 5\)"):
        load(folder, tmp_path)
    (folder / "b.csv").write_text("\ufeffcust,when,value,oid,cust\nb,2024-01-02,2,o2,99\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"b.csv: the header names column 'cust' 2 times \(columns 1, 5\)"):
        load(folder, tmp_path)
    # An unmapped column named twice is no ambiguity.
    (folder / "b.csv").write_text("cust,when,value,oid,note,note\nb,2024-01-02,2,o2,x,y\n")
    assert load(folder, tmp_path).report["rows_used"] == 2


def test_a_stray_quote_is_named_or_warned_about(tmp_path):
    lines = ["cust,when,value,oid"] + [f"c{i},2024-01-{1 + i % 28:02d},{i},o{i}" for i in range(100)]
    never_closed = [*lines]
    never_closed[51] = never_closed[51].replace(",o", ',"o')
    (tmp_path / "open.csv").write_text("\n".join(never_closed) + "\n")
    with pytest.raises(IngestError, match=r"open.csv: line 52 opens a quoted field \(\"\) that is never closed"):
        load(tmp_path / "open.csv", tmp_path)
    # Closed 20 lines later: valid CSV, one value holding 20 lines, so 20 orders vanish; a warning says where.
    closed_later = [*never_closed]
    closed_later[71] = closed_later[71] + '"'
    (tmp_path / "later.csv").write_text("\n".join(closed_later) + "\n")
    result = load(tmp_path / "later.csv", tmp_path)
    assert result.report["rows_read"] == 80
    assert ("1 row(s) hold a line break inside a quoted value, joining 20 more line(s) of the file into them "
            "(first: data row 51)") in " ".join(result.report["warnings"])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_breaks_inside_values_are_counted_whatever_their_kind(tmp_path, newline):
    """A lone CR inside a quoted value was not warned about; a CRLF inside one counts as one line."""
    body = ["cust,when,value,oid", 'a,2024-01-01,1,"o\r1"', 'b,2024-01-02,2,"o\r\n2"', 'c,2024-01-03,3,"o\n3\n"', "d,2024-01-04,4,o4"]
    (tmp_path / "breaks.csv").write_bytes(newline.join(body).encode() + newline.encode())
    result = load(tmp_path / "breaks.csv", tmp_path)
    assert result.report["rows_read"] == 4
    assert ("3 row(s) hold a line break inside a quoted value, joining 4 more line(s) of the file into them "
            "(first: data row 1)") in " ".join(result.report["warnings"])


def test_a_quantity_column_of_words_is_warned_about(tmp_path):
    """Quantities like "2 pcs" were read as empty in silence, and two lines of one order differing only
    there became one record copied (the second set aside as duplicate_record)."""
    rows = [("a", "2024-01-01", "10", "o1", "2 pcs"), ("a", "2024-01-01", "10", "o1", "3 pcs"),
            ("b", "2024-01-02", "5", "o2", " 4 "), ("b", "2024-01-03", "5", "o3", ""), ("b", "2024-01-04", "5", "o4", "NULL")]
    path = write_csv(tmp_path / "q.csv", rows, header=("cust", "when", "value", "oid", "qty"))
    result = load(path, tmp_path, columns=MAPPED.model_copy(update={"quantity": "qty"}))
    assert result.report["rows_set_aside"]["duplicate_record"] == 1
    warnings = [w for w in result.report["warnings"] if "for quantity" in w]
    assert warnings == [
        "column 'qty' (for quantity) does not hold numbers in 2 row(s), read as empty: e.g. data row 1: qty='2 pcs'; "
        "data row 2: qty='3 pcs'; rows of one order id that differ only there count as one record copied "
        "(duplicate_record): convert the column to numbers, or leave quantity unmapped"
    ]
    # Numbers, blanks and missing-value markers are read without a word.
    path = write_csv(tmp_path / "fine.csv", [r[:4] + (q,) for r, q in zip(rows, ["2", "3", " 4 ", "", "NULL"])],
                     header=("cust", "when", "value", "oid", "qty"))
    result = load(path, tmp_path, columns=MAPPED.model_copy(update={"quantity": "qty"}))
    assert not [w for w in result.report["warnings"] if "quantity" in w]
    assert result.report["rows_set_aside"].get("duplicate_record", 0) == 0


def test_a_return_line_with_a_positive_amount_is_warned_about(tmp_path):
    """Online Retail style lines mapped with amount = the unit price: a cancelled line (quantity -12,
    price 6.95) counted as a 6.95 purchase in silence (net revenue 520k instead of 6.2M)."""
    rows = [("a", "2024-01-01", "6.95", "o1", "12"), ("a", "2024-01-02", "6.95", "Co1", "-12"),
            ("b", "2024-01-02", "-83.40", "Co2", "-12"), ("b", "2024-01-03", "0", "o3", "-1")]
    path = write_csv(tmp_path / "q.csv", rows, header=("cust", "when", "value", "oid", "qty"))
    result = load(path, tmp_path, columns=MAPPED.model_copy(update={"quantity": "qty"}))
    warnings = [w for w in result.report["warnings"] if "negative quantity" in w]
    assert warnings == [
        "1 row(s) have a negative quantity (column 'qty') and a positive amount (column 'value'), e.g. data row 2: "
        "qty='-12': they count as purchases. The amount must be the line's net total (quantity x unit price, negative "
        "for a return; quantity only tells repeated lines apart): if it is a unit price, write the line total into a "
        "column and map amount to it"
    ]
    assert result.report["net_revenue"] == pytest.approx(6.95 * 2 - 83.40)  # read as written: a warning, not a fix
    # Rows set aside (no customer id, after the as-of date) count as nothing, so the warning leaves them out.
    rows = [("a", "2024-01-05", "10", "o1", "2"), ("", "2024-01-05", "10", "o2", "-1"), ("b", "2024-05-05", "10", "o3", "-1")]
    path = write_csv(tmp_path / "q2.csv", rows, header=("cust", "when", "value", "oid", "qty"))
    result = load(path, tmp_path, columns=MAPPED.model_copy(update={"quantity": "qty"}), as_of=date(2024, 3, 31))
    assert not [w for w in result.report["warnings"] if "negative quantity" in w]


def test_database_numeric_columns_with_nulls_and_an_empty_table(tmp_path, monkeypatch):
    """A NULL in any NUMERIC column (an unmapped discount too) was an internal TypeError; an empty
    table with a NUMERIC amount an internal IbisTypeError instead of 'the input has no rows'."""
    monkeypatch.chdir(tmp_path)
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("create table o (cust text, \"when\" timestamp, value numeric(12,2), discount decimal(10,2))")
        db.executemany("insert into o values (?, ?, ?, ?)", [("a", "2025-01-01", 3, None), ("b", "2025-01-02", 5.25, 1.5)]
                       + [(f"c{i}", "2025-01-03", 1, None) for i in range(200)] + [("z", "2025-01-04", None, None)])
        db.execute("create table e (cust text, \"when\" timestamp, value numeric(12,2))")
    result = load("sqlite:///shop.db#o", tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    assert result.report["rows_read"] == 203 and result.report["rows_set_aside"]["non_numeric_amount"] == 1
    assert result.report["net_revenue"] == pytest.approx(208.25)
    with pytest.raises(IngestError, match=r"sqlite:///shop.db#e: the input has no rows"):
        load("sqlite:///shop.db#e", tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))


def test_a_date_format_that_reads_every_date_both_ways_warns(tmp_path):
    """DD/MM data read with '%m/%d/%Y' moved the as-of from 2024-11-12 to 2024-12-11 in silence."""
    rows = [("a", "01/02/2024", "10", "o1"), ("a", "05/03/2024", "20", "o2"), ("b", "12/11/2024", "5", "o3")]
    path = write_csv(tmp_path / "dates.csv", rows)
    result = load(path, tmp_path, date_format="%m/%d/%Y")
    assert result.as_of == date(2024, 12, 11)
    assert ("every date in column 'when' also reads with day and month the other way round ('%d/%m/%Y'): e.g. data "
            "row 1: when='01/02/2024' is 2024-01-02 with date_format '%m/%d/%Y', 2024-02-01 with '%d/%m/%Y'") in " ".join(
        result.report["warnings"])
    # One day past the 12th settles it; year-month-day formats are not doubted.
    path = write_csv(tmp_path / "settled.csv", rows + [("b", "25/11/2024", "5", "o4")])
    assert not [w for w in load(path, tmp_path, date_format="%d/%m/%Y").report["warnings"] if "other way round" in w]
    path = write_csv(tmp_path / "iso.csv", [("a", "2024/01/02", "10", "o1"), ("b", "2024/03/05", "5", "o2")])
    assert not [w for w in load(path, tmp_path, date_format="%Y/%m/%d").report["warnings"] if "other way round" in w]


def test_amounts_that_look_like_dot_grouped_thousands_warn(tmp_path):
    """German exports write 1.299 for 1,299: read as 1.299 in silence, the big spenders a thousand times too small."""
    rows = [("k1", "2024-01-05", "49", "o1"), ("k1", "2024-02-05", "1.299", "o2"), ("k2", "2024-02-06", "2.450", "o3")]
    result = load(write_csv(tmp_path / "de.csv", rows), tmp_path)
    assert ("2 of 3 amounts in column 'value' have exactly three digits after the point and none has other decimals: "
            "e.g. data row 2: value='1.299'; data row 3: value='2.450'. If the file groups thousands") in " ".join(
        result.report["warnings"])
    # One amount with cents settles it.
    result = load(write_csv(tmp_path / "us.csv", rows + [("k2", "2024-02-07", "12.50", "o4")]), tmp_path)
    assert not [w for w in result.report["warnings"] if "three digits" in w]


def test_decimal_commas_beside_comma_grouped_amounts_warn(tmp_path):
    """In a file of decimal commas, '12,50' was set aside and '1,250' read as 1250 (1.25 there), in silence."""
    rows = [("k1", "2024-01-05", "49", "o1"), ("k1", "2024-02-05", "1,250", "o2"), ("k2", "2024-02-06", "12,50", "o3")]
    rows += [(f"c{i}", "2024-03-01", "10", f"p{i}") for i in range(200)]
    result = load(write_csv(tmp_path / "de.csv", rows), tmp_path)
    assert result.report["rows_set_aside"]["non_numeric_amount"] == 1
    assert ("column 'value' holds 1 amount(s) with a decimal comma, set aside (data row 3: value='12,50'), and 1 with "
            "three digits after a comma, read as thousands (data row 2: value='1,250')") in " ".join(result.report["warnings"])
    # A value set aside is not cited as read as thousands ('1,2,3' has three characters after its first comma).
    odd = [row for row in rows if row[2] != "1,250"] + [("k3", "2024-02-08", "1,2,3", "o5")]
    warned = " ".join(load(write_csv(tmp_path / "odd.csv", odd), tmp_path).report["warnings"])
    assert "read as thousands" not in warned and "1,2,3" not in warned
    # Thousands separators alone (and with a point) are read without a word.
    rows = [("k1", "2024-01-05", "1,250", "o1"), ("k2", "2024-02-06", "1,587.65", "o2"), ("k2", "2024-02-07", "3", "o3")]
    assert not [w for w in load(write_csv(tmp_path / "us.csv", rows), tmp_path).report["warnings"] if "comma" in w]


def test_the_default_as_of_is_not_set_by_a_row_an_order_id_rule_sets_aside(tmp_path):
    """The last row reused another customer's order id (set aside as conflicting_order_id) and still set
    the as-of date: as_of 2024-12-30 beside last_order 2024-12-28 in one report."""
    rows = [("1", "2024-12-01", "10", "A"), ("2", "2024-12-05", "10", "B"), ("1", "2024-12-28", "10", "C"),
            ("2", "2024-12-30", "10", "A")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    assert result.report["rows_set_aside"]["conflicting_order_id"] == 1
    assert result.as_of == date(2024, 12, 28) and result.report["as_of"] == "2024-12-28"


def test_the_default_as_of_is_the_last_usable_order(tmp_path):
    """A last row with an empty or non-numeric amount (set aside) set the as-of date: every customer's
    recency and T grew by the gap, and the report's last_order disagreed with its as_of."""
    rows = [(f"c{i % 50}", f"2024-01-{1 + i // 10:02d}", "10", f"o{i}") for i in range(300)]
    for amount in ("", "abc"):
        result = load(write_csv(tmp_path / "t.csv", rows + [("c99", "2024-03-20", amount, "ox")]), tmp_path)
        assert result.as_of == date(2024, 1, 30) and result.report["rows_set_aside"]["non_numeric_amount"] == 1


def test_a_default_as_of_date_in_the_future_is_refused_like_an_explicit_one(tmp_path):
    """A mistyped 2099 in a file too small for the stray-date check became the as-of date, exit 0:
    the store's latest run, and every real run after it a backfill."""
    import datetime as dt

    tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    rows = [("c1", "2025-01-03", "10", "o1"), ("c2", "2025-01-04", "5", "o2"), ("c1", "2099-01-05", "10", "o3")]
    with pytest.raises(DateError, match=r"t.csv: the last order is on 2099-01-05, in the future \(today is .*\): a mistyped "
                                        r"date or a wrong clock\? e.g. data row 3: when='2099-01-05'; fix those rows, or pass --as-of"):
        load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    assert load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2025, 1, 4)).report["rows_set_aside"]["after_as_of"] == 1
    # A day of slack for time zones: an order dated tomorrow (UTC) is today somewhere.
    rows[2] = ("c1", tomorrow.isoformat(), "10", "o3")
    assert load(write_csv(tmp_path / "t.csv", rows), tmp_path).as_of == tomorrow


def test_unix_times_in_too_fine_a_unit_are_refused(tmp_path):
    """Seconds read as milliseconds put three years of orders in January 1970, in silence."""
    path = write_csv(tmp_path / "epoch.csv", [("a", "1672674852", "10", "o1"), ("b", "1735603200", "5", "o2")])
    with pytest.raises(IngestError, match=r"epoch.csv: column 'when' read with date_format 'epoch_ms' puts every order "
                                          r"in 1969-1970 \(the last on 1970-01-21\)"):
        load(path, tmp_path, date_format="epoch_ms")
    assert load(path, tmp_path, date_format="epoch").as_of == date(2024, 12, 31)
    # Excel's serial day numbers: "a coarser unit" named only finer ones.
    serial = write_csv(tmp_path / "serial.csv", [("a", "45292", "10", "o1"), ("b", "45300", "5", "o2")])
    with pytest.raises(IngestError, match=r"they look like day numbers such as Excel's serial dates \(45292 is 2024-01-01\)"):
        load(serial, tmp_path, date_format="epoch")
    # Negative seconds of real 1960s orders are dated as written (they were blamed on Excel's day numbers);
    # negative seconds read as milliseconds land in the last days of 1969, refused without that hint.
    sixties = write_csv(tmp_path / "sixties.csv", [("a", "-144676800", "10", "o1"), ("a", "-104676800", "20", "o2")])
    assert load(sixties, tmp_path, date_format="epoch").as_of == date(1966, 9, 7)
    with pytest.raises(IngestError, match=r"in 1969-1970 \(the last on 1969-12-30\): the numbers are in a coarser unit; "
                                          r"date_format 'epoch' reads seconds"):
        load(sixties, tmp_path, date_format="epoch_ms")


def test_folders_written_by_spark_or_hive_partitioned_and_an_empty_folder(tmp_path):
    frame = pd.DataFrame({"cust": ["a", "b", "c"], "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2025-01-01"]),
                          "value": [1.0, 2.0, 3.0], "year": [2024, 2024, 2025]})
    spark_out = tmp_path / "spark_out"
    spark_out.mkdir()
    frame.iloc[:2].to_parquet(spark_out / "part-00000-x.snappy.parquet", index=False)
    frame.iloc[2:].to_parquet(spark_out / "part-00001-x.snappy.parquet", index=False)
    (spark_out / "_SUCCESS").touch()
    (spark_out / ".part-00000-x.snappy.parquet.crc").write_bytes(b"crc")
    frame.to_parquet(tmp_path / "hive", partition_cols=["year"], index=False)
    columns = ColumnMapping(customer_id="cust", order_ts="when", amount="value")
    for folder in (spark_out, tmp_path / "hive"):
        assert load(folder, tmp_path, columns=columns).report["rows_used"] == 3
    (tmp_path / "nothing").mkdir()
    with pytest.raises(IngestError, match="the folder holds no data file"):
        parse_source(str(tmp_path / "nothing"))


def test_examples_from_a_folder_name_the_file_they_are_in(tmp_path):
    """A headerless second file (its first row read as a header) is named, not only the folder."""
    folder = tmp_path / "orders"
    folder.mkdir()
    write_csv(folder / "a.csv", GOOD_ROWS)
    (folder / "b.csv").write_text("d,2024-01-03,7,o8\nd,2024-01-04,8,o9\ne,2024-01-05,9,o10\n")
    # Its first order became column names, out of every count: refused before reading, naming the file.
    with pytest.raises(IngestError, match=r"b.csv: no header naming column 'cust', 'when', 'value' \(mapped in "
                                          r"source.columns\); its first line is 'd,2024-01-03,7,o8'"):
        load(folder, tmp_path)
    # With a header, a row's file and its row there are named.
    (folder / "b.csv").write_text("cust,when,value,oid\nd,,7,o8\nd,2024-01-04,8,o9\n")
    with pytest.raises(IngestError, match=r"data row 6 \(b.csv, its data row 1\): when=\(empty\)"):
        load(folder, tmp_path)
    # So does the example of a warning about rows set aside (it gave only "data row 6").
    more = [(f"m{i}", "2024-01-02", "1", f"m{i}") for i in range(150)]
    write_csv(folder / "a.csv", GOOD_ROWS + more)
    result = load(folder, tmp_path)
    assert "set aside as unparseable_date (e.g. data row 156 (b.csv, its data row 1): (empty))" in " ".join(result.report["warnings"])


def test_folder_files_may_spell_headers_in_other_case_or_open_with_a_title(tmp_path):
    """The first file's spelling named the joined columns, and the mapping's was 'missing'."""
    folder = tmp_path / "orders"
    folder.mkdir()
    (folder / "2024-01.csv").write_text("Cust,WHEN,Value\na,2024-01-01,10\n")
    (folder / "2024-02.csv").write_text("Orders export\n\ncust,when,value\nb,2024-02-01,20\n")
    result = load(folder, tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    assert result.report["rows_read"] == 2 and result.report["rows_used"] == 2
    assert sorted(result.transactions.to_pandas().customer_id) == ["a", "b"]


def test_a_blank_only_line_or_utf16_text_is_named(tmp_path):
    """A line of spaces made the reader see one column ("missing column 'cust'"); UTF-16 was "a value
    holding an unquoted ','?"."""
    path = tmp_path / "blanks.csv"
    path.write_text("cust,when,value,oid\na,2024-01-01,10,o1\n \t\nb,2024-01-02,5,o2\n")
    with pytest.raises(IngestError, match=r"blanks.csv: line 3 holds only blanks \(spaces or tabs\)"):
        load(path, tmp_path)
    parquet = tmp_path / "orders.csv"
    pd.DataFrame({"cust": ["a"]}).to_parquet(parquet)
    with pytest.raises(IngestError, match=r"orders.csv: this is a Parquet file, not CSV text .* give it a .parquet name"):
        load(parquet, tmp_path)
    path = tmp_path / "unicode.csv"
    path.write_text("cust,when,value,oid\na,2024-01-01,10,o1\n", encoding="utf-16")
    with pytest.raises(IngestError, match=r"unicode.csv: the file is UTF-16 text .* save it as UTF-8"):
        load(path, tmp_path)


def test_mixed_line_endings_are_named_without_the_path_and_mapping_hint(tmp_path):
    """A script's LF lines appended to a spreadsheet's CRLF export: 'Error when sniffing file ""' and a
    hint to check the path and the column mapping."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "mixed.csv"
    path.write_bytes(b"cust,when,value,oid\r\na,2024-01-01,10,o1\r\nb,2024-01-02,20,o2\nc,2024-01-03,30,o3\n")
    with pytest.raises(IngestError, match=r"mixed.csv: mixed line endings: 2 in CRLF \(Windows\) \(first: line 1\) "
                                          r"and 2 in LF \(first: line 3\)"):
        load(path, tmp_path)
    old_mac = tmp_path / "cr.csv"  # bare CRs beside LFs (or CRLFs) said "Error when sniffing file" too
    old_mac.write_bytes(b"cust,when,value,oid\ra,2024-01-01,10,o1\rb,2024-01-02,20,o2\nc,2024-01-03,30,o3\n")
    with pytest.raises(IngestError, match=r"cr.csv: mixed line endings: 2 in CR \(old Mac\) \(first: line 1\) and 2 in LF "
                                          r"\(first: line 3\)"):
        load(old_mac, tmp_path)
    vipcast = Path(sys.executable).parent / "vipcast"
    result = subprocess.run([str(vipcast), "features", "--data", str(path), "--as-of", "2024-01-03", "--out",
                             str(tmp_path / "f.parquet"), "--workdir", str(tmp_path / "ws")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "mixed line endings" in result.stderr and "hint:" not in result.stderr


def test_padding_rows_without_any_value_are_set_aside_not_blamed_on_the_dates(tmp_path):
    """A spreadsheet's ';;' lines (2% of the rows) stopped the run as dates that are not dates."""
    rows = [(f"c{i}", f"2024-01-{1 + i % 28:02d}", str(i), f"o{i}") for i in range(98)] + [("", "", "", "")] * 2
    result = load(write_csv(tmp_path / "padded.csv", rows), tmp_path)
    assert result.report["rows_set_aside"]["null_customer_id"] == 2
    assert result.report["rows_used"] == 98


def test_an_unreachable_database_or_an_unknown_scheme_is_named_in_one_line(tmp_path):
    """A refused connection was an input error (exit 2, "check the column mapping") over two lines; the
    store's URL form postgresql+psycopg:// printed its password in Ibis's message."""
    from flows.ingest import SourceUnreachable

    with pytest.raises(SourceUnreachable) as refused:
        load("postgres://shop:s3cret@127.0.0.1:1/sales#orders", tmp_path)
    message = str(refused.value)
    assert message.startswith("postgres://shop:***@127.0.0.1:1/sales#orders: cannot connect to the database (OperationalError: ")
    assert "\n" not in message and "s3cret" not in message
    with pytest.raises(IngestError) as unknown:
        load("postgresql+psycopg://shop:s3cret@127.0.0.1:1/sales#orders", tmp_path)
    assert "cannot read this URL" in str(unknown.value) and "source URLs look like postgres://" in str(unknown.value)
    assert "s3cret" not in str(unknown.value)


def test_a_database_password_never_reaches_messages_or_reports(tmp_path):
    """The label (error messages, reconciliation.json, the runs table, run.json) held user:password@."""
    source = parse_source("postgresql://shop:s3cret@db.example:5432/sales#orders")
    assert source.label == "postgresql://shop:***@db.example:5432/sales#orders"
    assert "s3cret" not in source.identity and "s3cret" in source.location  # the connection still has it
    assert parse_source("postgresql://shop@db.example/sales#orders").label == "postgresql://shop@db.example/sales#orders"
    data = tmp_path / "orders.csv"
    data.write_text("customer_id,order_ts,amount\na,2025-01-01,10\n")
    assert parse_source(str(data)).identity == str(data.absolute())


def test_a_quoted_field_after_the_sniffers_sample_is_read(tmp_path):
    """DuckDB's sniffer reads ~20,000 rows: a first quoted amount ("1,587.65") at row 30,001 failed
    the whole file ("Expected Number of Columns: 5 Found: 6")."""
    rows = [(f"c{i % 500}", f"2024-01-{1 + i % 28:02d}", f"{i % 100}.5", f"o{i}") for i in range(30_000)]
    path = write_csv(tmp_path / "t.csv", [*rows, ("c2", "2024-01-28", "1,587.65", "x3")])
    result = load(path, tmp_path)
    assert result.report["rows_used"] == 30_001
    assert result.transactions.to_pandas()["amount"].max() == 1587.65


def test_a_file_source_is_identified_by_its_resolved_path(tmp_path):
    data = tmp_path / "orders.csv"
    data.write_text("customer_id,order_ts,amount\na,2025-01-01,10\n")
    (tmp_path / "sub").mkdir()
    assert parse_source(str(tmp_path / "sub" / ".." / "orders.csv")).identity == str(data.resolve())


def test_an_order_id_belongs_to_its_first_user_up_to_the_as_of_date(tmp_path):
    """The owner was the smallest customer id among all rows: customer A's order after the as-of date
    took B's earlier order O1 away (B lost a purchase day in features as of a date before A's row)."""
    filler = [(f"f{i}", f"2024-01-{1 + i % 28:02d}", "1", f"x{i}") for i in range(300)]
    rows = [("B", "2024-01-02", "20", "O1"), ("B", "2024-02-02", "20", "O2"), ("A", "2024-06-01", "99", "O1"), *filler]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2024, 3, 1))
    assert result.report["rows_set_aside"]["conflicting_order_id"] == 0
    assert dict(zip(result.quarantine["raw_customer_id"], result.quarantine["reason"])) == {"A": "after_as_of"}
    # Both before the as-of date: the later user conflicts, whatever the ids' order.
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2024, 6, 30))
    assert dict(zip(result.quarantine["raw_customer_id"], result.quarantine["reason"])) == {"A": "conflicting_order_id"}


def test_dates_outside_1900_to_2199_are_set_aside_as_unparseable(tmp_path):
    """'31.12.24' read with %d.%m.%Y is the year 24, and '0204-05-01' a typo: T was ~730,000 days."""
    filler = [(f"f{i}", f"2024-06-{1 + i % 28:02d}", "1", f"x{i}") for i in range(500)]
    rows = [*filler, ("K1", "0024-12-31", "10", "k1"), ("K2", "0204-05-01", "10", "k2"), ("K3", "1899-12-31", "1", "k3"),
            ("K4", "1900-01-01", "1", "k4")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2024, 6, 30))
    aside = result.quarantine.set_index("raw_customer_id")["reason"].to_dict()
    assert aside == {"K1": "unparseable_date", "K2": "unparseable_date", "K3": "unparseable_date"}
    assert result.report["first_order"].startswith("1900-01-01")


def test_a_parquet_folder_mixing_integer_and_float_ids_keeps_every_customer(tmp_path):
    """One month's file with int64 ids, another's with floats (a missing id): read as one table the
    ids became doubles, and three customers above 2**53 merged into one."""
    import numpy as np

    folder = tmp_path / "pq"
    folder.mkdir()
    big = np.array([6006491234567890123, 6006491234567890124, 6006491234567890125], dtype="int64")
    pd.DataFrame({"cust": big, "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
                  "value": [10.0, 20.0, 30.0]}).to_parquet(folder / "2024-01.parquet", index=False)
    pd.DataFrame({"cust": [np.nan, 42.0], "when": pd.to_datetime(["2024-02-01", "2024-02-02"]),
                  "value": [5.0, 6.0]}).to_parquet(folder / "2024-02.parquet", index=False)
    result = load(folder, tmp_path, as_of=date(2024, 2, 28), columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    ids = sorted(result.transactions.to_pandas()["customer_id"])
    assert ids == ["42", "6006491234567890123", "6006491234567890124", "6006491234567890125"]
    assert result.report["customers_read"] == 4 and result.report["rows_set_aside"]["null_customer_id"] == 1
    assert list(result.quarantine["source_row"]) == [4]  # rows numbered across the files


@pytest.mark.parametrize("renamed", ["cust", "value", "oid"])
def test_a_parquet_folder_file_without_a_mapped_column_is_refused(tmp_path, renamed):
    """Read by name across the files, a file with `customer_id` spelt `id` had its customers set aside as
    null ids and the run exited 0 (5 of 40 customers gone); a renamed amount quietly lost its rows."""
    folder = tmp_path / "pq"
    folder.mkdir()
    rows = pd.DataFrame({"cust": ["a", "b"], "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                         "value": [10.0, 20.0], "oid": ["o1", "o2"]})
    rows.to_parquet(folder / "1.parquet", index=False)
    rows.assign(oid=["o3", "o4"]).rename(columns={renamed: "other"}).to_parquet(folder / "2.parquet", index=False)
    with pytest.raises(IngestError, match=rf"2.parquet: no column '{renamed}' \(mapped in source.columns\), which other "
                                          rf"files of .*pq have; its columns: .*'other'"):
        load(folder, tmp_path, as_of=date(2024, 2, 28))


def test_a_parquet_folder_mixing_text_with_float_ids_or_utc_timestamps_reads_each_file_alike(tmp_path):
    """A float id 103.0 in one file and the text "103" in another were two customers ("103.0" and
    "103"); UTC timestamps in one file and text dates in another became text with "+00", unparseable."""
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"cust": ["103", "C7"], "when": ["2024-01-10", "2024-01-11 08:30:00"], "value": [10.0, 20.0]}).to_parquet(
        folder / "a.parquet", index=False)
    pd.DataFrame({"cust": [103.0, float("nan")], "when": pd.to_datetime(["2024-02-05 10:00:00.250", "2024-02-06 23:30:00.000"]).tz_localize("UTC"),
                  "value": [5.0, 6.0]}).to_parquet(folder / "b.parquet", index=False)
    result = load(folder, tmp_path, as_of=date(2024, 2, 28), columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    clean = result.transactions.to_pandas().sort_values("order_ts")
    assert sorted(set(clean["customer_id"])) == ["103", "C7"]
    assert result.report["rows_set_aside"]["null_customer_id"] == 1 and result.report["rows_set_aside"]["unparseable_date"] == 0
    assert list(clean["order_ts"]) == [pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-11 08:30"), pd.Timestamp("2024-02-05 10:00:00.25")]


def test_ids_written_with_a_zero_fraction_are_the_whole_numbers_in_every_format(tmp_path):
    """pandas writes an integer id column with gaps (guest orders) as 13085.0: the CSV gave customer
    "13085.0" where the same data as Parquet or SQLite gave "13085", so switching the format wiped the
    tier history; a folder of months written with and without gaps made two customers."""
    rows = [("13085.0", "2024-01-01", "10", "489434.0"), ("13085", "2024-01-02", "20", "489435"),
            ("-7.00", "2024-01-03", "5", "o3"), ("1.05", "2024-01-04", "3", "o4"), ("A1.0", "2024-01-05", "1", "o5"),
            ("13085.0", "2024-01-06", "2", "489434")]  # the same order id written both ways: one order
    csv = load(write_csv(tmp_path / "t.csv", rows), tmp_path)
    frame = csv.transactions.to_pandas().sort_values("order_ts")
    assert list(frame["customer_id"]) == ["13085", "13085", "-7", "1.05", "A1.0", "13085"]
    assert list(frame["order_id"]) == ["489434", "489435", "o3", "o4", "o5", "489434"]
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"cust": [13085.0, 13085.0, -7.0, 1.05, None, 13085.0], "when": [r[1] for r in rows], "value": [10.0, 20, 5, 3, 1, 2],
                  "oid": [r[3] for r in rows]}).to_parquet(parquet, index=False)
    from_parquet = load(parquet, tmp_path).transactions.to_pandas()
    assert set(from_parquet["customer_id"]) == {"13085", "-7", "1.05"}


def test_impossible_utc_offsets_are_not_dates(tmp_path):
    """'+99:99' was read as a shift of 100 hours and '-48' as 48: orders moved days, across the as-of date."""
    rows = [(f"c{i}", "2024-03-01 12:00:00", "1", f"o{i}") for i in range(1_000)]
    bad = ["2024-03-01 12:00:00+99:99", "2024-03-01 12:00:00+25:00", "2024-03-01 12:00:00-48", "2024-03-01 12:00:00+05:75",
           "2024-03-01 12:00:00-13:00", "2024-03-01 12:00:00+14:30", "2024-03-01 12:00:00 GMT-13"]
    good = ["2024-03-01 23:00:00-12:00", "2024-03-02 01:00:00+14:00", "2024-03-01 12:00:00+0530"]
    rows += [("x", when, "1", f"b{i}") for i, when in enumerate(bad + good)]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, as_of=date(2024, 3, 5))
    assert result.report["rows_set_aside"]["unparseable_date"] == len(bad)
    clean = result.transactions.to_pandas()
    assert sorted(clean.loc[clean["customer_id"] == "x", "order_ts"]) == [
        pd.Timestamp("2024-03-01 06:30"), pd.Timestamp("2024-03-01 11:00"), pd.Timestamp("2024-03-02 11:00")]


def test_utc_offsets_with_or_without_minutes(tmp_path):
    """PostgreSQL writes a UTC timestamp as '2024-02-05 10:00:00+00' (hours only)."""
    rows = [("a", "2024-02-05 10:00:00+00", "1", "o1"), ("a", "2024-02-06T01:30:00-05", "2", "o2"),
            ("a", "2024-02-07 10:00:00+0530", "3", "o3"), ("a", "2024-02-08 10:00+05:30", "4", "o4"),
            # A space before the offset, zone names (as some exports and loggers write them).
            ("a", "2024-02-09 10:00:00 -05:00", "5", "o5"), ("a", "2024-02-10 10:00:00 UTC", "6", "o6"),
            ("a", "2024-02-11T10:00:00.5 GMT", "7", "o7"), ("a", "2024-02-12 10:00 GMT+1", "8", "o8"),
            ("a", "2024-02-13 10:00:00 UTC-03:30", "9", "o9"), ("a", "2024-02-14 10:00:00 Z", "10", "o10")]
    clean = load(write_csv(tmp_path / "t.csv", rows), tmp_path).transactions.to_pandas().sort_values("order_ts")
    assert list(clean["order_ts"]) == [pd.Timestamp(t) for t in (
        "2024-02-05 10:00", "2024-02-06 06:30", "2024-02-07 04:30", "2024-02-08 04:30", "2024-02-09 15:00",
        "2024-02-10 10:00", "2024-02-11 10:00:00.5", "2024-02-12 09:00", "2024-02-13 13:30", "2024-02-14 10:00",
    )]


def test_seven_to_nine_digits_of_a_second_are_read_to_the_microsecond(tmp_path):
    """SQL Server's datetime2 / .NET write 7 digits, pandas 9: the whole column was "not ISO timestamps"."""
    rows = [("a", "2024-03-01 10:00:00.1234567", "1", "o1"), ("a", "2024-03-05T10:00:00.0000000", "2", "o2"),
            ("b", "2024-03-02 11:00:00.123456789", "3", "o3"), ("b", "2024-03-03T11:00:00.9999999+02:00", "4", "o4"),
            ("b", "2024-03-04 11:00:00.1234567 UTC", "5", "o5"), ("c", "2024-03-10Z", "6", "o6"),
            ("c", "2024-03-04 11:00:00.1234567890", "7", "o7")]  # ten digits: not a timestamp
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, max_invalid_share=0.5)
    clean = result.transactions.to_pandas().sort_values("order_id")
    assert [str(ts) for ts in clean["order_ts"]] == [
        "2024-03-01 10:00:00.123456", "2024-03-05 10:00:00", "2024-03-02 11:00:00.123456", "2024-03-03 09:00:00.999999",
        "2024-03-04 11:00:00.123456", "2024-03-10 00:00:00",
    ]
    assert list(result.quarantine["raw_order_ts"]) == ["2024-03-04 11:00:00.1234567890"]
    assert result.report["rows_set_aside"]["unparseable_date"] == 1


def test_amounts_of_a_quadrillion_or_more_are_set_aside(tmp_path):
    """1e33 passed as a finite number and failed the feature build (money is summed exactly as DECIMAL(38, 6))."""
    rows = [("a", "2024-02-05", "1e33", "o1"), ("a", "2024-02-06", "-1000000000000000", "o2"),
            ("a", "2024-02-07", "999999999999999", "o3"), ("b", "2024-02-07", "12.5", "o4")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, max_invalid_share=0.9)
    assert result.report["rows_set_aside"]["non_numeric_amount"] == 2
    assert list(result.quarantine["raw_amount"]) == ["1e33", "-1000000000000000"]
    assert sorted(result.transactions.to_pandas()["amount"]) == [12.5, 999999999999999.0]


def test_text_that_only_looks_like_a_zoned_time_is_an_unparseable_date(tmp_path):
    rows = [("a", "2024-02-05 10:00:00 CET", "1", "o1"), ("a", "2024-02-05 10:00:00+", "1", "o2"),
            ("a", "2024-02-05 10:00:00  UTC", "1", "o3"), ("a", "2024-02-05 10:00:00+123", "1", "o4"),
            ("a", "2024-02-05 25:00:00 UTC", "1", "o5"), ("a", "2024-02-05", "1", "o6")]
    result = load(write_csv(tmp_path / "t.csv", rows), tmp_path, max_invalid_share=0.9)
    assert result.report["rows_set_aside"]["unparseable_date"] == 5
    assert list(result.quarantine["raw_order_ts"]) == [row[1] for row in rows[:5]]


def test_a_database_column_with_values_of_another_type_sets_those_rows_aside(tmp_path):
    """SQLite keeps 'n/a' in a REAL column: the whole table failed with an Arrow conversion error."""
    import sqlite3

    path = tmp_path / "mixed.db"
    with sqlite3.connect(path) as db:
        db.execute("create table t2 (cust TEXT, \"when\" TEXT, value REAL)")
        db.executemany("insert into t2 values (?, ?, ?)",
                       [("A", "2024-01-01", "n/a"), *((f"c{i}", f"2024-01-{1 + i % 28:02d}", i + 0.5) for i in range(301))])
    result = load(f"sqlite:///{path}#t2", tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    assert result.report["rows_used"] == 301 and result.report["rows_set_aside"]["non_numeric_amount"] == 1
    assert sorted(result.transactions.to_pandas()["amount"])[:2] == [0.5, 1.5]
    # DATETIME and NUMERIC columns fail in pandas' date parser or in decimal, not in Arrow.
    with sqlite3.connect(path) as db:
        db.execute("create table t3 (cust TEXT, \"when\" DATETIME, value NUMERIC)")
        db.executemany("insert into t3 values (?, ?, ?)",
                       [("A", "not a date", 1), ("B", "2024-02-01", "1,587.65"),
                        *((f"c{i}", f"2024-01-{1 + i % 28:02d} 10:00:00", i + 0.5) for i in range(301))])
    result = load(f"sqlite:///{path}#t3", tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    assert result.report["rows_used"] == 302 and result.report["rows_set_aside"]["unparseable_date"] == 1
    assert 1587.65 in set(result.transactions.to_pandas()["amount"])
    # A column that is NULL in every row (no type) and a BLOB column were an internal error.
    with sqlite3.connect(path) as db:
        db.execute("create table t4 (cust TEXT, \"when\" TEXT, value REAL, note TEXT, picture BLOB)")
        db.executemany("insert into t4 values (?, ?, ?, NULL, ?)", [("A", "2024-01-01", 1.0, b"\x89PNG"), ("B", "2024-01-02", 2.0, None)])
    result = load(f"sqlite:///{path}#t4", tmp_path, columns=ColumnMapping(customer_id="cust", order_ts="when", amount="value"))
    assert result.report["rows_used"] == 2


def test_example_values_read_as_a_user_wrote_them():
    import numpy as np

    from flows.ingest import _shown

    assert [_shown(v) for v in (np.float64("nan"), None, np.int64(5), np.float64(2.5), "x")] == ["(empty)", "(empty)", "5", "2.5", "'x'"]


def test_quarantine_keeps_every_source_column(tmp_path):
    """A set-aside row keeps its unmapped columns too (raw.<name>), so it can be fixed and loaded again."""
    path = tmp_path / "t.csv"
    path.write_text("cust,when,value,oid,sku,note\na,2024-01-01,1,o1,S-1,ok\n,2024-01-02,2,o2,S-2,no id\nb,2024-01-03,x,o3,S-3,\n")
    quarantine = load(path, tmp_path, max_invalid_share=1.0).quarantine
    assert list(quarantine["source_row"]) == [2, 3]
    assert list(quarantine["raw.sku"]) == ["S-2", "S-3"] and quarantine["raw.note"].iloc[0] == "no id"
    assert list(quarantine["raw_amount"]) == ["2", "x"] and "raw.cust" not in quarantine


def test_a_password_holding_a_bare_at_sign_is_refused_and_never_shown(tmp_path):
    """`postgresql://admin:pa@ssW0RD@host/db`: the driver looked up 'ssW0RD@host' and the message showed it."""
    from flows.ingest import hide_password

    with pytest.raises(IngestError) as err:
        parse_source("postgresql://admin:pa@ssW0RD@127.0.0.1:5433/vip#orders")
    assert "ssW0RD" not in str(err.value) and "holds '@': write each '@' in them as %40" in str(err.value)
    with pytest.raises(IngestError, match="the port 'notaport' is not a number"):
        parse_source("postgresql://admin:pw@127.0.0.1:notaport/vip#orders")
    assert hide_password("cannot connect postgresql://admin:pa@ssW0RD@127.0.0.1:5433/vip: x") == (
        "cannot connect postgresql://admin:***@127.0.0.1:5433/vip: x")
    assert hide_password("postgres://u:p@h1,u2:p2@h2/db#t") == "postgres://u:***@h1,u2:***@h2/db#t"
    # A password parameter last in the query hid the rest of the message with it.
    assert hide_password("postgresql://bob@h:1/db?password=s3cret#orders, port 1 failed: Connection refused") == (
        "postgresql://bob@h:1/db?password=***#orders, port 1 failed: Connection refused")
    assert hide_password("--data 'postgresql://b@h/db?sslmode=disable&password=s3cret#orders'` first") == (
        "--data 'postgresql://b@h/db?sslmode=disable&password=***#orders'` first")


def test_a_file_name_that_is_not_utf8_is_named(tmp_path):
    """lat\\xe9n.parquet (a Latin-1 name) failed with "'utf-8' codec can't encode character '\\udce9' ...
    surrogates not allowed", naming neither the file nor the cause; also inside a folder."""
    import os

    name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/lat\xe9n.csv")
    Path(name).write_text("customer_id,order_ts,amount\na,2024-01-01,5\n")
    for source in (name, str(tmp_path)):
        with pytest.raises(IngestError, match=r"lat\\xe9n.csv: the file name is not UTF-8 .* rename it to a UTF-8 name"):
            parse_source(source)
