"""The outputs store on DuckDB (always) and PostgreSQL (marked `postgres`)."""

from __future__ import annotations

import dataclasses

import glob
import io
import json
import re
import os
import pwd
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows import store as store_module
from flows.listformats import list_csv
from flows.store import (
    NoRunsYet,
    OutputsStore,
    RunInfo,
    RunNotFound,
    StoreBusy,
    StoreError,
    StoreUnreachable,
    StoreUrlError,
    UnknownList,
)

AS_OF_1 = date(2026, 11, 9)
AS_OF_2 = date(2026, 11, 16)


def run_info(run_id: str, as_of: date, created_hour: int = 6, n_customers: int = 5) -> RunInfo:
    return RunInfo(
        run_id=run_id, as_of=as_of, created_at=datetime(as_of.year, as_of.month, as_of.day, created_hour, tzinfo=UTC),
        model_name="vipcast", model_version="2", horizon_days=365, n_customers=n_customers,
        data_digest="d1", config_digest="c1", reconciliation=json.dumps({"rows_used": 40, "rows_set_aside": 1}),
    )


def five_customers(spend_bump: float = 0.0) -> dict[str, pd.DataFrame]:
    """Five customers whose lists can be checked by hand."""
    spend = np.array([12000.0, 6000.0, 2500.0, 1900.0, 100.0]) + spend_bump
    tiers = ["Platinum", "Gold", "Silver", "Base", "Base"]
    scores = pd.DataFrame({
        "customer_id": [1, 2, 3, 4, 5], "tier": tiers, "rolling_12m_spend": spend,
        "predicted_orders": [10.0, 6.0, 3.0, 4.0, 0.5], "predicted_spend": [11000.0, 5000.0, 2400.0, 2600.0, 50.0],
        "predicted_ltv": [10500.0, 4800.0, 2300.0, 2500.0, 48.0], "p_alive": [0.99, 0.9, 0.7, 0.95, 0.2],
        "churn_probability": [0.05, 0.2, 0.6, 0.1, 0.9], "rising_star_score": [9.0, 7.5, 5.0, 7.4, 0.8],
    })
    tier_list = pd.DataFrame({
        "customer_id": [1, 2, 3, 4, 5], "rank": [1, 2, 3, 4, 5], "tier": tiers, "rolling_12m_spend": spend,
        "amount_to_next_tier": [np.nan, 4000.0, 2500.0, 100.0, 1900.0],
        "next_tier": [None, "Platinum", "Gold", "Silver", "Silver"],
    })
    rising_stars = pd.DataFrame({
        "customer_id": [4], "rank": [1], "tier": ["Base"], "target_tier": ["Silver"],
        "rising_star_score": [7.4], "reason_1": ["spent $1,240 in the last 90 days"],
        "reason_2": ["orders every 21 days lately"], "reason_3": [None],
    })
    at_risk = pd.DataFrame({
        "customer_id": [3], "rank": [1], "tier": ["Silver"], "churn_probability": [0.6],
        "days_since_last_order": [120], "spend_to_keep_tier": [0.0], "days_left": [90],
    })
    events = pd.DataFrame({
        "customer_id": [3, 4], "rank": [1, 2], "event": ["new_at_risk", "new_rising_star"],
        "from_tier": ["Silver", "Base"], "to_tier": [None, "Silver"],
    })
    economics = pd.DataFrame({
        "tier": ["Platinum", "Gold", "Silver", "Base"], "rank": [1, 2, 3, 4], "members": [1, 1, 1, 2],
        "predicted_revenue": [11000.0, 5000.0, 2400.0, 2650.0],
    })
    return {"scores": scores, "tiers": tier_list, "rising_stars": rising_stars, "at_risk": at_risk,
            "events": events, "economics": economics}


# PostgreSQL: VIPCAST_TEST_PG_URL, else a throwaway server from Debian's binaries.

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server_url():
    """A PostgreSQL server URL without a database name (trailing slash)."""
    configured = os.environ.get("VIPCAST_TEST_PG_URL")
    if configured:
        yield configured.rsplit("/", 1)[0] + "/"
        return
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail(
            "postgres tests need a server: set VIPCAST_TEST_PG_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB "
            "or install Debian's binaries (apt-get install -y postgresql)"
        )
    bin_dir = Path(binaries[-1]).parent
    # Not under pytest's basetemp: another pytest run on the machine may prune it while the server runs.
    root = Path(tempfile.mkdtemp(prefix="vipcast-pg-"))
    data_dir = root / "data"
    data_dir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        # initdb and pg_ctl refuse to run as root.
        owner = pwd.getpwnam("postgres")
        os.chmod(root, 0o755)
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data_dir)]
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust",
                        "--no-sync"], check=True, capture_output=True)
        subprocess.run([*pg_ctl, "-w", "-l", str(data_dir / "server.log"),
                        "-o", f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as error:
        log = data_dir / "server.log"
        pytest.fail(f"could not start a throwaway PostgreSQL ({' '.join(error.cmd)}): "
                    f"{error.stderr.decode(errors='replace')}{log.read_text() if log.exists() else ''}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server_url: str):
    """A fresh, empty database on the test server."""
    import psycopg

    name = "vipcast_" + uuid.uuid4().hex[:12]
    admin = postgres_server_url.replace("postgresql+psycopg://", "postgresql://") + "postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield postgres_server_url + name
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.postgres
def test_a_postgres_url_names_the_store_as_sources_do(postgres_url: str) -> None:
    """`postgres://` read sources but as outputs.store_url failed: "Can't load plugin: sqlalchemy.dialects:postgres"."""
    url = postgres_url.replace("postgresql+psycopg://", "postgres://")
    store = OutputsStore(url)
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    assert [run.run_id for run in OutputsStore(postgres_url, read_only=True).runs()] == ["r1"]
    assert store.description.startswith("postgresql://")
    # A database that does not exist is the URL's fault (a config error, exit 2), not the machine's.
    with pytest.raises(StoreUrlError, match=r'cannot connect to the outputs store .*: .*database "no_such_db" does not exist'):
        OutputsStore(postgres_url.rsplit("/", 1)[0] + "/no_such_db").runs()


@pytest.fixture(params=["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "outputs.duckdb")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outputs.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> OutputsStore:
    return OutputsStore(store_url)


def assert_frame_matches(read: pd.DataFrame, written: pd.DataFrame) -> None:
    """Same columns in the same order, same values row by row (dtypes may differ by backend)."""
    assert list(read.columns) == list(written.columns)
    assert len(read) == len(written)
    for column in written.columns:
        expected = written[column].astype(object).where(written[column].notna(), None).tolist()
        actual = read[column].astype(object).where(read[column].notna(), None).tolist()
        assert actual == expected, column


# Round trip and run selection

def test_a_run_reads_back_exactly_as_written(store: OutputsStore) -> None:
    lists = five_customers()
    store.write_run(run_info("r1", AS_OF_1), lists)

    for name, frame in lists.items():
        assert_frame_matches(store.read_list(name), frame)
    (run,) = store.runs()
    assert run.run_id == "r1" and run.as_of == AS_OF_1
    assert run.created_at == datetime(2026, 11, 9, 6, tzinfo=UTC)
    assert json.loads(run.reconciliation) == {"rows_used": 40, "rows_set_aside": 1}
    assert run.lists == {"scores": 5, "tiers": 5, "rising_stars": 1, "at_risk": 1, "events": 2, "economics": 4}


def test_the_latest_run_is_the_default_and_as_of_picks_a_date(store: OutputsStore) -> None:
    store.write_run(run_info("old", AS_OF_1), five_customers())
    store.write_run(run_info("new", AS_OF_2), five_customers(spend_bump=1000.0))
    store.write_run(run_info("new-model", AS_OF_2, created_hour=9), five_customers(spend_bump=2000.0))

    assert [run.run_id for run in store.runs()] == ["new-model", "new", "old"]
    assert store.latest_run().run_id == "new-model"
    assert store.read_list("scores")["rolling_12m_spend"].iloc[0] == 14000.0
    assert store.read_list("scores", as_of=AS_OF_1)["rolling_12m_spend"].iloc[0] == 12000.0
    assert store.read_list("scores", as_of="2026-11-16")["rolling_12m_spend"].iloc[0] == 14000.0
    assert store.read_list("scores", run_id="new")["rolling_12m_spend"].iloc[0] == 13000.0
    assert store.get_run("old").as_of == AS_OF_1
    assert store.previous_run(store.get_run("new-model")).run_id == "old"
    assert store.previous_run(store.get_run("old")) is None


def test_the_previous_run_is_of_the_same_dataset(store: OutputsStore) -> None:
    def of(source: str, run_id: str, as_of: date) -> RunInfo:
        return dataclasses.replace(run_info(run_id, as_of), reconciliation=json.dumps({"source": source}))

    store.write_run(of("/data/shop.parquet", "shop-1", date(2026, 1, 5)), five_customers())
    store.write_run(of("cdnow", "cdnow-1", date(2026, 2, 2)), five_customers())
    store.write_run(of("shop.parquet", "shop-2", date(2026, 3, 2)), five_customers())
    assert store.previous_run(store.get_run("shop-2")).run_id == "shop-1"
    assert store.previous_run(store.get_run("cdnow-1")) is None
    store.write_run(run_info("unnamed", date(2026, 4, 6)), five_customers())  # stored before runs named their source
    assert store.previous_run(store.get_run("unnamed")).run_id == "shop-2"

    # A customer's history (API and customer page) keeps to the run's shop: cdnow's customer 4 is another person.
    assert store.customer_history("4", of_run=store.get_run("shop-2"))["run_id"].tolist() == ["shop-1", "shop-2", "unnamed"]
    assert store.customer_history("4", of_run=store.get_run("cdnow-1"))["run_id"].tolist() == ["cdnow-1", "unnamed"]
    assert len(store.customer_history("4")) == 4


def stored_datasets(store: OutputsStore) -> dict[str, str | None]:
    with store._reading() as connection:
        frame = connection.fetch_df("SELECT run_id, dataset FROM runs")
    return {run_id: (None if pd.isna(dataset) else dataset) for run_id, dataset in zip(frame["run_id"], frame["dataset"])}


def test_the_runs_table_names_each_run_s_dataset(store: OutputsStore) -> None:
    """A database reader had to rebuild the dataset name from the source inside the reconciliation JSON
    to find "the latest run of shop"; the API and pages named it `shop`, the source `shop.parquet`."""
    def of(source: str | None, run_id: str, as_of: date) -> RunInfo:
        return dataclasses.replace(run_info(run_id, as_of), reconciliation=json.dumps({"source": source} if source else {}))

    store.write_run(of("/data/Shop.parquet", "shop-1", date(2026, 1, 5)), five_customers())
    store.write_run(of(None, "unnamed", date(2026, 1, 12)), five_customers())
    assert stored_datasets(store) == {"shop-1": "shop", "unnamed": None}
    # A store written before the column existed gets it, filled from each run's source, on its next write.
    with store._backend.connect(write=True) as connection:
        connection.execute("ALTER TABLE runs DROP COLUMN dataset")
    store.write_run(of("cdnow", "cdnow-1", date(2026, 2, 2)), five_customers())
    assert stored_datasets(store) == {"shop-1": "shop", "unnamed": None, "cdnow-1": "cdnow"}
    # A run an older vipcast (rolled back to) wrote into the column's store has none: filled on the next write.
    with store._backend.connect(write=True) as connection:
        connection.execute("UPDATE runs SET dataset = NULL WHERE run_id = 'cdnow-1'")
    store.write_run(of("/data/Shop.parquet", "shop-2", date(2026, 2, 9)), five_customers())
    assert stored_datasets(store) == {"shop-1": "shop", "unnamed": None, "cdnow-1": "cdnow", "shop-2": "shop"}
    assert [run.run_id for run in store.runs()] == ["shop-2", "cdnow-1", "unnamed", "shop-1"]


def test_missing_runs_and_lists_are_clear_errors(store: OutputsStore) -> None:
    with pytest.raises(NoRunsYet, match="vipcast score"):
        store.read_list("rising_stars")
    assert store.runs() == [] and store.latest_run() is None
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    with pytest.raises(RunNotFound, match="2026-11-09"):
        store.read_list("rising_stars", as_of=date(2020, 1, 1))
    with pytest.raises(RunNotFound, match="nope"):
        store.get_run("nope")
    with pytest.raises(UnknownList, match="rising_stars"):
        store.read_list("vip_party")
    with pytest.raises(ValueError, match="top"):
        store.read_list("tiers", top=-1)


def test_top_and_tier_filter_in_rank_order(store: OutputsStore) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    assert store.read_list("tiers", top=2)["customer_id"].tolist() == [1, 2]
    assert store.read_list("tiers", tier="base")["customer_id"].tolist() == [4, 5]
    assert store.read_list("tiers", tier="Base", top=1)["customer_id"].tolist() == [4]
    assert store.read_list("rising-stars", tier="Base")["customer_id"].tolist() == [4]
    assert store.read_list("rising_stars", tier="Gold").empty
    assert store.read_list("tiers", top=0).empty
    # Events: the tier now is from_tier (at risk, rising star, ...), to_tier after an upgrade or downgrade.
    assert store.read_list("events", tier="Silver")["customer_id"].tolist() == [3]
    assert store.read_list("events", tier="Base")["customer_id"].tolist() == [4]
    moved = {**five_customers(), "events": pd.DataFrame({
        "customer_id": [1, 2], "rank": [1, 2], "event": ["tier_downgrade", "tier_upgrade"],
        "from_tier": ["Platinum", "Silver"], "to_tier": ["Gold", "Gold"],
    })}
    store.write_run(run_info("r2", AS_OF_2), moved)
    assert store.read_list("events", run_id="r2", tier="gold")["customer_id"].tolist() == [1, 2]
    assert store.read_list("events", run_id="r2", tier="Platinum").empty


# Idempotence, schema changes, atomicity

def test_rewriting_a_run_id_replaces_that_run(store: OutputsStore) -> None:
    store.write_run(run_info("keep", AS_OF_1), five_customers())
    store.write_run(run_info("redo", AS_OF_2), five_customers())
    fewer = five_customers(spend_bump=500.0)
    fewer["events"] = fewer["events"].iloc[:1]
    del fewer["at_risk"]
    store.write_run(run_info("redo", AS_OF_2, created_hour=8), fewer)

    assert [run.run_id for run in store.runs()] == ["redo", "keep"]
    assert_frame_matches(store.read_list("events", run_id="redo"), fewer["events"])
    assert store.read_list("at_risk", run_id="redo").empty
    assert store.read_list("scores", run_id="redo")["rolling_12m_spend"].iloc[0] == 12500.0
    assert_frame_matches(store.read_list("at_risk", run_id="keep"), five_customers()["at_risk"])


def test_a_run_replaces_the_runs_it_names_in_the_same_transaction(store: OutputsStore) -> None:
    """The same dataset and date stored under an older run id: the re-scored date's run replaces it."""
    store.write_run(run_info("keep", AS_OF_1), five_customers())
    store.write_run(run_info("old-id", AS_OF_2), five_customers())
    store.write_run(run_info("new-id", AS_OF_2, created_hour=8), five_customers(spend_bump=500.0), replacing=["old-id", "absent"])
    assert [run.run_id for run in store.runs()] == ["new-id", "keep"]
    assert store.read_list("scores", run_id="new-id")["rolling_12m_spend"].iloc[0] == 12500.0
    with pytest.raises(RunNotFound):
        store.read_list("scores", run_id="old-id")
    assert_frame_matches(store.read_list("at_risk", run_id="keep"), five_customers()["at_risk"])


def test_new_columns_are_added_and_types_widen(store: OutputsStore) -> None:
    first = five_customers()
    store.write_run(run_info("r1", AS_OF_1), first)
    second = five_customers()
    second["rising_stars"] = second["rising_stars"].assign(shap_top_feature=["aov_trend"])
    second["at_risk"] = second["at_risk"].assign(days_since_last_order=[120.5])
    second["events"] = second["events"].assign(customer_id=["C-3", "C-4"])
    store.write_run(run_info("r2", AS_OF_2), second)

    assert_frame_matches(store.read_list("rising_stars", run_id="r1"), first["rising_stars"])
    assert store.read_list("rising_stars", run_id="r2")["shap_top_feature"].tolist() == ["aov_trend"]
    assert store.read_list("at_risk", run_id="r2")["days_since_last_order"].tolist() == [120.5]
    assert store.read_list("at_risk", run_id="r1")["days_since_last_order"].tolist() == [120]
    assert store.read_list("events", run_id="r2")["customer_id"].tolist() == ["C-3", "C-4"]
    assert store.read_list("events", run_id="r1")["customer_id"].astype(str).tolist() == ["3", "4"]
    store.write_run(run_info("r3", date(2026, 11, 23)), five_customers())
    assert store.read_list("events", run_id="r3")["customer_id"].tolist() == ["3", "4"]


def test_a_float_column_of_whole_numbers_takes_the_whole_numbers_a_newer_version_writes(store: OutputsStore) -> None:
    """days_since_last_order was stored as floats by an older vipcast: after the upgrade, every outlet still
    read 117.0 from the store's DOUBLE column. Whole numbers make it BIGINT; a fraction keeps it DOUBLE."""
    older = five_customers()
    older["at_risk"] = older["at_risk"].assign(days_since_last_order=[117.0])
    store.write_run(run_info("r1", AS_OF_1), older)
    store.write_run(run_info("r2", AS_OF_2), five_customers())
    for run_id, days in (("r1", 117), ("r2", 120)):
        read = store.read_list("at_risk", run_id=run_id)["days_since_last_order"]
        assert read.tolist() == [days] and pd.api.types.is_integer_dtype(read.dtype), (run_id, read.dtype)
    with store._backend.connect(write=True) as connection:
        connection.execute("DELETE FROM at_risk")
        connection.execute("DELETE FROM runs")
    halves = five_customers()
    halves["at_risk"] = halves["at_risk"].assign(days_since_last_order=[120.5])
    store.write_run(run_info("r3", AS_OF_1), halves)
    store.write_run(run_info("r4", AS_OF_2), five_customers())
    assert store.read_list("at_risk", run_id="r3")["days_since_last_order"].tolist() == [120.5]


def test_columns_first_seen_in_an_empty_list_take_their_type_later(store: OutputsStore) -> None:
    nobody = pd.DataFrame(columns=list(five_customers()["at_risk"].columns))
    store.write_run(run_info("r1", AS_OF_1), {"at_risk": nobody})
    assert store.read_list("at_risk").empty
    store.write_run(run_info("r2", AS_OF_2), five_customers())
    at_risk = store.read_list("at_risk")
    assert at_risk["churn_probability"].tolist() == [0.6] and at_risk["days_since_last_order"].tolist() == [120]
    assert list(store.read_list("at_risk", run_id="r1").columns) == list(nobody.columns)


def test_a_text_column_first_stored_from_an_empty_float_column_takes_text_later(store: OutputsStore) -> None:
    """An empty rising-stars list made reason_1 a float column; on SQLite the next run with reasons
    failed at ALTER COLUMN ... TYPE (SQLite has none), on every retry."""
    stars = five_customers()["rising_stars"]
    empty = stars.iloc[:0].astype({"reason_1": "float64"})
    store.write_run(run_info("r1", AS_OF_1), {"rising_stars": empty})
    store.write_run(run_info("r2", AS_OF_2), {"rising_stars": stars})
    assert_frame_matches(store.read_list("rising_stars", run_id="r2"), stars)
    assert store.read_list("rising_stars", run_id="r1").empty


def test_reserved_and_unknown_names_are_refused(store: OutputsStore) -> None:
    with pytest.raises(StoreError, match="reserves"):
        store.write_run(run_info("r1", AS_OF_1), {"scores": five_customers()["scores"].assign(run_id="x")})
    with pytest.raises(UnknownList):
        store.write_run(run_info("r1", AS_OF_1), {"scores; DROP TABLE runs": five_customers()["scores"]})
    assert store.runs() == []


def test_a_failed_write_leaves_the_previous_run_whole(store: OutputsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    calls = []

    def insert_then_fail(original):
        def insert(self, table, frame, run_id, as_of):
            calls.append(table)
            if len(calls) % 3 == 0:
                raise RuntimeError("disk full")
            return original(self, table, frame, run_id, as_of)
        return insert

    for connection_class in (store_module._DuckDBConnection, store_module._SqlConnection):
        monkeypatch.setattr(connection_class, "insert_df", insert_then_fail(connection_class.insert_df))
    with pytest.raises(RuntimeError, match="disk full"):
        store.write_run(run_info("r2", AS_OF_2), five_customers(spend_bump=1.0))
    with pytest.raises(RuntimeError, match="disk full"):
        store.write_run(run_info("r1", AS_OF_1), five_customers(spend_bump=1.0))

    assert [run.run_id for run in store.runs()] == ["r1"]
    for name, frame in five_customers().items():
        assert_frame_matches(store.read_list(name), frame)


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from datetime import date, datetime, UTC
    import numpy as np, pandas as pd
    from flows import store as store_module
    from flows.store import OutputsStore, RunInfo

    url, mode, n_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "pause":
        # Stop for good in the middle of the transaction, after the first list is inserted.
        for cls in (store_module._DuckDBConnection, store_module._SqlConnection):
            original = cls.insert_df
            def paused(self, *args, _original=original):
                _original(self, *args)
                print("inserted", flush=True)
                time.sleep(600)
            cls.insert_df = paused
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"customer_id": np.arange(n_rows), "tier": rng.choice(["Base", "Gold"], n_rows),
                           "predicted_ltv": rng.random(n_rows), "p_alive": rng.random(n_rows)})
    tiers = scores[["customer_id", "tier"]].assign(rank=np.arange(1, n_rows + 1))
    run = RunInfo("big", date(2026, 11, 16), datetime.now(UTC), "vipcast", "3", 365, n_rows, "d2", "c2")
    print("writing", flush=True)
    OutputsStore(url).write_run(run, {"scores": scores, "tiers": tiers, "rising_stars": tiers.head(10000)})
    print("committed", flush=True)
""")


def kill_writer_mid_write(url: str, mode: str, n_rows: int, wait_for: str, delay: float) -> str:
    """Start a writer of a large run, SIGKILL it once it printed wait_for (plus delay); its stdout."""
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, url, mode, str(n_rows)],
                              stdout=subprocess.PIPE, text=True)
    output = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = writer.stdout.readline()
            output.append(line)
            if line.strip() == wait_for or not line:
                break
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        # What it printed before the kill landed: "committed" there means the kill came too late (it was never
        # read, and a run committed within the delay on a faster machine failed the test as a torn store).
        output.append(writer.stdout.read())
    finally:
        if writer.poll() is None:
            writer.kill()
    return "".join(output)


@pytest.mark.parametrize("mode", ["pause", pytest.param("timed", marks=pytest.mark.slow)])
def test_a_writer_killed_mid_write_leaves_the_previous_run_whole(store: OutputsStore, store_url: str,
                                                                  mode: str) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    if mode == "pause":
        output = kill_writer_mid_write(store_url, "pause", 200_000, wait_for="inserted", delay=0.0)
    else:
        output = kill_writer_mid_write(store_url, "timed", 4_000_000, wait_for="writing", delay=0.25)
    assert "committed" not in output, "the writer finished before it was killed: make the run larger"
    assert "writing" in output

    reopened = OutputsStore(store_url).read_only_view()
    assert [run.run_id for run in reopened.runs()] == ["r1"]
    for name, frame in five_customers().items():
        assert_frame_matches(reopened.read_list(name), frame)
    # No orphan rows of the killed run are left behind, and the store still takes writes.
    assert reopened.customer_history(100).empty
    store.write_run(run_info("r2", AS_OF_2), five_customers(spend_bump=1.0))
    assert [run.run_id for run in store.runs()] == ["r2", "r1"]


# Reads for the app

def test_customer_history_and_rows_match_ids_given_as_text(store: OutputsStore) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    store.write_run(run_info("r2", AS_OF_2), five_customers(spend_bump=1000.0))

    history = store.customer_history("4")
    assert history["run_id"].tolist() == ["r1", "r2"]
    assert history["tier"].tolist() == ["Base", "Base"]
    assert history["rolling_12m_spend"].tolist() == [1900.0, 2900.0]
    assert store.customer_history("404").empty
    assert store.customer_history("not-a-number").empty

    rows = store.customer_rows("4", "r2")
    assert set(rows) == {"scores", "tiers", "rising_stars", "events"}
    assert rows["rising_stars"]["target_tier"] == "Silver"
    assert rows["tiers"]["amount_to_next_tier"] == 100.0
    assert store.customer_rows("404", "r2") == {}


def five_customers_with_text_ids(spend_bump: float = 0.0) -> dict[str, pd.DataFrame]:
    """five_customers with demo- and CDNOW-style text ids, three of which look like the number 4."""
    text_ids = {1: "C0000001", 2: "00004", 3: "4", 4: "C0000004", 5: "04"}
    return {name: frame.assign(customer_id=frame["customer_id"].map(text_ids)) if "customer_id" in frame else frame
            for name, frame in five_customers(spend_bump).items()}


def test_customer_history_and_rows_match_text_ids_exactly(store: OutputsStore) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers_with_text_ids())
    store.write_run(run_info("r2", AS_OF_2), five_customers_with_text_ids(spend_bump=1000.0))

    history = store.customer_history("00004")
    assert history["run_id"].tolist() == ["r1", "r2"]
    assert history["tier"].tolist() == ["Gold", "Gold"]
    assert history["rolling_12m_spend"].tolist() == [6000.0, 7000.0]
    assert store.customer_history("C0000004")["rolling_12m_spend"].tolist() == [1900.0, 2900.0]
    assert store.customer_history(4)["tier"].tolist() == ["Silver", "Silver"]
    assert store.customer_history("0004").empty

    assert set(store.customer_rows("00004", "r2")) == {"scores", "tiers"}
    assert store.customer_rows("C0000004", "r2")["rising_stars"]["target_tier"] == "Silver"
    assert store.customer_rows("4", "r2")["at_risk"]["days_since_last_order"] == 120
    assert store.customer_rows("0004", "r2") == {}
    assert store.read_list("events", customer_id="C0000004")["event"].tolist() == ["new_rising_star"]
    assert store.read_list("events", customer_id="00004").empty


def test_tier_summary_and_movement(store: OutputsStore) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    second = five_customers()
    second["scores"] = second["scores"].assign(tier=["Platinum", "Gold", "Base", "Silver", "Base"])
    second["scores"] = pd.concat([second["scores"], second["scores"].iloc[[4]].assign(customer_id=6)])
    store.write_run(run_info("r2", AS_OF_2), second)

    summary = store.tier_summary("r1").set_index("tier")
    assert summary["customers"].to_dict() == {"Platinum": 1, "Gold": 1, "Silver": 1, "Base": 2}
    assert summary.loc["Base", "predicted_ltv"] == 2548.0
    assert summary.loc["Base", "mean_p_alive"] == pytest.approx(0.575)

    movement = store.tier_movement("r2", "r1")
    moves = {(None if pd.isna(row.from_tier) else row.from_tier, row.to_tier): row.customers
             for row in movement.itertuples()}
    assert moves == {("Platinum", "Platinum"): 1, ("Gold", "Gold"): 1, ("Silver", "Base"): 1,
                     ("Base", "Silver"): 1, ("Base", "Base"): 1, (None, "Base"): 1}


def test_a_session_opens_the_store_once(store: OutputsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    opened = []
    real_connect = store._backend.connect
    monkeypatch.setattr(store._backend, "connect", lambda **kwargs: opened.append(kwargs) or real_connect(**kwargs))
    with store.session():
        assert store.find_run().run_id == "r1"
        assert store.read_list("tiers", customer_id="4")["rank"].tolist() == [4]
        assert len(store.customer_history(4)) == 1
        with store.session():
            store.tier_summary("r1")
    assert opened == [{"write": False}]
    store.runs()
    assert len(opened) == 2


# DuckDB locking and read-only use

def test_read_only_view_never_writes_and_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    missing = OutputsStore(tmp_path / "nothing-yet.duckdb", read_only=True)
    assert missing.runs() == [] and missing.latest_run() is None
    with pytest.raises(NoRunsYet):
        missing.read_list("tiers")
    assert not (tmp_path / "nothing-yet.duckdb").exists()
    with pytest.raises(StoreError, match="read-only"):
        missing.write_run(run_info("r1", AS_OF_1), five_customers())


LOCK_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    connection = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    connection.close()
""")


def test_a_reader_waits_for_a_writer_then_gives_up_clearly(tmp_path: Path) -> None:
    path = tmp_path / "outputs.duckdb"
    OutputsStore(path).write_run(run_info("r1", AS_OF_1), five_customers())

    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    with pytest.raises(StoreBusy, match="locked by another process"):
        OutputsStore(path, read_only=True, lock_timeout=0.3).runs()
    assert time.monotonic() - started < 1.4
    assert [run.run_id for run in OutputsStore(path, read_only=True, lock_timeout=20).runs()] == ["r1"]
    holder.wait(timeout=10)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("mysql://shop:s3cret@db.example/shop", "No module named 'MySQLdb'; install its driver"),
        ("nosuchdb://shop:s3cret@host/db", "Can't load plugin: sqlalchemy.dialects:nosuchdb"),
    ],
)
def test_a_store_url_sqlalchemy_cannot_use_is_named_without_its_password(url: str, reason: str) -> None:
    with pytest.raises(StoreUrlError) as raised:
        OutputsStore(url)
    message = str(raised.value)
    assert reason in message and "s3cret" not in message
    assert message.startswith(f"outputs store URL {url.replace(':s3cret@', ':***@')} cannot be used")


def test_a_store_database_that_cannot_be_opened_is_unreachable_not_internal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/folder/outputs.db"
    with pytest.raises(StoreUnreachable, match=r"cannot connect to the outputs store sqlite:///.*: unable to open database file"):
        OutputsStore(url, read_only=True).runs()
    with pytest.raises(StoreUnreachable):
        OutputsStore(url).write_run(run_info("r1", AS_OF_1), five_customers())


def test_a_damaged_duckdb_store_is_named_as_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store cut short read "attempted to read 262144 bytes" with the hint to free disk space, and the
    app answered every request with a 500 'internal error'."""
    import duckdb

    from flows.store import StoreDamaged, StoreWalDamaged, _DuckDBBackend

    path = tmp_path / "outputs.duckdb"
    OutputsStore(path).write_run(run_info("r1", AS_OF_1), five_customers())
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    for store in (OutputsStore(path, read_only=True), OutputsStore(path)):
        with pytest.raises(StoreDamaged, match=rf"^the outputs store {re.escape(str(path))} is damaged \(.*Could not read"):
            store.runs()

    def wal_failure(self, *, write):
        raise duckdb.IOException(f'IO Error: Failure while replaying WAL file "{self.path}.wal": Corrupt WAL file: entry '
                                  "size exceeded remaining data in file")

    # A SQLite store (outputs.store_url) cut short or overwritten: "database disk image is malformed", naming no file.
    sqlite_path = tmp_path / "outputs.sqlite"
    OutputsStore(f"sqlite:///{sqlite_path}").write_run(run_info("r1", AS_OF_1), five_customers())
    sqlite_path.write_bytes(b"not a database at all " * 300)
    with pytest.raises(StoreDamaged, match=rf"^the outputs store sqlite:///{re.escape(str(sqlite_path))} is damaged \(file is not"):
        OutputsStore(f"sqlite:///{sqlite_path}", read_only=True).runs()

    monkeypatch.setattr(_DuckDBBackend, "_open", wal_failure)
    with pytest.raises(StoreWalDamaged, match=rf"^the outputs store's write-ahead log {re.escape(str(path))}.wal is damaged"):
        OutputsStore(path, read_only=True).runs()


# Exports

def test_export_writes_every_list_as_csv_and_parquet(store: OutputsStore, tmp_path: Path) -> None:
    lists = five_customers()
    store.write_run(run_info("r1", AS_OF_1), lists)
    out_dir = tmp_path / "exports"
    killed_long_ago, in_progress = out_dir / ".vipcast-export-old", out_dir / ".vipcast-export-new"
    killed_long_ago.mkdir(parents=True)
    in_progress.mkdir()
    os.utime(killed_long_ago, (time.time() - 7200, time.time() - 7200))
    written = store.export_run("r1", out_dir, formats=("csv", "parquet"))
    assert not killed_long_ago.exists() and in_progress.exists()
    in_progress.rmdir()

    assert sorted(path.name for path in written) == sorted(
        [f"{name}.{fmt}" for name in lists for fmt in ("csv", "parquet")] + ["run.json"])
    assert sorted(os.listdir(out_dir)) == sorted(path.name for path in written)
    assert_frame_matches(pd.read_csv(out_dir / "rising_stars.csv"), lists["rising_stars"])
    assert_frame_matches(pd.read_parquet(out_dir / "at_risk.parquet"), lists["at_risk"])
    assert json.loads((out_dir / "run.json").read_text())["run_id"] == "r1"
    with pytest.raises(ValueError, match="xlsx"):
        store.export_run("r1", out_dir, formats=("xlsx",))


def test_an_export_leaves_only_its_own_run_s_files(store: OutputsStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    without_economics = {name: frame for name, frame in five_customers(spend_bump=1000.0).items() if name != "economics"}
    store.write_run(run_info("r2", AS_OF_2), without_economics)
    out_dir = tmp_path / "exports"
    store.export_run("r1", out_dir, formats=("csv", "parquet"))
    not_the_exports = ["notes.txt", "state.csv", "scores.xlsx"]
    for name in not_the_exports:
        (out_dir / name).write_text("someone else's")
    real_replace = os.replace
    there_when_run_json_lands = []

    def replace(source, target):
        if Path(target).name == "run.json":
            there_when_run_json_lands.extend(name for name in os.listdir(out_dir) if not name.startswith("."))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    written = store.export_run("r2", out_dir, formats=("parquet",))

    exported = sorted([f"{name}.parquet" for name in without_economics] + ["run.json"])
    assert sorted(path.name for path in written) == exported
    assert sorted(os.listdir(out_dir)) == sorted(exported + not_the_exports)
    assert sorted(there_when_run_json_lands) == sorted(exported + not_the_exports)
    assert json.loads((out_dir / "run.json").read_text())["run_id"] == "r2"
    assert_frame_matches(pd.read_parquet(out_dir / "tiers.parquet"), without_economics["tiers"])


def test_an_interrupted_export_leaves_whole_files(store: OutputsStore, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_run(run_info("r1", AS_OF_1), five_customers())
    store.write_run(run_info("r2", AS_OF_2), five_customers(spend_bump=1000.0))
    out_dir = tmp_path / "exports"
    store.export_run("r1", out_dir)
    replaced = []
    real_replace = os.replace

    def replace_twice_then_die(source, target):
        if len(replaced) == 2:
            raise KeyboardInterrupt
        replaced.append(target)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_twice_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.export_run("r2", out_dir)

    assert len(replaced) == 2
    for name in five_customers():
        exported = pd.read_csv(out_dir / f"{name}.csv")
        whole = [store.read_list(name, run_id=run_id) for run_id in ("r1", "r2")]
        assert any(exported.astype(str).equals(version.astype(str)) for version in
                   (pd.read_csv(io.StringIO(frame.to_csv(index=False))) for frame in whole)), name
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(
        [f"{name}.csv" for name in five_customers()] + ["run.json"])


def test_internal_state_is_stored_but_not_exported(tmp_path):
    import datetime as dt

    import pandas as pd

    from flows.store import OutputsStore, RunInfo

    store = OutputsStore(tmp_path / "outputs.duckdb")
    run = RunInfo("r1", dt.date(2025, 1, 6), dt.datetime(2025, 1, 6, 7, 0), "blend", "m/1", 365, 1, "d", "c")
    state = pd.DataFrame({"customer_id": ["a"], "tier": ["Gold"], "grace_until": [pd.NaT], "is_rising_star": [False], "is_at_risk": [True]})
    tiers = pd.DataFrame({"customer_id": ["a"], "rank": [1], "tier": ["Gold"]})
    store.write_run(run, {"tiers": tiers, "state": state})
    assert store.read_list("state", run_id="r1")["tier"].tolist() == ["Gold"]
    exported = {path.name for path in store.export_run("r1", tmp_path / "exports")}
    assert "tiers.csv" in exported and "state.csv" not in exported


# Million-row fast paths: exports formatted from Arrow, reads ordered client-side. Each must give
# exactly what the plain pandas path gives.

def awkward_lists(n_rows: int = 12_000) -> dict[str, pd.DataFrame]:
    """Lists with every value shape the CSV writer must format as pandas does."""
    rng = np.random.default_rng(5)
    floats = np.concatenate([10.0 ** rng.uniform(-12, 20, n_rows // 2) * rng.choice([-1, 1], n_rows // 2),
                             np.round(rng.random(n_rows - n_rows // 2) * 1e4, rng.integers(0, 3))])
    floats[:12] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e16, 1e-4, 5e-324, 1e9, 9.999e-5, 1.5e-7, 123456789012.5]
    text = rng.choice(["plain", "with,comma", 'a "quote"', "two\nlines", "", " spaced ", "é ü", None,
                       "=1+1", "-5", "+44 20", "@SUM(A1)", "\tlead", '=HYPERLINK("x","y")'], n_rows)
    scores = pd.DataFrame({
        "customer_id": [f"C{k:07d}" if k % 5 else f"={k}" for k in range(n_rows)],
        "spend": floats,
        "threshold": rng.choice([0.0, 2000.0, 5000.0, 1e-5, np.nan, -0.5], n_rows),
        "rank": np.arange(1, n_rows + 1),
        "days_left": pd.array(np.where(rng.random(n_rows) < 0.1, None, rng.integers(0, 400, n_rows)), dtype="Int64"),
        "is_gold": rng.random(n_rows) < 0.5,
        "in_grace": pd.array(np.where(rng.random(n_rows) < 0.1, None, rng.random(n_rows) < 0.5), dtype="boolean"),
        "reason": pd.array(text, dtype="str"),
        "grace_until": (pd.Timestamp("2026-11-09") + pd.to_timedelta(rng.integers(0, 90, n_rows), "D")).where(
            rng.random(n_rows) < 0.9),
        "since": [date(2026, 1 + k % 12, 1) if k % 7 else None for k in range(n_rows)],
    })
    return {
        "scores": scores,
        "tiers": scores[["customer_id", "spend", "threshold", "rank", "is_gold", "grace_until"]],  # nothing to quote
        "events": scores[["reason"]],  # one column: a lone empty field is written ""
        "at_risk": scores.head(500).assign(grace_until=pd.Timestamp("2026-11-09 10:30")),  # a time of day
        "rising_stars": scores.head(500).assign(reason="carriage\rreturn"),  # \r: quoting varies by Python
        "economics": scores.head(0),
    }


def test_csv_export_is_byte_for_byte_what_lists_write(store: OutputsStore, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lists = awkward_lists()
    store.write_run(run_info("r1", AS_OF_1, n_customers=len(lists["scores"])), lists)
    monkeypatch.setattr(store_module, "_CSV_CHUNK_ROWS", 5_000)  # several chunks, the last one short
    formatted = []
    arrow_lines = store_module._csv_lines
    monkeypatch.setattr(store_module, "_csv_lines", lambda rows: formatted.append(rows.num_rows) or arrow_lines(rows))
    store.export_run("r1", tmp_path, formats=("csv", "parquet"))

    for name in lists:
        read = store.read_list(name, run_id="r1")
        assert (tmp_path / f"{name}.csv").read_bytes() == list_csv(read).encode(), name
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{name}.parquet"), read)
    if store._backend.dialect == "duckdb":
        # scores, tiers and events through Arrow; at_risk and rising_stars left to pandas.
        assert sum(formatted) == 3 * len(lists["scores"])


def test_float_cells_are_what_repr_writes() -> None:
    import pyarrow as pa

    rng = np.random.default_rng(8)
    numbers = np.concatenate([10.0 ** rng.uniform(-330, 308, 20_000), 10.0 ** rng.uniform(-9, 17, 300_000),
                              np.round(rng.random(50_000) * 1e5, 2), np.arange(-500.0, 500.0),
                              [np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]])
    numbers *= rng.choice([-1.0, 1.0], len(numbers))
    cells = store_module._csv_floats(pa.array(numbers, from_pandas=False)).to_pylist()
    assert cells == ["" if np.isnan(number) else repr(number) for number in numbers.tolist()]


def test_rows_are_put_in_row_order_when_they_come_back_out_of_order() -> None:
    import pyarrow as pa

    shuffled = pa.table({"row_order": [2, 0, 3, 1], "customer_id": ["c", "a", "d", "b"]})
    assert store_module._in_row_order(shuffled).to_pydict() == {"customer_id": ["a", "b", "c", "d"]}
    in_order = pa.table({"row_order": [0, 1], "customer_id": ["a", "b"]})
    assert store_module._in_row_order(in_order).column_names == ["customer_id"]


def test_columns_converted_for_storage_read_back_as_before(store: OutputsStore) -> None:
    frame = pd.DataFrame({"customer_id": [3, 1, 2], "tier": pd.Categorical(["Gold", "Base", "Gold"]),
                          "note": ["a", 7, None], "spend": [1.5, 2.0, np.nan]}, index=[10, 11, 12])
    store.write_run(run_info("r1", AS_OF_1), {"scores": frame})
    read = store.read_list("scores")
    assert read["tier"].tolist() == ["Gold", "Base", "Gold"] and read["note"].tolist()[:2] == ["a", "7"]
    assert read["customer_id"].tolist() == [3, 1, 2] and pd.isna(read["note"].iloc[2])
    assert read["spend"].tolist()[:2] == [1.5, 2.0] and frame["tier"].dtype == "category"  # input untouched


def test_a_sqlite_store_gives_the_types_duckdb_gives(tmp_path: Path) -> None:
    """SQLite's driver returns BOOLEAN as 0/1 and TIMESTAMP/DATE as text: every outlet (lists, API,
    CSV and Parquet exports) showed in_grace 0/1 instead of True/False."""
    lists = awkward_lists(300)
    lists = {name: lists[name].assign(spend=lists[name]["spend"] + 0.0) for name in ("scores", "tiers")}  # SQLite has no -0.0
    read = {}
    for name, url in (("duckdb", tmp_path / "outputs.duckdb"), ("sqlite", f"sqlite:///{tmp_path / 'outputs.db'}")):
        store = OutputsStore(url)
        store.write_run(run_info("r1", AS_OF_1, n_customers=300), lists)
        read[name] = {list_: store.read_list(list_, run_id="r1") for list_ in lists}
        store.export_run("r1", tmp_path / name, formats=("csv",))
    for list_ in lists:
        pd.testing.assert_frame_equal(read["sqlite"][list_], read["duckdb"][list_], check_dtype=False)
        assert (tmp_path / "sqlite" / f"{list_}.csv").read_bytes() == (tmp_path / "duckdb" / f"{list_}.csv").read_bytes()
    assert read["sqlite"]["tiers"]["is_gold"].dtype == bool
    assert pd.api.types.is_datetime64_any_dtype(read["sqlite"]["tiers"]["grace_until"])


SQLITE_LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    connection.close()
""")


def test_a_sqlite_store_locked_by_another_process_is_busy_not_internal(tmp_path: Path) -> None:
    """A SQLite store held past its wait was "internal error (OperationalError) database is locked" (a 500 in the
    app, which promises 503 "store busy" with Retry-After)."""
    path = tmp_path / "outputs.db"
    OutputsStore(f"sqlite:///{path}").write_run(run_info("r1", AS_OF_1), five_customers())
    holder = subprocess.Popen([sys.executable, "-c", SQLITE_LOCK_HOLDER, str(path), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusy, match=r"^the outputs store sqlite:///.*outputs\.db\?timeout=0\.2 is busy: another process "
                                            r"holds its lock \(database is locked\)$"):
            OutputsStore(f"sqlite:///{path}?timeout=0.2", read_only=True).runs()
    finally:
        holder.wait(timeout=10)
    assert [run.run_id for run in OutputsStore(f"sqlite:///{path}", read_only=True).runs()] == ["r1"]


def test_a_member_only_in_the_tier_state_is_not_a_scored_customer(store: OutputsStore) -> None:
    """A member missing from a run's data is carried in its tier state: the app found them there and showed a
    customer page with no scores ("Top tier: there is no higher tier to reach")."""
    tables = five_customers()
    tables["state"] = pd.DataFrame({"customer_id": [1, 9], "tier": ["Platinum", "Silver"],
                                    "grace_until": pd.to_datetime([None, None]), "is_rising_star": [False, False],
                                    "is_at_risk": [False, False], "last_scored": pd.to_datetime(["2025-06-08", "2025-06-01"])})
    store.write_run(run_info("r1", AS_OF_1), tables)
    assert store.customer_rows(9, "r1") == {}
    assert "state" not in store.customer_rows(1, "r1") and "scores" in store.customer_rows(1, "r1")
    assert store.read_list("state", run_id="r1")["customer_id"].tolist() == [1, 9]
