"""Stores with realistic fake runs, TestClients over them, and a live uvicorn server."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helper modules next to this file are imported by name (whatever pytest's import mode).
sys.path.insert(0, str(Path(__file__).parent))

from app_testing import API_KEY, LiveServer, TestClient, make_client, two_weekly_runs  # noqa: E402

from flows.store import OutputsStore  # noqa: E402


@pytest.fixture(scope="session")
def filled_store_path() -> Iterator[Path]:
    """Two weekly runs of 2,000 customers; the app only reads it, so tests share it."""
    # Not under pytest's basetemp: another pytest run on the machine may prune it mid-session.
    with tempfile.TemporaryDirectory(prefix="vipcast-app-tests-") as folder:
        yield two_weekly_runs(folder)


@pytest.fixture
def filled_store(filled_store_path: Path) -> OutputsStore:
    return OutputsStore(filled_store_path, read_only=True)


@pytest.fixture(scope="session", params=["C{:07d}", "{:05d}"], ids=["demo-ids", "cdnow-ids"])
def text_id_store_path(request: pytest.FixtureRequest) -> Iterator[Path]:
    """filled_store_path's runs with text customer ids: the demo's ``C0001005`` or CDNOW's ``01005``."""
    with tempfile.TemporaryDirectory(prefix="vipcast-app-tests-") as folder:
        yield two_weekly_runs(folder, request.param)


@pytest.fixture
def text_id_store(text_id_store_path: Path) -> OutputsStore:
    return OutputsStore(text_id_store_path, read_only=True)


@pytest.fixture
def empty_store(tmp_path: Path) -> OutputsStore:
    return OutputsStore(tmp_path / "outputs.duckdb")


@pytest.fixture
def client(filled_store: OutputsStore) -> TestClient:
    """Authorized by header on every request; the API key is API_KEY."""
    return make_client(filled_store, API_KEY, headers={"X-API-Key": API_KEY})


@pytest.fixture
def text_id_client(text_id_store: OutputsStore) -> TestClient:
    """As client, over a store whose customer ids are text."""
    return make_client(text_id_store, API_KEY, headers={"X-API-Key": API_KEY})


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
