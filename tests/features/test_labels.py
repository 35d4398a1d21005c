import datetime as dt

import pandas as pd
import pytest

from features.labels import horizon_labels
from tests.features.conftest import TOY_CUTOFF, by_customer


def test_hand_worked_toy_labels(toy):
    expected = pd.DataFrame(
        {
            # A buys the day after the cutoff; B at 23:00 on cutoff + 30 days (inside); C at midnight
            # on cutoff + 31 days (outside); E only refunds, which nets into spend but is no order.
            "horizon_spend": [999.0, 5.0, 0.0, 0.0, -15.0],
            "horizon_orders": [1, 1, 0, 0, 0],
            "churned": [False, False, True, True, True],
        },
        index=pd.Index(["A", "B", "C", "D", "E"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(by_customer(horizon_labels(toy, TOY_CUTOFF, 30)), expected, check_dtype=False)


def test_an_order_on_the_cutoff_day_is_a_feature_not_a_label(toy):
    day_before = by_customer(horizon_labels(toy, TOY_CUTOFF - dt.timedelta(days=1), 1))
    on_cutoff = by_customer(horizon_labels(toy, TOY_CUTOFF, 1))
    # B's order at 23:59 on the cutoff day is the whole one-day horizon of the day before...
    assert day_before.loc["B"].tolist() == [10.0, 1, False]
    # ...and outside the horizon of the cutoff itself, where A's order at midnight the day after is inside.
    assert on_cutoff.loc["B"].tolist() == [0.0, 0, True]
    assert on_cutoff.loc["A"].tolist() == [999.0, 1, False]


def test_customers_without_a_purchase_by_the_cutoff_are_left_out(toy):
    labels = by_customer(horizon_labels(toy, dt.date(2023, 6, 30), 365))
    # Only D (2022) has bought by then: E starts the next day; F, who only refunds, is never a customer.
    assert labels.index.tolist() == ["D"]


@pytest.mark.parametrize("horizon_days", [0, -5, 2.5, True])
def test_a_bad_horizon_is_refused(toy, horizon_days):
    with pytest.raises(ValueError, match="horizon_days must be a positive whole number"):
        horizon_labels(toy, TOY_CUTOFF, horizon_days)
