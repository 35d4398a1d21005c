"""Tier rules: thresholds (absolute and share), grace period, progress to the next tier."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from segment_tables import AS_OF, customers_table, state_table

from segments import SegmentSettings, TierThresholds, nominate
from segments.tiers import tier_threshold_amounts


def tiers_of(customers, previous_state=None, as_of=AS_OF, settings=SegmentSettings()):
    result = nominate(customers, previous_state, as_of, settings, horizon_days=365)
    return result.tiers.set_index("customer_id")


def test_exactly_at_a_threshold_is_in_the_tier():
    spends = [1999.99, 2000.0, 4999.99, 5000.0, 9999.99, 10000.0]
    tiers = tiers_of(customers_table(*({"rolling_12m_spend": s} for s in spends)))
    assert list(tiers.loc[[f"c{i}" for i in range(1, 7)], "tier"]) == [
        "Base", "Silver", "Silver", "Gold", "Gold", "Platinum"
    ]


def test_a_threshold_reached_in_cents_is_reached_whatever_the_float_sum():
    """155.57 + 574.31 + 1270.12 is $2,000.00, but 1999.9999999999998 as a float sum: the customer was
    Base, $2.3e-13 short of Silver, with a "near the next tier" event on every run."""
    spend = 155.57 + 574.31 + 1270.12
    assert spend < 2000.0
    tiers = tiers_of(customers_table({"customer_id": "h21", "rolling_12m_spend": spend},
                                     {"customer_id": "h04", "rolling_12m_spend": 1999.99}))
    assert tiers.loc["h21", "tier"] == "Silver"
    assert tiers.loc["h21", "rolling_12m_spend"] == 2000.0
    assert tiers.loc["h21", "amount_to_next_tier"] == 3000.0
    # Amounts are reported to the cent they are, not with the float's tail (0.009999999999990905).
    assert tiers.loc["h04", "tier"] == "Base"
    assert tiers.loc["h04", "amount_to_next_tier"] == 0.01


def test_progress_and_amount_to_next_tier():
    tiers = tiers_of(
        customers_table(
            {"customer_id": "base", "rolling_12m_spend": 500.0},
            {"customer_id": "silver", "rolling_12m_spend": 3500.0},
            {"customer_id": "gold", "rolling_12m_spend": 6000.0},
            {"customer_id": "platinum", "rolling_12m_spend": 25000.0},
        )
    )
    assert tiers.loc["base", "next_tier"] == "Silver"
    assert tiers.loc["base", "amount_to_next_tier"] == pytest.approx(1500.0)
    assert tiers.loc["base", "progress_to_next_tier"] == pytest.approx(0.25)
    assert tiers.loc["silver", "progress_to_next_tier"] == pytest.approx(0.5)
    assert tiers.loc["silver", "amount_to_next_tier"] == pytest.approx(1500.0)
    assert tiers.loc["gold", "progress_to_next_tier"] == pytest.approx(0.2)
    assert tiers.loc["gold", "next_tier_threshold"] == pytest.approx(10000.0)
    assert tiers.loc["platinum", "next_tier"] is None
    assert math.isnan(tiers.loc["platinum", "amount_to_next_tier"])
    assert math.isnan(tiers.loc["platinum", "progress_to_next_tier"])


def test_net_negative_spend_after_refunds_is_base_with_zero_progress():
    tiers = tiers_of(customers_table({"rolling_12m_spend": -500.0}))
    assert tiers.loc["c1", "tier"] == "Base"
    assert tiers.loc["c1", "progress_to_next_tier"] == 0.0
    assert tiers.loc["c1", "amount_to_next_tier"] == pytest.approx(2500.0)


def test_falling_below_starts_grace_and_keeps_the_tier():
    previous = state_table({"customer_id": "c1", "tier": "Gold"})
    tiers = tiers_of(customers_table({"rolling_12m_spend": 3000.0}), previous)
    assert tiers.loc["c1", "tier"] == "Gold"
    assert tiers.loc["c1", "qualified_tier"] == "Silver"
    assert bool(tiers.loc["c1", "in_grace"])
    assert tiers.loc["c1", "grace_until"] == pd.Timestamp(AS_OF) + pd.Timedelta(days=90)


def test_last_day_of_grace_keeps_the_tier_and_the_day_after_demotes():
    grace_end = dt.date(2024, 6, 30)
    previous = state_table({"customer_id": "c1", "tier": "Gold", "grace_until": pd.Timestamp(grace_end)})
    customers = customers_table({"rolling_12m_spend": 3000.0})

    last_day = tiers_of(customers, previous, as_of=grace_end)
    assert last_day.loc["c1", "tier"] == "Gold"
    assert bool(last_day.loc["c1", "in_grace"])
    assert last_day.loc["c1", "grace_until"] == pd.Timestamp(grace_end)

    day_after = tiers_of(customers, previous, as_of=grace_end + dt.timedelta(days=1))
    assert day_after.loc["c1", "tier"] == "Silver"
    assert not bool(day_after.loc["c1", "in_grace"])
    assert pd.isna(day_after.loc["c1", "grace_until"])


def test_grace_is_not_extended_by_later_runs():
    grace_end = pd.Timestamp("2024-07-15")
    previous = state_table({"customer_id": "c1", "tier": "Gold", "grace_until": grace_end})
    tiers = tiers_of(customers_table({"rolling_12m_spend": 1000.0}), previous)
    assert tiers.loc["c1", "tier"] == "Gold"
    assert tiers.loc["c1", "grace_until"] == grace_end


def test_recovery_during_grace_clears_it():
    previous = state_table({"customer_id": "c1", "tier": "Gold", "grace_until": pd.Timestamp("2024-07-15")})
    tiers = tiers_of(customers_table({"rolling_12m_spend": 5000.0}), previous)
    assert tiers.loc["c1", "tier"] == "Gold"
    assert not bool(tiers.loc["c1", "in_grace"])
    assert pd.isna(tiers.loc["c1", "grace_until"])


def test_demotion_after_grace_goes_to_the_tier_the_spend_supports():
    previous = state_table({"customer_id": "c1", "tier": "Platinum", "grace_until": pd.Timestamp("2024-06-01")})
    tiers = tiers_of(customers_table({"rolling_12m_spend": 2500.0}), previous)
    assert tiers.loc["c1", "tier"] == "Silver"


def test_upgrades_are_immediate_and_skip_tiers():
    previous = state_table({"customer_id": "c1", "tier": "Silver"})
    tiers = tiers_of(customers_table({"rolling_12m_spend": 10000.0}), previous)
    assert tiers.loc["c1", "tier"] == "Platinum"
    assert not bool(tiers.loc["c1", "in_grace"])


def test_zero_grace_days_demotes_immediately():
    previous = state_table({"customer_id": "c1", "tier": "Gold"})
    tiers = tiers_of(customers_table({"rolling_12m_spend": 3000.0}), previous, settings=SegmentSettings(grace_days=0))
    assert tiers.loc["c1", "tier"] == "Silver"
    assert not bool(tiers.loc["c1", "in_grace"])


def test_share_mode_top_shares():
    spends = [1000.0, 900.0, 800.0, 700.0, 600.0, 500.0, 400.0, 300.0, 200.0, 100.0]
    shares = TierThresholds(mode="share", silver=0.3, gold=0.2, platinum=0.1)
    settings = SegmentSettings(tiers=shares)
    result = nominate(customers_table(*({"rolling_12m_spend": s} for s in spends)), None, AS_OF, settings, 365)
    assert result.tier_thresholds == {"Base": 0.0, "Silver": 800.0, "Gold": 900.0, "Platinum": 1000.0}
    tiers = result.tiers.set_index("customer_id")
    assert list(tiers.loc[["c1", "c2", "c3", "c4"], "tier"]) == ["Platinum", "Gold", "Silver", "Base"]


def test_share_mode_ties_at_the_boundary_all_qualify_whatever_the_row_order():
    spends = [500.0, 500.0, 500.0, 400.0, 300.0, 200.0, 100.0, 50.0, 20.0, 10.0]
    settings = SegmentSettings(tiers=TierThresholds(mode="share", silver=0.5, gold=0.2, platinum=0.1))
    customers = customers_table(*({"rolling_12m_spend": s} for s in spends))
    first = nominate(customers, None, AS_OF, settings, 365).tiers.set_index("customer_id")["tier"]
    shuffled = customers.sample(frac=1.0, random_state=3)
    second = nominate(shuffled, None, AS_OF, settings, 365).tiers.set_index("customer_id")["tier"]
    assert list(first.loc[["c1", "c2", "c3"]]) == ["Platinum"] * 3
    assert first.loc["c4"] == "Silver"
    assert first.loc["c5"] == "Silver"
    assert first.loc["c6"] == "Base"
    pd.testing.assert_series_equal(first.sort_index(), second.sort_index())


def test_share_mode_never_makes_customers_without_spend_vip():
    spends = pd.Series([300.0] + [0.0] * 9)
    amounts = tier_threshold_amounts(spends, TierThresholds(mode="share", silver=0.5, gold=0.2, platinum=0.1))
    assert amounts["Silver"] == 300.0
    no_spend = tier_threshold_amounts(pd.Series([0.0] * 4), TierThresholds(mode="share", silver=0.5, gold=0.2, platinum=0.1))
    assert no_spend["Silver"] == np.inf


def test_tier_list_is_ranked_by_tier_then_spend():
    tiers = nominate(
        customers_table(
            {"rolling_12m_spend": 2500.0}, {"rolling_12m_spend": 12000.0}, {"rolling_12m_spend": 100.0},
            {"rolling_12m_spend": 2600.0},
        ),
        None, AS_OF, SegmentSettings(), 365,
    ).tiers
    assert list(tiers["customer_id"]) == ["c2", "c4", "c1", "c3"]
    assert list(tiers["rank"]) == [1, 2, 3, 4]
    assert tiers.columns[0] == "customer_id"


def test_share_tiers_that_start_at_one_amount_are_named():
    """Shares 0.9 / 0.5 / 0.3 on CDNOW gave Silver and Gold both $2.99: Silver 0, Gold 103, with only the
    generic too-many-VIPs warning."""
    from segments.nominate import shared_amount_warnings

    spends = pd.Series([500.0, 300.0, 2.99, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    amounts = tier_threshold_amounts(spends, TierThresholds(mode="share", silver=0.9, gold=0.5, platinum=0.2))
    assert amounts["Silver"] == amounts["Gold"] == 2.99
    assert shared_amount_warnings(amounts) == [
        "Silver and Gold start at the same amount on this run ($2.99): everyone who reaches Silver is Gold, so Silver "
        "holds only members in grace (share mode: the top Silver share reaches no spend below that amount); set a "
        "smaller segments.tiers.silver share, or absolute amounts"
    ]
    assert shared_amount_warnings(tier_threshold_amounts(spends, TierThresholds(mode="share", silver=0.3, gold=0.2,
                                                                                platinum=0.1))) == []
    assert shared_amount_warnings(tier_threshold_amounts(pd.Series([0.0] * 4), TierThresholds(
        mode="share", silver=0.5, gold=0.2, platinum=0.1))) == []  # no spend at all: every tier empty, said elsewhere
