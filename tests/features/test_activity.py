import datetime as dt

import ibis
import pandas as pd
import pytest

from features.activity import check_transactions, cutoff_date, daily_activity
from tests.features.conftest import TOY_CUTOFF


def test_daily_activity_merges_same_day_rows_and_flags_refund_only_days(toy):
    daily = daily_activity(toy, TOY_CUTOFF).to_pandas().set_index(["customer_id", "days_ago"]).sort_index()
    # day_amount is in whole millionths (features.activity.MONEY_SCALE): sums of them are exact.
    assert daily.loc[("E", 10)].tolist() == [100_000_000.0, True]
    assert daily.loc[("B", 117)].tolist() == [-20_000_000.0, False]
    assert daily.loc[("C", 60)].tolist() == [0.0, True]
    assert daily.loc[("B", 0)].tolist() == [10_000_000.0, True]
    assert ("A", -1) not in daily.index


def test_daily_activity_after_reads_only_the_following_days(toy):
    daily = daily_activity(toy, TOY_CUTOFF + dt.timedelta(days=30), after=TOY_CUTOFF).to_pandas()
    assert sorted(daily.customer_id) == ["A", "B", "E"]


def test_a_date_typed_order_column_works():
    frame = pd.DataFrame({"customer_id": ["a", "a"], "order_ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 3)], "amount": [1.0, 2.0]})
    table = ibis.memtable(frame, schema={"customer_id": "string", "order_ts": "date", "amount": "float64"})
    daily = daily_activity(table, dt.date(2024, 1, 3)).to_pandas().sort_values("days_ago")
    assert daily.days_ago.tolist() == [0, 2]


def test_cutoff_must_be_a_calendar_day():
    assert cutoff_date(dt.datetime(2024, 1, 1)) == dt.date(2024, 1, 1)
    with pytest.raises(ValueError, match="cutoff must be a calendar day"):
        cutoff_date(dt.datetime(2024, 1, 1, 12))
    with pytest.raises(TypeError, match="cutoff must be a datetime.date"):
        cutoff_date("2024-01-01")


def test_missing_or_mistyped_columns_are_named():
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['amount'\]"):
        check_transactions(ibis.memtable({"customer_id": ["a"], "order_ts": [pd.Timestamp("2024-01-01")]}))
    with pytest.raises(TypeError, match="'amount' must be numeric"):
        check_transactions(
            ibis.memtable({"customer_id": ["a"], "order_ts": [pd.Timestamp("2024-01-01")], "amount": ["12"]})
        )
    with pytest.raises(TypeError, match="must be an Ibis table"):
        check_transactions(pd.DataFrame())
