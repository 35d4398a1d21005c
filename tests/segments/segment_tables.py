"""Small hand-checkable customer tables for the segment-rule tests (imported by them, not a test)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

AS_OF = dt.date(2024, 6, 30)

DEFAULTS = {
    "rolling_12m_spend": 0.0,
    "predicted_spend": 0.0,
    "predicted_orders": 0.0,
    "predicted_ltv": 0.0,
    "p_alive": 0.9,
    "churn_probability": 0.1,
    "days_since_last_order": 10.0,
    "spend_expiring_90d": 0.0,
    "aov_trend": 0.0,
    "purchase_interval_acceleration": 0.0,
    "category_breadth_growth": 0.0,
    "spend_90d": 0.0,
}


def customers_table(*rows: dict) -> pd.DataFrame:
    """One row per dict; `customer_id` defaults to c1, c2, ...; other columns default to `DEFAULTS`."""
    records = [{"customer_id": f"c{position + 1}", **DEFAULTS, **row} for position, row in enumerate(rows)]
    return pd.DataFrame.from_records(records)


def state_table(*rows: dict) -> pd.DataFrame:
    """A previous tier state; grace_until defaults to NaT and the flags to False."""
    records = [{"grace_until": pd.NaT, "is_rising_star": False, "is_at_risk": False, **row} for row in rows]
    return pd.DataFrame.from_records(records, columns=["customer_id", "tier", "grace_until", "is_rising_star", "is_at_risk"])

