import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from features.btyd import BTYD_COLUMNS, btyd_summary
from features.build import customer_features, customer_features_frame, feature_columns, model_feature_columns
from features.labels import horizon_labels
from features.synthetic import generate_transactions
from tests.features.conftest import TOY_CUTOFF, by_customer, duckdb_table

SYNTHETIC_CUTOFF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def synthetic_frame():
    frame, _ = generate_transactions(1500, 7)
    return frame


def reference_features(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """A plain pandas rendering of the documented definitions, written independently of the Ibis code."""
    rows = frame[frame.order_ts < pd.Timestamp(cutoff) + pd.Timedelta(days=1)].copy()
    rows["days_ago"] = (pd.Timestamp(cutoff) - rows.order_ts.dt.normalize()).dt.days
    days = rows.groupby(["customer_id", "days_ago"]).amount.agg(["sum", "max"]).reset_index()
    days["purchase"] = days["max"] >= 0
    purchases = days[days.purchase]
    out = pd.DataFrame(
        {
            "days_since_last_order": purchases.groupby("customer_id").days_ago.min(),
            "tenure_days": purchases.groupby("customer_id").days_ago.max(),
            "purchase_days": purchases.groupby("customer_id").size(),
        }
    )
    out["net_spend"] = days.groupby("customer_id")["sum"].sum()
    for window in (30, 90, 180, 365):
        out[f"spend_{window}d"] = days[days.days_ago < window].groupby("customer_id")["sum"].sum()
        out[f"orders_{window}d"] = purchases[purchases.days_ago < window].groupby("customer_id").size()
    expiring = days[(days.days_ago < 365) & (days.days_ago >= 275)]
    out["spend_expiring_90d"] = expiring.groupby("customer_id")["sum"].sum()
    bought = rows[rows.amount >= 0]
    out["category_breadth"] = bought.groupby("customer_id").category.nunique()
    out["category_breadth_growth"] = out.category_breadth - bought[bought.days_ago >= 180].groupby(
        "customer_id"
    ).category.nunique().reindex(out.index)
    fills = {c: 0 for c in out.columns if c.startswith(("spend_", "orders_", "category"))}
    fills["category_breadth_growth"] = out.category_breadth
    out = out.fillna(fills)
    out.index.name = "customer_id"
    return out.sort_index()


def test_columns_rows_and_no_nulls(synthetic_frame):
    features = customer_features(duckdb_table(synthetic_frame), SYNTHETIC_CUTOFF).to_pandas()
    assert list(features.columns) == ["customer_id", *feature_columns()]
    assert features.customer_id.is_unique
    assert not features.isna().any().any()
    first_purchase = synthetic_frame[synthetic_frame.amount >= 0].groupby("customer_id").order_ts.min()
    assert len(features) == (first_purchase < pd.Timestamp(SYNTHETIC_CUTOFF) + pd.Timedelta(days=1)).sum()


def test_the_frame_build_equals_the_expression_and_leaves_no_table_behind(synthetic_frame):
    table = duckdb_table(synthetic_frame)
    tables_before = set(table.get_backend().list_tables())
    frame = customer_features_frame(table, SYNTHETIC_CUTOFF, windows_days=(7, 60), expiring_days=(30,))
    assert set(table.get_backend().list_tables()) == tables_before
    expression = customer_features(table, SYNTHETIC_CUTOFF, windows_days=(7, 60), expiring_days=(30,)).to_pandas()
    assert list(frame.columns) == list(expression.columns)
    frame, expression = frame.set_index("customer_id").sort_index(), expression.set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(frame, expression, check_exact=False, rtol=1e-12)


def test_matches_a_pandas_rendering_of_the_definitions_on_synthetic_data(synthetic_frame):
    assert (synthetic_frame.amount < 0).any() and (synthetic_frame.amount == 0).any()
    ours = by_customer(customer_features(duckdb_table(synthetic_frame), SYNTHETIC_CUTOFF))
    expected = reference_features(synthetic_frame, SYNTHETIC_CUTOFF)
    assert list(ours.index) == list(expected.index)
    for column in expected.columns:
        np.testing.assert_allclose(ours[column], expected[column], rtol=1e-9, atol=1e-9, err_msg=column)
    assert (ours.rolling_12m_spend == ours.spend_365d).all()


@pytest.mark.parametrize("time_unit", ["days", "weeks"])
def test_btyd_columns_are_btyd_summary(cdnow_master_frame, time_unit):
    table = duckdb_table(cdnow_master_frame)
    cutoff = dt.date(1997, 9, 30)
    ours = by_customer(customer_features(table, cutoff, time_unit=time_unit))
    summary = by_customer(btyd_summary(table, cutoff, time_unit))
    pd.testing.assert_frame_equal(ours[list(BTYD_COLUMNS)], summary)


def test_toy_row_of_customer_a(toy):
    a = by_customer(customer_features(toy, TOY_CUTOFF)).loc["A"]
    assert a.frequency == 3 and a["T"] == 356 and a.net_spend == 200 and a.spend_expiring_90d == 100
    assert a.rfm_score == 12 and a.category_breadth == 2


def test_custom_windows_change_the_columns(toy):
    features = customer_features(toy, TOY_CUTOFF, windows_days=(7, 60), expiring_days=(30, 180))
    assert list(features.columns) == ["customer_id", *feature_columns((7, 60), (30, 180))]
    assert "spend_7d" in features.columns and "spend_expiring_180d" in features.columns


def test_only_the_required_columns_are_needed(toy_frame):
    table = ibis.memtable(toy_frame[["customer_id", "order_ts", "amount"]])
    features = by_customer(customer_features(table, TOY_CUTOFF))
    assert (features.category_breadth == 0).all() and (features.category_breadth_growth == 0).all()
    assert features.loc["A", "purchase_days"] == 4


def test_model_feature_columns_leave_out_restatements():
    columns = model_feature_columns()
    assert set(columns) < set(feature_columns())
    assert {"frequency", "recency", "T", "monetary_value", "rolling_12m_spend", "spend_expiring_90d"} <= set(columns)
    assert not {"rfm_score", "purchase_days", "tenure_days", "spend_365d"} & set(columns)
    assert "orders_365d" in columns


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"time_unit": "months"}, "time_unit"),
        ({"recent_days": 0}, "recent_days"),
        ({"windows_days": (30, -1)}, "windows_days"),
        ({"expiring_days": (90, 90)}, "expiring_days"),
    ],
)
def test_bad_arguments_are_refused(toy, arguments, message):
    with pytest.raises(ValueError, match=message):
        customer_features(toy, TOY_CUTOFF, **arguments)


@pytest.mark.spark
def test_spark_and_duckdb_give_the_same_features_and_labels(spark_connection, toy_frame):
    synthetic, _ = generate_transactions(300, 11)
    synthetic = synthetic.assign(quantity=synthetic.quantity.astype("float64"))
    for name, frame, cutoff in [("toy", toy_frame, TOY_CUTOFF), ("synthetic", synthetic, SYNTHETIC_CUTOFF)]:
        on_spark = spark_connection.create_table(f"transactions_{name}", frame, overwrite=True)
        on_duckdb = duckdb_table(frame)
        for build in (lambda t: customer_features(t, cutoff), lambda t: horizon_labels(t, cutoff, 90)):
            spark_result, duckdb_result = by_customer(build(on_spark)), by_customer(build(on_duckdb))
            pd.testing.assert_index_equal(spark_result.index, duckdb_result.index)
            for column in duckdb_result.columns:
                if duckdb_result[column].dtype.kind == "f":
                    np.testing.assert_allclose(spark_result[column], duckdb_result[column], rtol=1e-12, atol=1e-9)
                else:
                    np.testing.assert_array_equal(spark_result[column], duckdb_result[column], err_msg=column)


def test_money_sums_do_not_depend_on_the_order_rows_are_added_in():
    """Float sums of the same amounts in another order differ in the last digits, and DuckDB's
    threads add rows in varying orders: re-scoring the same data gave other bytes. Money is summed
    exactly, so the features of the rows in any order are the same to the bit."""
    rng = np.random.default_rng(5)
    rows = 40_000
    frame = pd.DataFrame({
        "customer_id": rng.integers(0, 300, rows).astype(str),
        "order_ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D"),
        "amount": np.round(rng.gamma(1.2, 40.0, rows) * rng.choice([1, 1, 1, -1], rows), 2),
    })
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    # The data are order-sensitive for float sums (what the features would show without exact sums).
    assert not np.array_equal(frame.groupby("customer_id")["amount"].sum().to_numpy(),
                              shuffled.groupby("customer_id")["amount"].agg(lambda v: float(np.sum(v.to_numpy()))).to_numpy())
    cutoff = dt.date(2025, 12, 1)
    built = [customer_features_frame(duckdb_table(f), cutoff) for f in (frame, shuffled)]
    pd.testing.assert_frame_equal(built[0], built[1], check_exact=True)
    labels = [horizon_labels(duckdb_table(f), dt.date(2025, 6, 1), 120).to_pandas().sort_values("customer_id", ignore_index=True)
              for f in (frame, shuffled)]
    pd.testing.assert_frame_equal(labels[0], labels[1], check_exact=True)
