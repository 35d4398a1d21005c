"""VIP tiers on rolling 12-month spend, with a grace period before a demotion.

Rules (thresholds from `TierThresholds`, grace from `SegmentSettings.grace_days`):

- Qualifying spend is `rolling_12m_spend`, net spend in (as_of - 365 days, as_of]; refunds net
  against it, so it can be zero or negative (always Base).
- Absolute mode: a customer whose spend is >= a tier's amount qualifies for it (exactly at the
  threshold is in the tier). Tiers are Base < Silver < Gold < Platinum; "Base" is everyone below
  Silver.
- Share mode: a share s (e.g. 0.05 = top 5%) becomes an amount on each run: with n customers,
  k = max(1, floor(s * n)); the amount is the k-th highest rolling spend, and everyone with spend
  >= that amount qualifies. Customers tied with the k-th customer therefore all qualify (the tier
  may hold slightly more than s; the result never depends on row order or ids). An amount is never
  <= 0: if the k-th spend is not positive, the amount is the smallest positive spend (no positive
  spend at all: the tier is empty), so a customer without net spend is never a VIP.
- Upgrades are immediate, and so is recovery: a member whose spend supports their held tier (or
  more) holds the tier their spend supports and leaves any grace period.
- Demotions wait: a member whose spend falls below their held tier keeps it until
  grace_until = first day below + grace_days. The first day below is the as-of date of the first
  scoring run that sees the spend below (runs are the only observations). On grace_until they still
  hold the tier; on any later run they move to the tier their spend supports. grace_days = 0 means
  no grace: the demotion is immediate.
- Progress: `progress_to_next_tier` = (spend - held tier's amount) / (next amount - held tier's
  amount), clipped to [0, 1] (Base starts at 0); `amount_to_next_tier` = next amount - spend.
  Both are NaN, and `next_tier` is None, at Platinum.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from segments.inputs import CUSTOMER_ID, ROLLING_12M_SPEND
from segments.settings import BASE, TIER_RANK, TIERS, VIP_TIERS, TierThresholds


def tier_threshold_amounts(rolling_12m_spend: pd.Series, thresholds: TierThresholds) -> dict[str, float]:
    """Spend amount at which each tier starts on this run: Base 0, then Silver, Gold, Platinum."""
    if thresholds.mode == "absolute":
        return {BASE: 0.0, **{tier: float(amount) for tier, amount in thresholds.by_tier().items()}}
    spend = np.sort(rolling_12m_spend.to_numpy(dtype=float))[::-1]
    positive = spend[spend > 0]
    amounts = {BASE: 0.0}
    for tier, share in thresholds.by_tier().items():
        if len(spend) == 0 or len(positive) == 0:
            amounts[tier] = math.inf
            continue
        top_k = max(1, math.floor(share * len(spend) + 1e-9))
        amount = float(spend[top_k - 1])
        amounts[tier] = amount if amount > 0 else float(positive.min())
    return amounts


def qualified_tier(rolling_12m_spend: pd.Series, amounts: dict[str, float]) -> pd.Series:
    """The tier each customer's spend supports: the highest tier whose amount the spend reaches."""
    tier = pd.Series(BASE, index=rolling_12m_spend.index, dtype=object)
    for name in VIP_TIERS:
        tier = tier.mask(rolling_12m_spend >= amounts[name], name)
    return tier


def held_tiers(
    customers: pd.DataFrame,
    previous_state: pd.DataFrame | None,
    as_of: pd.Timestamp,
    amounts: dict[str, float],
    grace_days: int,
) -> pd.DataFrame:
    """Tier held on `as_of` after the grace rules, one row per customer in `customers` order.

    Returns columns customer_id, qualified_tier, previous_tier (None when not in the previous
    state), tier, in_grace, grace_until.
    """
    spend = customers[ROLLING_12M_SPEND]
    qualified = qualified_tier(spend, amounts)
    previous = previous_by_customer(customers[CUSTOMER_ID], previous_state)
    previous_tier = previous["tier"]
    previous_grace = previous["grace_until"]

    qualified_rank = qualified.map(TIER_RANK).to_numpy()
    held_rank = previous_tier.fillna(BASE).map(TIER_RANK).to_numpy()
    below_held = qualified_rank < held_rank
    never_in_grace = previous_grace.isna().to_numpy()
    grace_still_running = (~never_in_grace) & (previous_grace.to_numpy() >= as_of.to_datetime64())

    if grace_days == 0:
        keeps_held = np.zeros(len(customers), dtype=bool)
        starts_grace = keeps_held
    else:
        starts_grace = below_held & never_in_grace
        keeps_held = below_held & (starts_grace | grace_still_running)

    tier = np.where(keeps_held, previous_tier.fillna(BASE).to_numpy(dtype=object), qualified.to_numpy(dtype=object))
    new_grace_end = as_of + pd.Timedelta(days=grace_days)
    grace_until = pd.Series(pd.NaT, index=customers.index, dtype="datetime64[ns]")
    grace_until[keeps_held & ~starts_grace] = previous_grace[keeps_held & ~starts_grace]
    grace_until[starts_grace] = new_grace_end

    return pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID].to_numpy(),
            "qualified_tier": qualified.to_numpy(dtype=object),
            "previous_tier": previous_tier.to_numpy(dtype=object),
            "tier": tier,
            "in_grace": keeps_held,
            "grace_until": grace_until.to_numpy(),
        },
        index=customers.index,
    )


def tier_progress(tier: pd.Series, rolling_12m_spend: pd.Series, amounts: dict[str, float]) -> pd.DataFrame:
    """Threshold of the held tier, the next tier, the amount to it and the share of the way there."""
    tier_rank = tier.map(TIER_RANK).to_numpy()
    next_names = np.array([TIERS[rank + 1] if rank + 1 < len(TIERS) else None for rank in tier_rank], dtype=object)
    next_tier = pd.Series(next_names, index=tier.index, dtype=object)
    tier_threshold = tier.map(amounts).astype(float)
    next_threshold = pd.Series(
        [amounts[name] if name is not None else np.nan for name in next_names], index=tier.index, dtype=float
    ).replace(math.inf, np.nan)
    amount_to_next = (next_threshold - rolling_12m_spend).clip(lower=0)
    span = next_threshold - tier_threshold
    progress = ((rolling_12m_spend - tier_threshold) / span.where(span > 0)).clip(0, 1)
    return pd.DataFrame(
        {
            "tier_threshold": tier_threshold,
            "next_tier": next_tier,
            "next_tier_threshold": next_threshold,
            "amount_to_next_tier": amount_to_next,
            "progress_to_next_tier": progress,
        },
        index=tier.index,
    )


def previous_by_customer(customer_ids: pd.Series, previous_state: pd.DataFrame | None) -> pd.DataFrame:
    """The previous run's tier, grace end and flags aligned to `customer_ids` (missing -> None/NaT/False)."""
    aligned = pd.DataFrame({CUSTOMER_ID: customer_ids.to_numpy()})
    if previous_state is None or len(previous_state) == 0:
        aligned["tier"] = None
        aligned["grace_until"] = pd.Series(pd.NaT, index=aligned.index, dtype="datetime64[ns]")
        aligned["is_rising_star"] = False
        aligned["is_at_risk"] = False
    else:
        columns = [CUSTOMER_ID, "tier", "grace_until", "is_rising_star", "is_at_risk"]
        aligned = aligned.merge(previous_state[columns], on=CUSTOMER_ID, how="left", validate="one_to_one")
        aligned["tier"] = aligned["tier"].astype(object).where(aligned["tier"].notna(), None)
        aligned["is_rising_star"] = aligned["is_rising_star"].fillna(False).astype(bool)
        aligned["is_at_risk"] = aligned["is_at_risk"].fillna(False).astype(bool)
    aligned.index = customer_ids.index
    return aligned

