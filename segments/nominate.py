"""The single entry point of the segment rules: `nominate`.

Inputs are described in `segments.inputs`; the rules in `segments.tiers`, `segments.rising_stars`,
`segments.at_risk`, `segments.events` and `segments.economics`. The rules run on a million
customers, so they work on NumPy arrays and integer keys (`segments.keys`: customer id ranks, tier
ranks) and build text and lists only for the rows that are listed.
"""

from __future__ import annotations

from collections.abc import Callable

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segments.at_risk import at_risk_members
from segments.economics import programme_economics
from segments.events import tier_events
from segments.inputs import (
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    LAST_SCORED,
    ROLLING_12M_SPEND,
    STATE_COLUMNS,
    as_of_timestamp,
    check_customers,
    check_previous_state,
    check_shap,
)
from segments.keys import ranked_order, tier_names
from segments.rising_stars import rising_stars
from segments.settings import TIER_RANK, VIP_TIERS, SegmentSettings
from segments.texts import money_text
from segments.tiers import (
    CARRY_DAYS,
    carried_state,
    held_tiers,
    long_carried,
    previous_by_customer,
    tier_progress,
    tier_threshold_amounts,
    unmatched_rows,
)

TIERS_COLUMNS = (
    CUSTOMER_ID,
    "rank",
    "tier",
    ROLLING_12M_SPEND,
    "tier_threshold",
    "next_tier",
    "next_tier_threshold",
    "amount_to_next_tier",
    "progress_to_next_tier",
    "qualified_tier",
    "in_grace",
    "grace_until",
    "projected_12m_spend",
    "projected_tier",
    "rising_star_score",
    "is_rising_star",
    "is_at_risk",
)


@dataclass(frozen=True)
class Segments:
    """Everything one scoring run's segment rules produce.

    tiers: every input customer, ranked by tier, then rolling spend (columns `TIERS_COLUMNS`).
    rising_stars, at_risk, events: the ranked lists; economics: one row per tier.
    warnings: plain-language warnings (e.g. too many VIPs); state: the tier state to pass as
    `previous_state` to the next run; tier_thresholds: the amount each tier starts at on this run
    (share mode turns shares into amounts).
    """

    as_of: dt.date
    tiers: pd.DataFrame
    rising_stars: pd.DataFrame
    at_risk: pd.DataFrame
    events: pd.DataFrame
    economics: pd.DataFrame
    state: pd.DataFrame
    tier_thresholds: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def nominate(
    customers: pd.DataFrame,
    previous_state: pd.DataFrame | None,
    as_of: dt.date,
    settings: SegmentSettings,
    horizon_days: int,
    shap: pd.DataFrame | Callable[[pd.Series], pd.DataFrame] | None = None,
    *,
    feature_values: pd.DataFrame | None = None,
    previous_as_of: dt.date | None = None,
    expiring_by: Callable[[pd.Series, pd.Series], pd.Series] | None = None,
) -> Segments:
    """Tiers, rising stars, at-risk members, events and programme economics as of `as_of`.

    Parameters
    ----------
    customers : one row per scored customer (columns in `segments.inputs`).
    previous_state : the previous run's `Segments.state`, or None / empty on the first run.
    as_of : the scoring date (a calendar day).
    settings : thresholds and economics.
    horizon_days : the horizon of predicted_spend / predicted_orders / predicted_ltv.
    shap : SHAP contributions to predicted spend for reason codes (indexed by customer_id), or a
        function of a Series of customer ids returning them for just those customers: it is called
        once, for the nominated rising stars only (SHAP for every customer is costly at scale).
    feature_values : the model's feature values indexed by customer_id, for the reason phrases;
        defaults to the columns of `customers`.
    previous_as_of : the previous run's as-of date; when given it must not be after `as_of`.
    expiring_by : a function of (customer ids, whole days) giving each customer's net spend that leaves
        the rolling 12-month window within that many days (a Series on the ids' index;
        `features.behaviour.spend_expiring_within`); called once, for the members in grace, so their
        spend_to_keep_tier counts the spend gone by grace_until. Without it, that is today's shortfall.
    """
    if not isinstance(horizon_days, (int, np.integer)) or horizon_days <= 0:
        raise ValueError(f"horizon_days must be a positive whole number of days, got {horizon_days!r}")
    as_of_stamp = as_of_timestamp(as_of)
    previous_stamp = None if previous_as_of is None else as_of_timestamp(previous_as_of, "previous_as_of")
    if previous_stamp is not None and previous_stamp > as_of_stamp:
        raise ValueError(f"as_of {as_of_stamp.date()} is before the previous run's as_of {previous_as_of}")
    customers, id_rank = check_customers(customers)
    state, state_rows = check_previous_state(previous_state, customers[CUSTOMER_ID], previous_stamp)
    expired = None
    if state is not None:
        # A member carried for more than CARRY_DAYS starts over whether or not they are back on this run: the
        # limit held only while some run in between dropped them (a member back after 378 days kept Gold).
        expired = long_carried(state, as_of_stamp)
        state_rows = np.where((state_rows >= 0) & expired[np.maximum(state_rows, 0)], -1, state_rows)
    if shap is not None and not callable(shap):
        shap = check_shap(shap, customers[CUSTOMER_ID])
    if feature_values is not None:
        feature_values = check_shap(feature_values, customers[CUSTOMER_ID], "feature_values")

    amounts = tier_threshold_amounts(customers[ROLLING_12M_SPEND], settings.tiers)
    previous = previous_by_customer(state, state_rows, customers.index)
    tiers = held_tiers(customers, previous, as_of_stamp, amounts, settings.grace_days)
    tiers[ROLLING_12M_SPEND] = customers[ROLLING_12M_SPEND]
    tier_rank = tiers["tier_rank"].to_numpy()
    tiers = _with_columns(tiers, tier_progress(tier_rank, customers[ROLLING_12M_SPEND], amounts))

    scores, stars = rising_stars(
        customers, tiers, amounts, horizon_days, settings.rising_star_min_p_alive, id_rank, shap, feature_values
    )
    tiers = _with_columns(tiers, scores)
    is_at_risk, at_risk_reason, at_risk, projected_only = at_risk_members(
        customers,
        tiers,
        tiers["projected_12m_spend"],
        as_of_stamp,
        settings.churn_threshold,
        settings.grace_days,
        id_rank,
        expiring_by,
    )
    tiers["is_at_risk"] = is_at_risk

    events = tier_events(
        tiers,
        previous,
        at_risk_reason,
        state is None,
        settings.near_next_tier_amount,
        settings.near_next_tier_share,
        id_rank,
        amounts,
        as_of_stamp,
    )
    economics = programme_economics(tier_rank, customers, settings.economics, horizon_days)

    tiers_list = _ranked_tiers(tiers, tier_rank, id_rank)
    new_state = tiers.loc[:, list(STATE_COLUMNS)].reset_index(drop=True)
    new_state[LAST_SCORED] = np.full(len(new_state), as_of_stamp.to_datetime64(), dtype="datetime64[ns]")
    unmatched = carried = dropped = None
    if state is not None:
        unmatched = unmatched_rows(state, state_rows)
        carried, dropped = carried_state(state, unmatched, expired)
        if len(carried):
            carried_rows = carried.reset_index(drop=True).assign(tier=lambda rows: tier_names(rows["tier"].cat.codes.to_numpy()))
            new_state = pd.concat([new_state, carried_rows], ignore_index=True)

    return Segments(
        as_of=as_of_stamp.date(),
        tiers=tiers_list,
        rising_stars=stars,
        at_risk=at_risk,
        events=events,
        economics=economics,
        state=new_state,
        tier_thresholds=amounts,
        warnings=_warnings(tier_rank, tiers["in_grace"].to_numpy(), customers, settings, horizon_days, projected_only)
        + unscored_warnings(state, unmatched, carried, dropped) + shared_amount_warnings(amounts),
    )


def _ranked_tiers(tiers: pd.DataFrame, tier_rank: np.ndarray, id_rank: np.ndarray) -> pd.DataFrame:
    """The tiers list: tier (highest first), then rolling spend (highest first), then customer_id.

    Each output column is gathered on its own (no copy of the whole table), and the tier names are
    rebuilt from the reordered ranks: gathering a million strings costs several times as much.
    """
    order = ranked_order([(tier_rank, False), (tiers[ROLLING_12M_SPEND], False)], id_rank)
    rebuilt = {"tier": tier_rank, "qualified_tier": tiers["qualified_rank"].to_numpy()}
    columns = {}
    for column in TIERS_COLUMNS:
        if column == "rank":
            columns[column] = np.arange(1, len(order) + 1)
        elif column in rebuilt:
            columns[column] = tier_names(rebuilt[column][order])
        else:
            columns[column] = tiers[column].take(order).reset_index(drop=True)
    return pd.DataFrame(columns, copy=False)


def _with_columns(tiers: pd.DataFrame, columns: pd.DataFrame) -> pd.DataFrame:
    """`tiers` with the columns of a frame on the same index added, like `join` but without a copy."""
    for name in columns.columns:
        tiers[name] = columns[name]
    return tiers


# Fewer VIPs than this share of at least FEW_VIPS_MIN_CUSTOMERS customers: the absolute thresholds
# are probably not this shop's money (another currency or scale; CDNOW spends ~$100 a year).
FEW_VIPS_SHARE = 0.01
FEW_VIPS_MIN_CUSTOMERS = 100


# At least this many VIP members, and at least this share of them at or above the churn threshold:
# the threshold does not suit the horizon (churn_probability is P(no order in the horizon)).
CHURNING_VIPS_MIN_MEMBERS = 20
CHURNING_VIPS_SHARE = 0.5

# At least this many VIP members, and at least this share of them at risk for the projection alone.
PROJECTED_VIPS_MIN_MEMBERS = 20
PROJECTED_VIPS_SHARE = 0.5


def shared_amount_warnings(amounts: dict[str, float]) -> list[str]:
    """Tiers whose amounts coincide (share mode, when the k-th spend is not positive or ties span both
    shares): the lower tier can hold only members in grace, and a share setting said nothing of it."""
    messages = []
    for lower, upper in zip(VIP_TIERS, VIP_TIERS[1:]):
        if np.isfinite(amounts[lower]) and amounts[lower] >= amounts[upper]:
            messages.append(
                f"{lower} and {upper} start at the same amount on this run ({money_text(amounts[upper])}): everyone who "
                f"reaches {lower} is {upper}, so {lower} holds only members in grace (share mode: the top "
                f"{lower} share reaches no spend below that amount); set a smaller segments.tiers.{lower.lower()} share, "
                "or absolute amounts"
            )
    return messages


def unscored_warnings(state: pd.DataFrame | None, unmatched: np.ndarray | None, carried: pd.DataFrame | None,
                      dropped: pd.DataFrame | None) -> list[str]:
    """Customers of the previous tier state that this run does not score (`unmatched`): those the previous run
    scored (missing now: a partial extract, or ids spelt otherwise?), and members leaving the state after
    `CARRY_DAYS` unscored. Members carried for longer than one run are not named again each week."""
    if state is None:
        return []
    messages = []
    latest = state[LAST_SCORED].max()
    newly = unmatched & (state[LAST_SCORED].isna() | (state[LAST_SCORED] == latest)).to_numpy()
    if newly.any():
        gone = state.loc[newly]
        members = gone.loc[gone.index.isin(carried.index)]
        kept = (f"the tier state of the {len(members):,} member(s) (a VIP tier or a grace period) is carried forward for up "
                f"to {CARRY_DAYS} days and applies when they are scored again" if len(members)
                else "they hold no VIP tier or grace period to carry forward")
        messages.append(
            f"{int(newly.sum()):,} customer(s) scored on the previous run are not scored on this one, e.g. "
            f"{_examples(members if len(members) else gone)}: "
            f"{kept}; no event is written for them now (a partial extract, or ids written otherwise than in the "
            "previous run's data?)"
        )
    if len(dropped):
        messages.append(
            f"{len(dropped):,} member(s) not scored for more than {CARRY_DAYS} days leave the tier state, e.g. {_examples(dropped)}: "
            "scored again (on this run or later), they start over as new customers"
        )
    return messages


def _examples(rows: pd.DataFrame) -> str:
    """The first three state rows as "id (tier)"."""
    return ", ".join(f"{cid} ({tier})" for cid, tier in zip(rows[CUSTOMER_ID].head(3), rows["tier"].head(3)))


def _warnings(
    tier_rank: np.ndarray,
    in_grace: np.ndarray,
    table: pd.DataFrame,
    settings: SegmentSettings,
    horizon_days: int,
    projected_only: np.ndarray,
) -> list[str]:
    messages = []
    rolling_spend = table[ROLLING_12M_SPEND]
    customers = len(tier_rank)
    is_vip = tier_rank >= TIER_RANK[VIP_TIERS[0]]
    vips = int(is_vip.sum())
    if customers and vips / customers > settings.vip_share_warning:
        graced = int((is_vip & in_grace).sum())
        # In share mode the thresholds are top shares: a higher one makes more VIPs.
        fewer = ("higher tier thresholds" if settings.tiers.mode == "absolute"
                 else "a smaller segments.tiers.silver share (or a higher segments.vip_share_warning)")
        advice = f"consider {fewer}"
        if graced:
            advice = (f"{graced} of them hold their tier by a grace period (below its threshold now): consider {fewer} "
                      "or a shorter segments.grace_days")
        messages.append(
            f"{vips / customers:.1%} of customers ({vips:,} of {customers:,}) are in VIP tiers (Silver and above), "
            f"more than the {settings.vip_share_warning * 100:g}% warning level; {advice}"
        )
    # Measured among the customers who bought in the last 12 months: a large dormant base is no reason.
    thresholds, buying = settings.tiers, rolling_spend[rolling_spend > 0]
    if thresholds.mode == "absolute" and len(buying) >= FEW_VIPS_MIN_CUSTOMERS and vips / len(buying) < FEW_VIPS_SHARE:
        messages.append(
            f"only {vips:,} of the {len(buying):,} customers who bought in the last 12 months ({vips / len(buying):.1%}) are "
            f"in VIP tiers: the Silver threshold is {money_text(thresholds.silver)} and their median 12-month spend "
            f"{money_text(float(buying.median()))}, so the tier lists and rising stars stay (nearly) empty; set "
            "segments.tiers to this shop's spend levels, or mode: share (top shares of customers)"
        )
    churning = int((is_vip & (table[CHURN_PROBABILITY].to_numpy() >= settings.churn_threshold)).sum())
    if vips >= CHURNING_VIPS_MIN_MEMBERS and churning >= CHURNING_VIPS_SHARE * vips:
        messages.append(
            f"{churning:,} of {vips:,} VIP members ({churning / vips:.0%}) are at risk for a churn probability of at least "
            f"{settings.churn_threshold:g}: churn_probability is P(no order in the next {horizon_days} days), which most "
            "customers reach on a short horizon; raise segments.churn_threshold or train for a longer horizon"
        )
    # At risk for the projection alone (no churn risk, not in grace): an expectation that includes the
    # chance of stopping runs below the spend of most members who keep buying as before.
    projected = int(projected_only.sum())
    if vips >= PROJECTED_VIPS_MIN_MEMBERS and projected >= PROJECTED_VIPS_SHARE * vips:
        messages.append(
            f"{projected:,} of {vips:,} VIP members ({projected / vips:.0%}) are at risk only because their "
            "projected 12-month spend is below their tier's threshold (no high churn risk, not in grace): the projection "
            "is an expectation that counts the chance of stopping, so members spending near a threshold fall below it; "
            "read the at-risk list by at_risk_score (it ranks by the shortfall's share of the threshold)"
        )
    return messages
