"""Shared data for the feature tests: CDNOW frames, a five-customer toy history, a DuckDB helper."""

from __future__ import annotations

import datetime as dt
import importlib.resources

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

TOY_CUTOFF = dt.date(2024, 6, 30)

# Five customers whose features are worked out by hand in the tests (days_ago is days to
# TOY_CUTOFF): A buys four times (one after the cutoff too); B has a refund-only day and an order
# late on the cutoff day; C has a $0 order and no categories; D has one order only; E has two
# orders on the same day. F only ever refunds, so is no customer. Rows after the cutoff are the
# labels' material: B's at 23:00 on cutoff + 30 days is inside a 30-day horizon, C's at midnight
# the day after is not.
TOY_ROWS = [
    ("A", "2023-07-10 09:00", 100.0, "music"),  # 356 days ago
    ("A", "2023-10-01 12:00", 20.0, "music"),  # 273
    ("A", "2024-01-15 12:00", 50.0, "music"),  # 167
    ("A", "2024-06-01 12:00", 30.0, "books"),  # 29
    ("A", "2024-07-01 00:00", 999.0, "books"),  # after the cutoff
    ("B", "2024-03-01 12:00", 80.0, "books"),  # 121
    ("B", "2024-03-05 12:00", -20.0, "books"),  # 117, refund-only day
    ("B", "2024-06-30 23:59", 10.0, "toys"),  # 0, late on the cutoff day
    ("B", "2024-07-30 23:00", 5.0, "toys"),  # cutoff + 30 days
    ("C", "2024-05-01 12:00", 0.0, None),  # 60, a $0 order
    ("C", "2024-05-31 12:00", 25.0, None),  # 30
    ("C", "2024-07-31 00:00", 7.0, None),  # cutoff + 31 days
    ("D", "2022-12-31 12:00", 200.0, "music"),  # 547
    ("E", "2023-07-01 12:00", 10.0, "music"),  # 365
    ("E", "2024-06-20 10:00", 40.0, "music"),  # 10
    ("E", "2024-06-20 18:00", 60.0, "books"),  # 10, same day
    ("E", "2024-07-10 12:00", -15.0, "music"),  # after the cutoff, refund-only day
    ("F", "2024-01-01 12:00", -5.0, "music"),  # refund only
]


def transactions_frame(rows: list[tuple]) -> pd.DataFrame:
    """A canonical transactions frame from (customer_id, order_ts, amount, category) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount", "category"])
    return pd.DataFrame(
        {
            "customer_id": frame.customer_id.astype(str),
            "order_ts": pd.to_datetime(frame.order_ts),
            "amount": frame.amount.astype("float64"),
            "order_id": pd.Series([f"O{i}" for i in range(len(frame))], dtype=str),
            "category": frame.category.astype(object).where(frame.category.notna(), None),
            "quantity": 1.0,
        }
    )


def duckdb_table(frame: pd.DataFrame) -> ir.Table:
    """`frame` as a table in a fresh in-memory DuckDB database."""
    return ibis.duckdb.connect().create_table("transactions", frame)


def by_customer(table: ir.Table) -> pd.DataFrame:
    """An Ibis result as a pandas frame indexed by customer_id, sorted."""
    return table.to_pandas().set_index("customer_id").sort_index()


def read_cdnow(name: str, columns: list[str], *, has_header: bool) -> pd.DataFrame:
    """A CDNOW file shipped with lifetimes as a canonical transactions frame."""
    path = importlib.resources.files("lifetimes") / "datasets" / name
    raw = pd.read_csv(path, sep=r"\s+", header=0 if has_header else None, names=columns, dtype=str)
    return pd.DataFrame(
        {
            "customer_id": raw.customer_id,
            "order_ts": pd.to_datetime(raw.date, format="%Y%m%d"),
            "amount": raw.amount.astype("float64"),
        }
    )


@pytest.fixture(scope="session")
def toy_frame() -> pd.DataFrame:
    return transactions_frame(TOY_ROWS)


@pytest.fixture
def toy(toy_frame: pd.DataFrame) -> ir.Table:
    return duckdb_table(toy_frame)


@pytest.fixture(scope="session")
def cdnow_sample_frame() -> pd.DataFrame:
    """CDNOW_sample with the sample id (1..2357, the published summary's ID) as customer_id."""
    return read_cdnow("CDNOW_sample.txt", ["master_id", "customer_id", "date", "cds", "amount"], has_header=False)


@pytest.fixture(scope="session")
def cdnow_master_frame() -> pd.DataFrame:
    return read_cdnow("CDNOW_master.txt", ["customer_id", "date", "cds", "amount"], has_header=True)


@pytest.fixture(scope="session")
def spark_connection(spark_backend):
    """The suite's one local Spark session (tests/conftest.py)."""
    return spark_backend
