"""Programme economics per tier over the model horizon.

For each tier (Platinum first; Base members have no benefits):
- members: customers holding the tier (grace included);
- predicted_revenue = sum of predicted_spend; predicted_orders = sum of predicted_orders;
- discount_cost = discount_rate x predicted_revenue;
- shipping_cost = shipping_per_order x predicted_orders;
- gift_cost = gift_per_member x members x horizon_days / 365 (the gift is yearly);
- benefit_cost = discount_cost + shipping_cost + gift_cost;
- gross_margin = gross_margin setting x predicted_revenue;
- net_margin = gross_margin - benefit_cost; net_margin_per_member = net_margin / members (NaN
  for an empty tier).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segments.inputs import PREDICTED_ORDERS, PREDICTED_SPEND
from segments.settings import TIER_RANK, TIERS, EconomicsSettings

ECONOMICS_COLUMNS = (
    "tier",
    "rank",
    "members",
    "predicted_revenue",
    "predicted_orders",
    "discount_cost",
    "shipping_cost",
    "gift_cost",
    "benefit_cost",
    "gross_margin",
    "net_margin",
    "net_margin_per_member",
)


def programme_economics(
    tier_rank: np.ndarray, customers: pd.DataFrame, economics: EconomicsSettings, horizon_days: int
) -> pd.DataFrame:
    """One row per tier, Platinum first, with the revenue, costs and margins above.

    `tier_rank` is each customer's tier as its rank in `TIERS` (aligned with `customers`).
    """
    rows = []
    for name in reversed(TIERS):
        in_tier = tier_rank == TIER_RANK[name]
        benefits = economics.benefits(name)
        members = int(in_tier.sum())
        revenue = float(customers.loc[in_tier, PREDICTED_SPEND].sum())
        orders = float(customers.loc[in_tier, PREDICTED_ORDERS].sum())
        discount_cost = benefits.discount_rate * revenue
        shipping_cost = benefits.shipping_per_order * orders
        gift_cost = benefits.gift_per_member * members * horizon_days / 365
        benefit_cost = discount_cost + shipping_cost + gift_cost
        gross_margin = economics.gross_margin * revenue
        net_margin = gross_margin - benefit_cost
        rows.append(
            {
                "tier": name,
                "members": members,
                "predicted_revenue": revenue,
                "predicted_orders": orders,
                "discount_cost": discount_cost,
                "shipping_cost": shipping_cost,
                "gift_cost": gift_cost,
                "benefit_cost": benefit_cost,
                "gross_margin": gross_margin,
                "net_margin": net_margin,
                "net_margin_per_member": net_margin / members if members else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    table.insert(1, "rank", np.arange(1, len(table) + 1))
    return table.loc[:, list(ECONOMICS_COLUMNS)]
