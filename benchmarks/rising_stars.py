"""Rising stars vs the naive "closest to the next tier" list, on synthetic data with planted risers.

For each seed: generate three years of transactions (features.synthetic, which plants "risers"),
cut off one year before the end, fit the scoring model on the history up to the cutoff, score
everyone and run `segments.nominate`. The rising-star list (K customers) is compared with the naive
rule "the K non-Platinum customers closest to their next tier by current 12-month spend" on:

- precision@K: the share of the list that reached a higher tier within the next 12 months, i.e.
  whose rolling 12-month spend on some day in (cutoff, cutoff + 365 days] reached the threshold of
  a tier above the one they held at the cutoff (default absolute thresholds; no grace needed for
  an upgrade);
- the share of the list that are planted risers (ground truth of the generator);
- the base rate: the share of all non-Platinum customers that reached a higher tier.

Run from the repository root: .venv/bin/python -m benchmarks.rising_stars [--customers N] [--seeds 1 2]
(as a module, so benchmarks/features.py cannot shadow the features package).
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import duckdb
import ibis
import pandas as pd

from features.build import customer_features
from features.synthetic import RISER, generate_transactions
from models.pipeline import CustomerValueModel
from segments import PLATINUM, SegmentSettings, nominate
from segments.settings import TIER_RANK
from segments.tiers import qualified_tier, tier_threshold_amounts

END = dt.date(2025, 12, 31)
CUTOFF = END - dt.timedelta(days=365)
HORIZON_DAYS = 365


def peak_rolling_spend(transactions: pd.DataFrame, cutoff: dt.date, horizon_days: int) -> pd.Series:
    """Each customer's highest rolling 365-day net spend on any day in (cutoff, cutoff + horizon].

    The rolling sum only rises on a day with rows, so it is enough to evaluate it on those days.
    """
    query = f"""
        with days as (
            select customer_id, cast(order_ts as date) as day, sum(amount) as amount
            from transactions
            where cast(order_ts as date) <= date '{cutoff + dt.timedelta(days=horizon_days)}'
            group by all
        ), rolling as (
            select customer_id, day,
                   sum(amount) over (partition by customer_id order by day
                                     range between interval 364 days preceding and current row) as spend
            from days
        )
        select customer_id, max(spend) as peak
        from rolling
        where day > date '{cutoff}'
        group by customer_id
    """
    connection = duckdb.connect()
    connection.register("transactions", transactions[["customer_id", "order_ts", "amount"]])
    return connection.execute(query).df().set_index("customer_id")["peak"]


def precision(listed: pd.Series, climbed: pd.Series) -> float:
    return float(climbed.reindex(listed).fillna(False).mean()) if len(listed) else float("nan")


def run_seed(customers_count: int, seed: int) -> dict[str, object]:
    started = time.perf_counter()
    transactions, truth = generate_transactions(customers_count, seed, end=END)
    table = ibis.memtable(transactions)
    features = customer_features(table, CUTOFF).to_pandas()
    model = CustomerValueModel(horizon_days=HORIZON_DAYS, random_state=seed).fit(table, CUTOFF)
    scores = model.predict(features).reset_index()
    shap = model.explain(features)
    customers = features.merge(scores, on="customer_id", validate="one_to_one")
    settings = SegmentSettings()
    result = nominate(customers, None, CUTOFF, settings, HORIZON_DAYS, shap)

    tiers = result.tiers.set_index("customer_id")
    amounts = tier_threshold_amounts(customers["rolling_12m_spend"], settings.tiers)
    peak = peak_rolling_spend(transactions, CUTOFF, HORIZON_DAYS).reindex(tiers.index).fillna(float("-inf"))
    reached = qualified_tier(peak, amounts).map(TIER_RANK)
    climbed = reached > tiers["tier"].map(TIER_RANK)

    stars = result.rising_stars["customer_id"]
    k = len(stars)
    candidates = tiers[tiers["tier"] != PLATINUM]
    naive = candidates.sort_values(["amount_to_next_tier", "rolling_12m_spend"], ascending=[True, False]).index[:k]
    riser = truth.set_index("customer_id")["segment"].eq(RISER)
    return {
        "seed": seed,
        "customers": len(tiers),
        "K": k,
        "precision@K rising stars": precision(stars, climbed),
        "precision@K naive": precision(pd.Series(naive), climbed),
        "base rate": float(climbed[candidates.index].mean()),
        "risers in rising stars": float(riser.reindex(stars).mean()) if k else float("nan"),
        "risers in naive": float(riser.reindex(naive).mean()) if k else float("nan"),
        "champion": model.champion_,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    arguments = parser.parse_args()
    rows = [run_seed(arguments.customers, seed) for seed in arguments.seeds]
    table = pd.DataFrame(rows).set_index("seed").T
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(f"cutoff {CUTOFF}, horizon {HORIZON_DAYS} days, default absolute tiers (2,000 / 5,000 / 10,000)")
        print(table.to_string())


if __name__ == "__main__":
    main()
