"""At-risk members: VIPs likely to leave or to lose their tier.

Rules:
- Only members holding Silver or above are considered.
- A member is at risk when any of these holds, and `reason` lists each that does ("; "-joined):
  "high churn risk" - churn_probability >= churn_threshold (exactly at the threshold counts);
  "projected below <Tier>" - projected 12-month spend (see `segments.rising_stars`) is
  below the held tier's threshold, i.e. the spend the model expects over the next year would not
  requalify them;
  "in grace until <date>" - their spend is already below the held tier (they keep it only until
  grace_until).
- spend_to_keep_tier: in grace, threshold - (rolling_12m_spend - the spend leaving the window by
  grace_until), the spend needed by grace_until for the 12-month spend on that day to reach the
  threshold (`expiring_by` gives the spend leaving; without it, threshold - rolling_12m_spend, the
  shortfall today); otherwise threshold - (rolling_12m_spend - spend_expiring_90d), the spend
  needed in the next 90 days so that the window is still at the threshold once the spend now
  expiring has dropped out. Never negative.
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

from collections.abc import Callable

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
from segments.keys import TIER_NAMES, money, ranked_order
from segments.settings import TIER_RANK, VIP_TIERS

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
    id_rank: np.ndarray,
    expiring_by: Callable[[pd.Series, pd.Series], pd.Series] | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    """(is_at_risk for every customer, the reason for every customer, the ranked at-risk list, and
    whether the projection alone puts each customer there: no high churn risk, not in grace).

    `customers`, `tiers` (tier, tier_rank, tier_threshold, in_grace, grace_until),
    `projected_12m_spend` and `id_rank` (`segments.keys.id_ranks`) are aligned row for row. The
    reason is None for a customer who is not at risk. Only the at-risk members' rows are gathered
    for the list and its reasons. `expiring_by(customer ids, days)` gives each customer's spend
    leaving the rolling 12-month window within that many days (a Series on the ids' index); it is
    called once, for the members in grace.
    """
    threshold = tiers["tier_threshold"]
    in_grace = tiers["in_grace"].to_numpy(dtype=bool)
    is_member = tiers["tier_rank"].to_numpy() >= TIER_RANK[VIP_TIERS[0]]
    high_churn = (customers[CHURN_PROBABILITY] >= churn_threshold).to_numpy()
    projected_below = (projected_12m_spend < threshold).to_numpy()
    is_at_risk = is_member & (high_churn | projected_below | in_grace)

    rows = np.flatnonzero(is_at_risk)
    threshold = threshold.take(rows)
    spend = customers[ROLLING_12M_SPEND].take(rows)
    projected = projected_12m_spend.take(rows)
    churn = customers[CHURN_PROBABILITY].take(rows)
    grace = pd.Series(in_grace[rows], index=spend.index)
    grace_until = pd.to_datetime(tiers["grace_until"].take(rows))

    days_left = ((grace_until - as_of).dt.days).where(grace, grace_days)
    spend_kept = spend.where(grace, spend - customers[SPEND_EXPIRING_90D].take(rows))
    if expiring_by is not None and grace.any():
        ids = customers[CUSTOMER_ID].take(rows)[grace]
        leaving = expiring_by(ids, days_left[grace].astype("int64"))
        spend_kept[grace] = spend[grace] - leaving.reindex(ids.index).fillna(0.0)
    projected_shortfall = (threshold - projected).clip(lower=0)
    shortfall_share = (projected_shortfall / threshold.where(threshold > 0)).fillna(0.0).clip(0, 1)
    risk = np.maximum(churn, shortfall_share)
    reason = _reasons(
        high_churn[rows], projected_below[rows], grace.to_numpy(), tiers["tier_rank"].to_numpy()[rows], grace_until
    )

    listed = pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID].take(rows),
            "tier": tiers["tier"].take(rows),
            "reason": pd.Series(reason, index=spend.index, dtype=object),
            CHURN_PROBABILITY: churn,
            # Whole days, as features and the customers' table give them (the customers frame holds them
            # as floats, NaN for a customer without a purchase day).
            DAYS_SINCE_LAST_ORDER: customers[DAYS_SINCE_LAST_ORDER].take(rows).astype("Int64"),
            ROLLING_12M_SPEND: spend,
            "tier_threshold": threshold,
            "spend_to_keep_tier": money(threshold - spend_kept).clip(lower=0),
            "days_left": days_left.astype("Int64"),
            "in_grace": grace,
            "grace_until": grace_until,
            "projected_12m_spend": projected,
            "projected_shortfall": projected_shortfall,
            PREDICTED_LTV: customers[PREDICTED_LTV].take(rows),
            "at_risk_score": risk * spend.clip(lower=0),
        }
    )
    listed = listed.take(ranked_order([(listed["at_risk_score"], False), (spend, False)], id_rank[rows]))
    listed.insert(1, "rank", np.arange(1, len(listed) + 1))
    reasons = np.full(len(customers), None, dtype=object)
    reasons[rows] = reason
    projected_only = is_member & projected_below & ~high_churn & ~in_grace
    return is_at_risk, reasons, listed.reset_index(drop=True).loc[:, list(AT_RISK_COLUMNS)], projected_only


def _reasons(
    high_churn: np.ndarray,
    projected_below: np.ndarray,
    in_grace: np.ndarray,
    tier_rank: np.ndarray,
    grace_until: pd.Series,
) -> np.ndarray:
    """Each member's "; "-joined reasons, in the order high churn, projected below, in grace.

    There are few distinct combinations (flags, tier, grace end), so each is written once.
    """
    day, days = pd.factorize(grace_until)
    day_texts = ["", *days.strftime("%Y-%m-%d")]  # by day + 1: NaT (-1) has no date
    flags = (high_churn.astype(np.int64) * 2 + projected_below) * 2 + in_grace
    combination, combinations = pd.factorize(((flags * len(TIER_NAMES) + tier_rank) * (len(days) + 1)) + day + 1)
    texts = []
    for code in combinations:
        code, day_code = divmod(int(code), len(days) + 1)
        code, rank = divmod(code, len(TIER_NAMES))
        parts = []
        if code & 4:
            parts.append("high churn risk")
        if code & 2:
            parts.append(f"projected below {TIER_NAMES[rank]}")
        if code & 1:
            parts.append(f"in grace until {day_texts[day_code]}")
        texts.append("; ".join(parts))
    return np.array(texts, dtype=object)[combination] if len(combination) else np.array([], dtype=object)
