"""The promotion rule and registry names (flows/tracking.py)."""

from __future__ import annotations

from flows.tracking import PRIMARY_METRIC, dataset_slug, decide_promotion, registered_model_name


def test_first_model_is_promoted():
    assert decide_promotion({PRIMARY_METRIC: 0.1}, None).promoted


def test_no_worse_is_promoted_and_worse_is_not():
    assert decide_promotion({PRIMARY_METRIC: 0.70}, {PRIMARY_METRIC: 0.70}).promoted
    assert decide_promotion({PRIMARY_METRIC: 0.71}, {PRIMARY_METRIC: 0.70}).promoted
    worse = decide_promotion({PRIMARY_METRIC: 0.69}, {PRIMARY_METRIC: 0.70})
    assert not worse.promoted
    assert "champion kept" in worse.reason and "0.6900" in worse.reason


def test_registry_names_from_sources():
    assert registered_model_name("cdnow") == "vipcast-cdnow"
    assert dataset_slug("/data/shop/orders_2024.parquet") == "orders_2024"
    assert dataset_slug("postgres://u@h/db#sales.orders") == "sales.orders"
    assert dataset_slug("/data/parts/*") == "parts"
