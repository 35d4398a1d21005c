"""Stores with realistic fake runs, TestClients over them, and a live uvicorn server."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helper modules next to this file are imported by name (whatever pytest's import mode).
sys.path.insert(0, str(Path(__file__).parent))

from app_testing import API_KEY, AS_OF_NEW, AS_OF_OLD, N_CUSTOMERS, LiveServer, TestClient, make_client  # noqa: E402
from fake_outputs import fake_lists, fake_run_info  # noqa: E402

from flows.store import OutputsStore  # noqa: E402


@pytest.fixture(scope="session")
def filled_store_path() -> Iterator[Path]:
    """Two weekly runs of 2,000 customers; the app only reads it, so tests share it."""
    # Not under pytest's basetemp: another pytest run on the machine may prune it mid-session.
    with tempfile.TemporaryDirectory(prefix="vipcast-app-tests-") as folder:
        path = Path(folder) / "outputs.duckdb"
        store = OutputsStore(path)
        store.write_run(fake_run_info(AS_OF_OLD, N_CUSTOMERS, model_version="2"), fake_lists(N_CUSTOMERS, seed=1))
        store.write_run(fake_run_info(AS_OF_NEW, N_CUSTOMERS), fake_lists(N_CUSTOMERS, seed=2))
        yield path


@pytest.fixture
def filled_store(filled_store_path: Path) -> OutputsStore:
    return OutputsStore(filled_store_path, read_only=True)


@pytest.fixture
def empty_store(tmp_path: Path) -> OutputsStore:
    return OutputsStore(tmp_path / "outputs.duckdb")


@pytest.fixture
def client(filled_store: OutputsStore) -> TestClient:
    """Authorized by header on every request; the API key is API_KEY."""
    return make_client(filled_store, API_KEY, headers={"X-API-Key": API_KEY})


@pytest.fixture
def anonymous(filled_store: OutputsStore) -> TestClient:
    """No key sent, redirects not followed."""
    return make_client(filled_store, API_KEY, follow_redirects=False)


@pytest.fixture
def empty_client(empty_store: OutputsStore) -> TestClient:
    return make_client(empty_store, API_KEY, headers={"X-API-Key": API_KEY})


@pytest.fixture
def live_server(filled_store: OutputsStore) -> Iterator[LiveServer]:
    with LiveServer(filled_store, API_KEY) as server:
        yield server
