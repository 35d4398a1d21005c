"""Rising stars: customers the model expects to climb to a higher tier, with the reasons why.

Rules:
- Projected 12-month spend = predicted_spend x 365 / horizon_days: the model's spend over its
  horizon at a constant daily rate, so it compares with 12-month tier thresholds whatever the
  horizon (exact for the default 365-day horizon).
- The projected tier is the tier that amount would qualify for on this run's thresholds. A
  customer is a rising star when the projected tier is above the tier they hold now (Base into
  Silver counts) and p_alive >= rising_star_min_p_alive.
- target_tier is the projected tier; amount_to_target_tier = its threshold - rolling_12m_spend
  (what is still missing from the current 12-month window).
- rising_star_score (every customer has one; only nominees are listed):
      score = p_alive x ln(1 + max(predicted_ltv, 0)) x (1 + trend / 2)
  where trend = mean of tanh(aov_trend), tanh(purchase_interval_acceleration),
  tanh(category_breadth_growth) and tanh(spend_momentum) (features.behaviour definitions; each is 0
  for "no change" and positive for growth), a missing signal counted as 0, and
  spend_momentum = spend_90d x 365 / 90 / rolling_12m_spend - 1 (recent pace vs the 12-month
  pace; 0 when rolling spend is not positive). trend is in (-1, 1), so the last factor is in
  (0.5, 1.5): the score is non-negative and increases with predicted LTV, with P(alive) and with
  each trend signal.
- The list is ranked by score, best first (ties: higher projected spend, then customer_id).
- Reasons: 2-3 phrases per rising star from the largest positive SHAP contributions to predicted
  spend (`segments.reasons`); when SHAP is not given, or gives fewer than two positive features,
  the list is topped up with the strongest positive trend signals and then with the projection
  itself ("expected to spend $6,200 in the next 12 months").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from segments.inputs import (
    check_shap,
    AOV_TREND,
    CATEGORY_BREADTH_GROWTH,
    CUSTOMER_ID,
    INTERVAL_ACCELERATION,
    P_ALIVE,
    PREDICTED_LTV,
    PREDICTED_SPEND,
    ROLLING_12M_SPEND,
    SPEND_90D,
)
from segments.reasons import phrase, top_reasons
from segments.settings import TIER_RANK
from segments.tiers import qualified_tier

DAYS_PER_YEAR = 365
MAX_REASONS = 3
MIN_REASONS = 2
RISING_STAR_COLUMNS = (
    CUSTOMER_ID,
    "rank",
    "tier",
    "target_tier",
    ROLLING_12M_SPEND,
    "projected_12m_spend",
    "amount_to_target_tier",
    PREDICTED_SPEND,
    PREDICTED_LTV,
    P_ALIVE,
    "rising_star_score",
    "reason_1",
    "reason_2",
    "reason_3",
)


def projected_12m_spend(predicted_spend: pd.Series, horizon_days: int) -> pd.Series:
    """Predicted spend over the horizon scaled to 365 days at a constant rate."""
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    return predicted_spend * (DAYS_PER_YEAR / horizon_days)


def spend_momentum(spend_90d: pd.Series, rolling_12m_spend: pd.Series) -> pd.Series:
    """Annualised last-90-day spend relative to the 12-month spend, minus 1 (0 without positive spend)."""
    pace = spend_90d * (DAYS_PER_YEAR / 90) / rolling_12m_spend.where(rolling_12m_spend > 0)
    return (pace - 1).fillna(0.0)


def trend_signals(customers: pd.DataFrame) -> pd.DataFrame:
    """The four growth signals the score uses, one column each, NaN where unknown."""
    return pd.DataFrame(
        {
            AOV_TREND: customers[AOV_TREND],
            INTERVAL_ACCELERATION: customers[INTERVAL_ACCELERATION],
            CATEGORY_BREADTH_GROWTH: customers[CATEGORY_BREADTH_GROWTH],
            "spend_momentum": spend_momentum(customers[SPEND_90D], customers[ROLLING_12M_SPEND]),
        },
        index=customers.index,
    )


def trend_index(signals: pd.DataFrame) -> pd.Series:
    """Mean of tanh of each signal, a missing signal counted as 0: in (-1, 1)."""
    return np.tanh(signals.astype(float)).fillna(0.0).mean(axis=1)


def rising_star_score(p_alive: pd.Series, predicted_ltv: pd.Series, trend: pd.Series) -> pd.Series:
    """p_alive x ln(1 + max(predicted_ltv, 0)) x (1 + trend / 2)."""
    return p_alive * np.log1p(predicted_ltv.clip(lower=0)) * (1 + trend / 2)


def rising_stars(
    customers: pd.DataFrame,
    tiers: pd.DataFrame,
    amounts: dict[str, float],
    horizon_days: int,
    min_p_alive: float,
    shap: pd.DataFrame | Callable[[pd.Series], pd.DataFrame] | None = None,
    feature_values: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores for every customer, the ranked rising-star list).

    `customers` and `tiers` are aligned row for row. The scores frame has projected_12m_spend,
    projected_tier, rising_star_score and is_rising_star; the list has `RISING_STAR_COLUMNS`
    (reason_3 is missing when only two reasons were found).
    """
    projected = projected_12m_spend(customers[PREDICTED_SPEND], horizon_days)
    projected_tier = qualified_tier(projected, amounts)
    signals = trend_signals(customers)
    score = rising_star_score(customers[P_ALIVE], customers[PREDICTED_LTV], trend_index(signals))
    climbs = projected_tier.map(TIER_RANK) > tiers["tier"].map(TIER_RANK)
    nominated = climbs & (customers[P_ALIVE] >= min_p_alive)

    scores = pd.DataFrame(
        {
            "projected_12m_spend": projected,
            "projected_tier": projected_tier,
            "rising_star_score": score,
            "is_rising_star": nominated,
        },
        index=customers.index,
    )

    listed = pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID],
            "tier": tiers["tier"],
            "target_tier": projected_tier,
            ROLLING_12M_SPEND: customers[ROLLING_12M_SPEND],
            "projected_12m_spend": projected,
            "amount_to_target_tier": (projected_tier.map(amounts) - customers[ROLLING_12M_SPEND]).clip(lower=0),
            PREDICTED_SPEND: customers[PREDICTED_SPEND],
            PREDICTED_LTV: customers[PREDICTED_LTV],
            P_ALIVE: customers[P_ALIVE],
            "rising_star_score": score,
        }
    )[nominated.to_numpy()]
    listed = listed.sort_values(
        ["rising_star_score", "projected_12m_spend", CUSTOMER_ID], ascending=[False, False, True], kind="mergesort"
    )
    if callable(shap):
        shap = check_shap(shap(listed[CUSTOMER_ID]), listed[CUSTOMER_ID])
    reasons = [
        _reasons_for(row_index, listed, customers, signals, shap, feature_values) for row_index in listed.index
    ]
    for position in range(MAX_REASONS):
        listed[f"reason_{position + 1}"] = [r[position] if len(r) > position else None for r in reasons]
    listed.insert(1, "rank", np.arange(1, len(listed) + 1))
    return scores, listed.reset_index(drop=True).loc[:, list(RISING_STAR_COLUMNS)]


def _reasons_for(
    row_index: int,
    listed: pd.DataFrame,
    customers: pd.DataFrame,
    signals: pd.DataFrame,
    shap: pd.DataFrame | None,
    feature_values: pd.DataFrame | None,
) -> list[str]:
    customer_id = customers.at[row_index, CUSTOMER_ID]
    reasons: list[str] = []
    if shap is not None:
        values = feature_values.loc[customer_id] if feature_values is not None else customers.loc[row_index]
        reasons = top_reasons(shap.loc[customer_id], values, limit=MAX_REASONS)
    if len(reasons) < MIN_REASONS:
        growing = signals.loc[row_index].dropna()
        growing = growing[growing > 0].sort_values(ascending=False)
        for signal, value in growing.items():
            if len(reasons) >= MIN_REASONS:
                break
            text = (
                phrase(SPEND_90D, customers.at[row_index, SPEND_90D])
                if signal == "spend_momentum"
                else phrase(str(signal), float(value))
            )
            if text not in reasons:
                reasons.append(text)
    if len(reasons) < MIN_REASONS:
        reasons.append(f"expected to spend ${listed.at[row_index, 'projected_12m_spend']:,.0f} in the next 12 months")
    if len(reasons) < MIN_REASONS:
        reasons.append(f"{customers.at[row_index, P_ALIVE]:.0%} likely to still be active")
    return reasons
