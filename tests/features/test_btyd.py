import datetime as dt
import importlib.resources

import ibis
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data

from features.btyd import BTYD_COLUMNS, btyd_summary
from features.synthetic import generate_transactions
from tests.features.conftest import TOY_CUTOFF, by_customer, duckdb_table

MULTIPLIER = {"days": 1, "weeks": 7}


def lifetimes_summary(frame: pd.DataFrame, cutoff: dt.date, time_unit: str) -> pd.DataFrame:
    summary = summary_data_from_transaction_data(
        frame,
        "customer_id",
        "order_ts",
        monetary_value_col="amount",
        observation_period_end=pd.Timestamp(cutoff),
        freq="D",
        freq_multiplier=MULTIPLIER[time_unit],
    )
    summary.index = summary.index.astype(str)
    return summary.sort_index()


def assert_same_summary(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.index) == list(theirs.index)
    for column in BTYD_COLUMNS:
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-9, atol=1e-9, err_msg=column)


@pytest.mark.parametrize("time_unit", ["days", "weeks"])
def test_equals_lifetimes_on_cdnow_sample(cdnow_sample_frame, time_unit):
    cutoff = dt.date(1997, 9, 30)
    ours = by_customer(btyd_summary(duckdb_table(cdnow_sample_frame), cutoff, time_unit))
    assert_same_summary(ours, lifetimes_summary(cdnow_sample_frame, cutoff, time_unit))


@pytest.mark.parametrize("cutoff", [dt.date(1997, 1, 1), dt.date(1997, 3, 31), dt.date(1997, 9, 30), dt.date(1998, 6, 30)])
def test_equals_lifetimes_on_cdnow_master(cdnow_master_frame, cutoff):
    ours = by_customer(btyd_summary(duckdb_table(cdnow_master_frame), cutoff))
    assert_same_summary(ours, lifetimes_summary(cdnow_master_frame, cutoff, "days"))


def test_reproduces_published_cdnow_calibration_summary(cdnow_sample_frame):
    path = importlib.resources.files("lifetimes") / "datasets" / "cdnow_customers_summary_with_transactions.csv"
    published = pd.read_csv(path).set_index("ID").sort_index()
    ours = by_customer(btyd_summary(duckdb_table(cdnow_sample_frame), dt.date(1997, 9, 30), "weeks"))
    ours.index = ours.index.astype(int)
    ours = ours.sort_index()
    assert list(ours.index) == list(published.index)
    np.testing.assert_array_equal(ours.frequency, published.x)
    # The published file rounds recency, T and the mean repeat value to two decimals.
    np.testing.assert_allclose(ours.recency, published.t_x, atol=0.005 + 1e-9)
    np.testing.assert_allclose(ours["T"], published["T"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(ours.monetary_value, published.zbar, atol=0.005 + 1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_lifetimes_on_synthetic_data_without_refunds(seed):
    frame, _ = generate_transactions(800, seed, refund_share=0.0)
    assert (frame.amount >= 0).all()
    cutoff = dt.date(2025, 3, 31)
    ours = by_customer(btyd_summary(duckdb_table(frame), cutoff, "weeks"))
    assert_same_summary(ours, lifetimes_summary(frame, cutoff, "weeks"))


def test_refund_only_days_are_not_purchase_days(toy, toy_frame):
    ours = by_customer(btyd_summary(toy, TOY_CUTOFF))
    same_day_totals = toy_frame.assign(day=toy_frame.order_ts.dt.normalize())
    day_max = same_day_totals.groupby(["customer_id", "day"]).amount.transform("max")
    without_refund_only_days = toy_frame[day_max >= 0]
    assert_same_summary(ours, lifetimes_summary(without_refund_only_days, TOY_CUTOFF, "days"))
    assert "F" not in ours.index
    assert ours.loc["B"].to_dict() == {"frequency": 1.0, "recency": 121.0, "T": 121.0, "monetary_value": 10.0}


def test_hand_worked_toy_summary(toy):
    ours = by_customer(btyd_summary(toy, TOY_CUTOFF))
    expected = pd.DataFrame(
        {
            "frequency": [3.0, 1.0, 1.0, 0.0, 1.0],
            "recency": [327.0, 121.0, 30.0, 0.0, 355.0],
            "T": [356.0, 121.0, 60.0, 547.0, 365.0],
            "monetary_value": [100.0 / 3, 10.0, 25.0, 0.0, 100.0],
        },
        index=pd.Index(["A", "B", "C", "D", "E"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(ours, expected, check_exact=False, rtol=1e-12)


def test_weeks_divide_days_by_seven(toy):
    days = by_customer(btyd_summary(toy, TOY_CUTOFF, "days"))
    weeks = by_customer(btyd_summary(toy, TOY_CUTOFF, "weeks"))
    np.testing.assert_allclose(weeks["T"], days["T"] / 7, rtol=1e-12)
    np.testing.assert_allclose(weeks.recency, days.recency / 7, rtol=1e-12)
    np.testing.assert_array_equal(weeks.frequency, days.frequency)


def test_runs_on_a_memtable(toy_frame):
    ours = by_customer(btyd_summary(ibis.memtable(toy_frame), TOY_CUTOFF))
    assert ours.loc["A", "frequency"] == 3.0


def test_rejects_an_unknown_time_unit(toy):
    with pytest.raises(ValueError, match="time_unit must be one of"):
        btyd_summary(toy, TOY_CUTOFF, "months")
