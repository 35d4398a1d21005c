import numpy as np
import pytest

from models.metrics import (
    backtest_metrics,
    churn_auc,
    decile_mape,
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
