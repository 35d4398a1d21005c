import datetime as dt

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from models.backtest import backtest  # noqa: E402
from models.plots import (  # noqa: E402
    btyd_matrix,
    plot_calibration_purchases,
    plot_deciles,
    plot_feature_importance,
    plot_frequency_recency_matrix,
    plot_gain,
    plot_probability_alive_matrix,
)


@pytest.fixture(scope="module")
def result(cdnow_sample):
    return backtest(cdnow_sample, dt.date(1997, 9, 30), 273, n_estimators=30)


def test_calibration_plot(result):
    ax = plot_calibration_purchases(result)
    assert [line.get_label() for line in ax.get_lines()] == ["actual", "model"]
    assert len(ax.get_lines()[0].get_xdata()) == 8
    plt.close("all")


def test_decile_plot(result):
    ax = plot_deciles(result)
    assert len(ax.patches) == 20 and result.champion in ax.get_title()
    plt.close("all")


def test_gain_plot(result):
    ax = plot_gain(result)
    labels = [line.get_label() for line in ax.get_lines()]
    assert {"bgnbd_gg", "lightgbm", "blend", "perfect", "random"} == set(labels)
    assert ax.get_lines()[0].get_ydata()[-1] == pytest.approx(1.0)
    plt.close("all")


def test_feature_importance_plot(result):
    _, ax = plt.subplots()
    assert plot_feature_importance(result.model, top=5, ax=ax) is ax
    assert len(ax.patches) == 5
    plt.close("all")


def test_matrices(result):
    model = result.model.purchase_model_
    ax = plot_probability_alive_matrix(model, max_frequency=5, max_recency=10)
    assert ax.images[0].get_array().shape == (11, 6)
    alive = btyd_matrix(model, "p_alive", 5, 10, 0.0)
    assert np.all(alive[:, 0] == 1.0)  # no repeat purchase: alive by BG/NBD's assumption
    assert alive[10, 5] > alive[1, 5]  # a recent last purchase makes being alive more likely
    ax = plot_frequency_recency_matrix(model, horizon=30, max_frequency=5, max_recency=10)
    assert "30" in ax.get_title()
    # The model's unit, not "time units" (40 days in a days run, 40 weeks in a weeks run).
    assert plot_probability_alive_matrix(model, max_recency=10, unit="weeks").get_title() == \
        "Probability alive (customers of age T = 10 weeks)"
    assert plot_frequency_recency_matrix(model, horizon=1, unit="days").get_title() == "Expected purchases in the next 1 day"
    plt.close("all")
