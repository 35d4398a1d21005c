"""Events between the previous scoring run and this one, one row per customer and event.

Event types (in the order the list is ranked, most urgent first):
- tier_downgrade: the held tier is lower than in the previous state (a grace period ended, or
  grace_days is 0). from_tier = previous tier, to_tier = new tier. The details name the spend,
  the previous tier's threshold on this run, and why no grace kept it: the grace period ended (on
  its last day), none with grace_days 0, or one still running cut short by grace_days set to 0.
- entered_grace: the member's spend fell below their tier on this run and a grace period started.
  from_tier = held tier, to_tier = the tier their spend supports.
- new_at_risk: at risk now, not at risk in the previous state. from_tier = tier, to_tier = None.
- tier_upgrade: the held tier is higher than in the previous state. A customer absent from the
  previous state counts as Base then ("new customer" in details).
- kept_tier: in grace in the previous state, and now back at the held tier's threshold: the tier is
  kept, and the grace period ends early (or, when it ran out between the two runs, the details say
  so). from_tier = to_tier = the tier.
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
from segments.keys import TEXT_DTYPE, TIER_NAMES, ranked_order
from segments.settings import BASE, TIER_RANK
from segments.texts import day_texts, money_texts, money_texts_beside

EVENT_TYPES = (
    "tier_downgrade",
    "entered_grace",
    "new_at_risk",
    "tier_upgrade",
    "kept_tier",
    "new_rising_star",
    "near_next_tier",
)
EVENT_COLUMNS = (CUSTOMER_ID, "rank", "event", "from_tier", "to_tier", "details", ROLLING_12M_SPEND)


def downgrade_details(spend: np.ndarray, lost_tier: np.ndarray, grace_until: pd.Series,
                      amounts: dict[str, float], as_of: pd.Timestamp) -> np.ndarray:
    """'spend $4,100 below the Gold threshold $5,000; the grace period ended 2026-03-01' (or: no
    grace period with grace_days 0; a grace period to DATE cut short: grace_days is now 0)."""
    thresholds = money_texts(np.array([amounts[tier] for tier in lost_tier], dtype=float))
    text = "spend " + money_texts_beside(spend, amounts.values()) + " below the " + lost_tier + " threshold " + thresholds
    ends = day_texts(grace_until)
    running = (grace_until >= as_of).to_numpy()
    why = np.where(grace_until.isna().to_numpy(), "; no grace period (grace_days 0)",
                   np.where(running, "; its grace period to " + ends + " was cut short: grace_days is now 0",
                            "; the grace period ended " + ends))
    return text + why


def tier_events(
    tiers: pd.DataFrame,
    previous: pd.DataFrame,
    at_risk_reason: np.ndarray,
    first_run: bool,
    near_next_tier_amount: float,
    near_next_tier_share: float,
    id_rank: np.ndarray,
    amounts: dict[str, float],
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """The ranked event list.

    `tiers` has one row per customer with customer_id, rolling_12m_spend, tier_rank,
    previous_rank (-1: not in the previous state), qualified_rank, tier_threshold, in_grace,
    grace_until, next_tier, next_tier_threshold, amount_to_next_tier, is_rising_star,
    projected_tier, projected_12m_spend and is_at_risk; `previous` is the previous state aligned
    to it (grace_until, is_rising_star, is_at_risk); `at_risk_reason` and `id_rank`
    (`segments.keys.id_ranks`) are aligned to it too. `amounts` (tier -> threshold on this run) and
    `as_of` word the downgrade details. Each event's
    rows are picked with masks over all customers; their details are built for those rows only.
    """
    spend = tiers[ROLLING_12M_SPEND].to_numpy()
    tier_rank = tiers["tier_rank"].to_numpy()
    is_new_customer = tiers["previous_rank"].to_numpy() < 0
    previous_rank = np.maximum(tiers["previous_rank"].to_numpy(), TIER_RANK[BASE])  # new customer: Base
    threshold = tiers["tier_threshold"].to_numpy()
    in_grace = tiers["in_grace"].to_numpy(dtype=bool)
    # The details are text (str), but object where no customer could have any: no customers at all,
    # or for new_at_risk nobody at risk (see `_rows`).
    has_text = len(tiers) > 0

    frames, picked, type_order = [], [], []

    def add(rows: np.ndarray, event: str, from_tier: np.ndarray, to_tier: np.ndarray, details: np.ndarray,
            text: bool = has_text) -> None:
        """One event's rows, with their sort keys (event order, customer id rank)."""
        frames.append(_rows(tiers, rows, event, from_tier, to_tier, details, text))
        picked.append(rows)
        type_order.append(np.full(len(rows), EVENT_TYPES.index(event)))

    if not first_run:
        rows = np.flatnonzero(tier_rank > previous_rank)
        details = (
            np.array(["", "new customer; "], dtype=object)[is_new_customer[rows].astype(int)]
            + "spend "
            + money_texts_beside(spend[rows], amounts.values())
            + " reached the "
            + TIER_NAMES[tier_rank[rows]]
            + " threshold "
            + money_texts(threshold[rows])
        )
        add(rows, "tier_upgrade", TIER_NAMES[previous_rank[rows]], TIER_NAMES[tier_rank[rows]], details)
        rows = np.flatnonzero(tier_rank < previous_rank)
        details = downgrade_details(spend[rows], TIER_NAMES[previous_rank[rows]],
                                    pd.to_datetime(previous["grace_until"].take(rows)), amounts, as_of)
        add(rows, "tier_downgrade", TIER_NAMES[previous_rank[rows]], TIER_NAMES[tier_rank[rows]], details)
        rows = np.flatnonzero(in_grace & np.isnat(previous["grace_until"].to_numpy()))
        held = TIER_NAMES[tier_rank[rows]]
        details = (
            "spend "
            + money_texts_beside(spend[rows], amounts.values())
            + " below the "
            + held
            + " threshold "
            + money_texts(threshold[rows])
            + "; keeps "
            + held
            + " until "
            + day_texts(pd.to_datetime(tiers["grace_until"].take(rows)))
        )
        qualified = TIER_NAMES[tiers["qualified_rank"].to_numpy()[rows]]
        add(rows, "entered_grace", held, qualified, details)
        previous_grace = pd.to_datetime(previous["grace_until"])
        rows = np.flatnonzero(~in_grace & previous_grace.notna().to_numpy() & (tier_rank == previous_rank) & ~is_new_customer)
        kept = TIER_NAMES[tier_rank[rows]]
        grace_ends = previous_grace.take(rows)
        # A grace period that ran out between two runs (90 days is not whole weeks) did not end early.
        ending = np.where((grace_ends >= as_of).to_numpy(), " ends early", " had run out before this run")
        details = (
            "spend " + money_texts_beside(spend[rows], amounts.values()) + " back at the " + kept + " threshold " + money_texts(threshold[rows])
            + "; the grace period to " + day_texts(grace_ends) + ending
        )
        add(rows, "kept_tier", kept, kept, details)

    amount_to_next = tiers["amount_to_next_tier"].to_numpy()
    near_limit = np.maximum(near_next_tier_amount, near_next_tier_share * tiers["next_tier_threshold"].to_numpy())
    near = ~in_grace & tiers["next_tier"].notna().to_numpy() & (amount_to_next <= near_limit)
    rows = np.flatnonzero(near)
    next_tier = tiers["next_tier"].to_numpy()[rows]
    details = money_texts_beside(amount_to_next[rows]) + " to " + next_tier
    add(rows, "near_next_tier", TIER_NAMES[tier_rank[rows]], next_tier, details)

    is_rising_star = tiers["is_rising_star"].to_numpy(dtype=bool)
    rows = np.flatnonzero(is_rising_star & ~previous["is_rising_star"].to_numpy(dtype=bool))
    details = "projected " + money_texts(tiers["projected_12m_spend"].to_numpy()[rows]) + " in the next 12 months"
    projected_tier = tiers["projected_tier"].to_numpy()[rows]
    add(rows, "new_rising_star", TIER_NAMES[tier_rank[rows]], projected_tier, details)

    is_at_risk = tiers["is_at_risk"].to_numpy(dtype=bool)
    rows = np.flatnonzero(is_at_risk & ~previous["is_at_risk"].to_numpy(dtype=bool))
    nobody = np.full(len(rows), None, dtype=object)
    add(rows, "new_at_risk", TIER_NAMES[tier_rank[rows]], nobody, at_risk_reason[rows], text=bool(is_at_risk.any()))

    events = pd.concat(frames, ignore_index=True)
    event_ids = id_rank[np.concatenate(picked)]
    events = events.take(
        ranked_order([(np.concatenate(type_order), True), (events[ROLLING_12M_SPEND], False)], event_ids)
    )
    events.insert(1, "rank", np.arange(1, len(events) + 1))
    return events.reset_index(drop=True).loc[:, list(EVENT_COLUMNS)]


def _rows(
    tiers: pd.DataFrame,
    rows: np.ndarray,
    event: str,
    from_tier: np.ndarray,
    to_tier: np.ndarray,
    details: np.ndarray,
    has_text: bool,
) -> pd.DataFrame:
    """One event's rows (customer rows `rows`).

    The details get the dtype pandas used to infer when they were built for every customer: str
    when some customer has text (`has_text`), object otherwise, so the events table's columns keep
    their dtypes however many rows each event has.
    """
    index = tiers.index[rows]
    return pd.DataFrame(
        {
            CUSTOMER_ID: tiers[CUSTOMER_ID].take(rows),
            "event": event,
            "from_tier": pd.Series(from_tier, index=index, dtype=object),
            "to_tier": pd.Series(to_tier, index=index, dtype=object),
            "details": pd.Series(details, index=index, dtype=TEXT_DTYPE if has_text else object),
            ROLLING_12M_SPEND: tiers[ROLLING_12M_SPEND].take(rows),
        }
    )
