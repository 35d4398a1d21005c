"""Integer keys for ids and tiers: the same order and matches as pandas gives on the strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.keys import id_ranks, positions, ranked_order, tier_names, tier_ranks
from segments.settings import TIERS

ID_SHAPES = {
    "fixed_width": [f"C{i:07d}" for i in (5, 3, 11, 7, 1, 9, 2)],  # 8 bytes: compared as integers
    "short": ["b", "a", "c", "e", "d"],
    "long": [f"customer-{i:012d}" for i in (5, 3, 11, 7)],  # 21 bytes: compared as bytes
    "mixed_width": ["c10", "c9", "c1", "c100", "b"],
    "unicode": ["é", "z", "e", "\u20ac", "\U0001f600", "a\x00", "ab", "a\x01"],
}


def ids_as(values: list, dtype: str) -> pd.Series:
    return pd.Series(values, dtype=dtype)


@pytest.mark.parametrize("dtype", ["str", "object"])
@pytest.mark.parametrize("shape", ID_SHAPES)
def test_id_ranks_follow_the_sorted_ids(shape, dtype):
    ids = ids_as(ID_SHAPES[shape], dtype)
    expected = np.argsort(np.argsort(np.array(ID_SHAPES[shape], dtype=object), kind="stable"))
    assert list(id_ranks(ids)) == list(expected)


@pytest.mark.parametrize("shape", ID_SHAPES)
def test_duplicate_ids_share_a_rank(shape):
    values = ID_SHAPES[shape]
    ranks = id_ranks(ids_as([*values, values[0], values[2]], "str"))
    assert ranks[len(values)] == ranks[0] and ranks[len(values) + 1] == ranks[2]
    assert ranks.max() == len(values) - 1


def test_integer_ids_rank_as_numbers():
    assert list(id_ranks(pd.Series([30, 4, 100]))) == [1, 0, 2]


@pytest.mark.parametrize("lookup_dtype", ["str", "object"])
@pytest.mark.parametrize("shape", ID_SHAPES)
def test_positions_match_get_indexer(shape, lookup_dtype):
    values = ID_SHAPES[shape]
    lookup = ids_as(values[1:], lookup_dtype)  # the first id is absent
    wanted = ids_as([values[-1], values[0], "zz-not-there", *values[::-1]], "str")
    expected = pd.Index(values[1:], dtype=object).get_indexer(list(wanted))
    assert list(positions(wanted, lookup)) == list(expected)


def test_positions_between_ids_of_different_byte_lengths():
    assert list(positions(ids_as(["ab", "abc", "c"], "str"), ids_as(["abc", "ab\x00"], "str"))) == [-1, 0, -1]


def test_ranked_order_equals_sort_values_with_the_ids_last():
    rng = np.random.default_rng(3)
    n = 200
    ids = [f"c{i}" for i in rng.permutation(n)]
    frame = pd.DataFrame(
        {
            "tier": rng.integers(0, 4, n).astype(np.int8),
            "spend": rng.choice([0.0, -0.0, 1.5, 2.0, np.nan, -3.0], n),
            "customer_id": pd.Series(ids, dtype="str"),
        }
    )
    expected = frame.sort_values(
        ["tier", "spend", "customer_id"], ascending=[False, False, True], kind="mergesort"
    ).index
    order = ranked_order([(frame["tier"], False), (frame["spend"], False)], id_ranks(frame["customer_id"]))
    assert list(order) == list(expected)
    subset = np.array([5, 17, 3, 150, 99])
    order = ranked_order([(frame["spend"].to_numpy()[subset], True)], id_ranks(frame["customer_id"])[subset])
    expected = frame.iloc[subset].reset_index(drop=True).sort_values(["spend", "customer_id"], kind="mergesort")
    assert list(order) == list(expected.index)


def test_tier_ranks_and_names_round_trip():
    names = pd.Series(["Gold", "Base", None, "Diamond", "Platinum", "Silver"], dtype="str")
    assert list(tier_ranks(names)) == [2, 0, -1, -1, 3, 1]
    rebuilt = tier_names(np.array([2, 0, 3, 1]))
    pd.testing.assert_series_equal(rebuilt, pd.Series(np.array(["Gold", "Base", "Platinum", "Silver"], dtype=object)))
    assert list(tier_names(np.arange(len(TIERS)))) == list(TIERS)


def test_spends_equal_but_for_summation_noise_rank_by_customer_id():
    """70.73 summed in two orders is 70.73 or 70.72999999999999 (DuckDB vs Spark): the id decides."""
    spend = np.array([70.72999999999999, 70.73, 70.74])
    ids = pd.Series(["11763", "21655", "30000"], dtype="str")
    assert list(ranked_order([(spend, False)], id_ranks(ids))) == [2, 0, 1]
    assert list(ranked_order([(spend[[1, 0, 2]], False)], id_ranks(ids))) == [2, 0, 1]
