import ibis
import pandas as pd
import pytest

from features.activity import daily_activity
from features.rfm import RFM_COLUMNS, monetary_score, quintile_score, rfm_aggregates, with_rfm_scores
from tests.features.conftest import TOY_CUTOFF, by_customer


def toy_rfm(toy):
    daily = daily_activity(toy, TOY_CUTOFF)
    per_customer = daily.group_by("customer_id").aggregate(**rfm_aggregates(daily))
    return by_customer(with_rfm_scores(per_customer.filter(per_customer.purchase_days > 0)))


def test_hand_worked_toy_rfm(toy):
    expected = pd.DataFrame(
        {
            # B's last order is late on the cutoff day itself; D's only order is 547 days back.
            "days_since_last_order": [29, 0, 30, 547, 10],
            # B's refund-only day is no purchase day; C's $0 day is; E's two same-day orders are one.
            "purchase_days": [4, 2, 2, 1, 2],
            # A's $999 after the cutoff is ignored; B's -$20 refund nets in.
            "net_spend": [200.0, 70.0, 25.0, 200.0, 110.0],
            # E's $10 exactly 365 days back is outside (cutoff - 365, cutoff].
            "rolling_12m_spend": [200.0, 70.0, 25.0, 0.0, 100.0],
            "recency_score": [3, 5, 2, 1, 4],
            # B, C and E tie on two purchase days and share the score of the tie's first rank.
            "frequency_score": [5, 2, 2, 1, 2],
            "monetary_score": [4, 2, 1, 4, 3],
            "rfm_score": [12, 9, 5, 6, 9],
        },
        index=pd.Index(["A", "B", "C", "D", "E"], name="customer_id"),
    )
    ours = toy_rfm(toy)[list(RFM_COLUMNS)]
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False)


def scores(values, *, higher_is_better):
    table = ibis.memtable(pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(len(values))], "value": values}))
    scored = table.mutate(score=quintile_score(table.value, higher_is_better=higher_is_better))
    return scored.to_pandas().set_index("customer_id").sort_index().score.tolist()


def test_quintiles_without_ties_have_equal_sizes():
    assert scores(list(range(10)), higher_is_better=True) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores(list(range(10)), higher_is_better=False) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_tied_values_share_a_score_whatever_the_row_order():
    values = [3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 5.0]
    # Ascending ranks: the five 1.0s share rank 0 -> 1 + floor(5 * 0 / 10) = 1; 2.0s rank 5 -> 3; 3.0 rank 7 -> 4;
    # 4.0 rank 8 -> 5; 5.0 rank 9 -> 5.
    assert scores(values, higher_is_better=True) == [4, 1, 1, 1, 1, 1, 3, 3, 5, 5]
    assert scores(values[::-1], higher_is_better=True) == [5, 5, 3, 3, 1, 1, 1, 1, 1, 4]


def test_spends_equal_but_for_summation_order_share_a_monetary_score():
    """An engine may add a customer's amounts in any order; the last-bit noise must not break a tie."""
    noisy = (0.1 + 0.2) + 0.3  # 0.6000000000000001
    assert noisy != 0.6
    spends = [0.6, noisy, 0.6, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0]
    table = ibis.memtable(pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(10)], "net_spend": spends}))
    result = table.mutate(score=monetary_score(table.net_spend)).to_pandas().set_index("customer_id").sort_index()
    assert result.score.tolist() == [3] * 5 + [1] * 5


@pytest.mark.parametrize("n", [1, 7, 23])
def test_scores_stay_between_one_and_five(n):
    assert set(scores(list(range(n)), higher_is_better=True)) <= {1, 2, 3, 4, 5}
