"""Settings mirror the config schema, so flows can map one onto the other without glue."""

from __future__ import annotations

import pytest

from configs.schema import SegmentsConfig
from segments import SegmentSettings, TierThresholds


def test_default_config_maps_onto_default_settings():
    assert SegmentSettings.from_mapping(SegmentsConfig().model_dump()) == SegmentSettings()


def test_a_customised_config_maps_field_for_field():
    config = SegmentsConfig.model_validate(
        {
            "tiers": {"mode": "share", "silver": 0.2, "gold": 0.05, "platinum": 0.01},
            "grace_days": 30,
            "economics": {"gross_margin": 0.4, "gold": {"discount_rate": 0.12}},
        }
    )
    settings = SegmentSettings.from_mapping(config.model_dump())
    assert settings.tiers == TierThresholds(mode="share", silver=0.2, gold=0.05, platinum=0.01)
    assert settings.grace_days == 30
    assert settings.economics.gross_margin == 0.4
    assert settings.economics.gold.discount_rate == 0.12


def test_unknown_and_inconsistent_settings_are_errors():
    with pytest.raises(ValueError, match="grace_dayz"):
        SegmentSettings.from_mapping({"grace_dayz": 10})
    with pytest.raises(ValueError, match="silver < gold < platinum"):
        TierThresholds(silver=5000.0, gold=2000.0)
    with pytest.raises(ValueError, match="top shares"):
        TierThresholds(mode="share")


def test_grace_days_must_keep_grace_ends_representable():
    with pytest.raises(ValueError, match=r"grace_days must be in \[0, 36500\]"):
        SegmentSettings(grace_days=90_000)
