import math

import pandas as pd
import pytest

from features.activity import activity_rows, daily_totals
from features.behaviour import (
    behaviour_aggregates,
    behaviour_columns,
    categories_bought,
    category_aggregates,
    check_window_days,
    spend_expiring_within,
)
from tests.features.conftest import TOY_CUTOFF, by_customer, duckdb_table, transactions_frame

CUSTOMERS = pd.Index(["A", "B", "C", "D", "E"], name="customer_id")


def toy_behaviour(toy, **windows):
    rows = activity_rows(toy, TOY_CUTOFF)
    daily = daily_totals(rows)
    per_day = daily.group_by("customer_id").aggregate(
        bought=daily.is_purchase_day.any(), **behaviour_aggregates(daily, **windows)
    )
    bought = categories_bought(rows)
    per_row = bought.group_by("customer_id").aggregate(**category_aggregates(bought))
    joined = per_day.filter(per_day.bought).left_join(per_row, "customer_id").drop("bought", "customer_id_right")
    return by_customer(joined).fillna({"category_breadth": 0, "category_breadth_growth": 0})


def test_hand_worked_toy_windows_and_tenure(toy):
    expected = pd.DataFrame(
        {
            "tenure_days": [356, 121, 60, 547, 365],
            # A window of N days is days_ago < N: C's order 30 days back is outside the 30-day window
            # and E's 365 days back outside the 365-day one; B's refund nets into B's 180-day spend.
            "spend_30d": [30.0, 10.0, 0.0, 0.0, 100.0],
            "spend_90d": [30.0, 10.0, 25.0, 0.0, 100.0],
            "spend_180d": [80.0, 70.0, 25.0, 0.0, 100.0],
            "spend_365d": [200.0, 70.0, 25.0, 0.0, 100.0],
            "orders_30d": [1, 1, 0, 0, 1],
            "orders_90d": [1, 1, 2, 0, 1],
            "orders_180d": [2, 2, 2, 0, 1],
            "orders_365d": [4, 2, 2, 0, 1],
            # Spend 275-364 days back leaves the rolling year within 90 days: A's $100 (356 days),
            # not A's $20 (273 days) nor E's $10 (365 days, already out).
            "spend_expiring_90d": [100.0, 0.0, 0.0, 0.0, 0.0],
        },
        index=CUSTOMERS,
    )
    ours = toy_behaviour(toy)[expected.columns]
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False)


def test_hand_worked_toy_trends(toy):
    ours = toy_behaviour(toy)
    # A: mean order value 40 in the last 180 days (50, 30) vs 60 in the 180 before (100, 20).
    assert ours.loc["A", "aov_trend"] == pytest.approx((40 - 60) / (40 + 60))
    # A: gap 167 -> 29 = 138 days lately vs 356 -> 273 = 83 days before: buying less often.
    assert ours.loc["A", "purchase_interval_acceleration"] == pytest.approx(math.log(83 / 138))
    # Nobody else has orders in both periods (E's 365-day-old order is beyond the earlier 180 days).
    assert (ours.loc[["B", "C", "D", "E"], ["aov_trend", "purchase_interval_acceleration"]] == 0).all().all()


def test_hand_worked_toy_categories(toy):
    ours = toy_behaviour(toy)
    # B's refunded category does not count as bought; C has no categories; A and E add books lately.
    assert ours.category_breadth.tolist() == [2, 2, 0, 1, 2]
    assert ours.category_breadth_growth.tolist() == [1, 2, 0, 0, 1]


def test_trends_of_a_steady_customer_are_zero_and_of_a_speeding_up_one_positive():
    rows = [("S", f"{2023 + (m > 12)}-{(m - 1) % 12 + 1:02d}-15", 10.0, "x") for m in range(7, 19)]
    rows += [("U", "2023-08-01", 10.0, "x"), ("U", "2023-11-01", 10.0, "x")]  # 334 and 242 days back
    rows += [("U", "2024-06-01", 30.0, "x"), ("U", "2024-06-11", 30.0, "x"), ("U", "2024-06-21", 30.0, "x")]
    ours = toy_behaviour(duckdb_table(transactions_frame(rows)), windows_days=(30,))
    assert ours.loc["S", "aov_trend"] == 0.0
    assert abs(ours.loc["S", "purchase_interval_acceleration"]) < 0.05
    assert ours.loc["U", "aov_trend"] == pytest.approx((30 - 10) / (30 + 10))
    assert ours.loc["U", "purchase_interval_acceleration"] == pytest.approx(math.log(92 / 10))


def test_no_nulls_and_the_documented_columns(toy):
    ours = toy_behaviour(toy, windows_days=(7, 400), expiring_days=(30, 365))
    assert list(ours.columns) == list(behaviour_columns((7, 400), (30, 365)))
    assert not ours.isna().any().any()
    # Everything in the rolling year leaves it within 365 days; E's order 365 days back is in the 400-day window.
    assert ours.spend_expiring_365d.tolist() == [200.0, 70.0, 25.0, 0.0, 100.0]
    assert ours.spend_400d.tolist() == [200.0, 70.0, 25.0, 0.0, 110.0]


@pytest.mark.parametrize(
    ("days", "message"),
    [((30, 0), "positive whole numbers"), ((30, 30), "repeated"), ((30.5,), "positive whole numbers")],
)
def test_bad_windows_are_refused(days, message):
    with pytest.raises(ValueError, match=message):
        check_window_days(days, "windows_days")


def test_expiring_beyond_a_year_is_refused(toy):
    with pytest.raises(ValueError, match="expiring_days must be at most 365"):
        toy_behaviour(toy, expiring_days=(400,))


def test_spend_expiring_within_a_number_of_days_per_customer(toy):
    """A member in grace until a date of their own: the spend gone from the window by then is
    spend_expiring_{N}d with each customer's N (a member's grace ends on its own day)."""
    days = {"A": 30, "B": 90, "C": 365, "D": 30, "E": 200}
    fixed = toy_behaviour(toy, expiring_days=tuple(sorted(set(days.values()))))
    within = toy.get_backend().create_table("within", pd.DataFrame({"customer_id": list(days), "within_days": list(days.values())}))
    expected = pd.Series({c: fixed.loc[c, f"spend_expiring_{d}d"] for c, d in days.items()})
    for longest in (365, max(days.values())):  # reading only the days that can leave gives the same sums
        ours = by_customer(spend_expiring_within(toy, TOY_CUTOFF, within, longest))["spend_expiring"]
        assert ours.reindex(expected.index).fillna(0.0).tolist() == expected.tolist()
    assert expected.sum() > 0 and len(set(expected)) > 1  # the toy has spend leaving at different days
