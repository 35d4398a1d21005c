"""How fast the API serves a marketing list through a real uvicorn on loopback.

A DuckDB outputs store gets one scoring run of 1M scored customers with a rising-stars list of
10,000; then `GET /api/v1/lists/rising-stars?top=10000` (JSON and CSV) and a few other routes are
timed through uvicorn in a separate process, N requests each. Prints a table; asserts nothing.

    .venv/bin/python benchmarks/api.py [--customers 1000000] [--rising-stars 10000] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))

from fake_outputs import fake_lists, fake_run_info  # noqa: E402

from flows.store import OutputsStore  # noqa: E402

API_KEY = "benchmark-key"
SERVER = textwrap.dedent("""
    import logging, sys
    from flows.store import OutputsStore
    from app.server import run
    logging.disable(logging.INFO)
    run("127.0.0.1", int(sys.argv[2]), OutputsStore(sys.argv[1]), sys.argv[3])
""")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_store(path: Path, customers: int, rising_stars: int) -> dict[str, float]:
    started = time.perf_counter()
    lists = fake_lists(customers, seed=7, n_rising_stars=rising_stars)
    generated = time.perf_counter()
    store = OutputsStore(path)
    store.write_run(fake_run_info(date(2026, 11, 9), customers, model_version="2"),
                    fake_lists(customers, seed=6, n_rising_stars=rising_stars))
    first_written = time.perf_counter()
    store.write_run(fake_run_info(date(2026, 11, 16), customers), lists)
    written = time.perf_counter()
    return {"generate lists (s)": generated - started, "write run 1 (s)": first_written - generated,
            "write run 2 (s)": written - first_written, "rows in run 2": sum(len(frame) for frame in lists.values()),
            "store file (MB)": path.stat().st_size / 1e6}


def time_requests(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    client.get(path).raise_for_status()
    timings, size = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
    timings.sort()
    return {"median_ms": statistics.median(timings) * 1000, "p90_ms": timings[int(0.9 * (len(timings) - 1))] * 1000,
            "max_ms": timings[-1] * 1000, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rising-stars", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--store", type=Path, help="reuse or keep the DuckDB store at this path")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = args.store or Path(scratch) / "outputs.duckdb"
        if path.exists():
            build = {"store file (MB)": path.stat().st_size / 1e6}
        else:
            build = build_store(path, args.customers, args.rising_stars)
        print("store")
        for name, value in build.items():
            print(f"  {name:<22} {value:>12,.2f}")

        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(path), str(port), API_KEY],
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_KEY},
                              timeout=60) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/api/v1/runs").raise_for_status()
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise SystemExit("the app did not start") from None
                        time.sleep(0.2)
                top = args.rising_stars
                customer = client.get("/api/v1/lists/rising-stars?top=1").json()["rows"][0]["customer_id"]
                routes = [
                    (f"/api/v1/lists/rising-stars?top={top}", f"rising stars top {top:,}, JSON"),
                    (f"/api/v1/lists/rising-stars?top={top}&format=csv", f"rising stars top {top:,}, CSV"),
                    ("/api/v1/lists/at-risk?top=1000&tier=Gold", "at-risk Gold top 1,000, JSON"),
                    ("/api/v1/runs", "runs"),
                    (f"/api/v1/customers/{customer}", "one customer, with history"),
                    ("/lists/rising-stars?top=200", "rising-stars page (200 rows)"),
                    ("/", "overview page (cached after the first request)"),
                ]
                print(f"\nGET through uvicorn on 127.0.0.1, {args.requests} requests each "
                      f"({args.customers:,} customers scored)")
                print(f"  {'route':<48} {'median ms':>10} {'p90 ms':>9} {'max ms':>9} {'bytes':>11}")
                for path_and_query, label in routes:
                    result = time_requests(client, path_and_query, args.requests)
                    print(f"  {label:<48} {result['median_ms']:>10.1f} {result['p90_ms']:>9.1f} "
                          f"{result['max_ms']:>9.1f} {result['bytes']:>11,}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
