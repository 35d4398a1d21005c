"""Model and backtest plots. Each returns its matplotlib Axes; none shows or saves a figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from models.backtest import BacktestResult
from models.btyd import PurchaseModel
from models.metrics import decile_means
from models.pipeline import CustomerValueModel


def axes_or_new(ax: Axes | None) -> Axes:
    """The given Axes, or a new one on a new figure."""
    return plt.subplots()[1] if ax is None else ax


def plot_calibration_purchases(result: BacktestResult, *, max_frequency: int = 7, ax: Axes | None = None) -> Axes:
    """Mean BTYD-predicted vs actual horizon orders, by calibration-period frequency (lifetimes' classic check)."""
    ax = axes_or_new(ax)
    frame = result.predictions.assign(bucket=result.predictions["frequency"].clip(upper=max_frequency).astype(int))
    means = frame.groupby("bucket")[["btyd_expected_orders", "actual_orders"]].mean()
    ax.plot(means.index, means["actual_orders"], marker="o", label="actual")
    ax.plot(means.index, means["btyd_expected_orders"], marker="s", label="model")
    ax.set_xlabel(f"purchases in calibration period ({max_frequency} = {max_frequency} or more)")
    ax.set_ylabel("mean purchases in holdout period")
    ax.set_title("Calibration vs holdout purchases")
    ax.legend()
    return ax


def plot_deciles(result: BacktestResult, *, candidate: str | None = None, ax: Axes | None = None) -> Axes:
    """Mean predicted vs actual horizon spend in the 10 prediction deciles (1 = highest predictions)."""
    ax = axes_or_new(ax)
    name = candidate or result.champion
    predicted = result.predictions[f"{name}_spend"].to_numpy()
    means = decile_means(predicted, result.predictions["actual_spend"].to_numpy())
    positions = means.index.to_numpy() + 1
    ax.bar(positions - 0.2, means["predicted"], width=0.4, label="predicted")
    ax.bar(positions + 0.2, means["actual"], width=0.4, label="actual")
    ax.set_xticks(positions)
    ax.set_xlabel("decile of predicted spend")
    ax.set_ylabel("mean spend over the horizon")
    ax.set_title(f"Decile chart: {name}")
    ax.legend()
    return ax


def plot_gain(result: BacktestResult, *, ax: Axes | None = None) -> Axes:
    """Cumulative share of actual spend vs share of customers ranked by each candidate (gain / Lorenz curve)."""
    ax = axes_or_new(ax)
    actual = result.predictions["actual_spend"].to_numpy()
    share = np.arange(1, len(actual) + 1) / len(actual)
    for name in result.metrics:
        order = np.argsort(-result.predictions[f"{name}_spend"].to_numpy(), kind="stable")
        ax.plot(share, np.cumsum(actual[order]) / actual.sum(), label=name)
    ax.plot(share, np.cumsum(np.sort(actual)[::-1]) / actual.sum(), linestyle="--", label="perfect")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="random")
    ax.set_xlabel("share of customers (best predicted first)")
    ax.set_ylabel("share of actual spend")
    ax.set_title("Gain chart")
    ax.legend()
    return ax


def plot_feature_importance(model: CustomerValueModel, *, top: int = 15, ax: Axes | None = None) -> Axes:
    """Horizontal bars of the spend booster's total gain per feature, the largest on top."""
    ax = axes_or_new(ax)
    importance = model.feature_importance().head(top)[::-1]
    ax.barh(importance.index, importance.to_numpy())
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (spend model)")
    return ax


def btyd_matrix(model: PurchaseModel, quantity: str, max_frequency: int, max_recency: int, horizon: float) -> np.ndarray:
    """P(alive) or expected orders over ``horizon`` on a grid: rows recency 0..max_recency, columns frequency 0..max_frequency, T = max_recency."""
    recency, frequency = np.meshgrid(np.arange(max_recency + 1, dtype=float), np.arange(max_frequency + 1, dtype=float), indexing="ij")
    # frequency 0 implies recency 0 in lifetimes' definitions; those cells keep the frequency-0 value.
    recency = np.where(frequency == 0, 0.0, recency)
    grid = pd.DataFrame({"frequency": frequency.ravel(), "recency": recency.ravel(), "T": float(max_recency)})
    column = "p_alive" if quantity == "p_alive" else "expected_orders"
    return model.predict(grid, horizon)[column].to_numpy().reshape(recency.shape)


def plot_matrix(model: PurchaseModel, quantity: str, *, max_frequency: int, max_recency: int, horizon: float, ax: Axes | None) -> Axes:
    """Heat map of ``btyd_matrix``."""
    ax = axes_or_new(ax)
    matrix = btyd_matrix(model, quantity, max_frequency, max_recency, horizon)
    image = ax.imshow(matrix, aspect="auto", origin="upper", cmap="viridis")
    ax.figure.colorbar(image, ax=ax)
    ax.set_xlabel("frequency (repeat purchases)")
    ax.set_ylabel("recency (time of last purchase)")
    return ax


def _span(count: float, unit: str) -> str:
    """'40 days', '1 week', '2 time units': the model's time unit (features.time_unit), plural by count."""
    singular = unit[:-1] if unit.endswith("s") else unit
    return f"{count:g} {singular if count == 1 else unit}"


def plot_probability_alive_matrix(
    model: PurchaseModel, *, max_frequency: int = 30, max_recency: int = 40, unit: str = "time units", ax: Axes | None = None
) -> Axes:
    """P(alive) by frequency and recency for customers of age T = ``max_recency`` (in ``unit``, the
    model's time unit: days or weeks)."""
    ax = plot_matrix(model, "p_alive", max_frequency=max_frequency, max_recency=max_recency, horizon=0.0, ax=ax)
    ax.set_title(f"Probability alive (customers of age T = {_span(max_recency, unit)})")
    return ax


def plot_frequency_recency_matrix(
    model: PurchaseModel, *, horizon: float = 1.0, max_frequency: int = 30, max_recency: int = 40, unit: str = "time units",
    ax: Axes | None = None,
) -> Axes:
    """Expected purchases over ``horizon`` by frequency and recency for customers of age T = ``max_recency``
    (both in ``unit``, the model's time unit)."""
    ax = plot_matrix(model, "expected_orders", max_frequency=max_frequency, max_recency=max_recency, horizon=horizon, ax=ax)
    ax.set_title(f"Expected purchases in the next {_span(horizon, unit)}")
    return ax
