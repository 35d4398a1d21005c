"""Prefect flows, MLflow registry and the outputs store, end to end (flows/orchestration.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flows import pipeline, tracking
from flows.pipeline import Context


def test_serve_registers_both_schedules(prefect_server, workdir):
    from prefect.client.orchestration import get_client

    from flows.deployments import build_deployments

    ctx = Context.create(workdir)
    scoring, training = build_deployments(ctx, data="demo")
    for deployment in (scoring, training):
        deployment.apply()
    with get_client(sync_client=True) as client:
        weekly = client.read_deployment_by_name("vipcast-score/weekly-scoring")
        monthly = client.read_deployment_by_name("vipcast-train/scheduled-training")
    assert [s.schedule.cron for s in weekly.schedules] == ["0 6 * * 1"]
    assert [s.schedule.cron for s in monthly.schedules] == ["0 3 1 * *"]
    assert weekly.parameters["data"] == "demo" and weekly.parameters["workdir"] == str(ctx.workspace.root)
    # The scheduled scoring run checks its data against today (it cannot see a stopped feed otherwise).
    assert weekly.parameters["scheduled"] is True and "scheduled" not in monthly.parameters


def test_serve_warns_when_data_holds_a_password(monkeypatch, capsys, workdir):
    """Prefect keeps a deployment's parameters in its database and shows them: a URL's password with them."""
    import prefect

    from flows.deployments import serve_deployments

    served = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments, **_: served.extend(deployments))
    ctx = Context.create(workdir)
    serve_deployments(ctx, data="postgres://shop:s3cret@db.example/sales#orders")
    assert len(served) == 2
    assert "warning: --data holds a password, which Prefect stores with the deployments' parameters" in capsys.readouterr().err
    serve_deployments(ctx, data="postgres://shop@db.example/sales#orders")
    assert "password" not in capsys.readouterr().err


def test_scheduled_runs_do_not_import_from_the_folder_serve_started_in(monkeypatch, workdir, tmp_path):
    """`vipcast serve` in a project folder holding models/: every scheduled run failed with "No module named
    'models.pipeline'" (Prefect starts runs as `python -m ...` there, and Python put that folder first)."""
    import os
    import subprocess
    import sys

    import prefect

    from flows.deployments import serve_deployments

    monkeypatch.setattr(prefect, "serve", lambda *deployments, **_: None)
    monkeypatch.setenv("PYTHONSAFEPATH", "")  # restored after the test (serve sets it for the whole process)
    monkeypatch.delenv("PYTHONSAFEPATH")
    serve_deployments(Context.create(workdir), data="demo")
    assert os.environ.get("PYTHONSAFEPATH") == "1"  # what the runner's flow-run processes inherit
    project = tmp_path / "project"
    for package in ("models", "configs"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"raise ImportError('the project's {package} imported')")
    found = subprocess.run([sys.executable, "-c", "import models; print(models.__file__)"],
                           capture_output=True, text=True, cwd=project, timeout=120)
    assert found.returncode == 0 and str(project) not in found.stdout, found.stderr
    # Prefect loads the flows' file with the current folder put first on sys.path (load_script_as_module):
    # the re-test found a project's configs/ failing the flow's load, and its models/ the first task.
    loaded = subprocess.run(
        [sys.executable, "-c", "from prefect.utilities.importtools import load_script_as_module; "
         f"load_script_as_module({str(Path(pipeline.__file__).with_name('orchestration.py'))!r}); "
         "import models.pipeline, configs; print(models.__file__, configs.__file__)"],
        capture_output=True, text=True, cwd=project, timeout=120)
    assert loaded.returncode == 0 and str(project) not in loaded.stdout, loaded.stderr


def test_prefect_yaml_deployments_match_what_serve_registers():
    """prefect.yaml (work pools) starts from base.yaml's schedules and marks the scoring run as scheduled."""
    from pathlib import Path

    import yaml

    from configs import load_config

    deployments = {d["name"]: d for d in yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())["deployments"]}
    schedule = load_config().schedule
    assert deployments["weekly-scoring"]["schedules"][0]["cron"] == schedule.score_cron
    assert deployments["scheduled-training"]["schedules"][0]["cron"] == schedule.train_cron
    assert deployments["weekly-scoring"]["parameters"]["scheduled"] is True


def test_serve_parameters_do_not_depend_on_the_working_directory(prefect_server, workdir, tmp_path, monkeypatch):
    from flows.deployments import build_deployments

    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "orders.parquet").touch()
    (tmp_path / "my.yaml").write_text("dataset: orders\n")
    monkeypatch.chdir(tmp_path)
    ctx = Context.create(workdir, config="my.yaml")
    scoring, _ = build_deployments(ctx, data="shop/orders.parquet", config="my.yaml")
    assert scoring.parameters["data"] == str(tmp_path / "shop" / "orders.parquet")
    assert scoring.parameters["config"] == str(tmp_path / "my.yaml")
    scoring, _ = build_deployments(ctx, data="shop/*.parquet", config="cdnow")
    assert scoring.parameters["data"] == str(tmp_path / "shop" / "*.parquet") and scoring.parameters["config"] == "cdnow"
    for kept in ("cdnow-sample", "sqlite:////abs/shop.db#orders", "postgresql://u@h/db#orders"):
        assert build_deployments(ctx, data=kept)[0].parameters["data"] == kept
    # A relative SQLite file is read from the folder the run starts in: absolute too.
    assert build_deployments(ctx, data="sqlite:///shop.db#orders")[0].parameters["data"] == f"sqlite:///{tmp_path}/shop.db#orders"


def test_train_then_score_flows(prefect_server, workdir, small_transactions):
    from flows.orchestration import score, train

    data = str(small_transactions)
    trained = train(data=data, horizon_days=180, workdir=str(workdir))
    assert trained["promoted"] is True
    # `vipcast train --prefect` prints the same summary as the in-process run; Prefect reports no telemetry.
    assert "promotion: now the champion (no champion yet)" in trained["summary"] and "* champion" in trained["summary"]
    import os

    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    ctx = Context.create(workdir)
    version = tracking.champion_version(ctx.workspace, data)
    assert version is not None and str(version.version) == "1"

    scored = score(data=data, workdir=str(workdir))
    store = pipeline.open_store(ctx)
    run = store.latest_run()
    assert run.run_id == scored["run_id"]
    scores = store.read_list("scores")
    tiers = store.read_list("tiers")
    assert len(scores) == len(tiers) == scored["n_customers"] > 0
    assert scores["predicted_spend"].notna().all() and scores["churn_probability"].between(0, 1).all()

    # Re-running the same as-of date is idempotent: the run is replaced, not duplicated, and the
    # export files are the same bytes (rows came in the engine's grouping order, sums varied with it).
    exported = {path.name: path.read_bytes() for path in ctx.workspace.exports_dir.glob("*.csv")}
    import logging

    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    kept, flow_runs = Kept(), logging.getLogger("prefect.flow_runs")
    flow_runs.addHandler(kept)
    try:
        again = score(data=data, workdir=str(workdir))
    finally:
        flow_runs.removeHandler(kept)
    assert again["run_id"] == scored["run_id"]
    # Its warnings (here: the same rows again, a stopped feed?) are WARNING lines of the flow run's
    # log, not only in its artifact.
    assert any(record.getMessage().startswith("no new data since the stored run") for record in kept.records)
    assert {path.name: path.read_bytes() for path in ctx.workspace.exports_dir.glob("*.csv")} == exported
    assert scores["customer_id"].is_monotonic_increasing
    assert len([r for r in store.runs() if r.run_id == scored["run_id"]]) == 1


def test_worse_model_is_not_promoted(workdir, small_transactions, monkeypatch):
    data = str(small_transactions)
    ctx = Context.create(workdir, horizon_days=180)
    first = pipeline.run_train(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True))
    assert first.promoted

    # A second recipe whose backtest ranks worse (normalized_gini) on the same split.
    worse = Context.create(workdir, horizon_days=180)
    fewer_rounds = worse.config.model.lightgbm.model_copy(update={"n_estimators": 20})
    worse = Context(
        worse.workspace,
        worse.config.model_copy(update={"model": worse.config.model.model_copy(update={"lightgbm": fewer_rounds})}),
    )
    real_backtest = pipeline.backtest_models

    def degraded(ingested, cutoff, settings):
        result = real_backtest(ingested, cutoff, settings)
        if settings["n_estimators"] == 20:
            for metrics in result.metrics.values():
                metrics["normalized_gini"] -= 0.2
        return result

    monkeypatch.setattr(pipeline, "backtest_models", degraded)
    second = pipeline.run_train(worse, data, None, step=pipeline.LocalSteps(6, quiet=True))
    assert not second.promoted
    assert "champion kept" in second.promotion
    assert str(tracking.champion_version(ctx.workspace, data).version) == "1"


def test_train_replaces_a_champion_this_version_cannot_score_with(workdir, small_transactions, monkeypatch):
    """A champion pickled by an older vipcast is refused by `score`; `train` must replace it, not fail on it."""
    import models.pipeline

    data = str(small_transactions)
    ctx = Context.create(workdir, horizon_days=180)
    assert pipeline.run_train(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True)).promoted
    monkeypatch.setattr(models.pipeline, "MODEL_FORMAT", models.pipeline.MODEL_FORMAT + 1)
    with pytest.raises(tracking.OutdatedChampion, match="run `vipcast train` again"):
        tracking.load_champion(ctx.workspace, data)

    second = pipeline.run_train(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True))
    assert second.promoted and "replaces an outdated champion" in second.promotion
    model, version = tracking.load_champion(ctx.workspace, data)
    assert version == second.model_version and model.model_format_ == models.pipeline.MODEL_FORMAT


@pytest.mark.parametrize("damage", ["files deleted", "pickle truncated", "MLmodel emptied", "another object pickled"])
def test_train_replaces_a_champion_whose_files_cannot_be_loaded(workdir, small_transactions, damage):
    """With the champion's artifacts deleted or its pickle truncated, score and train both ended in an
    "internal error" (No such artifact / pickle data was truncated), though the hint said to train again."""
    import shutil

    data = str(small_transactions)
    ctx = Context.create(workdir, horizon_days=180)
    first = pipeline.run_train(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True))
    assert first.promoted
    pickles = sorted(ctx.workspace.root.rglob("python_model.pkl"))
    assert len(pickles) == 1
    if damage == "files deleted":
        shutil.rmtree(pickles[0].parent.parent)
    elif damage == "pickle truncated":
        pickles[0].write_bytes(pickles[0].read_bytes()[: pickles[0].stat().st_size // 2])
    elif damage == "MLmodel emptied":  # MLflow read None and raised AttributeError: "internal error" again
        (pickles[0].parent / "MLmodel").write_text("")
    else:
        import pickle

        pickles[0].write_bytes(pickle.dumps(42))
    shutil.rmtree(ctx.workspace.root / "cache", ignore_errors=True)  # train keeps no copy; a score would
    with pytest.raises(tracking.DamagedChampion, match=rf"^the champion {first.model_version}'s model files cannot be "
                       r"loaded \(\w+: .+\): run `vipcast train --data .+` to register and promote a new one"):
        tracking.load_champion(ctx.workspace, data)

    second = pipeline.run_train(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True))
    assert second.promoted and f"replaces the champion {first.model_version}, whose model files cannot be loaded" in second.promotion
    assert tracking.load_champion(ctx.workspace, data)[1] == second.model_version


def test_a_model_without_the_90_day_window_still_scores(workdir, small_transactions, tmp_path):
    """The segments read spend_90d; scoring builds it even when the model's windows lack it."""
    config = tmp_path / "windows.yaml"
    config.write_text("features:\n  windows_days: [45, 400]\nmodel:\n  horizon_days: 180\n")
    ctx = Context.create(workdir, config)
    data = str(small_transactions)
    assert pipeline.run_train(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True)).promoted
    scored = pipeline.run_score(ctx, data, None, step=pipeline.LocalSteps(6, quiet=True))
    assert scored.n_customers > 0
    store = pipeline.open_store(ctx)
    assert len(store.read_list("scores")) == len(store.read_list("tiers")) == scored.n_customers

    # Scored with the base config's settings: the champion's are used, and the warning saying so is kept in
    # the run's report (it was printed only, so a scheduled run kept no record of it).
    rescored = pipeline.run_score(Context.create(workdir), data, None, step=pipeline.LocalSteps(6, quiet=True))
    (settings,) = [text for text in rescored.warnings if text.startswith("the config's model settings differ")]
    stored = pipeline.open_store(ctx).runs()[0]
    assert stored.run_id == rescored.run_id and settings in stored.report_field("warnings")
    assert settings in json.loads((workdir / "runs" / rescored.run_id / "reconciliation.json").read_text())["warnings"]

    # A weekly file named by its date is another dataset: the refusal names the datasets that have champions.
    with pytest.raises(LookupError, match=r"no champion model for dataset 'shop_20250616' in .* \(it has champions for "
                                          r"'shop': a dataset is named by its file stem, folder or table"):
        tracking.load_champion(ctx.workspace, str(small_transactions.with_name("shop_20250616.parquet")))


def test_input_errors_are_not_retried_and_transient_ones_are(monkeypatch):
    """`score --prefect` on a workspace without a champion retried "no champion" twice, 10 s apart."""
    from types import SimpleNamespace

    from flows.orchestration import worth_retrying
    from flows.store import StoreBusy

    def failed_with(error):
        return SimpleNamespace(data=error)

    assert not worth_retrying(None, None, failed_with(LookupError("no champion model")))
    assert not worth_retrying(None, None, failed_with(ValueError("bad config")))
    assert worth_retrying(None, None, failed_with(StoreBusy("locked")))
    assert worth_retrying(None, None, failed_with(OSError("connection reset")))
    # A SIGTERM that landed in DuckDB's first import: "initialization failed", then "already registered" on
    # each retry, 20 s before the stop was honoured (and the run exited 1 or 2, not 143).
    from flows.cli import Terminated

    interrupted = OSError("Query interrupted")
    interrupted.__context__ = Terminated()
    assert not worth_retrying(None, None, failed_with(interrupted))
    assert not worth_retrying(None, None, failed_with(ImportError("initialization failed")))
    # The CI's slow suite: a SIGTERM inside DuckDB's first query came back as RuntimeError('Query interrupted')
    # without its cause (a task's stored failure), was retried, and the run finished with exit 0.
    # Inside the flow Prefect's SIGTERM handler, not vipcast's, is installed: nothing recorded the stop, and the
    # slow suite saw the step retried and the run exit 0. "Query interrupted" is a signal's, never transient.
    from prefect.exceptions import TerminationSignal

    from flows.cli import stop_in_chain

    assert not worth_retrying(None, None, failed_with(RuntimeError("Query interrupted")))
    by_prefect = RuntimeError("Query interrupted")
    by_prefect.__context__ = TerminationSignal(15)
    assert not worth_retrying(None, None, failed_with(by_prefect))
    assert isinstance(stop_in_chain(by_prefect), Terminated) and isinstance(stop_in_chain(TerminationSignal(15)), Terminated)
    ctrl_c = RuntimeError("Query interrupted")
    ctrl_c.__context__ = KeyboardInterrupt()
    assert isinstance(stop_in_chain(ctrl_c), KeyboardInterrupt)
    assert stop_in_chain(RuntimeError("Conversion Error")) is None
    assert worth_retrying(None, None, failed_with(RuntimeError("IO Error: connection reset")))


def test_a_hopeless_prefect_run_fails_at_once(prefect_server, workdir, small_transactions):
    import time

    from flows.orchestration import IO_RETRY_DELAY_SECONDS, score

    start = time.monotonic()
    with pytest.raises(LookupError, match="no champion model"):
        score(data=str(small_transactions), workdir=str(workdir), engine="duckdb")
    assert time.monotonic() - start < IO_RETRY_DELAY_SECONDS


def test_cli_prefect_runs_log_failures_without_tracebacks():
    import logging

    from flows.orchestration import console_without_tracebacks

    class Keep(logging.Handler):
        records: list = []

        def emit(self, record):
            self.records.append(record)

    logger = logging.getLogger("prefect.flow_runs")
    keep = Keep()
    logger.addHandler(keep)
    console_without_tracebacks()
    try:
        raise LookupError("no champion model")
    except LookupError:
        logger.error("Encountered exception during execution", exc_info=True)
    finally:
        logger.removeHandler(keep)
        for name in ("prefect.flow_runs", "prefect.task_runs"):  # for this test only
            logging.getLogger(name).filters.clear()
    (record,) = keep.records
    assert record.exc_info is None and record.getMessage() == "Encountered exception during execution"


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "code", "line"), [
    ("sigterm", 143, "terminated"),
    # Ctrl-C, `timeout` and killpg signal the whole group: the server died first, and the flow's client
    # retried the dead API for ~75 s, then exited 1 ("internal error (ConnectError)") after a SIGTERM.
    ("group-sigterm", 143, "terminated"),
    ("group-sigint", 130, "interrupted"),
    # Killed outright: nothing unwinds, the server ends with its parent.
    ("sigkill", -9, None),
])
def test_a_stopped_prefect_run_stops_its_temporary_server(workdir, small_transactions, tmp_path, stop, code, line):
    """A `--prefect` run stopped by SIGTERM left its temporary Prefect server running with no parent."""
    import os
    import signal
    import subprocess
    import time

    import psutil

    vipcast = Path(sys.executable).parent / "vipcast"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    log = tmp_path / "train.log"
    with log.open("w") as stream:
        run = subprocess.Popen([str(vipcast), "train", "--data", str(small_transactions), "--workdir", str(workdir),
                                "--prefect"], stderr=subprocess.STDOUT, stdout=stream, env=environment,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while "Beginning flow run" not in log.read_text() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert run.poll() is None, log.read_text()
        children = psutil.Process(run.pid).children(recursive=True)
        assert any("prefect" in " ".join(child.cmdline()) for child in children), "no temporary server started"
        sent = time.monotonic()
        if stop.startswith("group-"):
            os.killpg(run.pid, signal.SIGTERM if stop == "group-sigterm" else signal.SIGINT)
        else:
            run.send_signal(signal.SIGTERM if stop == "sigterm" else signal.SIGKILL)
        assert run.wait(timeout=60) == code, log.read_text()
        assert time.monotonic() - sent < 45, log.read_text()  # the dead API was retried for ~75 s
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [child.cmdline() for child in alive]
        if line is not None:
            assert line in log.read_text().splitlines(), log.read_text()
            assert "internal error" not in log.read_text(), log.read_text()
    finally:
        if run.poll() is None:
            run.kill()


def test_re_scoring_a_date_warns_of_later_runs_only_when_the_tier_state_changed(workdir, small_transactions, tmp_path):
    """Re-scoring a week with the same data told the user to re-score every later week: those were
    scored from this week's stored run, which the re-run reproduced exactly."""
    from datetime import date

    import pandas as pd

    data = tmp_path / "shop.parquet"
    transactions = pd.read_parquet(small_transactions)
    transactions.to_parquet(data, index=False)
    ctx = Context.create(workdir, horizon_days=180)
    assert pipeline.run_train(ctx, str(data), None, step=pipeline.LocalSteps(6, quiet=True)).promoted

    summaries = []

    def backfill_lines(as_of: date) -> list[str]:
        summaries.append(pipeline.run_score(ctx, str(data), as_of, step=pipeline.LocalSteps(6, quiet=True)))
        return [line for line in summaries[-1].warnings if "later dates" in line]

    weeks = [date(2025, 12, 1), date(2025, 12, 8), date(2025, 12, 15)]
    assert backfill_lines(weeks[0]) == [] and backfill_lines(weeks[2]) == []
    assert f"outputs: {ctx.workspace.exports_dir}," in str(summaries[-1]) and "still the latest" not in str(summaries[-1])
    # A missed week scored after the next one: the later run did not see it.
    (missed,) = backfill_lines(weeks[1])
    assert "later dates (2025-12-15) scored without this one" in missed
    # The summary listed the exports as this run's outputs; they still hold the latest run.
    assert (f"outputs: {ctx.workspace.exports_dir} (not replaced: this dataset's latest run is as of 2025-12-15; this run is "
            "in the store)") in str(summaries[-1])
    assert json.loads((ctx.workspace.exports_dir / "run.json").read_text())["as_of"] == "2025-12-15"
    pipeline.run_score(ctx, str(data), weeks[2], step=pipeline.LocalSteps(6, quiet=True))  # now in date order
    assert backfill_lines(weeks[1]) == []  # the same data again: the later run's history is this run's
    # A corrected extract that moves one customer's tier: the later run was scored from the old state.
    biggest = transactions.groupby("customer_id").amount.sum().idxmax()
    corrected = transactions[~((transactions.customer_id == biggest) & (transactions.order_ts >= "2025-01-01"))]
    corrected.to_parquet(data, index=False)
    (changed,) = backfill_lines(weeks[1])
    assert changed.startswith("this run replaced the stored run of 2025-12-08 with another tier state; the stored "
                              "runs of later dates (2025-12-15) were scored from the old one")


def test_a_dotted_dataset_name_scores_and_a_backfill_leaves_another_shops_exports(workdir, small_transactions, tmp_path):
    """`shop.v2.parquet` (dataset shop.v2) failed its score after storing the run ("list index out of range": named
    again, shop.v2 became shop) and `lists --data shop.v2` found no run; a backfill of one shop replaced the exports
    that held another shop's latest run."""
    import shutil
    from datetime import date

    import pandas as pd

    from flows.store import run_dataset

    ctx = Context.create(workdir, horizon_days=180)
    dotted, other = tmp_path / "shop.v2.parquet", tmp_path / "other.parquet"
    shutil.copy(small_transactions, dotted)
    pd.read_parquet(small_transactions).assign(customer_id=lambda t: "X" + t["customer_id"].astype(str)).to_parquet(other, index=False)
    for source in (dotted, other):
        assert pipeline.run_train(ctx, str(source), None, step=pipeline.LocalSteps(6, quiet=True)).promoted
    pipeline.run_score(ctx, str(dotted), date(2025, 12, 8), step=pipeline.LocalSteps(6, quiet=True))
    frame, run = pipeline.list_and_run(ctx, "tiers", data="shop.v2")
    assert run_dataset(run) == "shop.v2" and run.as_of == date(2025, 12, 8) and len(frame)
    pipeline.run_score(ctx, str(other), date(2025, 12, 8), step=pipeline.LocalSteps(6, quiet=True))
    exported = (ctx.workspace.exports_dir / "run.json").read_text()
    summary = pipeline.run_score(ctx, str(dotted), date(2025, 12, 1), step=pipeline.LocalSteps(6, quiet=True))  # a backfill
    assert (ctx.workspace.exports_dir / "run.json").read_text() == exported  # still the other shop's latest run
    assert "not replaced: this dataset's latest run is as of 2025-12-08" in str(summary)
    assert [found.as_of for found in pipeline.dataset_runs(pipeline.open_store(ctx), "shop.v2")] == [date(2025, 12, 8), date(2025, 12, 1)]


def test_a_relative_sqlite_source_of_a_deployment_is_made_absolute(tmp_path, monkeypatch):
    """`vipcast serve --data sqlite:///shop.db#orders` kept the relative URL: a scheduled run started in another
    folder read another (or no) shop.db, while file paths were made absolute."""
    from flows.deployments import absolute_source

    monkeypatch.chdir(tmp_path)
    assert absolute_source("sqlite:///shop.db#orders") == f"sqlite:///{tmp_path}/shop.db#orders"
    assert absolute_source("sqlite:///data/shop.db") == f"sqlite:///{tmp_path}/data/shop.db"
    for unchanged in ("sqlite:////abs/shop.db#orders", "postgresql://u@h/db#orders", "sqlite:///:memory:#t", "cdnow"):
        assert absolute_source(unchanged) == unchanged
