"""Events against the previous run, and on the first run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from segment_tables import AS_OF, customers_table, state_table

from segments import SegmentSettings, nominate

FIRST = dt.date(2024, 6, 3)
SECOND = dt.date(2024, 6, 10)


def events_by_customer(events: pd.DataFrame) -> dict[str, set[str]]:
    return events.groupby("customer_id")["event"].agg(set).to_dict()


def test_first_run_has_near_and_new_events_but_no_tier_changes():
    customers = customers_table(
        {"customer_id": "near_silver", "rolling_12m_spend": 1800.0},
        {"customer_id": "star", "rolling_12m_spend": 300.0, "predicted_spend": 2500.0},
        {"customer_id": "risky_gold", "rolling_12m_spend": 6000.0, "churn_probability": 0.7, "predicted_spend": 9000.0},
        {"customer_id": "quiet", "rolling_12m_spend": 100.0},
    )
    result = nominate(customers, None, FIRST, SegmentSettings(), 365)
    assert events_by_customer(result.events) == {
        "near_silver": {"near_next_tier"},
        "star": {"new_rising_star"},
        "risky_gold": {"new_at_risk"},
    }
    assert not set(result.events["event"]) & {"tier_upgrade", "tier_downgrade", "entered_grace"}


def test_near_next_tier_by_amount_or_share():
    customers = customers_table(
        {"customer_id": "base_250_short", "rolling_12m_spend": 1750.0},
        {"customer_id": "base_251_short", "rolling_12m_spend": 1749.0},
        {"customer_id": "base_1_cent_short", "rolling_12m_spend": 1999.99},
        {"customer_id": "silver_500_short", "rolling_12m_spend": 4500.0, "predicted_spend": 5000.0},
        {"customer_id": "silver_600_short", "rolling_12m_spend": 4400.0, "predicted_spend": 5000.0},
        {"customer_id": "gold_1000_short", "rolling_12m_spend": 9000.0, "predicted_spend": 9000.0},
        {"customer_id": "platinum", "rolling_12m_spend": 30000.0, "predicted_spend": 30000.0},
    )
    events = nominate(customers, None, FIRST, SegmentSettings(), 365).events
    near = events[events["event"] == "near_next_tier"].set_index("customer_id")
    assert set(near.index) == {"base_250_short", "base_1_cent_short", "silver_500_short", "gold_1000_short"}
    assert near.loc["gold_1000_short", "to_tier"] == "Platinum"
    assert near.loc["base_250_short", "details"] == "$250 to Silver"
    # Not "$0 to Silver": cents under $100 are kept.
    assert near.loc["base_1_cent_short", "details"] == "$0.01 to Silver"


def test_second_run_events():
    first_customers = customers_table(
        {"customer_id": "climber", "rolling_12m_spend": 1500.0, "predicted_spend": 2200.0},
        {"customer_id": "slipping", "rolling_12m_spend": 5500.0, "predicted_spend": 6000.0},
        {"customer_id": "expired", "rolling_12m_spend": 2100.0, "predicted_spend": 2500.0},
        {"customer_id": "steady_star", "rolling_12m_spend": 100.0, "predicted_spend": 2500.0},
        {"customer_id": "newly_risky", "rolling_12m_spend": 7000.0, "predicted_spend": 8000.0},
    )
    first = nominate(first_customers, None, FIRST, SegmentSettings(grace_days=5), 365)
    assert set(first.rising_stars["customer_id"]) == {"climber", "steady_star"}

    second_customers = first_customers.copy()
    second_customers["rolling_12m_spend"] = [2600.0, 4800.0, 1500.0, 150.0, 7000.0]
    second_customers.loc[second_customers["customer_id"] == "newly_risky", "churn_probability"] = 0.8
    second_customers.loc[second_customers["customer_id"] == "climber", "predicted_spend"] = 2600.0
    newcomer = customers_table({"customer_id": "newcomer", "rolling_12m_spend": 2300.0, "predicted_spend": 2300.0})
    second_customers = pd.concat([second_customers, newcomer], ignore_index=True)
    second_customers.loc[second_customers["customer_id"] == "expired", "predicted_spend"] = 500.0
    # "expired" is already past a 5-day grace that ended before the second run.
    previous_state = first.state.copy()
    previous_state.loc[previous_state["customer_id"] == "expired", "grace_until"] = pd.Timestamp("2024-06-09")

    second = nominate(second_customers, previous_state, SECOND, SegmentSettings(grace_days=5), 365, previous_as_of=FIRST)
    events = second.events
    by_customer = events_by_customer(events)
    assert "tier_upgrade" in by_customer["climber"]
    assert by_customer["slipping"] == {"entered_grace", "new_at_risk"}
    assert by_customer["expired"] == {"tier_downgrade"}
    assert "new_rising_star" not in by_customer.get("steady_star", set())
    assert by_customer["newly_risky"] == {"new_at_risk"}
    assert by_customer["newcomer"] == {"tier_upgrade"}

    upgrade = events[(events["event"] == "tier_upgrade") & (events["customer_id"] == "climber")].iloc[0]
    assert (upgrade["from_tier"], upgrade["to_tier"]) == ("Base", "Silver")
    downgrade = events[events["event"] == "tier_downgrade"].iloc[0]
    assert (downgrade["from_tier"], downgrade["to_tier"]) == ("Silver", "Base")
    assert downgrade["details"] == "spend $1,500 below the Silver threshold $2,000; the grace period ended 2024-06-09"

    # grace_days set to 0 between runs: no grace for "slipping"; a grace still running is cut short.
    previous_state.loc[previous_state["customer_id"] == "expired", "grace_until"] = pd.Timestamp(SECOND) + pd.Timedelta(days=30)
    no_grace = nominate(second_customers, previous_state, SECOND, SegmentSettings(grace_days=0), 365, previous_as_of=FIRST)
    downgrades = no_grace.events[no_grace.events["event"] == "tier_downgrade"].set_index("customer_id")["details"]
    assert downgrades.to_dict() == {
        "slipping": "spend $4,800 below the Gold threshold $5,000; no grace period (grace_days 0)",
        "expired": "spend $1,500 below the Silver threshold $2,000; its grace period to "
                   f"{SECOND + dt.timedelta(days=30)} was cut short: grace_days is now 0",
    }
    grace = events[events["event"] == "entered_grace"].iloc[0]
    assert (grace["from_tier"], grace["to_tier"]) == ("Gold", "Silver")
    assert grace["details"].endswith("keeps Gold until 2024-06-15")
    newcomer_event = events[events["customer_id"] == "newcomer"].iloc[0]
    assert newcomer_event["details"].startswith("new customer")

    order = list(events["event"])
    assert order.index("tier_downgrade") < order.index("entered_grace") < order.index("tier_upgrade")
    assert list(events["rank"]) == list(range(1, len(events) + 1))

    # "slipping" is back above Gold within its grace: the tier is kept, and an event says the grace is over.
    third_customers = second_customers.copy()
    third_customers.loc[third_customers["customer_id"] == "slipping", "rolling_12m_spend"] = 5200.0
    third = nominate(third_customers, second.state, SECOND + dt.timedelta(days=2), SegmentSettings(grace_days=5), 365,
                     previous_as_of=SECOND)
    kept = third.events[third.events["event"] == "kept_tier"]
    assert kept["customer_id"].tolist() == ["slipping"]
    assert (kept.iloc[0]["from_tier"], kept.iloc[0]["to_tier"]) == ("Gold", "Gold")
    assert kept.iloc[0]["details"] == "spend $5,200 back at the Gold threshold $5,000; the grace period to 2024-06-15 ends early"
    # Back only after the grace period ran out (no run in between saw it end): kept, but not "early".
    late = nominate(third_customers, second.state, dt.date(2024, 6, 20), SegmentSettings(grace_days=5), 365,
                    previous_as_of=SECOND).events
    assert late.loc[late["event"] == "kept_tier", "details"].tolist() == [
        "spend $5,200 back at the Gold threshold $5,000; the grace period to 2024-06-15 had run out before this run"
    ]
    # Still below the threshold: still in grace, no event.
    assert "kept_tier" not in set(nominate(second_customers, second.state, SECOND + dt.timedelta(days=2),
                                           SegmentSettings(grace_days=5), 365, previous_as_of=SECOND).events["event"])


def test_a_run_before_the_previous_one_is_refused():
    customers = customers_table({"rolling_12m_spend": 100.0})
    first = nominate(customers, None, SECOND, SegmentSettings(), 365)
    with pytest.raises(ValueError, match="before the previous run"):
        nominate(customers, first.state, FIRST, SegmentSettings(), 365, previous_as_of=SECOND)


def test_state_round_trips_into_the_next_run():
    customers = customers_table({"rolling_12m_spend": 6000.0, "predicted_spend": 6000.0})
    first = nominate(customers, None, AS_OF, SegmentSettings(), 365)
    assert list(first.state.columns) == ["customer_id", "tier", "grace_until", "is_rising_star", "is_at_risk", "last_scored"]
    again = nominate(customers, first.state, AS_OF + dt.timedelta(days=7), SegmentSettings(), 365)
    assert again.events.empty


def test_amounts_under_a_cent_from_a_threshold_are_not_written_as_the_threshold():
    """Amounts are kept to millionths: a Silver member at $1,999.996 read "spend $2,000 below the Silver threshold
    $2,000", and a customer $0.004 short "$0 to Silver"."""
    from segments.texts import money_texts_beside

    previous = state_table({"customer_id": "member", "tier": "Silver"}, {"customer_id": "close", "tier": "Base"})
    customers = customers_table({"customer_id": "member", "rolling_12m_spend": 1999.996},
                                {"customer_id": "close", "rolling_12m_spend": 1999.996},
                                {"customer_id": "cents", "rolling_12m_spend": 1999.99})
    previous = pd.concat([previous, state_table({"customer_id": "cents", "tier": "Base"})], ignore_index=True)
    events = nominate(customers, previous, AS_OF, SegmentSettings(), 365).events.set_index(["customer_id", "event"])["details"]
    assert events[("member", "entered_grace")].startswith("spend $1,999.996 below the Silver threshold $2,000; keeps Silver")
    assert events[("close", "near_next_tier")] == "$0.004 to Silver"
    assert events[("cents", "near_next_tier")] == "$0.01 to Silver"  # whole cents: as before
    # Beside any tier's threshold, not only the one named: "spend $5,000 reached the Silver threshold $2,000" was Silver.
    previous = state_table({"customer_id": "up", "tier": "Base"}, {"customer_id": "refunded", "tier": "Silver"})
    customers = customers_table({"customer_id": "up", "rolling_12m_spend": 4999.999999},
                                {"customer_id": "refunded", "rolling_12m_spend": -0.004})
    events = nominate(customers, previous, AS_OF, SegmentSettings(), 365).events.set_index(["customer_id", "event"])["details"]
    assert events[("up", "tier_upgrade")] == "spend $4,999.999999 reached the Silver threshold $2,000"
    assert events[("refunded", "entered_grace")].startswith("spend -$0.004 below the Silver threshold $2,000")
    assert list(money_texts_beside(np.array([4100.0, -0.0042, 5.5, np.nan]), [5000.0, 5.5, 1.0])) == [
        "$4,100", "-$0.0042", "$5.50", ""]
