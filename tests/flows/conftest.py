"""Shared fixtures for flow tests: one Prefect test server per session, small synthetic data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# test_engine.py reuses the fixtures of test_ingest.py (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def no_stop_received(monkeypatch):
    """The SIGTERM a test sends this process is remembered for the process (flows.cli._stop_received):
    each test starts without one, and leaves none behind."""
    import flows.cli

    monkeypatch.setattr(flows.cli, "_stop_received", None)


@pytest.fixture(scope="session")
def prefect_server():
    """One ephemeral Prefect API for the whole session (starting one costs ~15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def small_transactions(tmp_path_factory) -> Path:
    """A synthetic transactions file of 3,000 customers (with risers and faders)."""
    from features.synthetic import generate_transactions

    transactions, _ = generate_transactions(3_000, 11)
    path = tmp_path_factory.mktemp("data") / "shop.parquet"
    transactions.to_parquet(path, index=False)
    return path


@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh workspace; MLflow goes to its SQLite file, never to the user's tracking server."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("VIPCAST_HOME", raising=False)
    return tmp_path / "ws"
