"""The feature and label expressions give the same answers on DuckDB and on Spark (DESIGN.md "Engines").

Same customers, same values in every column. Integer, boolean and string columns must be equal;
float columns are sums and means of amounts, which each engine adds up in its own order, so they
may differ in the last bits (about 1e-16 relative); they are required equal to 1e-12 relative,
far below any cent, and any real difference (a row counted on one engine only) fails.
"""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from features.build import customer_features
from features.labels import horizon_labels
from features.synthetic import generate_transactions

pytestmark = pytest.mark.spark





def on_both_engines(frame: pd.DataFrame, spark_backend, name: str):
    """The same transactions as a DuckDB table and as a Spark view."""
    duck = ibis.duckdb.connect().create_table(name, frame)
    spark = spark_backend.create_view(name, ibis.memtable(frame), overwrite=True)
    return duck, spark


def assert_same_table(duck, spark) -> None:
    """Every customer and every column equal (floats to 1e-12 relative, see the module docstring)."""
    assert duck.schema() == spark.schema()
    left = duck.to_pandas().sort_values("customer_id").reset_index(drop=True)
    right = spark.to_pandas().sort_values("customer_id").reset_index(drop=True)
    assert len(left) > 0
    assert list(left["customer_id"]) == list(right["customer_id"])
    for column in left.columns:
        if pd.api.types.is_float_dtype(left[column]):
            np.testing.assert_allclose(right[column], left[column], rtol=1e-12, atol=1e-12, err_msg=column)
        else:
            pd.testing.assert_series_equal(right[column], left[column], check_dtype=True, obj=column)


@pytest.fixture(scope="module")
def cdnow(spark_backend):
    from flows.ingest import _cdnow_frame

    return on_both_engines(_cdnow_frame(sample=False), spark_backend, "parity_cdnow")


@pytest.fixture(scope="module")
def synthetic(spark_backend):
    transactions, _ = generate_transactions(2000, 5)
    return on_both_engines(transactions, spark_backend, "parity_synthetic")


def test_cdnow_features_and_labels_are_the_same_on_spark(cdnow):
    duck, spark = cdnow
    cutoff = dt.date(1997, 9, 30)
    assert_same_table(customer_features(duck, cutoff), customer_features(spark, cutoff))
    assert_same_table(horizon_labels(duck, cutoff, 273), horizon_labels(spark, cutoff, 273))


def test_synthetic_features_and_labels_are_the_same_on_spark(synthetic):
    duck, spark = synthetic
    cutoff = dt.date(2025, 6, 30)
    features = dict(time_unit="weeks", windows_days=(30, 90, 365))
    assert_same_table(customer_features(duck, cutoff, **features), customer_features(spark, cutoff, **features))
    assert_same_table(horizon_labels(duck, cutoff, 180), horizon_labels(spark, cutoff, 180))
