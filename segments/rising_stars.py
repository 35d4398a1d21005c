"""Rising stars: customers the model expects to climb to a higher tier, with the reasons why.

Rules:
- Projected 12-month spend = predicted_spend_12m, the model's forecast for the next 365 days, when
  the customers table has it (vipcast's model gives it: the horizon forecast moved along the BTYD
  order curve to 365 days); otherwise predicted_spend x 365 / horizon_days, the horizon's spend at a
  constant daily rate. Both equal predicted_spend for the default 365-day horizon.
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
    PREDICTED_SPEND_12M,
    ROLLING_12M_SPEND,
    SPEND_90D,
)
from segments.keys import TIER_NAMES, money, ranked_order
from segments.reasons import phrase, reason_lists
from segments.settings import TIERS
from segments.texts import money_text
from segments.tiers import qualified_rank

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
    id_rank: np.ndarray,
    shap: tuple[pd.DataFrame, np.ndarray] | Callable[[pd.Series], pd.DataFrame] | None = None,
    feature_values: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores for every customer, the ranked rising-star list).

    `customers` and `tiers` (tier, tier_rank) are aligned row for row; `id_rank` is each
    customer's rank by customer_id (`segments.keys.id_ranks`). `shap` and `feature_values` are
    (table, row of each customer in it) as `segments.inputs.check_shap` returns them, or `shap` is
    the explain function. The scores frame has projected_12m_spend, projected_tier,
    rising_star_score and is_rising_star; the list has `RISING_STAR_COLUMNS` (reason_3 is missing
    when only two reasons were found).
    """
    if PREDICTED_SPEND_12M in customers:
        projected = customers[PREDICTED_SPEND_12M]
    else:
        projected = projected_12m_spend(customers[PREDICTED_SPEND], horizon_days)
    projected_rank = qualified_rank(projected, amounts)
    signals = trend_signals(customers)
    score = rising_star_score(customers[P_ALIVE], customers[PREDICTED_LTV], trend_index(signals))
    nominated = (projected_rank > tiers["tier_rank"].to_numpy()) & (customers[P_ALIVE] >= min_p_alive).to_numpy()
    projected_tier = pd.Series(TIER_NAMES[projected_rank], index=customers.index, dtype=object)

    scores = pd.DataFrame(
        {
            "projected_12m_spend": projected,
            "projected_tier": projected_tier,
            "rising_star_score": score,
            "is_rising_star": nominated,
        },
        index=customers.index,
    )

    # Only the nominees' rows are gathered and sorted: a few thousand of a million.
    rows = np.flatnonzero(nominated)
    rows = rows[
        ranked_order([(score.to_numpy()[rows], False), (projected.to_numpy()[rows], False)], id_rank[rows])
    ]
    spend = customers[ROLLING_12M_SPEND].take(rows)
    target_amount = np.array([amounts[name] for name in TIERS], dtype=float)[projected_rank[rows]]
    listed = pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID].take(rows),
            "tier": tiers["tier"].take(rows),
            "target_tier": projected_tier.take(rows),
            ROLLING_12M_SPEND: spend,
            "projected_12m_spend": projected.take(rows),
            "amount_to_target_tier": money(pd.Series(target_amount, index=spend.index) - spend).clip(lower=0),
            PREDICTED_SPEND: customers[PREDICTED_SPEND].take(rows),
            PREDICTED_LTV: customers[PREDICTED_LTV].take(rows),
            P_ALIVE: customers[P_ALIVE].take(rows),
            "rising_star_score": score.take(rows),
        }
    )
    if callable(shap):
        shap = check_shap(shap(listed[CUSTOMER_ID]), listed[CUSTOMER_ID])
    elif shap is not None:
        shap = (shap[0], shap[1][rows])
    reasons = _reasons(rows, listed, customers, signals, shap, feature_values)
    for position in range(MAX_REASONS):
        listed[f"reason_{position + 1}"] = [r[position] if len(r) > position else None for r in reasons]
    listed.insert(1, "rank", np.arange(1, len(listed) + 1))
    return scores, listed.reset_index(drop=True).loc[:, list(RISING_STAR_COLUMNS)]


def _reasons(
    rows: np.ndarray,
    listed: pd.DataFrame,
    customers: pd.DataFrame,
    signals: pd.DataFrame,
    shap: tuple[pd.DataFrame, np.ndarray] | None,
    feature_values: tuple[pd.DataFrame, np.ndarray] | None,
) -> list[list[str]]:
    """The reason phrases of the listed customers (customer rows `rows`, in list order).

    `shap` holds the SHAP table and the row of each listed customer in it; `feature_values` the
    feature table and the row of every customer in it (without it, the customers' own columns).
    """
    if shap is None:
        reasons: list[list[str]] = [[] for _ in rows]
    else:
        values = customers.take(rows) if feature_values is None else feature_values[0].take(feature_values[1][rows])
        reasons = reason_lists(shap[0].take(shap[1]), values, limit=MAX_REASONS)
    short = [position for position, found in enumerate(reasons) if len(found) < MIN_REASONS]
    if not short:
        return reasons
    signal_names = [str(name) for name in signals.columns]
    signal_values = signals.take(rows[short]).to_numpy(dtype=float)
    spend_90d = customers[SPEND_90D].to_numpy()[rows[short]]
    projected = listed["projected_12m_spend"].to_numpy()[short]
    p_alive = customers[P_ALIVE].to_numpy()[rows[short]]
    for at, position in enumerate(short):
        found = reasons[position]
        for signal, value in _growing(signal_names, signal_values[at]):
            if len(found) >= MIN_REASONS:
                break
            text = phrase(SPEND_90D, spend_90d[at]) if signal == "spend_momentum" else phrase(signal, float(value))
            if text not in found:
                found.append(text)
        if len(found) < MIN_REASONS:
            found.append(f"expected to spend {money_text(projected[at])} in the next 12 months")
        if len(found) < MIN_REASONS:
            found.append(f"{p_alive[at]:.0%} likely to still be active")
    return reasons


def _growing(names: list[str], values: np.ndarray) -> list[tuple[str, float]]:
    """The positive trend signals, strongest first, as (name, value).

    Ordered as `Series.sort_values(ascending=False)` orders them; pandas itself settles the rare
    exact tie, so tied signals come out in the same order as always.
    """
    growing = [(name, value) for name, value in zip(names, values) if value > 0]
    if len({value for _, value in growing}) < len(growing):
        series = pd.Series(dict(growing), dtype=float).sort_values(ascending=False)
        return list(series.items())
    return sorted(growing, key=lambda item: -item[1])
