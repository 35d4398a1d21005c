"""The backtest table of docs/models.md: seven time-based splits, every candidate's metrics.

Run from the repository root: .venv/bin/python -m benchmarks.backtests [--split N ...] [--random-states S ...]

Splits: CDNOW master (as tests/models/conftest.py reads it) at three cutoffs, and synthetic shops of
10,000 customers (``generate_transactions(10_000, seed)``, seeds 1 and 2) at two cutoffs each.
"champion" is the backtest's ``champion_rule``; "model" is what ``CustomerValueModel`` chose on its
own training-window holdout; "wins" means the champion beats BG/NBD + Gamma-Gamma on gini,
decile_mape and |total_error| at once (what tests/models/test_backtest.py asserts, -m slow).
Prints a Markdown table; nothing is asserted. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import ibis

from features.synthetic import generate_transactions
from models.backtest import BacktestResult, backtest

SPLITS = (
    ("CDNOW master", None, dt.date(1997, 9, 30), 273),
    ("CDNOW master", None, dt.date(1997, 8, 31), 182),
    ("CDNOW master", None, dt.date(1997, 12, 31), 182),
    ("synthetic", 1, dt.date(2025, 6, 30), 182),
    ("synthetic", 1, dt.date(2024, 12, 31), 365),
    ("synthetic", 2, dt.date(2025, 6, 30), 182),
    ("synthetic", 2, dt.date(2024, 12, 31), 365),
)
COLUMNS = ("normalized_gini", "decile_mape", "total_error", "churn_auc")


def cdnow_master() -> ibis.Table:
    """CDNOW master as canonical transactions (the frame the model tests use)."""
    from tests.models.conftest import cdnow_frame

    return ibis.memtable(cdnow_frame("CDNOW_master.txt"))


def synthetic(seed: int) -> ibis.Table:
    transactions, _ = generate_transactions(10_000, seed)
    return ibis.memtable(transactions.assign(quantity=transactions["quantity"].astype("float64")))


def wins(result: BacktestResult) -> bool:
    """The champion beats the textbook model on gini, decile_mape and |total_error| at once."""
    champion, textbook = result.metrics[result.champion], result.metrics["bgnbd_gg"]
    return (
        result.champion != "bgnbd_gg"
        and champion["normalized_gini"] > textbook["normalized_gini"]
        and champion["decile_mape"] < textbook["decile_mape"]
        and abs(champion["total_error"]) < abs(textbook["total_error"])
    )


def rows(label: str, result: BacktestResult) -> list[str]:
    """Markdown rows of one split: one per candidate, its role in the last column."""
    lines = []
    for position, (name, values) in enumerate(result.metrics.items()):
        roles = []
        if name == result.champion:
            roles.append("champion" + (", wins" if wins(result) else ""))
        if name == result.model.champion_:
            roles.append("model")
        figures = " | ".join(f"{values[column]:+.4f}" if column == "total_error" else f"{values[column]:.4f}" for column in COLUMNS)
        lines.append(f"| {label if position == 0 else ''} | {name} | {figures} | {'; '.join(roles)} |")
    return lines


def run(indices: list[int], random_state: int = 0) -> list[tuple[str, BacktestResult]]:
    tables: dict[object, ibis.Table] = {}
    results = []
    for index in indices:
        data, seed, cutoff, horizon = SPLITS[index]
        key = seed if seed is not None else data
        if key not in tables:
            tables[key] = cdnow_master() if seed is None else synthetic(seed)
        label = f"{data}{f' seed {seed}' if seed is not None else ''} {cutoff}, {horizon}"
        started = time.perf_counter()
        results.append((label, backtest(tables[key], cutoff, horizon, random_state=random_state)))
        print(f"# {label}: {time.perf_counter() - started:.0f} s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=int, action="append", choices=range(len(SPLITS)),
                        help="index of a split to run (repeatable; default: all seven)")
    parser.add_argument("--random-states", type=int, nargs="+", metavar="S",
                        help="instead of the table: for each random_state S, which splits the champion wins "
                             "(W + the champion's first letter; '.' + it where it does not)")
    arguments = parser.parse_args()
    indices = arguments.split or list(range(len(SPLITS)))
    if arguments.random_states:
        total = 0
        for random_state in arguments.random_states:
            outcomes = [("W" if wins(result) else ".") + result.champion[0] for _, result in run(indices, random_state)]
            won = sum(outcome.startswith("W") for outcome in outcomes)
            total += won
            print(f"random_state {random_state}: {' '.join(outcomes)}  {won} of {len(outcomes)}", flush=True)
        print(f"won {total} of {len(indices) * len(arguments.random_states)}")
        return
    results = run(indices)
    print("| data, cutoff, H | candidate | gini | decile_mape | total_error | churn_auc | |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, result in results:
        print("\n".join(rows(label, result)))


if __name__ == "__main__":
    main()
