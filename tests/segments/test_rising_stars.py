"""Rising stars: nomination, projection from the horizon, score, reasons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from segment_tables import AS_OF, customers_table

from segments import SegmentSettings, nominate
from segments.rising_stars import rising_star_score, trend_index


def test_nominees_climb_a_tier_and_are_likely_alive():
    customers = customers_table(
        {"customer_id": "into_silver", "rolling_12m_spend": 800.0, "predicted_spend": 2500.0, "predicted_ltv": 2400.0},
        {"customer_id": "dormant", "rolling_12m_spend": 800.0, "predicted_spend": 2500.0, "p_alive": 0.29},
        {"customer_id": "at_minimum", "rolling_12m_spend": 800.0, "predicted_spend": 2500.0, "p_alive": 0.3},
        {"customer_id": "silver_to_gold", "rolling_12m_spend": 3000.0, "predicted_spend": 5200.0},
        {"customer_id": "stays_silver", "rolling_12m_spend": 3000.0, "predicted_spend": 4900.0},
        {"customer_id": "platinum", "rolling_12m_spend": 20000.0, "predicted_spend": 30000.0},
    )
    result = nominate(customers, None, AS_OF, SegmentSettings(), horizon_days=365)
    stars = result.rising_stars.set_index("customer_id")
    assert set(stars.index) == {"into_silver", "at_minimum", "silver_to_gold"}
    assert stars.loc["into_silver", "target_tier"] == "Silver"
    assert stars.loc["into_silver", "amount_to_target_tier"] == pytest.approx(1200.0)
    assert stars.loc["silver_to_gold", "tier"] == "Silver"
    assert stars.loc["silver_to_gold", "target_tier"] == "Gold"
    assert stars.loc["silver_to_gold", "amount_to_target_tier"] == pytest.approx(2000.0)
    assert result.tiers["is_rising_star"].sum() == 3


def test_projection_scales_the_horizon_to_a_year():
    customers = customers_table(
        {"customer_id": "just_over", "predicted_spend": 1000.0},  # 1000 * 365 / 180 = 2027.8
        {"customer_id": "just_under", "predicted_spend": 980.0},  # 1987.2
    )
    result = nominate(customers, None, AS_OF, SegmentSettings(), horizon_days=180)
    tiers = result.tiers.set_index("customer_id")
    assert tiers.loc["just_over", "projected_12m_spend"] == pytest.approx(1000.0 * 365 / 180)
    assert list(result.rising_stars["customer_id"]) == ["just_over"]


def test_the_models_twelve_month_forecast_is_the_projection_when_given():
    """With predicted_spend_12m (the order curve's next 365 days) the linear scaling is not used."""
    customers = customers_table(
        {"customer_id": "decaying", "predicted_spend": 1000.0, "predicted_spend_12m": 1900.0},  # linear: 2027.8
        {"customer_id": "steady", "predicted_spend": 980.0, "predicted_spend_12m": 2010.0},  # linear: 1987.2
    )
    result = nominate(customers, None, AS_OF, SegmentSettings(), horizon_days=180)
    tiers = result.tiers.set_index("customer_id")
    assert tiers.loc["decaying", "projected_12m_spend"] == 1900.0
    assert list(result.rising_stars["customer_id"]) == ["steady"]


def test_score_by_hand():
    # ln(1 + (e^2 - 1)) = 2; no trend; p_alive 0.5 -> 0.5 * 2 * 1 = 1.0
    customers = customers_table({"p_alive": 0.5, "predicted_ltv": math.e**2 - 1})
    tiers = nominate(customers, None, AS_OF, SegmentSettings(), 365).tiers
    assert tiers.loc[0, "rising_star_score"] == pytest.approx(1.0)
    # aov_trend = atanh(0.4) alone: trend = 0.4 / 4 = 0.1 -> factor 1.05
    grown = customers_table({"p_alive": 0.5, "predicted_ltv": math.e**2 - 1, "aov_trend": math.atanh(0.4)})
    assert nominate(grown, None, AS_OF, SegmentSettings(), 365).tiers.loc[0, "rising_star_score"] == pytest.approx(1.05)


def test_score_is_monotone_in_each_input():
    base = dict(p_alive=pd.Series([0.6]), predicted_ltv=pd.Series([3000.0]), trend=pd.Series([0.1]))
    score = rising_star_score(**base).iloc[0]
    for name, higher in (("p_alive", 0.7), ("predicted_ltv", 3500.0), ("trend", 0.3)):
        assert rising_star_score(**{**base, name: pd.Series([higher])}).iloc[0] > score
    signals = pd.DataFrame({"a": [0.2, 0.5], "b": [np.nan, 0.0]})
    assert trend_index(signals).iloc[1] > trend_index(signals).iloc[0]


def test_every_customer_has_a_score_and_the_list_is_ranked_by_it():
    customers = customers_table(
        *(
            {"predicted_spend": 2500.0 + 100 * i, "predicted_ltv": 2400.0 + 100 * i, "p_alive": 0.4 + 0.1 * (i % 5)}
            for i in range(8)
        ),
        {"predicted_spend": 10.0},
    )
    result = nominate(customers, None, AS_OF, SegmentSettings(), 365)
    assert result.tiers["rising_star_score"].notna().all()
    stars = result.rising_stars
    assert list(stars["rank"]) == list(range(1, len(stars) + 1))
    assert stars["rising_star_score"].is_monotonic_decreasing
    assert "c9" not in set(stars["customer_id"])


def test_reasons_from_the_largest_positive_shap_contributions():
    customers = customers_table(
        {"rolling_12m_spend": 900.0, "predicted_spend": 2600.0, "spend_90d": 1240.0, "aov_trend": 0.2,
         "category_breadth_growth": 3.0},
    )
    shap = pd.DataFrame(
        {
            "spend_90d": [300.0],
            "aov_trend": [120.0],
            "category_breadth_growth": [200.0],
            "frequency": [-50.0],
            "expected_value": [5000.0],
            "btyd_component": [4000.0],
        },
        index=pd.Index(["c1"], name="customer_id"),
    )
    star = nominate(customers, None, AS_OF, SegmentSettings(), 365, shap).rising_stars.iloc[0]
    assert star["reason_1"] == "spent $1,240 in the last 90 days"
    assert star["reason_2"] == "bought from 3 new categories in the last 6 months"
    assert star["reason_3"] == "order value up 50% in the last 6 months"  # (1.2 / 0.8) - 1


def test_feature_without_template_gets_a_generic_phrase_and_reasons_are_topped_up():
    customers = customers_table({"predicted_spend": 2600.0, "loyalty_points": 420.0})
    shap = pd.DataFrame({"customer_id": ["c1"], "loyalty_points": [80.0], "spend_90d": [-10.0]})
    star = nominate(customers, None, AS_OF, SegmentSettings(), 365, shap).rising_stars.iloc[0]
    assert star["reason_1"] == "loyalty points is high (420)"
    assert star["reason_2"] == "expected to spend $2,600 in the next 12 months"


def test_every_rising_star_has_at_least_two_reasons_without_shap():
    customers = customers_table(
        *({"predicted_spend": 2500.0 + 500 * i, "aov_trend": 0.1 * i, "spend_90d": 100.0 * i} for i in range(6))
    )
    stars = nominate(customers, None, AS_OF, SegmentSettings(), 365).rising_stars
    assert len(stars) == 6
    assert stars["reason_1"].notna().all() and stars["reason_2"].notna().all()
    assert (stars["reason_1"] != stars["reason_2"]).all()


def test_shap_missing_a_customer_is_an_error():
    customers = customers_table({"predicted_spend": 2600.0}, {"predicted_spend": 10.0})
    shap = pd.DataFrame({"spend_90d": [1.0]}, index=pd.Index(["c1"], name="customer_id"))
    with pytest.raises(ValueError, match="shap has no row for customer"):
        nominate(customers, None, AS_OF, SegmentSettings(), 365, shap)


def test_reason_codes_from_an_explainer_called_once_for_the_nominees_only():
    customers = customers_table(
        {"rolling_12m_spend": 900.0, "predicted_spend": 2600.0, "spend_90d": 1240.0, "category_breadth_growth": 3.0},
        {"rolling_12m_spend": 100.0, "predicted_spend": 50.0},  # stays Base: not a nominee
        {"rolling_12m_spend": 2500.0, "predicted_spend": 6000.0, "aov_trend": 0.4},
    )
    full = pd.DataFrame(
        {"spend_90d": [300.0, 1.0, 10.0], "aov_trend": [5.0, 1.0, 400.0], "category_breadth_growth": [200.0, 1.0, 2.0]},
        index=pd.Index(["c1", "c2", "c3"], name="customer_id"),
    )
    asked: list[list[str]] = []

    def explain(ids: pd.Series) -> pd.DataFrame:
        asked.append(list(ids))
        return full.loc[list(ids)]

    eager = nominate(customers, None, AS_OF, SegmentSettings(), 365, full)
    lazy = nominate(customers, None, AS_OF, SegmentSettings(), 365, explain)
    assert len(asked) == 1 and sorted(asked[0]) == ["c1", "c3"]
    pd.testing.assert_frame_equal(eager.rising_stars, lazy.rising_stars)
