import datetime as dt
import json

import ibis
import pytest

from features.synthetic import generate_transactions
from models.backtest import backtest
from models.metrics import METRIC_NAMES


@pytest.fixture(scope="module")
def sample_result(cdnow_sample):
    return backtest(cdnow_sample, dt.date(1997, 9, 30), 273, n_estimators=60)


def test_to_dict_has_the_design_shape(sample_result):
    report = json.loads(json.dumps(sample_result.to_dict()))
    assert set(report) == {"cutoff", "horizon_days", "n_customers", "models", "champion"}
    assert report["cutoff"] == "1997-09-30" and report["horizon_days"] == 273 and report["n_customers"] == 2357
    assert set(report["models"]) == {"bgnbd_gg", "lightgbm", "blend"}
    assert all(set(metrics) == set(METRIC_NAMES) for metrics in report["models"].values())
    assert report["champion"] in report["models"]


def test_predictions_and_actuals_are_kept(sample_result, cdnow_sample_frame):
    predictions = sample_result.predictions
    assert len(predictions) == 2357
    assert {"actual_spend", "actual_orders", "churned", "blend_spend", "lightgbm_churn", "frequency"} <= set(predictions.columns)
    raw = cdnow_sample_frame
    after = raw[(raw["order_ts"] > "1997-09-30") & (raw["order_ts"] <= "1998-06-30")]
    assert predictions["actual_orders"].sum() == len(after.drop_duplicates(["customer_id", "order_ts"]))
    assert predictions["actual_spend"].sum() == pytest.approx(after["amount"].sum())


def test_sample_backtest_is_informative(sample_result):
    metrics = sample_result.metrics
    assert metrics["bgnbd_gg"]["normalized_gini"] > 0.5
    assert metrics["lightgbm"]["churn_auc"] > 0.7


def test_refuses_horizon_beyond_the_data(cdnow_sample):
    with pytest.raises(ValueError, match="the data ends 1998-06-30"):
        backtest(cdnow_sample, dt.date(1998, 3, 31), 273)


def assert_champion_beats_textbook(result) -> None:
    """The backtest's champion beats BG/NBD + Gamma-Gamma on gini, decile_mape and |total_error| at once, churn AUC >= 0.75."""
    metrics, textbook = result.metrics, result.metrics["bgnbd_gg"]
    champion = metrics[result.champion]
    assert result.champion != "bgnbd_gg", metrics
    assert champion["normalized_gini"] > textbook["normalized_gini"]
    assert champion["decile_mape"] < textbook["decile_mape"]
    assert abs(champion["total_error"]) < abs(textbook["total_error"])
    assert champion["churn_auc"] >= 0.75


@pytest.fixture(scope="module")
def synthetic():
    """Synthetic transactions (10,000 customers, risers and faders) per seed, as Ibis tables."""
    tables = {}

    def table(seed: int) -> ibis.Table:
        if seed not in tables:
            transactions, _ = generate_transactions(10_000, seed)
            tables[seed] = ibis.memtable(transactions.assign(quantity=transactions["quantity"].astype("float64")))
        return tables[seed]

    return table


@pytest.mark.slow
def test_cdnow_master_champion_beats_textbook(cdnow_master):
    result = backtest(cdnow_master, dt.date(1997, 9, 30), 273)
    assert_champion_beats_textbook(result)
    assert result.to_dict()["n_customers"] == 23570


# CDNOW 1997-12-31 / 182 days: BG/NBD's total error there is only -0.03, while in the training window
# BG/NBD fitted at 1997-07-02 under-predicted by 15%; won since the spend booster reads percentiles and
# its level is shrunk halfway toward BTYD's (docs/models.md).
@pytest.mark.slow
@pytest.mark.parametrize(("cutoff", "horizon_days"), [(dt.date(1997, 8, 31), 182), (dt.date(1997, 12, 31), 182)])
def test_cdnow_master_other_splits(cdnow_master, cutoff, horizon_days):
    assert_champion_beats_textbook(backtest(cdnow_master, cutoff, horizon_days))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "cutoff", "horizon_days"),
    [
        (1, dt.date(2025, 6, 30), 182),
        (1, dt.date(2024, 12, 31), 365),
        (2, dt.date(2025, 6, 30), 182),
        (2, dt.date(2024, 12, 31), 365),
    ],
)
def test_synthetic_champion_beats_textbook(synthetic, seed, cutoff, horizon_days):
    assert_champion_beats_textbook(backtest(synthetic(seed), cutoff, horizon_days))
