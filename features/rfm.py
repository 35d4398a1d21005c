"""Recency, frequency, monetary value and their 1-5 scores, plus rolling 12-month spend, as of a cutoff.

- ``days_since_last_order``: whole days from the last purchase day to the cutoff (RFM recency).
- ``purchase_days``: number of purchase days on or before the cutoff (RFM frequency).
- ``net_spend``: net spend on or before the cutoff, refunds included (RFM monetary).
- ``rolling_12m_spend``: net spend in (cutoff - 365 days, cutoff].
- ``recency_score``, ``frequency_score``, ``monetary_score``: quintile scores 1-5, 5 best.
- ``rfm_score``: their sum, 3-15.

Quintile scores: customers are ranked from worst to best (most days since the last order, fewest
purchase days, lowest net spend first); with ``rank`` the 0-based position of the first customer
holding the same value (SQL ``RANK() - 1``) and ``n`` the number of customers, the score is
``1 + floor(5 * rank / n)``. Customers with equal values therefore always share a score (the score
of the first position of their tie group), the result does not depend on row order, and without
ties the five groups have equal sizes. Purchase days and refund-only days: see ``features.activity``.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.activity import money_sum
from features.btyd import last_purchase_days_ago, purchase_day_count

ROLLING_YEAR_DAYS = 365
MONETARY_RANK_DECIMALS = 6

RFM_COLUMNS = (
    "days_since_last_order",
    "purchase_days",
    "net_spend",
    "rolling_12m_spend",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_score",
)


def days_since_last_order(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Whole days from the customer's last purchase day to the cutoff."""
    return last_purchase_days_ago(days_ago, is_purchase_day)


def purchase_days(is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Number of purchase days on or before the cutoff."""
    return purchase_day_count(is_purchase_day)


def net_spend(day_amount: ir.FloatingColumn) -> ir.FloatingScalar:
    """Net spend on or before the cutoff, refunds included."""
    return money_sum(day_amount)


def rolling_12m_spend(day_amount: ir.FloatingColumn, days_ago: ir.IntegerColumn) -> ir.FloatingScalar:
    """Net spend in (cutoff - 365 days, cutoff]; 0 when there is none."""
    return money_sum(day_amount, days_ago < ROLLING_YEAR_DAYS).fill_null(0.0)


def rfm_aggregates(daily: ir.Table) -> dict[str, ir.Scalar]:
    """The unscored RFM columns as reductions over a customer's `daily_activity` rows."""
    return {
        "days_since_last_order": days_since_last_order(daily.days_ago, daily.is_purchase_day),
        "purchase_days": purchase_days(daily.is_purchase_day),
        "net_spend": net_spend(daily.day_amount),
        "rolling_12m_spend": rolling_12m_spend(daily.day_amount, daily.days_ago),
    }


def quintile_score(value: ir.NumericColumn, *, higher_is_better: bool) -> ir.IntegerColumn:
    """1-5 quintile of `value` across all customers, 5 best; tied values share a score."""
    worst_first = value if higher_is_better else value.desc()
    rank = ibis.rank().over(order_by=worst_first)
    customers = value.count().over(ibis.window())
    return (rank * 5 / customers).floor().cast("int64") + 1


def recency_score(days_since_last_order: ir.IntegerColumn) -> ir.IntegerColumn:
    """Quintile score of recency: 5 for the most recent buyers."""
    return quintile_score(days_since_last_order, higher_is_better=False)


def frequency_score(purchase_days: ir.IntegerColumn) -> ir.IntegerColumn:
    """Quintile score of frequency: 5 for the most purchase days."""
    return quintile_score(purchase_days, higher_is_better=True)


def monetary_score(net_spend: ir.FloatingColumn) -> ir.IntegerColumn:
    """Quintile score of net spend: 5 for the biggest spenders.

    Net spend is ranked rounded to 6 decimals: engines add floats in no fixed order, so equal
    spends can differ in the last bits from one run to the next, and a tie broken by that noise
    would move a customer across a score boundary between two runs on the same data.
    """
    return quintile_score(net_spend.round(MONETARY_RANK_DECIMALS), higher_is_better=True)


def with_rfm_scores(customers: ir.Table) -> ir.Table:
    """`customers` (one row per customer_id, with the unscored RFM columns) plus recency, frequency,
    monetary and RFM scores.

    The ranks are taken over a narrow projection and joined back: a window operator sorts every
    column it carries, and a feature table is some 25 columns wide (1M customers: 4.9 -> 2.7 CPU s).
    """
    keys = customers.select("customer_id", "days_since_last_order", "purchase_days", "net_spend")
    scores = keys.select(
        "customer_id",
        recency_score=recency_score(keys.days_since_last_order),
        frequency_score=frequency_score(keys.purchase_days),
        monetary_score=monetary_score(keys.net_spend),
    )
    scores = scores.mutate(rfm_score=scores.recency_score + scores.frequency_score + scores.monetary_score)
    return customers.join(scores, "customer_id")
