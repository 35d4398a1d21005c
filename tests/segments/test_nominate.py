"""The entry point: every customer tiered, lists reconcile, bad input refused, warnings."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest
from segment_tables import AS_OF, DEFAULTS, customers_table, state_table

from features.build import customer_features
from segments import SegmentSettings, nominate
from segments.settings import TierThresholds


def random_customers(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = customers_table(*({} for _ in range(n)))
    table["rolling_12m_spend"] = rng.gamma(1.0, 2000.0, n) - 100.0
    table["predicted_spend"] = rng.gamma(1.0, 2500.0, n)
    table["predicted_orders"] = rng.gamma(2.0, 2.0, n)
    table["predicted_ltv"] = table["predicted_spend"] * 0.93
    table["p_alive"] = rng.uniform(0, 1, n)
    table["churn_probability"] = rng.uniform(0, 1, n)
    table["spend_expiring_90d"] = rng.gamma(1.0, 300.0, n)
    table["aov_trend"] = rng.uniform(-1, 1, n)
    table["spend_90d"] = rng.gamma(1.0, 400.0, n)
    return table


def test_every_customer_is_tiered_and_the_counts_reconcile():
    customers = random_customers(300, seed=1)
    result = nominate(customers, None, AS_OF, SegmentSettings(), 365)
    tiers = result.tiers
    assert len(tiers) == 300 and set(tiers["customer_id"]) == set(customers["customer_id"])
    assert list(tiers["rank"]) == list(range(1, 301))
    counts = tiers["tier"].value_counts()
    economics = result.economics.set_index("tier")
    assert economics["members"].sum() == 300
    for tier, members in economics["members"].items():
        assert counts.get(tier, 0) == members
    assert len(result.rising_stars) == tiers["is_rising_star"].sum() > 0
    assert len(result.at_risk) == tiers["is_at_risk"].sum() > 0
    assert set(result.state["customer_id"]) == set(customers["customer_id"])
    events = result.events["event"].value_counts()
    assert events["new_rising_star"] == len(result.rising_stars)
    assert events["new_at_risk"] == len(result.at_risk)
    assert economics["predicted_revenue"].sum() == pytest.approx(customers["predicted_spend"].sum())
    for name in ("tiers", "rising_stars", "at_risk", "events"):
        table = getattr(result, name)
        assert table.columns[0] == "customer_id", name
        assert list(table["rank"]) == list(range(1, len(table) + 1)), name


def test_results_do_not_depend_on_row_order_or_index():
    customers = random_customers(80, seed=2)
    shuffled = customers.sample(frac=1.0, random_state=7)
    shuffled.index = shuffled.index + 1000
    first = nominate(customers, None, AS_OF, SegmentSettings(), 365)
    second = nominate(shuffled, None, AS_OF, SegmentSettings(), 365)
    for name in ("tiers", "rising_stars", "at_risk", "events", "economics"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), check_dtype=False)


def test_missing_column_is_named():
    customers = customers_table({"rolling_12m_spend": 100.0}).drop(columns=["churn_probability"])
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['churn_probability'\]"):
        nominate(customers, None, AS_OF, SegmentSettings(), 365)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"customer_id": ["c1", "c1"]}, "customer_id' has duplicates: \\['c1'\\]"),
        ({"p_alive": [0.5, 1.2]}, "'p_alive' must be a probability.*c2=1.2"),
        ({"rolling_12m_spend": [100.0, None]}, "'rolling_12m_spend' has missing values.*c2"),
        ({"predicted_spend": ["12", "lots"]}, "'predicted_spend' must be numeric.*c2='lots'"),
    ],
)
def test_bad_customer_values_are_refused(change, message):
    customers = customers_table({}, {})
    for column, values in change.items():
        customers[column] = values
    with pytest.raises(ValueError, match=message):
        nominate(customers, None, AS_OF, SegmentSettings(), 365)


def test_bad_previous_state_and_settings_are_refused():
    customers = customers_table({"rolling_12m_spend": 100.0})
    with pytest.raises(ValueError, match="'tier' must be one of.*c1='Diamond'"):
        nominate(customers, state_table({"customer_id": "c1", "tier": "Diamond"}), AS_OF, SegmentSettings(), 365)
    with pytest.raises(ValueError, match="previous_state is missing required column"):
        nominate(customers, pd.DataFrame({"customer_id": ["c1"], "tier": ["Gold"]}), AS_OF, SegmentSettings(), 365)
    with pytest.raises(ValueError, match="horizon_days"):
        nominate(customers, None, AS_OF, SegmentSettings(), 0)
    with pytest.raises(ValueError, match="calendar day"):
        nominate(customers, None, pd.Timestamp("2024-06-30 12:00"), SegmentSettings(), 365)


def test_vip_share_warning_only_above_the_limit():
    exactly_20 = customers_table({"rolling_12m_spend": 2000.0}, *({} for _ in range(4)))
    assert nominate(exactly_20, None, AS_OF, SegmentSettings(), 365).warnings == []
    forty = customers_table({"rolling_12m_spend": 2000.0}, {"rolling_12m_spend": 9000.0}, {}, {}, {})
    warnings = nominate(forty, None, AS_OF, SegmentSettings(), 365).warnings
    assert len(warnings) == 1 and warnings[0].startswith("40.0% of customers (2 of 5) are in VIP tiers")
    looser = SegmentSettings(vip_share_warning=0.5)
    assert nominate(forty, None, AS_OF, looser, 365).warnings == []
    # The level as set: "13.7% ... more than the 14% warning level" for a level of 0.135.
    seven = customers_table(*({"rolling_12m_spend": 2000.0} for _ in range(4)), *({} for _ in range(25)))
    (warning,) = nominate(seven, None, AS_OF, SegmentSettings(vip_share_warning=0.135), 365).warnings
    assert warning.startswith("13.8% of customers (4 of 29) are in VIP tiers (Silver and above), more than the 13.5% warning level")


def test_vip_share_warning_in_share_mode_asks_for_a_smaller_share():
    """Share mode's thresholds are top shares: "consider higher tier thresholds" asked for more VIPs."""
    spends = [{"rolling_12m_spend": 100.0 * (position + 1)} for position in range(10)]
    shares = SegmentSettings(tiers=TierThresholds(mode="share", silver=0.3, gold=0.1, platinum=0.05))
    warnings = nominate(customers_table(*spends), None, AS_OF, shares, 365).warnings
    assert warnings == [
        "30.0% of customers (3 of 10) are in VIP tiers (Silver and above), more than the 20% warning level; consider a "
        "smaller segments.tiers.silver share (or a higher segments.vip_share_warning)",
        # 10% and 5% of 10 customers are both the top one (k is at least 1): Gold is Platinum's amount.
        "Gold and Platinum start at the same amount on this run ($1,000): everyone who reaches Gold is Platinum, so "
        "Gold holds only members in grace (share mode: the top Gold share reaches no spend below that amount); set a "
        "smaller segments.tiers.gold share, or absolute amounts",
    ]


def test_vip_share_warning_names_grace_periods_when_they_hold_the_vips():
    """The excess came from grace periods, yet the advice was only "consider higher tier thresholds"."""
    customers = customers_table({"rolling_12m_spend": 2000.0}, {"rolling_12m_spend": 100.0}, {}, {}, {})
    previous = state_table({"customer_id": "c2", "tier": "Gold"})
    warnings = nominate(customers, previous, AS_OF, SegmentSettings(), 365).warnings
    assert warnings == [
        "40.0% of customers (2 of 5) are in VIP tiers (Silver and above), more than the 20% warning level; 1 of them "
        "hold their tier by a grace period (below its threshold now): consider higher tier thresholds or a shorter "
        "segments.grace_days",
    ]


def test_almost_no_vips_on_absolute_thresholds_is_a_warning_naming_the_median_spend():
    """CDNOW (about $100 a year) on the default $2,000 thresholds: 20 VIPs of 23,570 and no rising star, silently."""
    spends = [{"rolling_12m_spend": 50.0 + position} for position in range(199)] + [{"rolling_12m_spend": 2500.0}]
    warnings = nominate(customers_table(*spends), None, AS_OF, SegmentSettings(), 365).warnings
    assert warnings == [
        "only 1 of the 200 customers who bought in the last 12 months (0.5%) are in VIP tiers: the Silver threshold is "
        "$2,000 and their median 12-month spend $149.50, so the tier lists and rising stars stay (nearly) empty; set "
        "segments.tiers to this shop's spend levels, or mode: share (top shares of customers)"
    ]
    two_percent = spends[:196] + [{"rolling_12m_spend": 2500.0}] * 4
    assert nominate(customers_table(*two_percent), None, AS_OF, SegmentSettings(), 365).warnings == []
    assert nominate(customers_table(*spends[:99]), None, AS_OF, SegmentSettings(), 365).warnings == []  # too few to tell
    # A dormant base (no spend in the year) is no reason: 4 VIPs of 200 buyers is 2%, whatever the 5,000 lapsed.
    lapsed = [{"rolling_12m_spend": 0.0}] * 5000
    assert nominate(customers_table(*two_percent, *lapsed), None, AS_OF, SegmentSettings(), 365).warnings == []
    share = SegmentSettings(tiers=TierThresholds(mode="share", silver=0.004, gold=0.002, platinum=0.001))
    assert not any(w.startswith("only ") for w in nominate(customers_table(*spends), None, AS_OF, share, 365).warnings)


def test_most_vips_churning_names_the_horizon_and_the_threshold():
    """A 7-day horizon: churn_probability (no order in 7 days) passed 0.5 for 266 of 277 VIPs, silently."""
    members = [{"rolling_12m_spend": 3000.0, "churn_probability": 0.75 if position < 10 else 0.2} for position in range(20)]
    (warning,) = [w for w in nominate(customers_table(*members), None, AS_OF, SegmentSettings(), 7).warnings
                  if "for a churn probability" in w]
    assert warning == (
        "10 of 20 VIP members (50%) are at risk for a churn probability of at least 0.5: churn_probability is P(no order "
        "in the next 7 days), which most customers reach on a short horizon; raise segments.churn_threshold or train "
        "for a longer horizon"
    )
    fewer = members[1:] + [{"rolling_12m_spend": 3000.0, "churn_probability": 0.2}]
    assert not any("for a churn probability" in w for w in nominate(customers_table(*fewer), None, AS_OF, SegmentSettings(), 7).warnings)
    looser = SegmentSettings(churn_threshold=0.8)
    assert not any("for a churn probability" in w for w in nominate(customers_table(*members), None, AS_OF, looser, 7).warnings)


def test_most_vips_at_risk_for_the_projection_alone_is_named():
    """A subscription shop: 639 of 639 VIPs at risk, each "projected below" its tier with a churn risk of 3%
    and a purchase days ago (the projection counts the chance of stopping), and no warning."""
    def members(projected_below: int):
        return [{"rolling_12m_spend": 3000.0, "churn_probability": 0.03,
                 "predicted_spend": 1500.0 if position < projected_below else 4000.0} for position in range(20)]

    (warning,) = [w for w in nominate(customers_table(*members(10)), None, AS_OF, SegmentSettings(), 365).warnings
                  if "projected 12-month spend" in w]
    assert warning.startswith("10 of 20 VIP members (50%) are at risk only because their projected 12-month spend is "
                              "below their tier's threshold (no high churn risk, not in grace)")
    assert not any("projected 12-month spend" in w
                   for w in nominate(customers_table(*members(9)), None, AS_OF, SegmentSettings(), 365).warnings)


def test_customers_missing_from_this_run_are_reported():
    previous = state_table({"customer_id": "c1", "tier": "Base"}, {"customer_id": "gone", "tier": "Gold"})
    result = nominate(customers_table({}), previous, AS_OF, SegmentSettings(), 365)
    assert result.warnings == [
        "1 customer(s) scored on the previous run are not scored on this one, e.g. gone (Gold): the tier state of the 1 "
        "member(s) (a VIP tier or a grace period) is carried forward for up to 365 days and applies when they are scored "
        "again; no event is written for them now (a partial extract, or ids written otherwise than in the previous run's data?)"
    ]
    # Without VIP members among them, the others are named.
    previous = state_table({"customer_id": "c1", "tier": "Base"}, {"customer_id": "left", "tier": "Base"})
    assert nominate(customers_table({}), previous, AS_OF, SegmentSettings(), 365).warnings == [
        "1 customer(s) scored on the previous run are not scored on this one, e.g. left (Base): they hold no VIP tier or "
        "grace period to carry forward; no event is written for them now (a partial extract, or ids written otherwise than "
        "in the previous run's data?)"
    ]


def weekly(state, spend: dict[str, float], as_of: dt.date, previous_as_of: dt.date | None):
    """One run over the customers of `spend` (id: rolling 12-month spend)."""
    customers = customers_table(*({"customer_id": cid, "rolling_12m_spend": amount, "predicted_spend": amount}
                                  for cid, amount in spend.items()))
    return nominate(customers, state, as_of, SegmentSettings(), 365, previous_as_of=previous_as_of)


def test_a_member_missing_from_one_run_keeps_tier_and_grace_on_return():
    """A Silver member in grace, missing from one week's extract, came back Base with no downgrade event, and a
    Gold member came back "new customer; spend $4,000 reached the Silver threshold"."""
    weeks = [dt.date(2025, 11, 3) + dt.timedelta(days=7 * week) for week in range(4)]
    first = weekly(None, {"silver": 2500.0, "gold": 6000.0, "base": 100.0}, weeks[0], None)
    second = weekly(first.state, {"silver": 1900.0, "gold": 6000.0, "base": 100.0}, weeks[1], weeks[0])  # silver: grace
    grace_until = pd.Timestamp(weeks[1]) + pd.Timedelta(days=90)
    # Week 3: silver and gold are missing from the extract (and base, which holds nothing to carry).
    third = weekly(second.state, {"other": 50.0}, weeks[2], weeks[1])
    (warning,) = [w for w in third.warnings if "not scored" in w]
    assert warning.startswith("3 customer(s) scored on the previous run are not scored on this one, e.g. silver (Silver), "
                              "gold (Gold): the tier state of the 2 member(s)")
    carried = third.state.set_index("customer_id")
    assert set(carried.index) == {"other", "silver", "gold"} and "silver" not in set(third.tiers["customer_id"])
    assert carried.loc["silver", "grace_until"] == grace_until and carried.loc["silver", "last_scored"] == pd.Timestamp(weeks[1])
    assert carried.loc["other", "last_scored"] == pd.Timestamp(weeks[2])
    # Week 4: both are back.
    fourth = weekly(third.state, {"silver": 1900.0, "gold": 4000.0, "other": 50.0}, weeks[3], weeks[2])
    tiers = fourth.tiers.set_index("customer_id")
    assert tiers.loc["silver", "tier"] == "Silver" and tiers.loc["silver", "in_grace"]
    assert tiers.loc["silver", "grace_until"] == grace_until  # the grace period keeps its end
    assert tiers.loc["gold", "tier"] == "Gold" and tiers.loc["gold", "in_grace"]  # below Gold now: grace starts
    events = fourth.events.groupby("customer_id")["event"].agg(set)
    assert events["gold"] == {"entered_grace", "new_at_risk"} and "silver" not in events.index  # silver's grace runs on
    assert not any("new customer" in text for text in fourth.events["details"])
    assert not any("not scored" in w for w in fourth.warnings)


def test_a_grace_period_that_ended_while_missing_demotes_on_return_and_long_absences_leave_the_state():
    start = dt.date(2025, 1, 6)
    first = weekly(None, {"m": 2500.0, "p": 12000.0}, start, None)
    second = weekly(first.state, {"m": 1000.0, "p": 12000.0}, start + dt.timedelta(days=7), start)  # m in grace
    gone = weekly(second.state, {"p": 12000.0}, start + dt.timedelta(days=14), start + dt.timedelta(days=7))
    # Still missing: carried, but not named again each week.
    later = gone
    for week in range(3, 20):
        later = weekly(later.state, {"p": 12000.0}, start + dt.timedelta(days=7 * week), start + dt.timedelta(days=7 * (week - 1)))
        assert not any("not scored" in w for w in later.warnings)
    back = weekly(later.state, {"m": 1000.0, "p": 12000.0}, start + dt.timedelta(days=7 * 20), start + dt.timedelta(days=7 * 19))
    tiers = back.tiers.set_index("customer_id")
    assert tiers.loc["m", "tier"] == "Base" and not tiers.loc["m", "in_grace"]
    event = back.events.set_index("customer_id").loc["m"]
    assert event["event"] == "tier_downgrade" and "grace period ended" in event["details"]
    # A member missing for more than 365 days leaves the state, with a warning; back, they start over.
    away = weekly(gone.state, {"p": 12000.0}, start + dt.timedelta(days=14 + 366), start + dt.timedelta(days=14))
    (warning,) = [w for w in away.warnings if "leave the tier state" in w]
    assert warning == ("1 member(s) not scored for more than 365 days leave the tier state, e.g. m (Silver): scored again "
                       "(on this run or later), they start over as new customers")
    assert set(away.state["customer_id"]) == {"p"}
    # Back on the first run after the 365 days, with no run between to drop the state: they start over all the same
    # (they kept Silver, and a grace period, after 378 days away).
    back_late = weekly(gone.state, {"m": 1000.0, "p": 12000.0}, start + dt.timedelta(days=14 + 378), start + dt.timedelta(days=14))
    assert any(w.startswith("1 member(s) not scored for more than 365 days leave the tier state, e.g. m (Silver)")
               for w in back_late.warnings)
    tiers = back_late.tiers.set_index("customer_id")
    assert tiers.loc["m", "tier"] == "Base" and not tiers.loc["m", "in_grace"]
    assert "m" not in set(back_late.events["customer_id"])  # a new customer below Silver: no event
    # A run after a long pause keeps the state of everyone the previous run scored.
    paused = weekly(gone.state, {"p": 1000.0}, start + dt.timedelta(days=14 + 400), start + dt.timedelta(days=14))
    assert paused.tiers.set_index("customer_id").loc["p", "in_grace"]


def test_a_state_written_before_last_scored_was_kept_is_carried_from_the_previous_run():
    previous = state_table({"customer_id": "c1", "tier": "Base"}, {"customer_id": "gold", "tier": "Gold"})
    result = nominate(customers_table({}), previous, AS_OF, SegmentSettings(), 365, previous_as_of=AS_OF - dt.timedelta(days=7))
    carried = result.state.set_index("customer_id")
    assert carried.loc["gold", "last_scored"] == pd.Timestamp(AS_OF - dt.timedelta(days=7))
    assert carried.loc["c1", "last_scored"] == pd.Timestamp(AS_OF)


def test_refunds_and_single_order_customers_from_real_features():
    transactions = pd.DataFrame(
        {
            "customer_id": ["refunder", "refunder", "refunder", "one_order"],
            "order_ts": pd.to_datetime(["2024-01-10", "2024-03-01", "2024-03-05", "2024-05-01"]),
            "amount": [1500.0, 700.0, -300.0, 2500.0],
        }
    )
    features = customer_features(ibis.memtable(transactions), AS_OF).to_pandas()
    scores = pd.DataFrame(
        {
            "customer_id": ["refunder", "one_order"],
            "predicted_spend": [2300.0, 900.0],
            "predicted_orders": [2.0, 0.4],
            "predicted_ltv": [2200.0, 850.0],
            "p_alive": [0.8, 0.6],
            "churn_probability": [0.3, 0.6],
        }
    )
    customers = features.merge(scores, on="customer_id")
    assert set(DEFAULTS) <= set(customers.columns)
    result = nominate(customers, None, AS_OF, SegmentSettings(), 365)
    tiers = result.tiers.set_index("customer_id")
    # 1,500 + 700 bought, 300 refunded: net 1,900 stays below Silver (2,000) and is $100 away.
    assert tiers.loc["refunder", "rolling_12m_spend"] == pytest.approx(1900.0)
    assert tiers.loc["refunder", "tier"] == "Base"
    assert tiers.loc["refunder", "amount_to_next_tier"] == pytest.approx(100.0)
    assert list(result.rising_stars["customer_id"]) == ["refunder"]
    assert result.rising_stars.loc[0, ["reason_1", "reason_2"]].notna().all()
    # A single order of 2,500 is Silver; churn 0.6 and 900 projected make the member at risk.
    assert tiers.loc["one_order", "tier"] == "Silver"
    at_risk = result.at_risk.set_index("customer_id")
    assert at_risk.loc["one_order", "reason"] == "high churn risk; projected below Silver"
    assert at_risk.loc["one_order", "days_since_last_order"] == 60
    events = result.events.set_index("customer_id")
    assert set(events.loc[["refunder"], "event"]) == {"near_next_tier", "new_rising_star"}


def test_as_of_accepts_dates_and_timestamps_alike():
    customers = random_customers(20, seed=3)
    by_date = nominate(customers, None, dt.date(2024, 6, 30), SegmentSettings(), 365)
    by_stamp = nominate(customers, None, pd.Timestamp("2024-06-30"), SegmentSettings(), 365)
    assert by_date.as_of == by_stamp.as_of == dt.date(2024, 6, 30)
    pd.testing.assert_frame_equal(by_date.tiers, by_stamp.tiers)


def test_ties_are_ranked_by_customer_id_whatever_the_id_dtype():
    # Every customer alike but for the id: all lists fall back to customer_id order.
    ids = ["c10", "a", "c9", "b\u00e9", "C1", "c100", "zz", "c1"]
    row = {"rolling_12m_spend": 4600.0, "predicted_spend": 5200.0, "churn_probability": 0.7}
    customers = customers_table(*({**row, "customer_id": customer_id} for customer_id in ids))
    expected = sorted(ids)
    results = {}
    for dtype in ("str", "object"):
        table = customers.assign(customer_id=pd.Series(ids, dtype=dtype))
        result = nominate(table, None, AS_OF, SegmentSettings(), 365)
        for name in ("tiers", "rising_stars", "at_risk"):
            assert list(getattr(result, name)["customer_id"]) == expected, (dtype, name)
        events = result.events
        assert list(events["event"].unique()) == ["new_at_risk", "new_rising_star", "near_next_tier"]
        for event in events["event"].unique():
            assert list(events.loc[events["event"] == event, "customer_id"]) == expected, (dtype, event)
        results[dtype] = result
    for name in ("tiers", "rising_stars", "at_risk", "events", "economics", "state"):
        pd.testing.assert_frame_equal(getattr(results["str"], name), getattr(results["object"], name), check_dtype=False)


def test_inputs_are_not_modified():
    customers = random_customers(50, seed=4).astype({"days_since_last_order": "int64"})
    state = nominate(customers, None, AS_OF, SegmentSettings(), 365).state
    features = customers.set_index("customer_id")
    before = (customers.copy(), state.copy(), features.copy())
    nominate(customers, state, dt.date(2024, 7, 7), SegmentSettings(), 365, feature_values=features)
    for frame, copy in zip((customers, state, features), before):
        pd.testing.assert_frame_equal(frame, copy)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["c1", "c2", "c1"], r"previous_state column 'customer_id' has duplicates: \['c1'\]"),
        (["gone", "c1", "gone"], r"previous_state column 'customer_id' has duplicates: \['gone'\]"),
        (["c1", None, "c2"], r"previous_state column 'customer_id' has missing values in row\(s\) \[1\]"),
    ],
)
def test_bad_previous_state_ids_are_refused(ids, message):
    customers = customers_table({}, {}, {})
    previous = state_table(*({"customer_id": customer_id, "tier": "Base"} for customer_id in ids))
    with pytest.raises(ValueError, match=message):
        nominate(customers, previous, AS_OF, SegmentSettings(), 365)


def test_feature_values_in_any_row_order_give_the_same_reasons():
    customers = random_customers(60, seed=5)
    shap = customers.set_index("customer_id")[["spend_90d", "aov_trend", "predicted_orders"]] - 1.0
    features = customers.set_index("customer_id")[["spend_90d", "aov_trend", "predicted_orders"]]
    aligned = nominate(customers, None, AS_OF, SegmentSettings(), 365, shap, feature_values=features)
    extra = pd.DataFrame({"spend_90d": [1.0]}, index=pd.Index(["someone else"], name="customer_id"))
    shuffled = pd.concat([features, extra]).sample(frac=1.0, random_state=3)
    other = nominate(customers, None, AS_OF, SegmentSettings(), 365, shap, feature_values=shuffled)
    assert len(aligned.rising_stars) > 0
    pd.testing.assert_frame_equal(aligned.rising_stars, other.rising_stars)
    with pytest.raises(ValueError, match=r"feature_values has no row for customer\(s\) \['c2'\]"):
        nominate(customers, None, AS_OF, SegmentSettings(), 365, shap, feature_values=shuffled.drop(index="c2"))
