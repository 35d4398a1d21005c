"""Config loading: built-ins, overlays, strict keys (configs/loader.py)."""

from __future__ import annotations

import pytest

from configs import ConfigError, load_config


def test_builtin_configs_load():
    assert load_config().model.horizon_days == 365
    cdnow = load_config("cdnow")
    assert cdnow.dataset == "cdnow" and cdnow.segments.tiers.mode == "share"
    assert cdnow.model.horizon_days == 273


def test_overlay_file_and_overrides_merge_deeply(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("segments:\n  grace_days: 30\n  tiers: {gold: 6000}\n")
    config = load_config(path, overrides={"model": {"horizon_days": 90}})
    assert config.segments.grace_days == 30
    assert config.segments.tiers.gold == 6000 and config.segments.tiers.silver == 2000
    assert config.model.horizon_days == 90


def test_unknown_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("segments:\n  grace_dayz: 30\n")
    with pytest.raises(ConfigError, match=r"segments.grace_dayz: Extra inputs are not permitted"):
        load_config(path)


def test_tier_thresholds_must_be_ordered():
    with pytest.raises(ConfigError, match="silver < gold < platinum"):
        load_config(overrides={"segments": {"tiers": {"silver": 6000}}})


@pytest.mark.parametrize(
    "windows, message",
    [([30, 30], r"windows_days has repeated values: \[30, 30\]"), ([0, 90], "positive"), ([], "one or more")],
)
def test_feature_windows_must_be_distinct_positive_days(windows, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides={"features": {"windows_days": windows}})


def test_missing_file_lists_the_builtins():
    with pytest.raises(ConfigError, match="built-in configs: base, demo, cdnow"):
        load_config("nope.yaml")


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(Exception):
        config.model.horizon_days = 3
