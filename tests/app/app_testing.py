"""Constants and helpers shared by the app tests and benchmarks (imported by name, unlike conftest)."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from datetime import date

from pathlib import Path

from fake_outputs import fake_lists, fake_run_info, with_text_ids

from flows.store import OutputsStore

API_KEY = "test-key-0123456789"
AS_OF_OLD = date(2026, 11, 9)
AS_OF_NEW = date(2026, 11, 16)
N_CUSTOMERS = 2000

with warnings.catch_warnings():
    # Starlette's TestClient warns that httpx is deprecated in favour of httpx2; httpx is what we have.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def make_client(store: OutputsStore, api_key: str | None, behind_https: bool = False, **kwargs) -> TestClient:
    from app.server import create_app

    return TestClient(create_app(store, api_key, behind_https), **kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """uvicorn serving the app in a thread on a free loopback port."""

    def __init__(self, store: OutputsStore, api_key: str | None) -> None:
        import uvicorn

        from app.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(store, api_key), host="127.0.0.1", port=self.port, access_log=False,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def two_weekly_runs(folder: str, id_template: str | None = None) -> Path:
    """A store in folder with two weekly runs of N_CUSTOMERS customers; ids as text by id_template if given."""
    path = Path(folder) / "outputs.duckdb"
    store = OutputsStore(path)
    for as_of, model_version, seed in ((AS_OF_OLD, "2", 1), (AS_OF_NEW, "3", 2)):
        lists = fake_lists(N_CUSTOMERS, seed=seed)
        if id_template is not None:
            lists = with_text_ids(lists, id_template)
        store.write_run(fake_run_info(as_of, N_CUSTOMERS, model_version=model_version), lists)
    return path
