"""Speed and memory of vipcast's feature build against lifetimes' summary_data_from_transaction_data.

    python benchmarks/features.py --customers 1000000 [--customers 100000] [--runs 3]
    python benchmarks/features.py --customers 1000000 --kernels   (raw DuckDB: what distinct purchase days cost)

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


# --kernels: raw DuckDB queries over the copied rows (days_ago precomputed), each one way of counting a
# customer's distinct purchase days, the column that forces the customer x day grain. Together with
# the one-pass row they show what the exact BTYD summary costs beyond hashing every row once.
KERNEL_BASE = ("count(*) AS n, max(days_ago) FILTER (amount >= 0) AS first_ago, "
               "min(days_ago) FILTER (amount >= 0) AS last_ago, sum(round(amount * 1e6, 0)) AS total, "
               "arg_max(amount, days_ago) AS first_amount")


def kernel_queries(span_days: int) -> dict[str, str]:
    """name -> SQL over the table `rows` (customer_id, days_ago, amount)."""
    words = ", ".join(
        f"bit_or(1::UBIGINT << (days_ago % 64)) FILTER (days_ago // 64 = {k}) AS w{k}" for k in range(span_days // 64 + 1)
    )
    return {
        "one pass by customer, no distinct days": f"SELECT customer_id, {KERNEL_BASE} FROM rows GROUP BY ALL",
        f"+ exact day bitmask ({span_days // 64 + 1} x 64-bit words)":
            f"SELECT customer_id, {KERNEL_BASE}, {words} FROM rows GROUP BY ALL",
        "+ len(list_distinct(list(day)))":
            f"SELECT customer_id, {KERNEL_BASE}, len(list_distinct(list(days_ago))) AS days FROM rows GROUP BY ALL",
        "+ count(DISTINCT day)": f"SELECT customer_id, {KERNEL_BASE}, count(DISTINCT days_ago) AS days FROM rows GROUP BY ALL",
        "+ bit_count(bitstring_agg(day))": (
            f"SELECT customer_id, {KERNEL_BASE}, bit_count(bitstring_agg(days_ago, 0, {span_days})) AS days "
            "FROM rows GROUP BY ALL"
        ),
        "customer x day, then customer": (
            "WITH daily AS (SELECT customer_id, days_ago, sum(round(amount * 1e6, 0)) AS amount, max(amount) >= 0 AS buy "
            "FROM rows GROUP BY ALL) SELECT customer_id, count(*) FILTER (buy) AS days, max(days_ago) FILTER (buy) AS first_ago, "
            "min(days_ago) FILTER (buy) AS last_ago, sum(amount) AS total, arg_max(amount, days_ago) FILTER (buy) AS first_amount "
            "FROM daily GROUP BY ALL"
        ),
    }


def run_kernels(data: Path, cutoff: dt.date, runs: int) -> list[tuple[str, float, int | None]]:
    """(step, median seconds, customer-days counted) for the copies and each kernel query, in this process."""
    import duckdb
    import pyarrow as pa

    frame = pd.read_parquet(data)
    connection = duckdb.connect()
    end = f"DATE '{cutoff.isoformat()}'"
    prepare = (f"SELECT customer_id, date_diff('day', order_ts::DATE, {end})::INT AS days_ago, amount FROM {{source}} "
               f"WHERE order_ts < {end} + 1")

    def median_seconds(sql: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            connection.execute(sql)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    connection.register("frame", frame)
    connection.register("arrow", pa.Table.from_pandas(frame, preserve_index=False))
    timings = [
        ("copy the pandas frame into DuckDB",
         median_seconds(f"CREATE OR REPLACE TEMP TABLE copied AS {prepare.format(source='frame')}"), None),
        ("copy its Arrow view into DuckDB",
         median_seconds(f"CREATE OR REPLACE TEMP TABLE rows AS {prepare.format(source='arrow')}"), None),
    ]
    span_days = connection.execute("SELECT max(days_ago) FROM rows").fetchone()[0]
    bitmask_days = " + ".join(f"coalesce(bit_count(w{k}), 0)::BIGINT" for k in range(span_days // 64 + 1))
    for name, sql in kernel_queries(span_days).items():
        seconds = median_seconds(f"CREATE OR REPLACE TEMP TABLE result AS {sql}")
        columns = [row[0] for row in connection.execute("DESCRIBE result").fetchall()]
        counted = "sum(days)" if "days" in columns else f"sum({bitmask_days})" if "w0" in columns else "NULL"
        timings.append((name, seconds, connection.execute(f"SELECT {counted} FROM result").fetchone()[0]))
    return timings


def kernels(customers: int, runs: int, seed: int, workdir: Path) -> None:
    """Print the --kernels table for `customers` simulated customers (raw DuckDB in a fresh process)."""
    from features.synthetic import generate_transactions

    frame, _ = generate_transactions(customers, seed, refund_share=0.0)
    data = workdir / f"transactions_{customers}.parquet"
    frame[["customer_id", "order_ts", "amount"]].to_parquet(data)
    cutoff = frame.order_ts.max().date()
    rows = len(frame)
    del frame
    command = [sys.executable, __file__, "--kernels-child", "--data", str(data), "--cutoff", cutoff.isoformat(),
               "--runs", str(runs)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"kernels failed:\n{finished.stderr[-3000:]}")
    print(f"{customers:,} customers, {rows:,} rows; raw DuckDB, median of {runs} runs")
    print(f"{'step':<48}{'wall s':>8}{'customer-days':>15}")
    print("-" * 71)
    for name, seconds, days in json.loads(finished.stdout.strip().splitlines()[-1]):
        print(f"{name:<48}{seconds:>8.2f}{'' if days is None else f'{days:,}':>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, action="append", help="simulated customers (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool; the median time is shown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kernels", action="store_true",
                        help="time raw DuckDB ways of counting distinct purchase days instead of the tools")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--kernels-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.data, args.cutoff, args.out)
        return
    if args.kernels_child:
        print(json.dumps(run_kernels(args.data, args.cutoff, args.runs)))
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sizes = args.customers or [100_000]
    if any(size < 1 for size in sizes):
        parser.error("--customers must be at least 1")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; DuckDB uses all of them by default")
    if args.kernels:
        with tempfile.TemporaryDirectory(prefix="vipcast-bench-") as workdir:
            for size in sizes:
                kernels(size, args.runs, args.seed, Path(workdir))
        return
    with tempfile.TemporaryDirectory(prefix="vipcast-bench-") as workdir:
        results = [row for size in sizes for row in benchmark(size, args.runs, args.seed, Path(workdir))]
    print_table(results)
    worst = max(r["btyd_max_abs_diff"] for r in results if r["tool"] in SUMMARY_TOOLS)
    print(f"BTYD columns agree with lifetimes to 1e-9: {'yes' if worst <= 1e-9 else 'NO'} (largest difference {worst:.2e})")


if __name__ == "__main__":
    main()
