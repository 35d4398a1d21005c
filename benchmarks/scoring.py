"""Weekly scoring, end to end, as a scheduler runs it: vipcast vs the lifetimes + pandas peer.

    python -m benchmarks.scoring --customers 1000000 --repeats 3
    python -m benchmarks.scoring --scaling 100000 1000000 5000000 --repeats 1

Each contender runs as a whole process (start-up, imports and model loading included), on the
same synthetic Parquet file; wall time is the median of --repeats runs, peak memory the largest
resident set of the process (ru_maxrss via wait4). vipcast is trained once before timing
(`vipcast train`) and has scored the week before (`--as-of` last date - 7 days); then `vipcast
score` of the last date is timed, each repeat from that one-run store: it loads the champion,
validates the data, builds features, scores, reads last week's tier state, nominates the lists and
adds the run to the outputs store and the exports. The peer does what a data scientist writes with lifetimes: the summary utility,
BetaGeoFitter, GammaGammaFitter and customer_lifetime_value over 12 months on pandas (fitting
included, as it has no registry). Results go to stdout as a table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

PEER = r"""
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data
path, as_of = sys.argv[1], sys.argv[2]
transactions = pd.read_parquet(path, columns=["customer_id", "order_ts", "amount"])
transactions = transactions[transactions["order_ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
summary = summary_data_from_transaction_data(
    transactions, "customer_id", "order_ts", monetary_value_col="amount", observation_period_end=as_of, freq="D"
)
bgf = BetaGeoFitter(penalizer_coef=0.001).fit(summary["frequency"], summary["recency"], summary["T"])
repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
ggf = GammaGammaFitter(penalizer_coef=0.001).fit(repeat["frequency"], repeat["monetary_value"])
clv = ggf.customer_lifetime_value(
    bgf, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"].clip(lower=0),
    time=12, discount_rate=0.01, freq="D",
)
summary.assign(clv=clv).to_parquet(sys.argv[3])
print(len(summary), "customers scored")
"""


STEP_LINE = re.compile(r"\[\d+/\d+\] (?P<label>.+?) \.\.\. done in (?P<seconds>[0-9.]+) s")


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, dict[str, float]]:
    """Run a command to completion; return (wall seconds, peak RSS in MiB, seconds per progress step)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stderr_file:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr_file, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        stderr_file.seek(0)
        stderr = stderr_file.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    steps = {step_name(m["label"]): float(m["seconds"]) for m in STEP_LINE.finditer(stderr)}
    return elapsed, usage.ru_maxrss / 1024, steps


def step_name(label: str) -> str:
    """A progress label without its run-specific numbers ("scoring 1,000,000 customers" -> "scoring customers")."""
    return re.sub(r"\s+", " ", re.sub(r"[0-9][0-9,.-]*", "", label)).replace(" as of", "").strip()


def make_dataset(customers: int, seed: int, folder: Path) -> Path:
    path = folder / f"synthetic-{customers}-{seed}.parquet"
    if not path.exists():
        from features.synthetic import generate_transactions

        transactions, _ = generate_transactions(customers, seed)
        transactions.to_parquet(path, index=False)
    return path


def measure(customers: int, seed: int, repeats: int, folder: Path, with_peer: bool) -> list[dict]:
    import pandas as pd

    data = make_dataset(customers, seed, folder)
    as_of = str(pd.read_parquet(data, columns=["order_ts"])["order_ts"].max().date())
    workdir = folder / f"ws-{customers}"
    vipcast = [sys.executable, "-m", "flows.cli"]
    env = {**os.environ, "PREFECT_API_URL": ""}
    env.pop("PREFECT_API_URL")
    train_seconds, _, _ = run_measured([*vipcast, "train", "--data", str(data), "--workdir", str(workdir)], env)
    # The weekly run as a scheduler makes it: the store holds last week's run (its tier state is
    # read), and this week's date is new (a run is added, none replaced). Each repeat starts from
    # the same one-run store.
    store, last_week = workdir / "outputs.duckdb", workdir / "outputs.last-week.duckdb"
    store.unlink(missing_ok=True)
    week_before = str(date.fromisoformat(as_of) - timedelta(days=7))
    run_measured([*vipcast, "score", "--data", str(data), "--as-of", week_before, "--workdir", str(workdir)], env)
    shutil.copyfile(store, last_week)

    def weekly_run():
        shutil.copyfile(last_week, store)
        return run_measured([*vipcast, "score", "--data", str(data), "--workdir", str(workdir)], env)

    rows = []
    runs = [weekly_run() for _ in range(repeats)]
    rows.append(
        {
            "customers": customers,
            "tool": "vipcast score",
            "median_s": statistics.median(r[0] for r in runs),
            "peak_mib": max(r[1] for r in runs),
            "note": f"train once: {train_seconds:.0f} s",
            "steps": {name: statistics.median(r[2].get(name, 0.0) for r in runs) for name in runs[0][2]},
        }
    )
    if with_peer:
        script = folder / "peer.py"
        script.write_text(PEER)
        out = folder / "peer-out.parquet"
        peer = [run_measured([sys.executable, str(script), str(data), as_of, str(out)])[:2] for _ in range(repeats)]
        rows.append(
            {
                "customers": customers,
                "tool": "lifetimes + pandas",
                "median_s": statistics.median(r[0] for r in peer),
                "peak_mib": max(r[1] for r in peer),
                "note": "summary + BG/NBD + GG + CLV",
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'customers':>10}  {'tool':<20} {'median s':>9} {'peak MiB':>9} {'vs peer':>8}  note")
    by_size: dict[int, dict[str, dict]] = {}
    for row in rows:
        by_size.setdefault(row["customers"], {})[row["tool"]] = row
    for row in rows:
        peer = by_size[row["customers"]].get("lifetimes + pandas")
        ratio = f"{peer['median_s'] / row['median_s']:.1f}x" if peer and row is not peer else ""
        print(
            f"{row['customers']:>10,}  {row['tool']:<20} {row['median_s']:>9.1f} {row['peak_mib']:>9.0f} {ratio:>8}  {row['note']}"
        )


def print_steps(rows: list[dict]) -> None:
    """vipcast score's own progress steps (median seconds); the rest of the wall time is start-up and exit."""
    for row in rows:
        steps = row.get("steps")
        if not steps:
            continue
        print(f"\nvipcast score steps at {row['customers']:,} customers (median s):")
        for name, seconds in steps.items():
            print(f"  {seconds:>7.1f}  {name}")
        print(f"  {row['median_s'] - sum(steps.values()):>7.1f}  start-up, imports and exit (wall minus steps)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--scaling", type=int, nargs="*", help="vipcast only, at these sizes (no peer)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "vipcast-bench")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; data in {args.folder}")
    rows = []
    if args.scaling:
        for customers in args.scaling:
            rows += measure(customers, args.seed, args.repeats, args.folder, with_peer=False)
    else:
        rows += measure(args.customers, args.seed, args.repeats, args.folder, with_peer=True)
    print_table(rows)
    print_steps(rows)


if __name__ == "__main__":
    main()
