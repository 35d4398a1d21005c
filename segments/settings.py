"""Settings for the segment rules, as plain frozen dataclasses.

The names mirror `SegmentsConfig` of the YAML schema field for field (tiers.mode/silver/gold/platinum,
grace_days, churn_threshold, near_next_tier_amount/share, vip_share_warning,
rising_star_min_p_alive, economics.gross_margin and economics.<tier>.discount_rate /
shipping_per_order / gift_per_member), so `flows/` maps a loaded config with
`SegmentSettings.from_mapping(config.segments.model_dump())`. This package never imports the
config package: settings come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

BASE = "Base"
SILVER = "Silver"
GOLD = "Gold"
PLATINUM = "Platinum"
#: Tiers from lowest to highest. "Base" is every customer below Silver (not a VIP).
TIERS = (BASE, SILVER, GOLD, PLATINUM)
VIP_TIERS = (SILVER, GOLD, PLATINUM)
TIER_RANK = {name: position for position, name in enumerate(TIERS)}
#: The longest grace period: a grace end must stay a date pandas can hold (up to the year 2262).
MAX_GRACE_DAYS = 36_500


@dataclass(frozen=True)
class TierThresholds:
    """Where each VIP tier starts.

    mode="absolute": rolling 12-month spend amounts; a customer exactly at a threshold is in the tier.
    mode="share": top shares of customers by rolling 12-month spend (e.g. silver=0.20 is the top 20%),
    turned into amounts on each run (see `segments.tiers.tier_threshold_amounts`).
    """

    mode: Literal["absolute", "share"] = "absolute"
    silver: float = 2000.0
    gold: float = 5000.0
    platinum: float = 10000.0

    def __post_init__(self) -> None:
        if self.mode == "absolute":
            if not (0 < self.silver < self.gold < self.platinum):
                raise ValueError(
                    "absolute tier thresholds must satisfy 0 < silver < gold < platinum, got "
                    f"silver={self.silver}, gold={self.gold}, platinum={self.platinum}"
                )
        elif self.mode == "share":
            if not (0 < self.platinum < self.gold < self.silver < 1):
                raise ValueError(
                    "share tier thresholds must satisfy 0 < platinum < gold < silver < 1 (top shares), got "
                    f"silver={self.silver}, gold={self.gold}, platinum={self.platinum}"
                )
        else:
            raise ValueError(f"tier mode must be 'absolute' or 'share', got {self.mode!r}")

    def by_tier(self) -> dict[str, float]:
        """The configured value (amount or share) for each VIP tier, lowest first."""
        return {SILVER: self.silver, GOLD: self.gold, PLATINUM: self.platinum}


@dataclass(frozen=True)
class TierBenefits:
    """What one tier's benefits cost: a discount on spend, shipping per order, a yearly gift."""

    discount_rate: float = 0.0
    shipping_per_order: float = 0.0
    gift_per_member: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.discount_rate < 1:
            raise ValueError(f"discount_rate must be in [0, 1), got {self.discount_rate}")
        if self.shipping_per_order < 0:
            raise ValueError(f"shipping_per_order must be >= 0, got {self.shipping_per_order}")
        if self.gift_per_member < 0:
            raise ValueError(f"gift_per_member must be >= 0, got {self.gift_per_member}")


@dataclass(frozen=True)
class EconomicsSettings:
    """Gross margin on revenue and the benefits of each VIP tier (Base members get none)."""

    gross_margin: float = 0.35
    silver: TierBenefits = field(default_factory=lambda: TierBenefits(0.05, 0.0, 20.0))
    gold: TierBenefits = field(default_factory=lambda: TierBenefits(0.08, 5.0, 50.0))
    platinum: TierBenefits = field(default_factory=lambda: TierBenefits(0.10, 8.0, 150.0))

    def __post_init__(self) -> None:
        if not 0 < self.gross_margin <= 1:
            raise ValueError(f"gross_margin must be in (0, 1], got {self.gross_margin}")

    def benefits(self, tier: str) -> TierBenefits:
        """The benefits of `tier`; Base has none."""
        return {SILVER: self.silver, GOLD: self.gold, PLATINUM: self.platinum}.get(tier, TierBenefits())


@dataclass(frozen=True)
class SegmentSettings:
    """Every threshold the segment rules use; defaults equal the config defaults."""

    tiers: TierThresholds = field(default_factory=TierThresholds)
    grace_days: int = 90
    churn_threshold: float = 0.5
    near_next_tier_amount: float = 250.0
    near_next_tier_share: float = 0.10
    vip_share_warning: float = 0.20
    rising_star_min_p_alive: float = 0.3
    economics: EconomicsSettings = field(default_factory=EconomicsSettings)

    def __post_init__(self) -> None:
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise ValueError(f"grace_days must be in [0, {MAX_GRACE_DAYS}] (100 years), got {self.grace_days}")
        if not 0 < self.churn_threshold < 1:
            raise ValueError(f"churn_threshold must be in (0, 1), got {self.churn_threshold}")
        if self.near_next_tier_amount < 0:
            raise ValueError(f"near_next_tier_amount must be >= 0, got {self.near_next_tier_amount}")
        if not 0 <= self.near_next_tier_share < 1:
            raise ValueError(f"near_next_tier_share must be in [0, 1), got {self.near_next_tier_share}")
        if not 0 < self.vip_share_warning <= 1:
            raise ValueError(f"vip_share_warning must be in (0, 1], got {self.vip_share_warning}")
        if not 0 <= self.rising_star_min_p_alive <= 1:
            raise ValueError(f"rising_star_min_p_alive must be in [0, 1], got {self.rising_star_min_p_alive}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "SegmentSettings":
        """Build settings from a nested plain mapping shaped like `SegmentsConfig.model_dump()`.

        Unknown keys are an error that names them.
        """
        values = dict(values)
        tiers = values.pop("tiers", None)
        economics = values.pop("economics", None)
        _reject_unknown(values, cls, "segments")
        kwargs: dict[str, Any] = dict(values)
        if tiers is not None:
            _reject_unknown(tiers, TierThresholds, "segments.tiers")
            kwargs["tiers"] = TierThresholds(**tiers)
        if economics is not None:
            economics = dict(economics)
            per_tier = {}
            for name in ("silver", "gold", "platinum"):
                if name in economics:
                    _reject_unknown(economics[name], TierBenefits, f"segments.economics.{name}")
                    per_tier[name] = TierBenefits(**economics.pop(name))
            _reject_unknown(economics, EconomicsSettings, "segments.economics")
            kwargs["economics"] = EconomicsSettings(**economics, **per_tier)
        return cls(**kwargs)


def _reject_unknown(values: Mapping[str, Any], settings_class: type, where: str) -> None:
    known = set(settings_class.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) in {where}: {', '.join(unknown)}; expected some of {sorted(known)}")
