import numpy as np
import pytest

from models.metrics import (
    backtest_metrics,
    churn_auc,
    decile_mape,
    decile_means,
    mae,
    normalized_gini,
    spearman,
    top_decile_capture,
    total_error,
)

ACTUAL = np.array([0.0, 0.0, 10.0, 20.0, 30.0, 0.0, 40.0, 0.0, 50.0, 50.0])


def test_normalized_gini_hand_example():
    # Four customers, actual [1, 0, 3, 0] (total 4). Ranked by actual: cumulative 3, 4, 4, 4 -> sum 15;
    # Gini = 15 / (4 * 4) - 5 / 8 = 0.3125. Ranked by a prediction giving order [0, 2, 1, 3]:
    # cumulative 1, 4, 4, 4 -> sum 13 -> Gini 13/16 - 5/8 = 0.1875; normalised 0.1875 / 0.3125 = 0.6.
    actual = np.array([1.0, 0.0, 3.0, 0.0])
    assert normalized_gini([4.0, 2.0, 3.0, 1.0], actual) == pytest.approx(0.6)
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(-actual, actual) < 0


def test_normalized_gini_averages_over_ties():
    # A constant prediction is a random ranking: Gini 0, whatever order the rows arrive in.
    assert normalized_gini(np.ones(10), ACTUAL) == pytest.approx(0.0, abs=1e-12)
    shuffled = np.random.default_rng(0).permutation(10)
    prediction = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5], dtype=float)
    assert normalized_gini(prediction, ACTUAL) == pytest.approx(normalized_gini(prediction[shuffled], ACTUAL[shuffled]))


def test_decile_mape_and_top_decile_hand_example():
    # Ten customers, one per decile: predicted = actual * 1.1 where actual > 0.
    predicted = np.where(ACTUAL > 0, ACTUAL * 1.1, 1.0)
    # Deciles with zero actual spend are left out; the other six are all 10% off.
    assert decile_mape(predicted, ACTUAL) == pytest.approx(0.1)
    # Top 10% by prediction = one customer with 50 of the 200 total.
    assert top_decile_capture(predicted, ACTUAL) == pytest.approx(0.25)


def cut_by_input_order(predicted, actual, groups):
    """Group means when ties are cut by a stable sort of the input order (the rule before session 7)."""
    order = np.argsort(-predicted, kind="stable")
    group = np.empty(predicted.size, dtype=int)
    group[order] = np.arange(predicted.size) * groups // predicted.size
    sizes = np.bincount(group, minlength=groups)
    return np.stack([np.bincount(group, weights=v, minlength=groups) / sizes for v in (predicted, actual)], axis=1)


@pytest.mark.parametrize("size", [13, 20, 23])
def test_decile_means_are_the_expected_means_over_every_order_of_the_ties(size):
    rng = np.random.default_rng(size)
    predicted = rng.choice([0.0, 1.0, 2.5], size=size, p=[0.5, 0.3, 0.2])
    actual = rng.gamma(1.0, 10.0, size) * (rng.random(size) < 0.6)
    groups = 5
    # Every order of the ties is equally likely: average the input-order cut over many shuffles.
    shuffles = [rng.permutation(size) for _ in range(20_000)]
    expected = sum(cut_by_input_order(predicted[s], actual[s], groups) for s in shuffles) / len(shuffles)
    means = decile_means(predicted, actual, groups)
    assert np.allclose(means[["predicted", "actual"]].to_numpy(), expected, rtol=0.03)
    assert np.isclose((means["actual"] * np.diff(-(-np.arange(groups + 1) * size // groups))).sum(), actual.sum())


def test_tied_predictions_do_not_depend_on_the_customers_order():
    """A third of the customers bought in the horizon, all predicted $0, listed buyers first (say,
    by customer id): cut by input order, decile 1 held only buyers and decile_mape left the
    non-buyers' deciles out (0.0 instead of 1.0); now every decile holds a third of each."""
    actual = np.r_[np.full(10, 30.0), np.zeros(20)]
    predicted = np.zeros(30)
    assert decile_mape(predicted, actual) == pytest.approx(1.0)
    assert top_decile_capture(predicted, actual) == pytest.approx(0.1)
    assert decile_means(predicted, actual)["actual"].tolist() == pytest.approx([10.0] * 10)
    # Tie blocks straddling decile boundaries (5 and 25 customers, deciles of 3), in either order.
    two_blocks = np.r_[np.full(5, 2.0), np.ones(25)]
    reordered = np.r_[actual[:5][::-1], actual[5:][::-1]]
    assert decile_mape(two_blocks, actual) == pytest.approx(decile_mape(two_blocks, reordered))
    assert top_decile_capture(two_blocks, actual) == pytest.approx(top_decile_capture(two_blocks, reordered)) == 0.3


def test_totals_mae_and_spearman():
    assert total_error([2.0, 4.0], [1.0, 2.0]) == pytest.approx(1.0)
    assert mae([2.0, 4.0], [1.0, 2.0]) == pytest.approx(1.5)
    assert spearman([1.0, 2.0, 3.0], [10.0, 30.0, 20.0]) == pytest.approx(0.5)


def test_churn_auc():
    assert churn_auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert churn_auc([0.9, 0.2, 0.8, 0.1], [1, 1, 0, 0]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="both churned and retained"):
        churn_auc([0.1, 0.2], [1, 1])


@pytest.mark.parametrize(
    ("predicted", "actual", "message"),
    [
        ([1.0, np.nan], [1.0, 2.0], "missing or infinite"),
        ([1.0], [1.0, 2.0], "one length"),
        ([1.0, 2.0], [0.0, 0.0], "positive total"),
    ],
)
def test_bad_input_is_named(predicted, actual, message):
    with pytest.raises(ValueError, match=message):
        normalized_gini(predicted, actual)


def test_backtest_metrics_has_every_design_metric():
    result = backtest_metrics(ACTUAL + 1, ACTUAL, (ACTUAL == 0).astype(float), (ACTUAL == 0).astype(float))
    assert set(result) == {"normalized_gini", "spearman", "decile_mape", "top_decile_capture", "total_error", "mae", "churn_auc"}
    assert result["churn_auc"] == pytest.approx(1.0)
    assert result["mae"] == pytest.approx(1.0)
