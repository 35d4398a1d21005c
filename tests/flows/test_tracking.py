"""The promotion rule and registry names (flows/tracking.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.tracking import dataset_slug, decide_promotion, registered_model_name


CHAMPION = {"normalized_gini": 0.70, "decile_mape": 0.20, "total_error": -0.05, "churn_auc": 0.75, "mae": 30.0}


def test_first_model_is_promoted():
    assert decide_promotion({"normalized_gini": 0.1}, None).promoted


def test_no_worse_on_every_promotion_metric_is_promoted():
    assert decide_promotion(dict(CHAMPION), CHAMPION).promoted
    better = decide_promotion({**CHAMPION, "normalized_gini": 0.71, "total_error": 0.04, "mae": 99.0}, CHAMPION)
    assert better.promoted  # |total_error| 0.04 <= 0.05; mae is not a promotion metric
    assert "no worse than the champion" in better.reason and "normalized_gini 0.7100 vs 0.7000" in better.reason


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"normalized_gini": 0.69}, "normalized_gini"),
        # A better ranking does not buy worse calibration (a heavily penalised BG/NBD did just that).
        ({"normalized_gini": 0.7133, "decile_mape": 0.414}, "decile_mape"),
        ({"total_error": 0.06}, "|total_error|"),
        ({"churn_auc": 0.74}, "churn_auc"),
    ],
)
def test_worse_on_any_promotion_metric_keeps_the_champion(change, named):
    worse = decide_promotion({**CHAMPION, **change}, CHAMPION)
    assert not worse.promoted
    assert f"worse than the champion on {named} on the same backtest split" in worse.reason
    assert worse.reason.endswith("champion kept")


def test_registry_names_from_sources():
    assert registered_model_name("cdnow") == "vipcast-cdnow"
    assert dataset_slug("/data/shop/orders_2024.parquet") == "orders_2024"
    assert dataset_slug("postgres://u@h/db#sales.orders") == "sales.orders"
    assert dataset_slug("/data/parts/*") == "parts"


def test_champion_is_cached_until_the_registry_changes(tmp_path, monkeypatch):
    """The weekly run skips MLflow while the registry is unchanged, and never serves a stale champion."""
    import mlflow

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path)

    def register(model):
        data_info = {"digest": f"d{model['weights']}", "rows_used": 100 * model["weights"]}
        logged = tracking.log_training(workspace, "shop", model, params={}, backtest=None, data_info=data_info, figures={})
        tracking.set_champion(workspace, logged, tracking.Promotion(True, "test"))
        return logged

    assert tracking.champion_training_data(workspace, "shop") == {}
    register({"weights": 1})
    assert tracking.load_champion(workspace, "shop") == ({"weights": 1}, "vipcast-shop/1")
    assert tracking.champion_training_data(workspace, "shop") == {"digest": "d1", "rows_used": 100}

    def no_mlflow(_workspace):
        raise AssertionError("MLflow was used although the registry did not change")

    with monkeypatch.context() as patched:
        patched.setattr(tracking, "_mlflow", no_mlflow)
        assert tracking.load_champion(workspace, "shop") == ({"weights": 1}, "vipcast-shop/1")

    register({"weights": 2})
    assert tracking.load_champion(workspace, "shop") == ({"weights": 2}, "vipcast-shop/2")
    # The alias moved back by hand (MLflow UI or client): the next load follows the registry.
    mlflow.MlflowClient(workspace.tracking_uri).set_registered_model_alias("vipcast-shop", tracking.CHAMPION_ALIAS, "1")
    assert tracking.load_champion(workspace, "shop") == ({"weights": 1}, "vipcast-shop/1")


def test_the_champion_uri_resolves_in_the_workspace_registry_after_a_cached_load(tmp_path, monkeypatch):
    """Spark scoring failed on every weekly run after the first: the champion came from the cache,
    MLflow was never pointed at the workspace, and spark_udf looked in ./mlflow.db."""
    import mlflow

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path / "ws")
    logged = tracking.log_training(workspace, "shop", {"weights": 1}, params={}, backtest=None, data_info={}, figures={})
    tracking.set_champion(workspace, logged, tracking.Promotion(True, "test"))
    tracking.load_champion(workspace, "shop")  # fills the cache
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # a new process: MLflow's default store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # (set_tracking_uri exports it)
    assert tracking.load_champion(workspace, "shop") == ({"weights": 1}, "vipcast-shop/1")  # from the cache
    uri = tracking.champion_model_uri(workspace, "shop")
    assert uri == "models:/vipcast-shop@champion"
    assert mlflow.pyfunc.load_model(uri).unwrap_python_model().model == {"weights": 1}
    assert not (tmp_path / "elsewhere.db").exists()


def test_a_broken_champion_cache_falls_back_to_the_registry(tmp_path, monkeypatch):
    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path)
    logged = tracking.log_training(workspace, "shop", {"weights": 3}, params={}, backtest=None, data_info={}, figures={})
    tracking.set_champion(workspace, logged, tracking.Promotion(True, "test"))
    tracking.load_champion(workspace, "shop")
    (cache,) = (tmp_path / "cache").glob("*.champion.pkl")
    cache.write_bytes(b"not a pickle")
    assert tracking.load_champion(workspace, "shop") == ({"weights": 3}, "vipcast-shop/1")


def test_a_champion_from_an_older_model_format_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    from flows import tracking
    from flows.workspace import Workspace
    from models.pipeline import MODEL_FORMAT, CustomerValueModel

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path)
    old = CustomerValueModel(horizon_days=90)  # as pickled by code before the format was recorded
    logged = tracking.log_training(workspace, "shop", old, params={}, backtest=None, data_info={}, figures={})
    tracking.set_champion(workspace, logged, tracking.Promotion(True, "test"))
    for _ in range(2):  # from the registry, then from the workspace cache
        with pytest.raises(LookupError, match=f"model format 1, this one reads {MODEL_FORMAT}.*vipcast train"):
            tracking.load_champion(workspace, "shop")
    current = CustomerValueModel(horizon_days=90)
    current.model_format_ = MODEL_FORMAT
    assert tracking.check_model_format(current, "vipcast-shop/2") == (current, "vipcast-shop/2")


@pytest.mark.parametrize("name", ["ws?1", "ws#1", "ws%201"])
def test_a_workspace_path_with_url_syntax_is_refused_before_mlflow_writes_elsewhere(tmp_path, name):
    from flows.workspace import Workspace

    with pytest.raises(ValueError, match="MLflow's sqlite and file URIs"):
        Workspace.resolve(tmp_path / name)
    assert not (tmp_path / name).exists()
    assert Workspace.resolve(tmp_path / "with space").root.is_dir()


def test_registering_prints_none_of_mlflows_routine_remarks(tmp_path, monkeypatch, capfd):
    """A fresh workspace's first registration wrote MLflow's database set-up, pickling, signature and
    pip remarks and its "Successfully registered" lines into the middle of the step lines."""
    import logging

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path)
    logged = tracking.log_training(workspace, "shop", {"weights": 1}, params={}, backtest=None, data_info={}, figures={})
    assert logged.version == "1"
    out, err = capfd.readouterr()
    for remark in ("database tables", "python_model", "signature", "pip version", "Successfully registered", "Created version"):
        assert remark not in out + err
    # Other MLflow warnings still reach the user.
    logging.getLogger("mlflow.pyfunc").warning("something else went wrong")
    assert "something else went wrong" in "".join(capfd.readouterr())
    # matplotlib's remarks about an unwritable HOME broke the "[3/6] drawing the backtest plots" line.
    matplotlib_log = logging.getLogger("matplotlib")

    def passes(message: str) -> bool:
        return matplotlib_log.filter(matplotlib_log.makeRecord("matplotlib", logging.WARNING, "x", 1, message, (), None))

    assert not passes("Matplotlib created a temporary cache directory at /tmp/matplotlib-x because ...")
    assert not passes("mkdir -p failed for path /home/x/.config/matplotlib: [Errno 20] Not a directory")
    assert passes("another matplotlib warning")


def test_non_ascii_file_names_get_names_of_their_own():
    """売上.parquet and 注文.parquet were both 'data': one champion, one run id, one tier history."""
    sales, orders = dataset_slug("data/売上.parquet"), dataset_slug("data/注文.parquet")
    assert sales != orders and sales.startswith("data-") and orders.startswith("data-")
    assert dataset_slug("/x/売上.parquet") == sales  # the name, not the folder
    assert dataset_slug("shop_ü.csv").startswith("shop_-") and dataset_slug("my shop.csv") == "my-shop"
    # Case and Unicode normal form do not make another dataset (ASCII names were case-folded already);
    # names in lower case and NFC keep the digest they had.
    import unicodedata

    assert dataset_slug("up/Ordérs.csv") == dataset_slug("ordérs.csv") == dataset_slug(unicodedata.normalize("NFD", "ordérs.csv"))
    assert dataset_slug("ordérs.csv") == "ord-rs-2ed482d2" and sales == "data-443fb948"


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("shopA/*.parquet", "shopa"), ("/srv/shopB/**/*.csv", "shopb"), ("data/parts/*.parquet", "parts"),
        ("data/parts", "parts"), ("/data/parts/*", "parts"), ("exports/*/orders.parquet", "orders"),
        ("exports/2025-*/orders.csv", "orders"), ("shop_*.parquet", "shop"), ("orders_*.csv", "orders"),
        ("shop[12].csv", "shop12"), ("orders.csv", "orders"), ("sqlite:///x.db#orders", "orders"), ("cdnow-sample", "cdnow-sample"),
        # The current folder, however it is written (it was '.', 'data' and its name).
        (".", "shopc"), ("./", "shopc"), ("*.csv", "shopc"), ("./*.csv", "shopc"), ("../shopC", "shopc"),
    ],
)
def test_a_glob_is_named_by_its_folder_or_fixed_file_name(source, name, tmp_path, monkeypatch):
    """Every glob was named "data": two shops' globs shared one champion and one tier history, and a
    folder given as a glob was another dataset than the same folder given as a folder."""
    (tmp_path / "shopC").mkdir()
    monkeypatch.chdir(tmp_path / "shopC")
    assert dataset_slug(source) == name


def test_a_training_run_records_what_reproduces_it(tmp_path, monkeypatch):
    """The whole config (not cut at 500 characters), credentials masked, the code version and pinned requirements."""
    import json
    from importlib.metadata import version

    import mlflow

    from configs.loader import load_config
    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path)
    config = load_config(overrides={
        "outputs": {"store_url": "postgresql+psycopg://shop:hun/ter2@db.example/marketing?sslpassword=ssl2&sslmode=require"},
        "engine": {"spark_conf": {"spark.hadoop.fs.s3a.secret.key": "s3cr3t", "spark.sql.shuffle.partitions": "8",
                                  "spark.redis.auth": "r3d1s", "spark.jdbc.url": "jdbc:postgresql://h/db?user=a&password=jdbcpw",
                                  "spark.hadoop.fs.s3a.bucket.my bucket@x.endpoint": "v",
                                  # A password inside an ordinary key's value was logged as written.
                                  "spark.driver.extraJavaOptions": "-Djavax.net.ssl.trustStorePassword=tsPW7 -Xmx2g"}},
    }).model_dump(mode="json")
    assert len(json.dumps(config)) > 500
    logged = tracking.log_training(
        workspace, "postgres://shop:hun/ter2@db.example/sales#orders", {"weights": 1},
        params={"windows_days": (30, 90), "n_estimators": None, "as_of": "2024-06-30"},
        backtest=None, data_info={}, figures={}, config=config,
    )
    run = mlflow.MlflowClient(workspace.tracking_uri).get_run(logged.run_id)
    params, tags = run.data.params, run.data.tags
    assert params["windows_days"] == "[30, 90]" and params["n_estimators"] == "null" and params["as_of"] == "2024-06-30"
    assert params["config.segments.tiers.gold"] == "5000.0" and params["config.model.horizon_days"] == "365"
    assert params["config.engine.spark_conf.spark.sql.shuffle.partitions"] == "8"
    assert params["config.engine.spark_conf.spark.hadoop.fs.s3a.secret.key"] == "***"
    assert params["config.outputs.store_url"] == "postgresql+psycopg://shop:***@db.example/marketing?sslpassword=***&sslmode=require"
    assert params["config.engine.spark_conf.spark.redis.auth"] == "***"
    assert params["config.engine.spark_conf.spark.jdbc.url"] == "jdbc:postgresql://h/db?user=a&password=***"
    assert params["config.engine.spark_conf.spark.driver.extraJavaOptions"] == "-Djavax.net.ssl.trustStorePassword=*** -Xmx2g"
    assert params["config.engine.spark_conf.spark.hadoop.fs.s3a.bucket.my bucket_x.endpoint"] == "v"  # '@' is no MLflow name
    logged_config = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json")
    assert logged_config["model"] == config["model"]
    assert tags["vipcast.dataset"] == "postgres://shop:***@db.example/sales#orders"  # the tag held the password
    assert not any(secret in json.dumps(logged_config) + json.dumps(params) + json.dumps(tags)
                   for secret in ("hun/ter2", "ssl2", "r3d1s", "jdbcpw", "s3cr3t", "tsPW7"))
    assert tags["vipcast.version"] == version("vipcast")
    requirements = (Path(mlflow.artifacts.download_artifacts(f"models:/vipcast-orders/{logged.version}", dst_path=str(tmp_path / "m")))
                    / "requirements.txt").read_text()
    assert f"lightgbm=={version('lightgbm')}" in requirements and f"pandas=={version('pandas')}" in requirements


def test_a_half_built_mlflow_database_is_built_again_and_a_moved_workspace_finds_its_artifacts(tmp_path, monkeypatch, capsys):
    """A first `train` stopped while MLflow built its schema (a timeout, a full disk) left a file every
    later run failed on ("table spans already exists"); a moved workspace failed with "No such
    artifact", and a copied one wrote its models into the original."""
    import shutil
    import sqlite3

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path / "ws", create=True)
    database = workspace.root / "mlflow.db"
    with sqlite3.connect(database) as half_built:  # a few of MLflow's tables, no migration recorded
        half_built.execute("create table experiments (experiment_id integer, name text)")
        half_built.execute("create table spans (trace_id text)")
    assert not tracking.schema_complete(database) and not tracking.holds_records(database)
    mlflow = tracking._mlflow(workspace)
    assert tracking.schema_complete(database)
    tracking._use_experiment(mlflow, workspace, "shop")
    (workspace.root / "mlartifacts" / "shop").mkdir(parents=True)
    assert tracking.holds_records(database)
    assert [p.name for p in workspace.root.iterdir() if p.name.startswith(".mlflow")] == []  # no temporary left

    shutil.copytree(workspace.root, tmp_path / "copy")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a new process: MLflow set it to the first workspace's
    copy = Workspace.resolve(tmp_path / "copy", create=False)
    mlflow = tracking._mlflow(copy)
    assert mlflow.get_experiment_by_name(tracking.experiment_name("shop")).artifact_location == f"{copy.artifact_location}/shop"
    assert f"note: this workspace was moved or copied from {workspace.root}" in capsys.readouterr().err
    # The original keeps its own paths; a database with records is never rebuilt.
    with sqlite3.connect(database) as original:
        assert original.execute("select artifact_location from experiments where name = 'vipcast/shop'").fetchone()[0] == (
            f"{workspace.artifact_location}/shop")


def test_a_damaged_mlflow_database_is_named(tmp_path, monkeypatch):
    """A truncated mlflow.db printed "database disk image is malformed", naming no file, with a hint to restore
    outputs.duckdb or start over (which loses the tier history; moving mlflow.db aside and training does not)."""
    import sqlite3

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path / "ws", create=True)
    tracking._use_experiment(tracking._mlflow(workspace), workspace, "shop")
    database = workspace.root / "mlflow.db"
    with sqlite3.connect(database) as filled:  # pages enough that a cut leaves the header's page count wrong
        filled.execute("create table padding (x text)")
        filled.executemany("insert into padding values (?)", [("x" * 1000,)] * 400)
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 3])
    with pytest.raises(tracking.DamagedRegistry, match=rf"^the model registry {re.escape(str(database))} is damaged \("):
        tracking.prepare_tracking_database(workspace)
    database.write_bytes(b"not a database at all " * 300)
    with pytest.raises(tracking.DamagedRegistry, match=r"is damaged \(file is not a database\)"):
        tracking.prepare_tracking_database(workspace)


def test_an_unreachable_tracking_server_is_one_line_at_once(monkeypatch):
    """`score` with MLFLOW_TRACKING_URI at a server that is down sat at 'loading the champion' for minutes."""
    import socket

    from flows import tracking

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(tracking.TrackingUnreachable, match=rf"MLFLOW_TRACKING_URI=http://127.0.0.1:{port}: nothing answers at "
                                                           rf"127.0.0.1:{port}"):
        tracking.check_tracking_server(f"http://127.0.0.1:{port}")
    tracking.check_tracking_server("sqlite:///x.db")  # files and databases are not servers to probe



def test_a_tracking_uri_that_answers_but_is_not_mlflow_is_one_line():
    """A web server at MLFLOW_TRACKING_URI (a wrong port) made `score` say "no champion: run train", and
    `train` then failed with 15 lines of HTML."""
    import http.server
    import threading

    from flows import tracking

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/nowhere"
        with pytest.raises(tracking.TrackingUnreachable, match=r"does not answer as an MLflow tracking server \(GET /health: HTTP 404"):
            tracking.check_tracking_server(uri)
    finally:
        server.shutdown()


def test_a_locked_registry_is_busy_never_rebuilt(tmp_path, monkeypatch):
    """A score started while mlflow.db stayed locked read the lock as a half-built schema holding nothing and
    replaced the registry with an empty one (every champion lost); a locked alias lookup read as "no champion yet"."""
    import sqlite3
    import subprocess
    import sys

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking, "REGISTRY_LOCK_WAIT", 0.2)
    workspace = Workspace.resolve(tmp_path / "ws", create=True)
    tracking._use_experiment(tracking._mlflow(workspace), workspace, "shop")
    database = workspace.root / "mlflow.db"
    before = database.read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True)\n"
         "time.sleep(3)", str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(tracking.RegistryBusy, match=rf"^the model registry {re.escape(str(database))} is busy: another "
                                                        r"process holds its lock \(database is locked\); nothing was changed$"):
            tracking.prepare_tracking_database(workspace)
    finally:
        holder.wait(timeout=10)
    assert database.read_bytes() == before
    with sqlite3.connect(database) as registry:
        assert registry.execute("select count(*) from experiments where name = 'vipcast/shop'").fetchone()[0] == 1
    assert tracking.champion_version(workspace, "shop") is None  # no such model: None, as before


def test_an_alias_lookup_failing_otherwise_than_not_found_is_raised(tmp_path, monkeypatch):
    import mlflow

    from flows import tracking
    from flows.workspace import Workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = Workspace.resolve(tmp_path / "ws", create=True)

    def locked(self, name, alias):
        raise mlflow.exceptions.MlflowException("(sqlite3.OperationalError) database is locked", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(mlflow.MlflowClient, "get_model_version_by_alias", locked)
    with pytest.raises(mlflow.exceptions.MlflowException, match="database is locked"):
        tracking.champion_version(workspace, "shop")


def test_a_database_source_is_named_by_its_table_and_never_by_its_password(tmp_path, monkeypatch):
    """`--data postgresql://bob:s3cret@host/db` with source.table in the config named the registered model, the
    experiment, the artifact folder and the champion cache `...-bob-s3cret-...`, while the outputs store named the
    run's dataset by the table; `sqlite:///shop.db` and `sqlite:///shop.db#orders` were two datasets."""
    import sqlite3

    from flows import pipeline
    from flows.pipeline import Context

    assert "s3cret" not in dataset_slug("postgresql://bob:s3cret@127.0.0.1:55432/postgres")
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as shop:
        shop.execute("create table orders (customer_id text, order_ts text, amount real)")
    config = tmp_path / "table.yaml"
    config.write_text("source:\n  table: orders\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ctx = Context.create(tmp_path / "ws", config)
    named = pipeline.check_request(ctx, f"sqlite:///{database}", None, "train")
    assert named == f"sqlite:///{database}#orders"
    assert dataset_slug(named) == dataset_slug(f"sqlite:///{database}#orders") == "orders"
    assert pipeline.check_request(ctx, f"sqlite:///{database}#orders", None, "train") == f"sqlite:///{database}#orders"


def test_experiments_on_a_tracking_server_keep_its_artifact_store(tmp_path, monkeypatch):
    """With MLFLOW_TRACKING_URI=http://..., experiments were created with artifact_location file://<workdir>/mlartifacts:
    models stayed on the training machine and another machine's score could not load the champion."""
    from types import SimpleNamespace

    from flows import tracking
    from flows.workspace import Workspace

    created = {}
    fake = SimpleNamespace(get_experiment_by_name=lambda name: None, set_experiment=lambda experiment_id: None,
                           create_experiment=lambda name, artifact_location: created.setdefault(name, artifact_location) and "1" or "1")
    workspace = Workspace.resolve(tmp_path / "ws", create=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    tracking._use_experiment(fake, workspace, "shop")
    assert created == {"vipcast/shop": None}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")  # a local store: the workspace's folder
    created.clear()
    tracking._use_experiment(fake, workspace, "shop")
    assert created == {"vipcast/shop": f"{workspace.artifact_location}/shop"}


def test_mlflows_record_of_a_locked_registry_is_not_printed_over_the_one_line(caplog):
    """A registry locked during train's logging step printed MLflow's 60-line SQLAlchemy error record (SQL and
    traceback) before vipcast's "the model registry ... is busy"."""
    import logging

    from flows import tracking

    tracking.quiet_routine_mlflow_logs()
    logger = logging.getLogger("mlflow.store.db.utils")
    with caplog.at_level(logging.ERROR, logger="mlflow.store.db.utils"):
        logger.error("SQLAlchemy database error. The following exception is caught.\n(sqlite3.OperationalError) database is locked")
        logger.error("SQLAlchemy database error. The following exception is caught.\n(sqlite3.OperationalError) disk I/O error")
    assert [record.getMessage().splitlines()[-1] for record in caplog.records] == ["(sqlite3.OperationalError) disk I/O error"]
