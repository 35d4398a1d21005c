"""Tests for features/synthetic.py: the synthetic transactions generator and its ground truth."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from features.synthetic import CATEGORIES, SEGMENTS, TRUTH_COLUMNS, Behaviour, generate_transactions

END = pd.Timestamp("2025-12-31")
TIER_AMOUNTS = {"silver": 2_000.0, "gold": 5_000.0, "platinum": 10_000.0}


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_transactions(20_000, seed=1)


def rolling_12m_spend(transactions: pd.DataFrame, customers: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Net spend in (as_of - 365 days, as_of] per customer (0 for customers without orders in it)."""
    day = transactions["order_ts"].dt.floor("D")
    window = transactions[(day > as_of - pd.Timedelta(days=365)) & (day <= as_of)]
    return window.groupby("customer_id")["amount"].sum().reindex(customers, fill_value=0.0)


def tier_of(spend: pd.Series) -> pd.Series:
    """0 Base, 1 Silver, 2 Gold, 3 Platinum under the default absolute thresholds."""
    levels = np.select(
        [spend >= TIER_AMOUNTS["platinum"], spend >= TIER_AMOUNTS["gold"], spend >= TIER_AMOUNTS["silver"]],
        [3, 2, 1],
        0,
    )
    return pd.Series(levels, index=spend.index)


def first_and_last_year(transactions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per customer acquired in the first year: orders, mean order value and categories in their
    first year of activity and in the final year of the history (two disjoint windows)."""
    early = truth[truth["acquisition_date"] <= END - pd.Timedelta(days=2 * 365)]
    orders = transactions[transactions["amount"] > 0].merge(
        early[["customer_id", "acquisition_date", "segment"]], on="customer_id"
    )
    day = orders["order_ts"].dt.floor("D")
    in_first = day < orders["acquisition_date"] + pd.Timedelta(days=365)
    in_last = day > END - pd.Timedelta(days=365)
    rows = []
    for name, mask in (("first", in_first), ("last", in_last)):
        per_customer = orders[mask].groupby("customer_id").agg(
            orders=("amount", "size"), spend=("amount", "sum"), categories=("category", "nunique")
        )
        rows.append(per_customer.add_suffix(f"_{name}"))
    table = early.set_index("customer_id")[["segment"]].join(rows).fillna(0.0)
    return table


def test_same_seed_gives_identical_tables_and_another_seed_does_not():
    first_transactions, first_truth = generate_transactions(3_000, seed=42)
    again_transactions, again_truth = generate_transactions(3_000, seed=42)
    other_transactions, _ = generate_transactions(3_000, seed=43)

    pd.testing.assert_frame_equal(first_transactions, again_transactions)
    pd.testing.assert_frame_equal(first_truth, again_truth)
    assert not first_transactions["amount"].equals(other_transactions["amount"].iloc[: len(first_transactions)])


def test_transactions_follow_the_schema(generated):
    transactions, _ = generated

    assert list(transactions.columns) == ["customer_id", "order_ts", "amount", "order_id", "category", "quantity"]
    assert transactions["customer_id"].dtype == "str"
    assert transactions["order_ts"].dtype == "datetime64[us]"
    assert transactions["amount"].dtype == "float64"
    assert transactions["order_id"].dtype == "str"
    assert transactions["category"].dtype == "str"
    assert transactions["quantity"].dtype == "int64"
    assert not transactions.isna().any().any()
    assert transactions["order_ts"].is_monotonic_increasing
    assert transactions["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert transactions["order_id"].str.fullmatch(r"O\d{9}").all()
    assert 8 <= transactions["category"].nunique() <= 12
    assert set(transactions["category"].unique()) <= set(CATEGORIES)
    cents = transactions["amount"] * 100
    assert np.allclose(cents, cents.round(), atol=1e-6)


def test_timestamps_lie_in_the_history_and_carry_a_time_of_day(generated):
    transactions, _ = generated

    assert transactions["order_ts"].min() >= pd.Timestamp("2023-01-01")
    assert transactions["order_ts"].max() < END + pd.Timedelta(days=1)
    time_of_day = transactions["order_ts"] - transactions["order_ts"].dt.floor("D")
    assert (time_of_day > pd.Timedelta(0)).mean() > 0.99
    first_order = transactions.groupby("customer_id")["order_ts"].min()
    assert first_order.max() < pd.Timestamp("2025-01-01"), "acquisitions span about the first two years"
    assert first_order.min() < pd.Timestamp("2023-02-01")


def test_order_ids_are_unique(generated):
    transactions, _ = generated

    assert transactions["order_id"].is_unique


def test_every_customer_has_an_order_and_one_truth_row(generated):
    transactions, truth = generated

    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert len(truth) == 20_000
    assert truth["customer_id"].is_unique
    assert truth["customer_id"].iloc[0] == "C0000001"
    assert truth["customer_id"].iloc[-1] == "C0020000"
    assert set(transactions["customer_id"].unique()) == set(truth["customer_id"])
    paid_or_free = transactions[transactions["amount"] >= 0]
    counts = paid_or_free.groupby("customer_id").size().reindex(truth["customer_id"], fill_value=0)
    assert (counts.to_numpy() == truth["n_orders"].to_numpy()).all()
    first_day = transactions.groupby("customer_id")["order_ts"].min().dt.floor("D")
    assert (first_day.reindex(truth["customer_id"]).to_numpy() == truth["acquisition_date"].to_numpy()).all()


def test_refunds_are_negative_bounded_rows_after_an_order_of_the_same_customer(generated):
    transactions, _ = generated
    refunds = transactions[transactions["amount"] < 0]
    orders = transactions[transactions["amount"] > 0]

    assert 0.01 <= len(refunds) / len(orders) <= 0.02
    assert (refunds["quantity"] < 0).all()
    candidates = refunds.reset_index().merge(orders, on="customer_id", suffixes=("", "_order"))
    covering = candidates[
        (candidates["order_ts_order"].dt.floor("D") < candidates["order_ts"].dt.floor("D"))
        & (candidates["amount_order"] >= -candidates["amount"])
        & (candidates["quantity_order"] >= -candidates["quantity"])
    ]
    assert covering["index"].nunique() == len(refunds), "every refund follows an order it can refund"


def test_zero_amount_and_same_day_repeat_orders_occur(generated):
    transactions, _ = generated
    zero = transactions["amount"] == 0

    assert 0 < zero.sum() < 0.01 * len(transactions)
    orders = transactions[transactions["amount"] >= 0]
    same_day = orders.assign(day=orders["order_ts"].dt.floor("D")).duplicated(["customer_id", "day"])
    assert same_day.sum() > 100


def test_truth_records_the_planted_segments(generated):
    _, truth = generated
    share = truth["segment"].value_counts(normalize=True)
    risers = truth[truth["segment"] == "riser"]
    faders = truth[truth["segment"] == "fader"]
    steady = truth[truth["segment"] == "steady"]

    assert set(truth["segment"]) == set(SEGMENTS)
    assert 0.05 <= share["riser"] <= 0.08
    assert 0.08 <= share["fader"] <= 0.12
    assert risers["growth_start"].notna().all() and faders["growth_start"].notna().all()
    assert steady["growth_start"].isna().all()
    assert (risers["frequency_growth"] > 1).all() and (risers["spend_growth"] > 1).all()
    assert (faders["frequency_growth"] < 1).all() and (faders["spend_growth"] <= 1).all()
    assert (steady[["frequency_growth", "spend_growth"]] == 1).all().all()
    assert (truth["growth_start"].dropna() >= truth.loc[truth["growth_start"].notna(), "acquisition_date"]).all()
    assert (truth["purchase_rate"] > 0).all() and (truth["mean_spend"] > 0).all()
    assert truth["dropout_probability"].between(0, 1).all()
    assert faders["dropout_date"].notna().mean() > steady["dropout_date"].notna().mean() + 0.2


def test_nobody_orders_after_their_dropout_date(generated):
    transactions, truth = generated
    last_order = transactions[transactions["amount"] >= 0].groupby("customer_id")["order_ts"].max().dt.floor("D")
    dropped = truth.dropna(subset=["dropout_date"]).set_index("customer_id")

    assert len(dropped) > 0
    assert (last_order.reindex(dropped.index) <= dropped["dropout_date"]).all()
    assert (dropped["dropout_date"] >= dropped["acquisition_date"]).all()


@pytest.mark.parametrize("n_customers", [20_000, 50_000])
@pytest.mark.parametrize("seed", [1, 2])
def test_default_tiers_hold_ten_to_twenty_percent_with_platinum_smallest(n_customers, seed):
    transactions, truth = generate_transactions(n_customers, seed=seed)
    tiers = tier_of(rolling_12m_spend(transactions, truth["customer_id"], END))
    share = tiers.value_counts(normalize=True).reindex([1, 2, 3], fill_value=0.0)

    assert 0.10 <= share.sum() <= 0.20
    assert 0 < share[3] < share[2] < share[1]


def test_many_risers_reach_a_higher_tier_in_the_final_year(generated):
    transactions, truth = generated
    customers = truth["customer_id"]
    at_end = tier_of(rolling_12m_spend(transactions, customers, END))
    a_year_before = tier_of(rolling_12m_spend(transactions, customers, END - pd.Timedelta(days=365)))
    moved_up = (at_end > a_year_before).to_numpy()
    segment = truth["segment"].to_numpy()

    assert moved_up[segment == "riser"].mean() > 0.3
    assert moved_up[segment == "riser"].mean() > 4 * moved_up[segment == "steady"].mean()


def test_risers_order_more_often_spend_more_per_order_and_widen_their_categories(generated):
    years = first_and_last_year(*generated)
    risers = years[years["segment"] == "riser"]
    steady = years[years["segment"] == "steady"]

    def order_rate_ratio(group: pd.DataFrame) -> float:
        return group["orders_last"].mean() / group["orders_first"].mean()

    def order_value_ratio(group: pd.DataFrame) -> float:
        both = group[(group["orders_first"] > 0) & (group["orders_last"] > 0)]
        return ((both["spend_last"] / both["orders_last"]) / (both["spend_first"] / both["orders_first"])).median()

    assert len(risers) > 300
    assert order_rate_ratio(risers) > 1.2
    assert order_rate_ratio(risers) > 2 * order_rate_ratio(steady)
    assert order_value_ratio(risers) > 1.4 * order_value_ratio(steady)
    assert 0.9 < order_value_ratio(steady) < 1.1
    active_risers = risers[risers["orders_last"] > 0]
    active_steady = steady[steady["orders_last"] > 0]
    assert (active_risers["categories_last"] - active_risers["categories_first"]).mean() > 1
    assert (active_risers["categories_last"] - active_risers["categories_first"]).mean() > (
        active_steady["categories_last"] - active_steady["categories_first"]
    ).mean() + 1


def test_btyd_fits_on_steady_customers_recover_the_generating_parameters():
    transactions, truth = generate_transactions(30_000, seed=4)
    behaviour = Behaviour()
    steady = truth.loc[truth["segment"] == "steady", "customer_id"]
    orders = transactions[(transactions["amount"] >= 0) & transactions["customer_id"].isin(steady)]
    # lifetimes' definitions: same-day orders are one purchase, ages in whole days (here weeks).
    days = orders.assign(day=orders["order_ts"].dt.floor("D")).groupby(["customer_id", "day"])["amount"].sum()
    days = days.reset_index()
    per_customer = days.groupby("customer_id")["day"].agg(["min", "max", "size"])
    frequency = (per_customer["size"] - 1).to_numpy(dtype=float)
    recency = (per_customer["max"] - per_customer["min"]).dt.days.to_numpy(dtype=float) / 7
    age = (END - per_customer["min"]).dt.days.to_numpy(dtype=float) / 7

    bgnbd = BetaGeoFitter().fit(frequency, recency, age).params_
    weekly_rate = behaviour.purchase_rate_mean / (365.25 / 7)
    assert bgnbd["r"] == pytest.approx(behaviour.purchase_rate_shape, rel=0.15)
    assert bgnbd["alpha"] == pytest.approx(behaviour.purchase_rate_shape / weekly_rate, rel=0.15)
    assert bgnbd["a"] == pytest.approx(behaviour.dropout_a, rel=0.2)
    assert bgnbd["b"] == pytest.approx(behaviour.dropout_b, rel=0.2)

    repeat_days = days.merge(per_customer["min"].rename("first").reset_index(), on="customer_id")
    repeat_days = repeat_days[repeat_days["day"] > repeat_days["first"]]
    repeat_value = repeat_days.groupby("customer_id")["amount"].mean()
    repeat_value = repeat_value[repeat_value > 0]
    repeat_count = (per_customer["size"] - 1).reindex(repeat_value.index).to_numpy(dtype=float)
    gamma_gamma = GammaGammaFitter().fit(repeat_count, repeat_value.to_numpy()).params_
    scale = behaviour.order_value_mean * (behaviour.mean_spend_shape - 1) / behaviour.order_value_shape
    assert gamma_gamma["p"] == pytest.approx(behaviour.order_value_shape, rel=0.15)
    assert gamma_gamma["q"] == pytest.approx(behaviour.mean_spend_shape, rel=0.15)
    assert gamma_gamma["v"] == pytest.approx(scale, rel=0.15)


def test_faders_order_less_and_drop_out(generated):
    years = first_and_last_year(*generated)
    faders = years[years["segment"] == "fader"]
    steady = years[years["segment"] == "steady"]

    fader_ratio = faders["orders_last"].mean() / faders["orders_first"].mean()
    steady_ratio = steady["orders_last"].mean() / steady["orders_first"].mean()
    assert fader_ratio < 0.5 * steady_ratio
    assert (faders["orders_last"] == 0).mean() > (steady["orders_last"] == 0).mean() + 0.2


def test_a_single_customer_and_a_one_year_history_work():
    transactions, truth = generate_transactions(1, seed=0, start=date(2020, 1, 1), end=date(2020, 12, 31))

    assert len(truth) == 1 and truth["customer_id"].iloc[0] == "C0000001"
    assert (transactions["customer_id"] == "C0000001").all()
    assert transactions["order_ts"].min() >= pd.Timestamp("2020-01-01")
    assert transactions["order_ts"].max() < pd.Timestamp("2021-01-01")


def test_custom_history_window_is_respected():
    transactions, truth = generate_transactions(2_000, seed=3, start=date(2018, 6, 1), end=date(2020, 5, 31))

    assert transactions["order_ts"].min() >= pd.Timestamp("2018-06-01")
    assert transactions["order_ts"].max() < pd.Timestamp("2020-06-01")
    assert truth["acquisition_date"].max() <= pd.Timestamp("2018-06-01") + pd.Timedelta(days=731 * 2 / 3)


def test_behaviour_parameters_change_the_spend():
    _, baseline_truth = generate_transactions(2_000, seed=5)
    richer, richer_truth = generate_transactions(2_000, seed=5, behaviour=Behaviour(order_value_mean=360.0))

    assert richer_truth["mean_spend"].mean() == pytest.approx(2 * baseline_truth["mean_spend"].mean(), rel=1e-9)
    assert richer["amount"].clip(lower=0).mean() > 1.5 * 180.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 0}, "n_customers must be >= 1"),
        ({"n_customers": 2.5}, "n_customers must be an integer"),
        ({"n_customers": True}, "n_customers must be an integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": "7"}, "seed must be a non-negative integer"),
        ({"start": date(2025, 1, 1), "end": date(2024, 1, 1)}, "start must be before end"),
        ({"start": date(2025, 1, 1), "end": date(2025, 6, 30)}, "end - start must span at least 365 days"),
        ({"start": "2023-01-01"}, "start must be a datetime.date"),
        ({"end": datetime(2025, 12, 31, 12)}, "end must be a datetime.date"),
        ({"riser_share": 1.5}, "riser_share must be a number in"),
        ({"fader_share": -0.1}, "fader_share must be a number in"),
        ({"riser_share": 0.6, "fader_share": 0.5}, "riser_share \\+ fader_share must be < 1"),
        ({"refund_share": 1.0}, "refund_share must be a number in"),
        ({"behaviour": {"purchase_rate_mean": 3}}, "behaviour must be a Behaviour"),
    ],
)
def test_bad_arguments_are_refused_with_the_argument_named(kwargs, message):
    arguments = {"n_customers": 10, "seed": 0} | kwargs
    n_customers = arguments.pop("n_customers")
    seed = arguments.pop("seed")
    with pytest.raises((ValueError, TypeError), match=message):
        generate_transactions(n_customers, seed, **arguments)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("purchase_rate_mean", 0.0, "Behaviour.purchase_rate_mean must be > 0"),
        ("dropout_b", float("nan"), "Behaviour.dropout_b must be a finite number"),
        ("mean_spend_shape", 1.0, "Behaviour.mean_spend_shape must be > 1"),
        ("riser_spend_growth", 0.9, "riser_frequency_growth and riser_spend_growth must be > 1"),
        ("fader_frequency_growth", 1.2, "fader_frequency_growth must be < 1"),
        ("riser_dropout_factor", 2.0, "Behaviour.riser_dropout_factor must be <= 1"),
    ],
)
def test_bad_behaviour_parameters_are_refused_with_the_field_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        Behaviour(**{field: value})


@pytest.mark.slow
def test_a_million_customers():
    transactions, truth = generate_transactions(1_000_000, seed=11)

    assert len(truth) == 1_000_000
    assert truth["customer_id"].iloc[-1] == "C1000000"
    assert 8 < len(transactions) / len(truth) < 20
    assert transactions["order_id"].is_unique
    assert transactions["order_ts"].is_monotonic_increasing
    tiers = tier_of(rolling_12m_spend(transactions, truth["customer_id"], END))
    share = tiers.value_counts(normalize=True).reindex([1, 2, 3], fill_value=0.0)
    assert 0.10 <= share.sum() <= 0.20
    assert 0 < share[3] < share[2] < share[1]
