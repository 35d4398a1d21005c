"""Backtest metrics (table in docs/models.md, "Backtest"): predicted vs actual horizon spend per customer.

Every function takes aligned 1-D arrays (or Series) over the customers with at least one order on
or before the cutoff. Ties in the prediction are handled so that a metric does not depend on the
order customers happen to arrive in: the Gini and the decile means (decile_mape,
top_decile_capture) are the expected values over random tie orders, exact and in closed form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

METRIC_NAMES = (
    "normalized_gini",
    "spearman",
    "decile_mape",
    "top_decile_capture",
    "total_error",
    "mae",
    "churn_auc",
)


def paired_arrays(predicted, actual) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and actual as float arrays of one length, finite, non-empty; clear errors otherwise."""
    predicted = np.asarray(predicted, dtype="float64")
    actual = np.asarray(actual, dtype="float64")
    if predicted.ndim != 1 or predicted.shape != actual.shape:
        raise ValueError(f"predicted and actual must be 1-D and of one length, got {predicted.shape} and {actual.shape}")
    if predicted.size == 0:
        raise ValueError("no customers to evaluate")
    for name, values in (("predicted", predicted), ("actual", actual)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} has {int((~np.isfinite(values)).sum())} missing or infinite value(s)")
    return predicted, actual


def gini_sum(order_by: np.ndarray, actual: np.ndarray) -> float:
    """Unnormalised Gini of ``actual`` ranked by ``order_by`` (descending), averaged over tie orders.

    With customers sorted best first, Gini = sum_i C_i / (n * total) - (n + 1) / (2 n), where C_i is
    the actual spend accumulated up to customer i. Within a block of g tied predictions with spend s
    following accumulated spend C, the expected sum of C_i over random orders is g C + s (g + 1) / 2.
    """
    frame = pd.DataFrame({"key": order_by, "actual": actual})
    blocks = frame.groupby("key", sort=True)["actual"].agg(["size", "sum"]).iloc[::-1]
    sizes, sums = blocks["size"].to_numpy(dtype="float64"), blocks["sum"].to_numpy()
    before = np.concatenate([[0.0], np.cumsum(sums)[:-1]])
    accumulated = np.sum(sizes * before + sums * (sizes + 1) / 2)
    n, total = actual.size, actual.sum()
    return accumulated / (n * total) - (n + 1) / (2 * n)


def normalized_gini(predicted, actual) -> float:
    """Gini of actual spend ordered by prediction divided by the Gini ordered by actual spend (1 = perfect ranking)."""
    predicted, actual = paired_arrays(predicted, actual)
    if actual.sum() <= 0:
        raise ValueError("normalized_gini needs a positive total actual spend")
    best = gini_sum(actual, actual)
    if best == 0:
        raise ValueError("normalized_gini is undefined when every customer spent the same")
    return float(gini_sum(predicted, actual) / best)


def spearman(predicted, actual) -> float:
    """Spearman rank correlation of prediction and actual spend."""
    predicted, actual = paired_arrays(predicted, actual)
    if np.ptp(predicted) == 0 or np.ptp(actual) == 0:
        raise ValueError("spearman is undefined when predicted or actual spend is constant")
    return float(spearmanr(predicted, actual).statistic)


def decile_means(predicted, actual, groups: int = 10) -> pd.DataFrame:
    """Mean predicted and actual spend of each of `groups` equal-sized groups of customers ranked by
    prediction (group 0 = highest predictions; sizes differ by one customer at most).

    Customers with tied predictions are spread over the groups a block of ties straddles in
    proportion (the expected means over random orders of the ties), not cut by their input order:
    when one customer in three bought nothing and all are predicted $0, a cut by input order (say,
    customer id, i.e. signup date) put the buyers in one group and the non-buyers in the next.
    """
    predicted, actual = paired_arrays(predicted, actual)
    size = predicted.size
    if size < groups:
        raise ValueError(f"need at least {groups} customers to form {groups} groups, got {size}")
    order = np.argsort(-predicted, kind="stable")
    ranked = predicted[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], size]
    block_sums = np.stack([np.add.reduceat(ranked, starts), np.add.reduceat(actual[order], starts)])
    # Position i is in group g iff bounds[g] <= i < bounds[g + 1] (the group of i is i * groups // size).
    bounds = -(-np.arange(groups + 1) * size // groups)
    first, last = starts * groups // size, (ends - 1) * groups // size
    whole = first == last
    sums = np.stack([np.bincount(first[whole], weights=row[whole], minlength=groups).astype(float) for row in block_sums])
    for block in np.flatnonzero(~whole):  # at most groups - 1 blocks straddle a boundary
        start, end = starts[block], ends[block]
        for group in range(first[block], last[block] + 1):
            overlap = min(end, bounds[group + 1]) - max(start, bounds[group])
            sums[:, group] += block_sums[:, block] * overlap / (end - start)
    return pd.DataFrame({"predicted": sums[0], "actual": sums[1]}).div(np.diff(bounds), axis=0).rename_axis("group")


def decile_mape(predicted, actual) -> float:
    """Mean over the 10 prediction deciles of |mean predicted - mean actual| / mean actual.

    Deciles whose customers spent nothing, or less than nothing (refunds outweighing orders), in total
    have no relative error and are left out of the mean; if every decile is like that the metric is undefined and an error is raised. Tied
    predictions count in each decile they straddle in proportion (`decile_means`).
    """
    means = decile_means(predicted, actual)
    means = means[means["actual"] > 0]
    if means.empty:
        raise ValueError("decile_mape is undefined: no decile has positive actual spend")
    return float(((means["predicted"] - means["actual"]).abs() / means["actual"]).mean())


def top_decile_capture(predicted, actual) -> float:
    """Share of total actual spend made by the 10% of customers with the highest predictions (ties as in `decile_means`)."""
    predicted, actual = paired_arrays(predicted, actual)
    if actual.sum() <= 0:
        raise ValueError("top_decile_capture needs a positive total actual spend")
    top = decile_means(predicted, actual).loc[0, "actual"] * -(-predicted.size // 10)
    return float(top / actual.sum())


def total_error(predicted, actual) -> float:
    """sum(predicted) / sum(actual) - 1: the relative error of the planning total."""
    predicted, actual = paired_arrays(predicted, actual)
    if actual.sum() <= 0:
        raise ValueError("total_error needs a positive total actual spend")
    return float(predicted.sum() / actual.sum() - 1)


def mae(predicted, actual) -> float:
    """Mean absolute error of predicted spend per customer."""
    predicted, actual = paired_arrays(predicted, actual)
    return float(np.mean(np.abs(predicted - actual)))


def churn_auc(churn_score, churned) -> float:
    """ROC AUC of a churn score against the 0/1 outcome "no order in the horizon"."""
    churn_score, churned = paired_arrays(churn_score, churned)
    if not np.isin(churned, (0.0, 1.0)).all():
        raise ValueError("churned must be 0/1 (or boolean)")
    if churned.min() == churned.max():
        outcome = ("every one stopped buying (no order in the horizon)" if churned[0] == 1
                   else "every one bought again (nobody churned)")
        raise ValueError(f"churn_auc needs both churned and retained customers in the horizon: of the {len(churned):,} "
                         f"customers {outcome}; churn cannot be measured, and the churn and at-risk models need both")
    return float(roc_auc_score(churned, churn_score))


def backtest_metrics(predicted_spend, actual_spend, churn_score, churned) -> dict[str, float]:
    """All the backtest metrics for one candidate, keyed by the names in ``METRIC_NAMES``."""
    spend_metrics = {
        "normalized_gini": normalized_gini,
        "spearman": spearman,
        "decile_mape": decile_mape,
        "top_decile_capture": top_decile_capture,
        "total_error": total_error,
        "mae": mae,
    }
    results = {name: metric(predicted_spend, actual_spend) for name, metric in spend_metrics.items()}
    results["churn_auc"] = churn_auc(churn_score, churned)
    return results
