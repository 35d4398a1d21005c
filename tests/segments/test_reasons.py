"""Reason phrases: templates with the customer's values, generic phrases, non-features ignored."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from segments.reasons import phrase, reason_lists, top_reasons


def test_templates_use_the_feature_values():
    assert phrase("spend_90d", 1240.0) == "spent $1,240 in the last 90 days"
    assert phrase("aov_trend", 0.2) == "order value up 50% in the last 6 months"
    assert phrase("aov_trend", -0.2) == "order value down 33% in the last 6 months"
    assert phrase("aov_trend", 0.5) == "order value 3.0x what it was in the 6 months before"
    assert phrase("aov_trend", 0.0) == phrase("aov_trend", -0.001) == "order value steady over the last 12 months"
    assert phrase("purchase_interval_acceleration", math.log(2)) == "buying 2.0x as often as before"
    # A ratio that rounds to 1.0 read "buying 1.0x as often as before", a reason for rising that said nothing.
    assert phrase("purchase_interval_acceleration", math.log(1.04)) == "buying as often as before"
    assert phrase("purchase_interval_acceleration", math.log(1 / 1.04)) == "buying as often as before"
    assert phrase("purchase_interval_acceleration", math.log(1 / 1.5)) == "buying less often than before (every 1.5x as many days)"
    assert phrase("category_breadth_growth", 1.0) == "bought from 1 new category in the last 6 months"
    # "... of last year's spend about to roll off" argued against a rising star's rise: the spend as a fact.
    assert phrase("spend_expiring_90d", 563.89) == "spent $563.89 9 to 12 months ago"


def test_generic_phrases_for_unknown_or_valueless_features():
    assert phrase("loyalty_points", 420.0) == "loyalty points is high (420)"
    assert phrase("btyd_expected_spend", None) == "strong purchase history"
    assert phrase("mystery_feature", float("nan")) == "mystery feature raised the forecast"


def test_top_reasons_order_limit_and_exclusions():
    contributions = pd.Series(
        {"spend_90d": 10.0, "aov_trend": 30.0, "frequency": 20.0, "T": 5.0, "tenure_days": -3.0,
         "expected_value": 900.0, "btyd_component": 800.0}
    )
    values = pd.Series({"spend_90d": 300.0, "aov_trend": 0.2, "frequency": 4.0, "T": 200.0})
    assert top_reasons(contributions, values) == [
        "order value up 50% in the last 6 months",
        "came back to buy on 4 separate days",
        "spent $300 in the last 90 days",
    ]
    assert top_reasons(pd.Series({"a_feature": -1.0, "expected_value": 5.0}), values) == []


def test_a_decline_is_no_reason_to_rise():
    """'order value down 65% in the last 6 months' was a CDNOW rising star's reason (its SHAP contribution
    was positive): a trend at a decline is passed over and the next feature takes its place."""
    contributions = pd.Series({"aov_trend": 9.0, "purchase_interval_acceleration": 8.0, "category_breadth_growth": 7.5,
                               "net_spend": 7.0, "T": 6.0, "spend_90d": 1.0})
    values = pd.Series({"aov_trend": -0.477, "purchase_interval_acceleration": math.log(1 / 1.5),
                        "category_breadth_growth": -1.0, "net_spend": 1548.28, "T": 489.0, "spend_90d": 300.0})
    assert top_reasons(contributions, values) == ["spent $1,548.28 in total", "first order 489 days ago"]
    growing = pd.Series({**values, "aov_trend": 0.2, "purchase_interval_acceleration": math.log(2)})
    assert top_reasons(contributions, growing) == [
        "order value up 50% in the last 6 months", "buying 2.0x as often as before", "spent $1,548.28 in total",
    ]
    # Without values there is nothing to call a decline: the plain phrases stay.
    assert len(top_reasons(contributions, None)) == 3


def test_reasons_for_many_customers_equal_the_reasons_one_by_one():
    rng = np.random.default_rng(0)
    columns = ["spend_90d", "aov_trend", "frequency", "btyd_p_order", "expected_value", "zeta", "alpha"]
    contributions = pd.DataFrame(rng.choice([-1.0, 0.0, 2.0, 3.0, np.nan], (40, len(columns))), columns=columns)
    values = pd.DataFrame({"spend_90d": rng.gamma(1.0, 500.0, 40), "aov_trend": rng.uniform(-0.9, 0.9, 40),
                           "frequency": rng.integers(0, 9, 40), "zeta": [np.nan] * 40, "alpha": ["gold"] * 40})
    together = reason_lists(contributions, values)
    for row in range(len(contributions)):
        assert together[row] == top_reasons(contributions.iloc[row], values.iloc[row]), row
    assert reason_lists(contributions, None)[0] == top_reasons(contributions.iloc[0], None)


def test_one_reason_per_family_of_windows():
    """Three spend windows are one reason (the strongest), and the next family gets the free place."""
    contributions = pd.Series({"net_spend": 0.9, "spend_180d": 0.8, "spend_90d": 0.7, "orders_90d": 0.6, "orders_30d": 0.5,
                               "aov_trend": 0.1, "tenure_days": -0.2, "expected_value": 5.0})
    values = pd.Series({"net_spend": 5501.0, "spend_180d": 3100.0, "spend_90d": 900.0, "orders_90d": 4.0, "orders_30d": 2.0,
                        "aov_trend": 0.2, "tenure_days": 400.0})
    assert top_reasons(contributions, values) == [
        "spent $5,501 in total", "4 orders in the last 90 days", "order value up 50% in the last 6 months",
    ]
    assert top_reasons(contributions, values, limit=2) == ["spent $5,501 in total", "4 orders in the last 90 days"]


def test_money_texts_never_contradict_their_figures():
    from segments.texts import money_text

    # A cent short of $5,000 is not "$5,000"; whole amounts stay short; the sign goes before the $.
    assert [money_text(v) for v in (4999.99, 5000.0, 1999.9999999999998, 0.01, -5000.0, -12.5, -0.0, -0.001, 1234.5)] == [
        "$4,999.99", "$5,000", "$2,000", "$0.01", "-$5,000", "-$12.50", "$0", "$0", "$1,234.50",
    ]


def test_windows_of_any_configured_length_read_as_windows_and_share_a_family():
    """features.windows_days [14, 45, 400] read 'spend 400d is high (7,060)' next to two other spends."""
    contributions = pd.Series({"spend_400d": 0.9, "spend_45d": 0.8, "net_spend": 0.7, "orders_14d": 0.6, "tenure_days": 0.1})
    values = pd.Series({"spend_400d": 7060.25, "spend_45d": 1207.0, "net_spend": 11415.35, "orders_14d": 3.0, "tenure_days": 500.0})
    assert top_reasons(contributions, values) == [
        "spent $7,060.25 in the last 400 days", "3 orders in the last 14 days", "customer for 500 days",
    ]


def test_recency_and_tenure_reasons_count_days_in_the_weeks_unit_too():
    """In the weeks unit a rising star read "first order 151 days ago" for 1,060 days (T in weeks):
    recency and T are phrased from the features that count the same spans in whole days."""
    import datetime as dt

    from features.build import customer_features_frame
    from features.synthetic import generate_transactions
    from tests.features.conftest import duckdb_table

    frame, _ = generate_transactions(300, 5)
    cutoff = dt.date(2025, 6, 30)
    by_unit = {unit: customer_features_frame(duckdb_table(frame), cutoff, time_unit=unit).set_index("customer_id").sort_index()
               for unit in ("days", "weeks")}
    days, weeks = by_unit["days"], by_unit["weeks"]
    repeat = days.index[days["frequency"] > 0]
    assert len(repeat) > 50 and (weeks.loc[repeat, "T"] * 7 - days.loc[repeat, "T"]).abs().max() < 1e-9
    contributions = pd.DataFrame({"T": 2.0, "recency": 1.0}, index=repeat)
    expected = [[f"first order {int(t)} day{'s' if t != 1 else ''} ago",
                 f"still buying {int(r)} day{'s' if r != 1 else ''} after the first order"]
                for t, r in zip(days.loc[repeat, "T"], days.loc[repeat, "recency"])]
    assert reason_lists(contributions, days.loc[repeat], limit=2) == expected
    assert reason_lists(contributions, weeks.loc[repeat], limit=2) == expected
