"""Speed and memory of vipcast's feature build against lifetimes' summary_data_from_transaction_data.

    python benchmarks/features.py --customers 1000000 [--customers 100000] [--runs 3]

For each size it simulates transactions with ``features.synthetic.generate_transactions`` (no
refunds, so lifetimes' and vipcast's purchase-day rules coincide), writes them to a temporary
Parquet file, and times each tool in its own fresh Python process (median of --runs runs):

- lifetimes: ``summary_data_from_transaction_data`` on the pandas frame (BTYD columns only);
- vipcast btyd_summary: the same four columns, on DuckDB over the pandas frame;
- vipcast customer_features: BTYD + RFM + behaviour columns, on DuckDB over the pandas frame
  (``customer_features_frame``, as fit, backtest and scoring build them);
- floor: the frame copied into DuckDB and grouped by customer and calendar day, nothing else. Any
  exact build of lifetimes' definition merges same-day orders, i.e. groups every row by customer
  and day; this row is what that step alone costs on DuckDB (it computes no summary, so it has no
  BTYD difference).

The timed span starts with the pandas frame in memory and ends with the result as a pandas
frame (for vipcast: copying the frame into an in-memory DuckDB table, which DuckDB scans faster
than the Arrow view of a pandas frame, building and materialising). "wall s" is the median wall
time, "CPU s" the median user + system CPU time of the process (all threads; less sensitive to
other load on the machine). Peak RSS is the process's ``ru_maxrss``; "over data" subtracts the
RSS measured after the frame was loaded. The BTYD columns of the first three are checked to agree to
1e-9 (the last column: largest absolute difference from lifetimes). Times are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Run as a script, this file's folder leads sys.path and its name would hide the `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

TOOLS = ("lifetimes", "vipcast btyd_summary", "vipcast customer_features", "floor: customer x day only")
# The floor row computes no BTYD columns: it is the cost of the one step every exact build of
# lifetimes' definition needs (same-day orders merged: one grouping of every row by customer and day).
SUMMARY_TOOLS = TOOLS[:3]
BTYD_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


def current_rss_mb() -> float:
    """Resident set size of this process now, in MB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary_by_lifetimes(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """lifetimes' BTYD summary, indexed by customer_id."""
    from lifetimes.utils import summary_data_from_transaction_data

    return summary_data_from_transaction_data(
        frame, "customer_id", "order_ts", monetary_value_col="amount", observation_period_end=pd.Timestamp(cutoff)
    )


def summary_by_vipcast(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """vipcast's btyd_summary on DuckDB, indexed by customer_id."""
    import ibis

    from features.btyd import btyd_summary

    connection = ibis.duckdb.connect()
    transactions = connection.create_table("transactions", frame, temp=True)
    return connection.to_pandas(btyd_summary(transactions, cutoff)).set_index("customer_id")


def features_by_vipcast(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """vipcast's full customer_features on DuckDB, indexed by customer_id."""
    import ibis

    from features.build import customer_features_frame

    connection = ibis.duckdb.connect()
    transactions = connection.create_table("transactions", frame, temp=True)
    return customer_features_frame(transactions, cutoff).set_index("customer_id")


def customer_days_only(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """The frame copied into DuckDB and grouped by customer and day (day sum, purchase-day flag): no summary."""
    import ibis

    connection = ibis.duckdb.connect()
    connection.create_table("transactions", frame, temp=True)
    connection.raw_sql(
        "CREATE TEMP TABLE days AS SELECT customer_id, CAST(order_ts AS DATE) AS day, sum(amount) AS amount, "
        f"max(amount) >= 0 AS purchase FROM transactions WHERE order_ts < DATE '{cutoff.isoformat()}' + 1 GROUP BY ALL"
    )
    days = connection.raw_sql("SELECT count(*) FROM days").fetchone()[0]
    return pd.DataFrame({"customer_days": [days]})


RUNNERS = {
    "lifetimes": summary_by_lifetimes,
    "vipcast btyd_summary": summary_by_vipcast,
    "vipcast customer_features": features_by_vipcast,
    "floor: customer x day only": customer_days_only,
}


def run_child(tool: str, data: Path, cutoff: dt.date, out: Path | None) -> None:
    """Time one tool on the Parquet file in this process and print a JSON line of measurements."""
    frame = pd.read_parquet(data)
    import lifetimes.utils  # noqa: F401  (imported before timing, like ibis below: import time is not build time)
    import ibis  # noqa: F401

    import features.build  # noqa: F401

    baseline = current_rss_mb()
    start, start_cpu = time.perf_counter(), cpu_seconds()
    result = RUNNERS[tool](frame, cutoff)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
    if out is not None and tool in SUMMARY_TOOLS:
        result[BTYD_COLUMNS].astype("float64").sort_index().to_parquet(out)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline,
                      "rows": len(result), "columns": result.shape[1]}))


def measure(tool: str, data: Path, cutoff: dt.date, out: Path | None) -> dict:
    """Run `tool` in a fresh Python process and return its measurements."""
    command = [sys.executable, __file__, "--child", tool, "--data", str(data), "--cutoff", cutoff.isoformat()]
    if out is not None:
        command += ["--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def largest_difference(left: Path, right: Path) -> float:
    """Largest absolute difference between two BTYD summaries; inf when their customers differ."""
    a, b = pd.read_parquet(left), pd.read_parquet(right)
    if not a.index.astype(str).equals(b.index.astype(str)):
        return float("inf")
    return float(np.abs(a.to_numpy() - b.to_numpy()).max())


def benchmark(customers: int, runs: int, seed: int, workdir: Path) -> list[dict]:
    """Measure every tool on `customers` simulated customers; one result row per tool."""
    from features.synthetic import generate_transactions

    frame, _ = generate_transactions(customers, seed, refund_share=0.0)
    frame = frame[["customer_id", "order_ts", "amount"]]
    cutoff = frame.order_ts.max().date()
    data = workdir / f"transactions_{customers}.parquet"
    frame.to_parquet(data)
    rows = len(frame)
    del frame

    results = []
    summaries = {}
    for tool in TOOLS:
        summaries[tool] = workdir / f"{''.join(c if c.isalnum() else '_' for c in tool)}_{customers}.parquet"
        timings = [measure(tool, data, cutoff, summaries[tool] if run == 0 else None) for run in range(runs)]
        results.append(
            {
                "tool": tool,
                "customers": customers,
                "rows": rows,
                "seconds": statistics.median(t["seconds"] for t in timings),
                "cpu_seconds": statistics.median(t["cpu_seconds"] for t in timings),
                "runs": runs,
                "peak_rss_mb": max(t["peak_rss_mb"] for t in timings),
                "over_data_mb": max(t["peak_rss_mb"] - t["baseline_rss_mb"] for t in timings),
                "columns": timings[0]["columns"],
            }
        )
    reference = summaries["lifetimes"]
    for result in results:
        exact = result["tool"] in SUMMARY_TOOLS
        result["btyd_max_abs_diff"] = largest_difference(summaries[result["tool"]], reference) if exact else float("nan")
        result["speedup"] = results[0]["seconds"] / result["seconds"]
        result["cpu_speedup"] = results[0]["cpu_seconds"] / result["cpu_seconds"]
    return results


def print_table(results: list[dict]) -> None:
    """Print the results side by side."""
    header = (f"{'tool':<27}{'customers':>10}{'rows':>11}{'cols':>5}{'runs':>5}{'wall s':>8}{'CPU s':>8}"
              f"{'peak RSS MB':>12}{'over data MB':>13}{'x wall':>8}{'x CPU':>7}{'BTYD max |diff|':>17}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['tool']:<27}{r['customers']:>10,}{r['rows']:>11,}{r['columns']:>5}{r['runs']:>5}"
              f"{r['seconds']:>8.2f}{r['cpu_seconds']:>8.2f}{r['peak_rss_mb']:>12.0f}{r['over_data_mb']:>13.0f}"
              f"{r['speedup']:>8.1f}{r['cpu_speedup']:>7.1f}{r['btyd_max_abs_diff']:>17.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, action="append", help="simulated customers (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool; the median time is shown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.data, args.cutoff, args.out)
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sizes = args.customers or [100_000]
    if any(size < 1 for size in sizes):
        parser.error("--customers must be at least 1")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; DuckDB uses all of them by default")
    with tempfile.TemporaryDirectory(prefix="vipcast-bench-") as workdir:
        results = [row for size in sizes for row in benchmark(size, args.runs, args.seed, Path(workdir))]
    print_table(results)
    worst = max(r["btyd_max_abs_diff"] for r in results if r["tool"] in SUMMARY_TOOLS)
    print(f"BTYD columns agree with lifetimes to 1e-9: {'yes' if worst <= 1e-9 else 'NO'} (largest difference {worst:.2e})")


if __name__ == "__main__":
    main()
