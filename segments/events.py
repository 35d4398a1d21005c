"""Events between the previous scoring run and this one, one row per customer and event.

Event types (in the order the list is ranked, most urgent first):
- tier_downgrade: the held tier is lower than in the previous state (a grace period ended, or
  grace_days is 0). from_tier = previous tier, to_tier = new tier.
- entered_grace: the member's spend fell below their tier on this run and a grace period started.
  from_tier = held tier, to_tier = the tier their spend supports.
- new_at_risk: at risk now, not at risk in the previous state. from_tier = tier, to_tier = None.
- tier_upgrade: the held tier is higher than in the previous state. A customer absent from the
  previous state counts as Base then ("new customer" in details).
- new_rising_star: a rising star now, not in the previous state. to_tier = target tier.
- near_next_tier: a standing event, repeated on every run while it holds: not in grace and the
  amount to the next tier is <= near_next_tier_amount or <= near_next_tier_share x the next
  tier's threshold. to_tier = next tier.
Within a type, rows are ordered by rolling 12-month spend (highest first), then customer_id.

First run (no previous state): there is nothing to compare tiers with, so there are no
tier_upgrade, tier_downgrade or entered_grace events (nobody can be in grace yet); every current
rising star and at-risk member gets a new_* event, and near_next_tier applies as on any run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segments.inputs import CUSTOMER_ID, ROLLING_12M_SPEND
from segments.settings import BASE, TIER_RANK

EVENT_TYPES = (
    "tier_downgrade",
    "entered_grace",
    "new_at_risk",
    "tier_upgrade",
    "new_rising_star",
    "near_next_tier",
)
EVENT_COLUMNS = (CUSTOMER_ID, "rank", "event", "from_tier", "to_tier", "details", ROLLING_12M_SPEND)


def tier_events(
    tiers: pd.DataFrame,
    previous: pd.DataFrame,
    first_run: bool,
    near_next_tier_amount: float,
    near_next_tier_share: float,
) -> pd.DataFrame:
    """The ranked event list.

    `tiers` has one row per customer with customer_id, rolling_12m_spend, tier, previous_tier,
    qualified_tier, tier_threshold, in_grace, grace_until, next_tier, next_tier_threshold,
    amount_to_next_tier, is_rising_star, projected_tier, projected_12m_spend, is_at_risk and
    at_risk_reason; `previous` is the previous state aligned to it (grace_until, is_rising_star,
    is_at_risk).
    """
    spend = tiers[ROLLING_12M_SPEND]
    tier_rank = tiers["tier"].map(TIER_RANK)
    previous_tier = tiers["previous_tier"].where(tiers["previous_tier"].notna(), BASE)
    previous_rank = previous_tier.map(TIER_RANK)
    is_new_customer = tiers["previous_tier"].isna()
    grace_text = pd.to_datetime(tiers["grace_until"]).dt.strftime("%Y-%m-%d")

    frames = []
    if not first_run:
        upgraded = tier_rank > previous_rank
        frames.append(
            _rows(
                tiers,
                upgraded,
                "tier_upgrade",
                previous_tier,
                tiers["tier"],
                np.where(is_new_customer, "new customer; ", "")
                + "spend "
                + _money(spend)
                + " reached the "
                + tiers["tier"]
                + " threshold "
                + _money(tiers["tier_threshold"]),
            )
        )
        downgraded = tier_rank < previous_rank
        frames.append(
            _rows(
                tiers,
                downgraded,
                "tier_downgrade",
                previous_tier,
                tiers["tier"],
                "spend " + _money(spend) + " stayed below the " + previous_tier + " threshold past the grace period",
            )
        )
        entered = tiers["in_grace"].astype(bool) & previous["grace_until"].isna()
        frames.append(
            _rows(
                tiers,
                entered,
                "entered_grace",
                tiers["tier"],
                tiers["qualified_tier"],
                "spend "
                + _money(spend)
                + " below the "
                + tiers["tier"]
                + " threshold "
                + _money(tiers["tier_threshold"])
                + "; keeps "
                + tiers["tier"]
                + " until "
                + grace_text.fillna(""),
            )
        )

    near_limit = np.maximum(near_next_tier_amount, near_next_tier_share * tiers["next_tier_threshold"])
    near = (
        ~tiers["in_grace"].astype(bool)
        & tiers["next_tier"].notna()
        & (tiers["amount_to_next_tier"] <= near_limit)
    )
    frames.append(
        _rows(
            tiers,
            near,
            "near_next_tier",
            tiers["tier"],
            tiers["next_tier"],
            _money(tiers["amount_to_next_tier"]) + " to " + tiers["next_tier"].fillna(""),
        )
    )
    new_star = tiers["is_rising_star"].astype(bool) & ~previous["is_rising_star"].astype(bool)
    frames.append(
        _rows(
            tiers,
            new_star,
            "new_rising_star",
            tiers["tier"],
            tiers["projected_tier"],
            "projected " + _money(tiers["projected_12m_spend"]) + " in the next 12 months",
        )
    )
    new_risk = tiers["is_at_risk"].astype(bool) & ~previous["is_at_risk"].astype(bool)
    frames.append(
        _rows(tiers, new_risk, "new_at_risk", tiers["tier"], pd.Series(None, index=tiers.index, dtype=object),
              tiers["at_risk_reason"])
    )

    events = pd.concat(frames, ignore_index=True)
    events["_order"] = events["event"].map({name: position for position, name in enumerate(EVENT_TYPES)})
    events = events.sort_values(
        ["_order", ROLLING_12M_SPEND, CUSTOMER_ID], ascending=[True, False, True], kind="mergesort"
    ).drop(columns="_order")
    events.insert(1, "rank", np.arange(1, len(events) + 1))
    return events.reset_index(drop=True).loc[:, list(EVENT_COLUMNS)]


def _rows(
    tiers: pd.DataFrame,
    when: pd.Series,
    event: str,
    from_tier: pd.Series,
    to_tier: pd.Series,
    details: pd.Series | np.ndarray,
) -> pd.DataFrame:
    mask = np.asarray(when, dtype=bool)
    details = pd.Series(np.asarray(details, dtype=object), index=tiers.index)
    return pd.DataFrame(
        {
            CUSTOMER_ID: tiers[CUSTOMER_ID][mask],
            "event": event,
            "from_tier": from_tier.astype(object)[mask],
            "to_tier": to_tier.astype(object).where(to_tier.notna(), None)[mask],
            "details": details[mask],
            ROLLING_12M_SPEND: tiers[ROLLING_12M_SPEND][mask],
        }
    )


def _money(amount: pd.Series) -> pd.Series:
    return amount.map(lambda value: "" if pd.isna(value) else f"${value:,.0f}")
