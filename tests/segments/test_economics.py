"""Programme economics per tier, worked by hand on three customers."""

from __future__ import annotations

import math

import pytest
from segment_tables import AS_OF, customers_table

from segments import EconomicsSettings, SegmentSettings, TierBenefits, nominate

THREE = customers_table(
    {"customer_id": "platinum", "rolling_12m_spend": 11000.0, "predicted_spend": 12000.0, "predicted_orders": 10.0},
    {"customer_id": "gold", "rolling_12m_spend": 5500.0, "predicted_spend": 6000.0, "predicted_orders": 4.0},
    {"customer_id": "base", "rolling_12m_spend": 800.0, "predicted_spend": 1000.0, "predicted_orders": 2.0},
)


def test_economics_by_hand_with_default_benefits():
    economics = nominate(THREE, None, AS_OF, SegmentSettings(), 365).economics.set_index("tier")
    assert list(economics.index) == ["Platinum", "Gold", "Silver", "Base"]
    platinum = economics.loc["Platinum"]
    # 10% of 12,000 + $8 x 10 orders + $150 gift = 1,200 + 80 + 150
    assert platinum["members"] == 1
    assert platinum["predicted_revenue"] == pytest.approx(12000.0)
    assert platinum["discount_cost"] == pytest.approx(1200.0)
    assert platinum["shipping_cost"] == pytest.approx(80.0)
    assert platinum["gift_cost"] == pytest.approx(150.0)
    assert platinum["benefit_cost"] == pytest.approx(1430.0)
    assert platinum["gross_margin"] == pytest.approx(0.35 * 12000.0)
    assert platinum["net_margin"] == pytest.approx(4200.0 - 1430.0)
    gold = economics.loc["Gold"]
    assert gold["benefit_cost"] == pytest.approx(480.0 + 20.0 + 50.0)
    assert gold["net_margin"] == pytest.approx(2100.0 - 550.0)
    base = economics.loc["Base"]
    assert base["benefit_cost"] == 0.0
    assert base["net_margin"] == pytest.approx(350.0)
    silver = economics.loc["Silver"]
    assert silver["members"] == 0 and silver["predicted_revenue"] == 0.0
    assert math.isnan(silver["net_margin_per_member"])


def test_gift_is_yearly_and_scales_with_the_horizon():
    settings = SegmentSettings(
        economics=EconomicsSettings(gross_margin=0.5, gold=TierBenefits(0.0, 0.0, 365.0))
    )
    economics = nominate(THREE, None, AS_OF, settings, horizon_days=73).economics.set_index("tier")
    assert economics.loc["Gold", "gift_cost"] == pytest.approx(73.0)
    assert economics.loc["Gold", "net_margin"] == pytest.approx(0.5 * 6000.0 - 73.0)
