"""BG/NBD fitting speed (lifetimes on raw rows vs vipcast) and scoring time, side by side in one run.

Run from the repository root: .venv/bin/python -m benchmarks.models [--customers 1000000] [--repeats 3]
Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import ibis
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter

from features.build import customer_features
from features.synthetic import generate_transactions
from models.btyd import PurchaseModel
from models.pipeline import CustomerValueModel


def median_seconds(function, repeats: int) -> tuple[float, object]:
    """Median wall time of ``function()`` over ``repeats`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()

    transactions, _ = generate_transactions(arguments.customers, seed=7)
    table = ibis.memtable(transactions.assign(quantity=transactions["quantity"].astype("float64")))
    cutoff = dt.date(2025, 6, 30)
    features = customer_features(table, cutoff).to_pandas().set_index("customer_id")
    summary = features[["frequency", "recency", "T"]]
    unique = len(summary.drop_duplicates())

    raw_seconds, raw = median_seconds(
        lambda: BetaGeoFitter().fit(summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy()),
        arguments.repeats,
    )
    ours_seconds, ours = median_seconds(lambda: PurchaseModel("bgnbd").fit(summary), arguments.repeats)
    relative = float(np.max(np.abs(ours.params_[raw.params_.index].to_numpy() / raw.params_.to_numpy() - 1)))

    model = CustomerValueModel(horizon_days=182, sample_customers=200_000).fit(table, cutoff)
    # Every candidate (BTYD + GG, LightGBM, blend), not only the shipped one that predict computes.
    score_seconds, _ = median_seconds(lambda: model.candidate_predictions(features), arguments.repeats)
    predict_seconds, _ = median_seconds(lambda: model.predict(features), arguments.repeats)
    explain_rows = min(10_000, len(features))
    explain_seconds, _ = median_seconds(lambda: model.explain(features.iloc[:explain_rows]), arguments.repeats)

    rows = pd.DataFrame(
        [
            ("customers", len(summary)),
            ("unique (frequency, recency, T) rows", unique),
            ("lifetimes BetaGeoFitter.fit, raw rows (s, median)", round(raw_seconds, 2)),
            ("vipcast PurchaseModel.fit, same rows (s, median)", round(ours_seconds, 2)),
            ("speed-up", round(raw_seconds / ours_seconds, 1)),
            ("max relative parameter difference", f"{relative:.1e}"),
            ("score all models (BTYD + GG + LightGBM + blend) (s, median)", round(score_seconds, 2)),
            (f"predict, the shipped candidate ({model.champion_}) with LTV (s, median)", round(predict_seconds, 2)),
            (f"explain (SHAP) on {explain_rows:,} customers (s, median)", round(explain_seconds, 2)),
        ],
        columns=["measure", "value"],
    )
    print(rows.to_string(index=False))


if __name__ == "__main__":
    main()
