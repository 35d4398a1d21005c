"""The BTYD summary (frequency, recency, T, monetary_value) as of a cutoff, as Ibis expressions.

The definitions are lifetimes' ``summary_data_from_transaction_data(..., freq="D")`` exactly:
same-day orders merge into one purchase day whose value is the day's net sum;
frequency = purchase days - 1; recency = last - first purchase day; T = cutoff - first purchase
day (in days, or in weeks = days / 7); monetary_value = mean value of the repeat purchase days
(the first purchase day excluded), 0 when frequency is 0.

Refund rule (see ``features.activity``): a refund-only day (all its rows negative) is not a
purchase occasion, so it changes none of these four columns; lifetimes, which has no such rule,
would count it as a purchase day worth its negative sum. Days with $0 orders are purchase days in
both. A customer appears when they have at least one purchase day on or before the cutoff.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import ibis.expr.types as ir

from features.activity import MONEY_SCALE, daily_activity

BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")

DAYS_PER_UNIT = {"days": 1, "weeks": 7}


def days_per_unit(time_unit: str) -> int:
    """Days in one unit of recency and T ("days" or "weeks")."""
    if time_unit not in DAYS_PER_UNIT:
        raise ValueError(f"time_unit must be one of {sorted(DAYS_PER_UNIT)}, got {time_unit!r}")
    return DAYS_PER_UNIT[time_unit]


def purchase_day_count(is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Number of purchase days (refund-only days excluded)."""
    return is_purchase_day.count(where=is_purchase_day)


def first_purchase_days_ago(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Days from the first purchase day to the cutoff."""
    return days_ago.max(where=is_purchase_day)


def last_purchase_days_ago(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Days from the last purchase day to the cutoff."""
    return days_ago.min(where=is_purchase_day)


def frequency(is_purchase_day: ir.BooleanColumn) -> ir.FloatingScalar:
    """Repeat purchase days: purchase days after the first."""
    return (purchase_day_count(is_purchase_day) - 1).cast("float64")


def recency(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn, unit_days: int) -> ir.FloatingScalar:
    """Time from the first to the last purchase day, in units of `unit_days` days."""
    span = first_purchase_days_ago(days_ago, is_purchase_day) - last_purchase_days_ago(days_ago, is_purchase_day)
    return span.cast("float64") / unit_days


def T(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn, unit_days: int) -> ir.FloatingScalar:  # noqa: N802
    """Time from the first purchase day to the cutoff, in units of `unit_days` days."""
    return first_purchase_days_ago(days_ago, is_purchase_day).cast("float64") / unit_days


def monetary_value(
    day_amount: ir.FloatingColumn, days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn
) -> ir.FloatingScalar:
    """Mean value of the repeat purchase days; 0 for a customer with no repeat purchase day."""
    repeats = purchase_day_count(is_purchase_day) - 1
    first_value = day_amount.argmax(days_ago, where=is_purchase_day)
    repeat_total = (day_amount.sum(where=is_purchase_day) - first_value) / float(MONEY_SCALE)  # exact, then units
    return (repeats > 0).ifelse(repeat_total / repeats.cast("float64"), 0.0)


def btyd_aggregates(daily: ir.Table, unit_days: int) -> dict[str, ir.Scalar]:
    """The BTYD summary columns as reductions over a customer's `daily_activity` rows."""
    return {
        "frequency": frequency(daily.is_purchase_day),
        "recency": recency(daily.days_ago, daily.is_purchase_day, unit_days),
        "T": T(daily.days_ago, daily.is_purchase_day, unit_days),
        "monetary_value": monetary_value(daily.day_amount, daily.days_ago, daily.is_purchase_day),
    }


def btyd_summary(
    transactions: ir.Table, cutoff: dt.date, time_unit: Literal["days", "weeks"] = "days"
) -> ir.Table:
    """customer_id, frequency, recency, T, monetary_value per customer with a purchase day on or before `cutoff`."""
    unit_days = days_per_unit(time_unit)
    daily = daily_activity(transactions, cutoff)
    summary = daily.group_by("customer_id").aggregate(
        purchase_days=purchase_day_count(daily.is_purchase_day),
        **btyd_aggregates(daily, unit_days),
    )
    return summary.filter(summary.purchase_days > 0).select("customer_id", *BTYD_COLUMNS)
