"""At-risk members: VIPs likely to leave or to lose their tier.

Rules:
- Only members holding Silver or above are considered.
- A member is at risk when any of these holds, and `reason` lists each that does ("; "-joined):
  "high churn risk" - churn_probability >= churn_threshold (exactly at the threshold counts);
  "projected below <Tier>" - projected 12-month spend (predicted_spend x 365 / horizon_days) is
  below the held tier's threshold, i.e. the spend the model expects over the next year would not
  requalify them;
  "in grace until <date>" - their spend is already below the held tier (they keep it only until
  grace_until).
- spend_to_keep_tier: in grace, threshold - rolling_12m_spend (getting back to the threshold ends
  the grace); otherwise threshold - (rolling_12m_spend - spend_expiring_90d), the spend needed in
  the next 90 days so that the window is still at the threshold once the spend now expiring has
  dropped out. Never negative.
- days_left: in grace, days from as_of to grace_until (0 = today is the last day of grace);
  otherwise grace_days, because a member still above the threshold cannot be demoted sooner than a
  full grace period after the first day their spend falls below it (a lower bound).
- projected_shortfall = max(0, threshold - projected 12-month spend).
- Ranked by at_risk_score = risk x value, best (most to lose) first, where
  risk = max(churn_probability, shortfall share) with shortfall share = projected_shortfall /
  threshold (in [0, 1]), and value = max(rolling_12m_spend, 0), the spend the programme stands to
  lose. Ties: higher rolling spend, then customer_id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segments.inputs import (
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    DAYS_SINCE_LAST_ORDER,
    PREDICTED_LTV,
    ROLLING_12M_SPEND,
    SPEND_EXPIRING_90D,
)
from segments.settings import VIP_TIERS

AT_RISK_COLUMNS = (
    CUSTOMER_ID,
    "rank",
    "tier",
    "reason",
    CHURN_PROBABILITY,
    DAYS_SINCE_LAST_ORDER,
    ROLLING_12M_SPEND,
    "tier_threshold",
    "spend_to_keep_tier",
    "days_left",
    "in_grace",
    "grace_until",
    "projected_12m_spend",
    "projected_shortfall",
    PREDICTED_LTV,
    "at_risk_score",
)


def at_risk_members(
    customers: pd.DataFrame,
    tiers: pd.DataFrame,
    projected_12m_spend: pd.Series,
    as_of: pd.Timestamp,
    churn_threshold: float,
    grace_days: int,
) -> tuple[pd.Series, pd.DataFrame]:
    """(is_at_risk for every customer, the ranked at-risk list).

    `customers`, `tiers` (tier, tier_threshold, in_grace, grace_until) and `projected_12m_spend`
    are aligned row for row.
    """
    is_member = tiers["tier"].isin(VIP_TIERS)
    threshold = tiers["tier_threshold"]
    spend = customers[ROLLING_12M_SPEND]
    in_grace = tiers["in_grace"].astype(bool)

    high_churn = customers[CHURN_PROBABILITY] >= churn_threshold
    projected_below = projected_12m_spend < threshold
    is_at_risk = is_member & (high_churn | projected_below | in_grace)

    grace_until = pd.to_datetime(tiers["grace_until"])
    days_left = ((grace_until - as_of).dt.days).where(in_grace, grace_days)
    spend_kept = spend.where(in_grace, spend - customers[SPEND_EXPIRING_90D])
    projected_shortfall = (threshold - projected_12m_spend).clip(lower=0)
    shortfall_share = (projected_shortfall / threshold.where(threshold > 0)).fillna(0.0).clip(0, 1)
    risk = np.maximum(customers[CHURN_PROBABILITY], shortfall_share)

    reason = pd.Series("", index=customers.index, dtype=object)
    reason = _append(reason, high_churn, pd.Series("high churn risk", index=customers.index))
    reason = _append(reason, projected_below, "projected below " + tiers["tier"].astype(str))
    reason = _append(reason, in_grace, "in grace until " + grace_until.dt.strftime("%Y-%m-%d").fillna(""))

    listed = pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID],
            "tier": tiers["tier"],
            "reason": reason,
            CHURN_PROBABILITY: customers[CHURN_PROBABILITY],
            DAYS_SINCE_LAST_ORDER: customers[DAYS_SINCE_LAST_ORDER],
            ROLLING_12M_SPEND: spend,
            "tier_threshold": threshold,
            "spend_to_keep_tier": (threshold - spend_kept).clip(lower=0),
            "days_left": days_left.astype("Int64"),
            "in_grace": in_grace,
            "grace_until": grace_until,
            "projected_12m_spend": projected_12m_spend,
            "projected_shortfall": projected_shortfall,
            PREDICTED_LTV: customers[PREDICTED_LTV],
            "at_risk_score": risk * spend.clip(lower=0),
        }
    )[is_at_risk.to_numpy()]
    listed = listed.sort_values(
        ["at_risk_score", ROLLING_12M_SPEND, CUSTOMER_ID], ascending=[False, False, True], kind="mergesort"
    )
    listed.insert(1, "rank", np.arange(1, len(listed) + 1))
    return is_at_risk, listed.reset_index(drop=True).loc[:, list(AT_RISK_COLUMNS)]


def _append(reason: pd.Series, when: pd.Series, text: pd.Series) -> pd.Series:
    joined = np.where(reason == "", text, reason + "; " + text)
    return reason.where(~when, pd.Series(joined, index=reason.index))
