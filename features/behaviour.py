"""Behaviour features as of a cutoff: recent spend and orders, trends, category breadth, tenure.

"Orders" are purchase days and refund-only days are not orders (see ``features.activity``); spend
is net of refunds. A window of N days is (cutoff - N days, cutoff], i.e. ``days_ago < N``. Every
column is defined for every customer with a purchase day on or before the cutoff; the fill values
are:

- ``spend_{N}d``, ``orders_{N}d``, ``spend_expiring_{N}d``: 0 when the window is empty.
- ``aov_trend``: ``(recent - earlier) / (|recent| + |earlier|)`` of the mean purchase-day value in
  the last `recent_days` days (recent) and the `recent_days` days before (earlier); in [-1, 1],
  positive when orders got bigger; 0 when either window has no purchase day or both means are 0.
- ``purchase_interval_acceleration``: ``ln(earlier gap / recent gap)``, where a gap is the mean
  number of days between consecutive purchase days within the last `recent_days` days (recent) or
  before them (earlier); positive when the customer buys more often lately; 0 when either period
  has fewer than two purchase days.
- ``category_breadth``: distinct non-null categories bought (rows with amount >= 0); 0 without
  categories.
- ``category_breadth_growth``: how many of those categories were first bought in the last
  `recent_days` days; 0 without categories.
- ``tenure_days``: whole days from the first purchase day to the cutoff.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis.expr.types as ir

from features.activity import daily_activity, money_sum
from features.btyd import first_purchase_days_ago, last_purchase_days_ago, purchase_day_count
from features.rfm import ROLLING_YEAR_DAYS

RECENT_DAYS = 180
DEFAULT_WINDOWS_DAYS = (30, 90, 180, 365)
DEFAULT_EXPIRING_DAYS = (90,)


def check_window_days(days: Sequence[int], name: str) -> tuple[int, ...]:
    """`days` as a tuple of distinct positive whole numbers of days, or a clear error naming `name`."""
    values = tuple(days)
    bad = [d for d in values if isinstance(d, bool) or not isinstance(d, int) or d <= 0]
    if bad:
        raise ValueError(f"{name} must be positive whole numbers of days, got {bad} in {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has repeated values: {values}")
    return values


def tenure_days(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn) -> ir.IntegerScalar:
    """Whole days from the customer's first purchase day to the cutoff."""
    return first_purchase_days_ago(days_ago, is_purchase_day)


def window_spend(day_amount: ir.FloatingColumn, days_ago: ir.IntegerColumn, window_days: int) -> ir.FloatingScalar:
    """Net spend in the last `window_days` days up to and including the cutoff; 0 when none."""
    return money_sum(day_amount, days_ago < window_days).fill_null(0.0)


def count_where(flags: ir.BooleanColumn) -> ir.IntegerScalar:
    """Rows where `flags` is true.

    Every purchase-day count goes through here, so equal counts are equal expressions and the
    engine computes each once (orders_180d is also the recent order count of aov_trend and
    purchase_interval_acceleration).
    """
    return flags.count(where=flags)


def window_orders(days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn, window_days: int) -> ir.IntegerScalar:
    """Purchase days in the last `window_days` days up to and including the cutoff."""
    return count_where(is_purchase_day & (days_ago < window_days))


def spend_expiring(day_amount: ir.FloatingColumn, days_ago: ir.IntegerColumn, within_days: int) -> ir.FloatingScalar:
    """Net spend that leaves the rolling 12-month window in the next `within_days` days.

    That is the spend in (cutoff - 365 days, cutoff - 365 days + `within_days`]; 0 when none.
    """
    leaving = (days_ago < ROLLING_YEAR_DAYS) & (days_ago >= ROLLING_YEAR_DAYS - within_days)
    return money_sum(day_amount, leaving).fill_null(0.0)


def spend_expiring_within(transactions: ir.Table, cutoff: dt.date, within: ir.Table, longest_days: int = ROLLING_YEAR_DAYS) -> ir.Table:
    """`spend_expiring` with a number of days per customer: for each customer of `within`
    (customer_id, within_days) with spend in the rolling 12-month window, customer_id and
    spend_expiring, the net spend in (cutoff - 365 days, cutoff - 365 days + within_days] (a member in
    grace until cutoff + within_days: the spend gone from the window by then). Customers without
    such spend have no row (0). Only the rows of `within`'s customers in the first `longest_days`
    days of the window (at least every within_days) are read: a few members in grace, not every order."""
    longest_days = min(max(int(longest_days), 0), ROLLING_YEAR_DAYS)
    start = cutoff - dt.timedelta(days=ROLLING_YEAR_DAYS)
    mine = transactions.semi_join(within, "customer_id")
    daily = daily_activity(mine, start + dt.timedelta(days=longest_days), after=start)
    # days_ago counts back from that day: from the cutoff it is that many days more.
    daily = daily.mutate(days_ago=daily.days_ago + (ROLLING_YEAR_DAYS - longest_days))
    rows = daily.join(within, "customer_id")
    leaving = rows.days_ago >= ROLLING_YEAR_DAYS - rows.within_days
    return rows.group_by("customer_id").aggregate(spend_expiring=money_sum(rows.day_amount, leaving).fill_null(0.0))


def mean_order_value(day_amount: ir.FloatingColumn, orders: ir.BooleanColumn) -> ir.FloatingScalar:
    """Mean value of the purchase days selected by `orders`; null when none is selected."""
    return money_sum(day_amount, orders) / count_where(orders).nullif(0).cast("float64")


def aov_trend(
    day_amount: ir.FloatingColumn,
    days_ago: ir.IntegerColumn,
    is_purchase_day: ir.BooleanColumn,
    recent_days: int = RECENT_DAYS,
) -> ir.FloatingScalar:
    """Relative change of mean order value, last `recent_days` days vs the `recent_days` before, in [-1, 1]."""
    recent = mean_order_value(day_amount, is_purchase_day & (days_ago < recent_days))
    earlier = mean_order_value(
        day_amount, is_purchase_day & (days_ago >= recent_days) & (days_ago < 2 * recent_days)
    )
    scale = recent.abs() + earlier.abs()
    return ((recent - earlier) / scale.nullif(0.0)).fill_null(0.0)


def mean_gap(span_days: ir.IntegerScalar, purchase_days: ir.IntegerScalar) -> ir.FloatingScalar:
    """`span_days` / (`purchase_days` - 1): the mean gap between consecutive purchase days; null with fewer than two."""
    return span_days.cast("float64") / (purchase_days - 1).nullif(0).cast("float64")


def purchase_interval_acceleration(
    days_ago: ir.IntegerColumn, is_purchase_day: ir.BooleanColumn, recent_days: int = RECENT_DAYS
) -> ir.FloatingScalar:
    """ln(earlier mean purchase gap / recent mean purchase gap); > 0 when buying more often lately.

    Recent purchase days are those in the last `recent_days` days, earlier ones the rest. The
    recent span ends at the last purchase day and the earlier span starts at the first, so only
    the two inner ends are extra reductions; the counts are the window order count and the rest
    (a span over an empty period is null, and so is the gap).
    """
    recent_orders = is_purchase_day & (days_ago < recent_days)
    recent_count = count_where(recent_orders)
    recent_span = days_ago.max(where=recent_orders) - last_purchase_days_ago(days_ago, is_purchase_day)
    earlier_span = first_purchase_days_ago(days_ago, is_purchase_day) - days_ago.min(
        where=is_purchase_day & (days_ago >= recent_days)
    )
    earlier_count = purchase_day_count(is_purchase_day) - recent_count
    return (mean_gap(earlier_span, earlier_count) / mean_gap(recent_span, recent_count)).ln().fill_null(0.0)


def categories_bought(rows: ir.Table) -> ir.Table:
    """One row per customer and category bought (amount >= 0): customer_id, category, first_bought_days_ago."""
    bought = rows.filter((rows.amount >= 0) & rows.category.notnull())
    return bought.group_by(["customer_id", "category"]).aggregate(first_bought_days_ago=bought.days_ago.max())


def category_breadth(first_bought_days_ago: ir.IntegerColumn) -> ir.IntegerScalar:
    """Distinct categories bought on or before the cutoff."""
    return first_bought_days_ago.count()


def category_breadth_growth(first_bought_days_ago: ir.IntegerColumn, recent_days: int = RECENT_DAYS) -> ir.IntegerScalar:
    """Categories first bought in the last `recent_days` days."""
    return first_bought_days_ago.count(where=first_bought_days_ago < recent_days)


def window_columns(windows_days: Sequence[int], expiring_days: Sequence[int]) -> tuple[str, ...]:
    """Names of the window spend, window order and expiring spend columns."""
    return (
        *(f"spend_{days}d" for days in windows_days),
        *(f"orders_{days}d" for days in windows_days),
        *(f"spend_expiring_{days}d" for days in expiring_days),
    )


def behaviour_columns(windows_days: Sequence[int], expiring_days: Sequence[int]) -> tuple[str, ...]:
    """Names of every behaviour column, in table order."""
    return (
        "tenure_days",
        *window_columns(windows_days, expiring_days),
        "aov_trend",
        "purchase_interval_acceleration",
        "category_breadth",
        "category_breadth_growth",
    )


def behaviour_aggregates(
    daily: ir.Table,
    windows_days: Sequence[int] = DEFAULT_WINDOWS_DAYS,
    expiring_days: Sequence[int] = DEFAULT_EXPIRING_DAYS,
    recent_days: int = RECENT_DAYS,
) -> dict[str, ir.Scalar]:
    """The day-level behaviour columns as reductions over a customer's `daily_activity` rows."""
    windows_days = check_window_days(windows_days, "windows_days")
    expiring_days = check_window_days(expiring_days, "expiring_days")
    too_long = [d for d in expiring_days if d > ROLLING_YEAR_DAYS]
    if too_long:
        raise ValueError(f"expiring_days must be at most {ROLLING_YEAR_DAYS}, got {too_long}")
    return {
        "tenure_days": tenure_days(daily.days_ago, daily.is_purchase_day),
        **{f"spend_{d}d": window_spend(daily.day_amount, daily.days_ago, d) for d in windows_days},
        **{f"orders_{d}d": window_orders(daily.days_ago, daily.is_purchase_day, d) for d in windows_days},
        **{f"spend_expiring_{d}d": spend_expiring(daily.day_amount, daily.days_ago, d) for d in expiring_days},
        "aov_trend": aov_trend(daily.day_amount, daily.days_ago, daily.is_purchase_day, recent_days),
        "purchase_interval_acceleration": purchase_interval_acceleration(
            daily.days_ago, daily.is_purchase_day, recent_days
        ),
    }


def category_aggregates(categories: ir.Table, recent_days: int = RECENT_DAYS) -> dict[str, ir.Scalar]:
    """Category breadth and its growth as reductions over a customer's `categories_bought` rows."""
    return {
        "category_breadth": category_breadth(categories.first_bought_days_ago),
        "category_breadth_growth": category_breadth_growth(categories.first_bought_days_ago, recent_days),
    }
