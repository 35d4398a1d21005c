"""Nothing after the cutoff reaches a feature, and nothing after the horizon reaches a label.

Counts and days must match exactly; sums may differ in the last bits because DuckDB adds floats
in an order that depends on the row order, so they are compared to 1e-12 relative.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.build import customer_features
from features.labels import horizon_labels
from features.synthetic import generate_transactions
from tests.features.conftest import by_customer, duckdb_table

CUTOFF = dt.date(2025, 3, 31)
HORIZON_DAYS = 90


def assert_same(changed: pd.DataFrame, original: pd.DataFrame) -> None:
    pd.testing.assert_index_equal(changed.index, original.index)
    for column in original.columns:
        if original[column].dtype.kind == "f":
            np.testing.assert_allclose(changed[column], original[column], rtol=1e-12, atol=1e-9, err_msg=column)
        else:
            np.testing.assert_array_equal(changed[column], original[column], err_msg=column)


@pytest.fixture(scope="module")
def history():
    frame, _ = generate_transactions(1000, 3)
    return frame


def perturbed_after(frame: pd.DataFrame, day: dt.date, seed: int) -> pd.DataFrame:
    """`frame` with every row after `day` changed: amounts rescaled, half deleted, rows and customers added."""
    rng = np.random.default_rng(seed)
    start_of_next_day = pd.Timestamp(day) + pd.Timedelta(days=1)
    before, after = frame[frame.order_ts < start_of_next_day], frame[frame.order_ts >= start_of_next_day]
    after = after.sample(frac=0.5, random_state=seed).copy()
    after["amount"] = after.amount * rng.uniform(-2, 3, len(after))
    extra = before.sample(n=300, random_state=seed).copy()
    extra["order_ts"] = start_of_next_day + pd.to_timedelta(rng.integers(0, 200 * 86400, len(extra)), unit="s")
    extra.iloc[:5, extra.columns.get_loc("order_ts")] = start_of_next_day  # midnight right after the day
    extra["amount"] = rng.uniform(-50, 500, len(extra))
    newcomers = extra.head(20).assign(customer_id=[f"NEW{i}" for i in range(20)])
    return pd.concat([before, after, extra, newcomers], ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_after_the_cutoff_change_no_feature(history, seed):
    original = by_customer(customer_features(duckdb_table(history), CUTOFF))
    changed = by_customer(customer_features(duckdb_table(perturbed_after(history, CUTOFF, seed)), CUTOFF))
    assert_same(changed, original)


def test_the_check_would_notice_a_change_on_the_cutoff_day(history):
    original = by_customer(customer_features(duckdb_table(history), CUTOFF))
    late_order = history.head(1).assign(order_ts=pd.Timestamp(CUTOFF) + pd.Timedelta(hours=23, minutes=59), amount=1.0)
    changed = by_customer(customer_features(duckdb_table(pd.concat([history, late_order])), CUTOFF))
    with pytest.raises(AssertionError, match="days_since_last_order|purchase_days|frequency|recency"):
        assert_same(changed, original)


@pytest.mark.parametrize("seed", [0, 1])
def test_rows_after_the_horizon_change_no_label(history, seed):
    end = CUTOFF + dt.timedelta(days=HORIZON_DAYS)
    original = by_customer(horizon_labels(duckdb_table(history), CUTOFF, HORIZON_DAYS))
    changed = by_customer(horizon_labels(duckdb_table(perturbed_after(history, end, seed)), CUTOFF, HORIZON_DAYS))
    assert_same(changed, original)
    assert not original.churned.all() and original.churned.any()
