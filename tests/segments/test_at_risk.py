"""At-risk members: who, why, what it takes to keep the tier, ranking."""

from __future__ import annotations

import pandas as pd
import pytest
from segment_tables import AS_OF, customers_table, state_table

from segments import SegmentSettings, nominate

SAFE = {"predicted_spend": 20000.0}  # projects above every threshold


def at_risk_of(customers, previous_state=None, settings=SegmentSettings()):
    return nominate(customers, previous_state, AS_OF, settings, 365).at_risk.set_index("customer_id")


def test_churn_threshold_is_inclusive_and_only_vips_are_listed():
    at_risk = at_risk_of(
        customers_table(
            {"customer_id": "at_threshold", "rolling_12m_spend": 6000.0, "churn_probability": 0.5, **SAFE},
            {"customer_id": "below_threshold", "rolling_12m_spend": 6000.0, "churn_probability": 0.49, **SAFE},
            {"customer_id": "base", "rolling_12m_spend": 1000.0, "churn_probability": 0.95},
        )
    )
    assert list(at_risk.index) == ["at_threshold"]
    assert at_risk.loc["at_threshold", "reason"] == "high churn risk"
    assert at_risk.loc["at_threshold", "tier"] == "Gold"


def test_projected_drop_below_the_tier():
    at_risk = at_risk_of(
        customers_table(
            {"customer_id": "drops", "rolling_12m_spend": 5600.0, "predicted_spend": 4000.0,
             "spend_expiring_90d": 1000.0, "churn_probability": 0.2, "days_since_last_order": 45.0},
            {"customer_id": "holds", "rolling_12m_spend": 5600.0, "predicted_spend": 5000.0},
        )
    )
    assert list(at_risk.index) == ["drops"]
    row = at_risk.loc["drops"]
    assert row["reason"] == "projected below Gold"
    assert row["projected_shortfall"] == pytest.approx(1000.0)
    assert row["spend_to_keep_tier"] == pytest.approx(400.0)  # 5000 - (5600 - 1000)
    assert row["days_left"] == 90
    assert row["days_since_last_order"] == 45
    # Whole days in every outlet (the list showed 45.0 where features and the customers' table show 45).
    assert at_risk["days_since_last_order"].dtype == "Int64"
    assert row["at_risk_score"] == pytest.approx(0.2 * 5600.0)  # max(0.2, 1000 / 5000) * 5600


def test_member_in_grace_has_the_remaining_grace_and_the_gap_to_close():
    previous = state_table({"customer_id": "c1", "tier": "Gold", "grace_until": pd.Timestamp("2024-07-10")})
    at_risk = at_risk_of(customers_table({"rolling_12m_spend": 4200.0, **SAFE}), previous)
    row = at_risk.loc["c1"]
    assert row["reason"] == "in grace until 2024-07-10"
    assert row["days_left"] == 10
    assert row["spend_to_keep_tier"] == pytest.approx(800.0)


def test_in_grace_the_amount_to_keep_counts_the_spend_leaving_before_grace_ends():
    """'$143.22 more by 2025-12-29' was today's shortfall: $1,053 rolled out of the window before the
    grace ended, and members who spent the amount lost the tier all the same."""
    previous = state_table({"customer_id": "c1", "tier": "Gold", "grace_until": pd.Timestamp("2024-07-10")},
                           {"customer_id": "c2", "tier": "Gold", "grace_until": pd.Timestamp("2024-07-01")})
    asked = []

    def expiring_by(ids, days):
        asked.append(dict(zip(ids, days)))
        return pd.Series({"c1": 300.0}).reindex(ids.to_numpy()).fillna(0.0).set_axis(ids.index)

    customers = customers_table({"customer_id": "c1", "rolling_12m_spend": 4200.0, **SAFE},
                                {"customer_id": "c2", "rolling_12m_spend": 4900.0, **SAFE},
                                {"customer_id": "c3", "rolling_12m_spend": 5600.0, "churn_probability": 0.9, **SAFE})
    at_risk = nominate(customers, previous, AS_OF, SegmentSettings(), 365, expiring_by=expiring_by).at_risk.set_index("customer_id")
    assert asked == [{"c1": 10, "c2": 1}]  # once, for the members in grace, with the days their grace has left
    assert at_risk.loc["c1", "spend_to_keep_tier"] == pytest.approx(1100.0)  # 5000 - (4200 - 300)
    assert at_risk.loc["c2", "spend_to_keep_tier"] == pytest.approx(100.0)
    assert at_risk.loc["c3", "spend_to_keep_tier"] == pytest.approx(0.0)  # not in grace: the 90-day rule


def test_reasons_combine_and_ranking_is_risk_times_value():
    at_risk = at_risk_of(
        customers_table(
            {"customer_id": "small_but_sure", "rolling_12m_spend": 2500.0, "churn_probability": 0.9, **SAFE},
            {"customer_id": "big_maybe", "rolling_12m_spend": 12000.0, "churn_probability": 0.55, **SAFE},
            {"customer_id": "both", "rolling_12m_spend": 6000.0, "churn_probability": 0.8, "predicted_spend": 1000.0},
        )
    )
    assert list(at_risk.index) == ["big_maybe", "both", "small_but_sure"]  # 6600, 4800, 2250
    assert list(at_risk["rank"]) == [1, 2, 3]
    assert at_risk.loc["both", "reason"] == "high churn risk; projected below Gold"
