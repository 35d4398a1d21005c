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
  no grace: the demotion is immediate. A grace period keeps the end date it started with: changing
  grace_days applies to grace periods that start later, except that grace_days = 0 ends the
  running ones on the next run (no grace at all).
- Share mode's floor(s * n) allows for float error (0.29 x 100 customers is k = 29, although
  the float product is 28.999...).
- Progress: `progress_to_next_tier` = (spend - held tier's amount) / (next amount - held tier's
  amount), clipped to [0, 1] (Base starts at 0); `amount_to_next_tier` = next amount - spend.
  Both are NaN, and `next_tier` is None, at Platinum.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from segments.inputs import CUSTOMER_ID, LAST_SCORED, ROLLING_12M_SPEND
from segments.keys import TEXT_DTYPE, TIER_NAMES, money, tier_names
from segments.settings import BASE, TIER_RANK, TIERS, VIP_TIERS, TierThresholds

#: Days a member's state is carried forward while no run scores them (`carried_state`).
CARRY_DAYS = 365


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
    ranks = qualified_rank(rolling_12m_spend, amounts)
    return pd.Series(TIER_NAMES[ranks], index=rolling_12m_spend.index, dtype=object)


def qualified_rank(rolling_12m_spend: pd.Series | np.ndarray, amounts: dict[str, float]) -> np.ndarray:
    """`qualified_tier` as tier ranks (0 = Base): tiers are compared as numbers, never as names."""
    spend = np.asarray(rolling_12m_spend, dtype=float)
    rank = np.full(len(spend), TIER_RANK[BASE], dtype=np.int8)
    for name in VIP_TIERS:
        rank[spend >= amounts[name]] = TIER_RANK[name]
    return rank


def held_tiers(
    customers: pd.DataFrame,
    previous: pd.DataFrame,
    as_of: pd.Timestamp,
    amounts: dict[str, float],
    grace_days: int,
) -> pd.DataFrame:
    """Tier held on `as_of` after the grace rules, one row per customer in `customers` order.

    `previous` is the previous state aligned to the customers (`previous_by_customer`). Returns
    columns customer_id, qualified_tier, tier, in_grace, grace_until, and the ranks tier_rank,
    qualified_rank and previous_rank (-1 when not in the previous state).
    """
    qualified = qualified_rank(customers[ROLLING_12M_SPEND], amounts)
    previous_rank = previous["tier_rank"].to_numpy()
    previous_grace = previous["grace_until"].to_numpy()

    held_rank = np.maximum(previous_rank, TIER_RANK[BASE])  # not in the previous state: Base
    below_held = qualified < held_rank
    never_in_grace = np.isnat(previous_grace)
    grace_still_running = (~never_in_grace) & (previous_grace >= as_of.to_datetime64())

    if grace_days == 0:
        keeps_held = np.zeros(len(customers), dtype=bool)
        starts_grace = keeps_held
    else:
        starts_grace = below_held & never_in_grace
        keeps_held = below_held & (starts_grace | grace_still_running)

    tier_rank = np.where(keeps_held, held_rank, qualified).astype(np.int8)
    new_grace_end = (as_of + pd.Timedelta(days=grace_days)).as_unit("ns").to_datetime64()
    grace_until = np.full(len(customers), np.datetime64("NaT", "ns"))
    carried = keeps_held & ~starts_grace
    grace_until[carried] = previous_grace[carried]
    grace_until[starts_grace] = new_grace_end

    return pd.DataFrame(
        {
            CUSTOMER_ID: as_inferred(customers[CUSTOMER_ID]),
            "qualified_tier": tier_names(qualified, customers.index),
            "tier": tier_names(tier_rank, customers.index),
            "in_grace": keeps_held,
            "grace_until": grace_until,
            "tier_rank": tier_rank,
            "qualified_rank": qualified,
            "previous_rank": previous_rank,
        },
        index=customers.index,
    )


def tier_progress(tier_rank: np.ndarray, rolling_12m_spend: pd.Series, amounts: dict[str, float]) -> pd.DataFrame:
    """Threshold of the held tier, the next tier, the amount to it and the share of the way there."""
    index = rolling_12m_spend.index
    next_names = np.array([*TIERS[1:], None], dtype=object)
    next_amounts = np.array([amounts[name] for name in TIERS[1:]] + [np.nan], dtype=float)
    next_amounts[next_amounts == math.inf] = np.nan
    tier_threshold = pd.Series(np.array([amounts[name] for name in TIERS], dtype=float)[tier_rank], index=index)
    next_threshold = pd.Series(next_amounts[tier_rank], index=index)
    amount_to_next = money(next_threshold - rolling_12m_spend).clip(lower=0)
    span = next_threshold - tier_threshold
    progress = ((rolling_12m_spend - tier_threshold) / span.where(span > 0)).clip(0, 1)
    return pd.DataFrame(
        {
            "tier_threshold": tier_threshold,
            "next_tier": pd.Series(next_names[tier_rank], index=index, dtype=object),
            "next_tier_threshold": next_threshold,
            "amount_to_next_tier": amount_to_next,
            "progress_to_next_tier": progress,
        },
        index=index,
    )


def previous_by_customer(previous_state: pd.DataFrame | None, rows: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """The previous run's tier rank, grace end and flags of each customer (on `index`).

    `previous_state` and `rows` (each customer's row in it, -1 when absent) are what
    `segments.inputs.check_previous_state` returns. A customer not in the previous state gets
    tier_rank -1, grace_until NaT and False flags.
    """
    found = rows >= 0
    if previous_state is None:
        return pd.DataFrame(
            {
                "tier_rank": np.full(len(rows), -1, dtype=np.int8),
                "grace_until": np.full(len(rows), np.datetime64("NaT", "ns")),
                "is_rising_star": np.zeros(len(rows), dtype=bool),
                "is_at_risk": np.zeros(len(rows), dtype=bool),
            },
            index=index,
        )
    rows = np.where(found, rows, 0)
    return pd.DataFrame(
        {
            "tier_rank": np.where(found, previous_state["tier"].cat.codes.to_numpy()[rows], -1).astype(np.int8),
            "grace_until": np.where(
                found, previous_state["grace_until"].to_numpy()[rows], np.datetime64("NaT", "ns")
            ),
            "is_rising_star": found & previous_state["is_rising_star"].to_numpy()[rows],
            "is_at_risk": found & previous_state["is_at_risk"].to_numpy()[rows],
        },
        index=index,
    )


def unmatched_rows(state: pd.DataFrame, state_rows: np.ndarray) -> np.ndarray:
    """The previous state's rows that match no customer of this run (`state_rows`: each customer's row, -1 if
    none; ids are unique on both sides, so these are the rows of unscored customers)."""
    unmatched = np.ones(len(state), dtype=bool)
    unmatched[state_rows[state_rows >= 0]] = False
    return unmatched


def carried_state(state: pd.DataFrame, unmatched: np.ndarray, expired: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The previous state's rows of customers not scored on this run (`unmatched`) that are carried forward,
    and those dropped (`expired`: `long_carried`): (carried, dropped), both in the state's columns.

    A member (a VIP tier, or a grace period) missing from one run's data (a partial extract, a late
    partition) kept nothing: on their return they were Base, "new customer", their grace lost. Their row
    is carried, `last_scored` unchanged, and applies when they are scored again (a grace period that ended
    meanwhile demotes them then). Rows of Base customers outside grace hold nothing the rules read (they
    are dropped as before), and rows not scored for more than `CARRY_DAYS` are dropped: a member gone
    for a year starts over.
    """
    holds_something = (state["tier"].cat.codes.to_numpy() > TIERS.index(BASE)) | state["grace_until"].notna().to_numpy()
    carried = state.loc[unmatched & holds_something & ~expired]
    dropped = state.loc[unmatched & holds_something & expired]
    return carried, dropped


def long_carried(state: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """State rows carried for more than `CARRY_DAYS`: last scored before that, and before the previous run (the
    rows the previous run scored are never expired, however long ago it ran)."""
    last_scored = state[LAST_SCORED]
    latest = last_scored.max()
    return (last_scored.notna() & (last_scored < as_of - pd.Timedelta(days=CARRY_DAYS)) & (last_scored < latest)).to_numpy()


def as_inferred(values: pd.Series) -> pd.Series:
    """`values` with the dtype pandas infers from its NumPy values, as when built from `.to_numpy()`.

    Object ids of strings become str; a str column (the usual ids) is returned as it is, since it
    would come back unchanged.
    """
    if values.dtype == TEXT_DTYPE:
        return values
    return pd.Series(values.to_numpy(), index=values.index)
