"""What happened after the cutoff: spend, orders and churn in (cutoff, cutoff + horizon].

The population is the customers with a purchase day on or before the cutoff (the rows of
``features.build.customer_features``); only rows after the cutoff day and up to the end of the
day ``cutoff + horizon_days`` are read. An order exactly on the cutoff day is a feature, one on
day ``cutoff + horizon_days`` is a label. ``horizon_orders`` counts purchase days (refund-only
days are not orders, see ``features.activity``), ``horizon_spend`` is net of refunds, and a
customer with no purchase day in the horizon is ``churned``. Customers with no rows in the
horizon get 0.0, 0, True.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from features.activity import cutoff_date, daily_activity, money_sum

LABEL_COLUMNS = ("horizon_spend", "horizon_orders", "churned")


def horizon_spend(day_amount: ir.FloatingColumn) -> ir.FloatingScalar:
    """Net spend in the horizon."""
    return money_sum(day_amount)


def horizon_orders(is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Purchase days in the horizon."""
    return is_purchase_day.count(where=is_purchase_day)


def churned(horizon_orders: ir.IntegerColumn) -> ir.BooleanColumn:
    """True when the customer has no purchase day in the horizon."""
    return horizon_orders == 0


def horizon_labels(transactions: ir.Table, cutoff: dt.date, horizon_days: int) -> ir.Table:
    """customer_id, horizon_spend, horizon_orders, churned for customers with a purchase day on or before `cutoff`."""
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days <= 0:
        raise ValueError(f"horizon_days must be a positive whole number of days, got {horizon_days!r}")
    cutoff = cutoff_date(cutoff)
    before = daily_activity(transactions, cutoff)
    customers = before.filter(before.is_purchase_day).select("customer_id").distinct()
    after = daily_activity(transactions, cutoff + dt.timedelta(days=horizon_days), after=cutoff)
    outcomes = after.group_by("customer_id").aggregate(
        horizon_spend=horizon_spend(after.day_amount),
        horizon_orders=horizon_orders(after.is_purchase_day),
    )
    joined = customers.left_join(outcomes, "customer_id").select(
        "customer_id",
        horizon_spend=outcomes.horizon_spend.fill_null(0.0),
        horizon_orders=outcomes.horizon_orders.fill_null(0),
    )
    return joined.mutate(churned=churned(joined.horizon_orders))
