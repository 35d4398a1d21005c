"""Business rules over scored customers: VIP tiers, rising stars, at-risk members, events, economics.

Pure functions over pandas DataFrames: no files, no config, no Prefect or MLflow. Start with
`nominate`; the inputs are described in `segments.inputs`.
"""

from segments.nominate import Segments, nominate
from segments.settings import (
    BASE,
    GOLD,
    PLATINUM,
    SILVER,
    TIERS,
    VIP_TIERS,
    EconomicsSettings,
    SegmentSettings,
    TierBenefits,
    TierThresholds,
)

__all__ = [
    "BASE",
    "GOLD",
    "PLATINUM",
    "SILVER",
    "TIERS",
    "VIP_TIERS",
    "EconomicsSettings",
    "SegmentSettings",
    "Segments",
    "TierBenefits",
    "TierThresholds",
    "nominate",
]
