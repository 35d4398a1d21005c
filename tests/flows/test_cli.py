"""The command line: every command listed, one-line errors with hints (flows/cli.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest import DateError, IngestError

COMMANDS = ("demo", "generate", "features", "train", "score", "backtest", "lists", "serve", "app")


def vipcast(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed entry point as a user would (errors handled by main(), not by typer)."""
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_workdir_and_config(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--workdir" in result.output and "--config" in result.output


def test_bad_date_is_a_usage_error():
    result = vipcast("features", "--data", "cdnow", "--as-of", "1997-13-01")
    assert result.returncode == 2
    assert "'1997-13-01' is not a calendar date (month must be in 1..12)" in result.stderr
    result = vipcast("features", "--data", "cdnow", "--as-of", "30/06/1997")
    assert result.returncode == 2
    assert "is not a date in YYYY-MM-DD form" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("score", "--horizon-days", "0"), "Invalid value for '--horizon-days'"),
        (("train", "--horizon-days", "3650000"), "Invalid value for '--horizon-days'"),  # was an internal OverflowError
        (("lists", "tiers", "--top", "0"), "Invalid value for '--top'"),
        (("lists", "tiers", "--top", "99999999999999999999"), "Invalid value for '--top'"),
        (("score", "--as-of", "2025-02-29"), "'2025-02-29' is not a calendar date (day is out of range for month)"),
        # Python's fromisoformat alone also read 20250630, which the API and pages refused: one form everywhere.
        (("score", "--as-of", "20250630"), "'20250630' is not a date in YYYY-MM-DD form"),
        (("lists", "foo"), "'foo' is not one of"),
        (("lists", "at-risk", "--format", "json", "--out", "y.csv"), "json does not match the --out file y.csv"),
        # CSV text went into rs.xlsx, exit 0: a file Excel refuses to open.
        (("lists", "rising-stars", "--out", "rs.xlsx"), "rs.xlsx: lists are written as csv, json or parquet"),
        (("generate", "--customers", "10", "--seed", "-1", "--out", "x.parquet"), "Invalid value for '--seed'"),
        # Parquet bytes in orders.csv, which vipcast then read as "UTF-16 text"; 2**66 was an OverflowError.
        (("generate", "--customers", "10", "--out", "orders.csv"), "Invalid value for --out: orders.csv is not a .parquet"),
        (("generate", "--customers", "99999999999999999999"), "Invalid value for '--customers'"),
        (("generate", "--customers", "10", "--config", "nonexist.yaml"), "nonexist.yaml"),
        (("backtest", "--cutoff", "2025-06-30", "--predictions", "preds.csv"),
         "Invalid value for --predictions: preds.csv is not a .parquet file name"),
        # `--data "$ORDERS"` with the variable unset ran on the config's dataset, the demo data, exit 0.
        (("features", "--data", "", "--out", "f.parquet"), "Invalid value for '--data': is empty"),
        (("lists", "tiers", "--data", " "), "Invalid value for '--data': is empty"),
        (("score", "--bogus"), "No such option: --bogus"),
        (("nosuch",), "No such command 'nosuch'"),
    ],
)
def test_usage_errors_name_the_option_and_exit_2(args, message, tmp_path):
    result = vipcast(*args, "--workdir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "internal error" not in result.stderr


def test_a_list_file_s_extension_names_its_format():
    """`lists --out y.parquet` wrote CSV text into y.parquet."""
    from pathlib import Path

    from flows.cli import ListFormat, _list_format

    assert _list_format(None, Path("y.parquet")) is ListFormat.parquet
    assert _list_format(None, Path("Y.JSON")) is ListFormat.json and _list_format(None, Path("t.pq")) is ListFormat.parquet
    assert _list_format(None, Path("list.txt")) is ListFormat.csv and _list_format(None, None) is ListFormat.csv
    assert _list_format(ListFormat.json, Path("list.txt")) is ListFormat.json
    assert _list_format(ListFormat.csv, Path("for-excel.xlsx")) is ListFormat.csv  # asked for in so many words


def test_the_horizon_bounds_agree_with_the_config_schema():
    from configs import ConfigError, load_config
    from configs.schema import MAX_HORIZON_DAYS
    from flows.cli import MAX_HORIZON_DAYS as CLI_MAX

    assert CLI_MAX == MAX_HORIZON_DAYS
    with pytest.raises(ConfigError, match="model.horizon_days: Input should be less than or equal to 36500"):
        load_config(overrides={"model": {"horizon_days": 3_650_000}})


def test_features_never_write_over_their_source(tmp_path):
    """`features --data orders.csv --out orders.csv` replaced the transactions with Parquet bytes, exit 0."""
    source = tmp_path / "orders.csv"
    source.write_text("customer_id,order_ts,amount\nA,2024-01-01,10\nA,2024-02-01,5\n")
    before = source.read_bytes()
    result = vipcast("features", "--data", str(source), "--out", str(source), "--workdir", str(tmp_path))
    assert result.returncode == 2 and "is not a .parquet file name" in result.stderr
    folder = tmp_path / "shop"
    folder.mkdir()
    pd.read_csv(source).to_parquet(folder / "orders.parquet")
    for data, out in ((folder / "orders.parquet", folder / "orders.parquet"), (folder, folder / "features.parquet"),
                      (f"{folder}/*.parquet", folder / "new.parquet")):
        result = vipcast("features", "--data", str(data), "--out", str(out), "--workdir", str(tmp_path))
        assert result.returncode == 2, result.stderr
        assert f"--out {out} would write over the source" in result.stderr
    assert source.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["orders.parquet"]


def test_missing_file_is_one_line_with_a_hint(tmp_path):
    result = vipcast("features", "--data", str(tmp_path / "nope.csv"), "--workdir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: " in result.stderr and "no such file or folder" in result.stderr
    assert "hint: " in result.stderr


def test_unknown_config_key_names_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  horizn_days: 30\n")
    result = vipcast("features", "--data", "cdnow", "--config", str(config), "--workdir", str(tmp_path))
    assert result.returncode == 2
    assert "model.horizn_days: Extra inputs are not permitted" in result.stderr


def test_features_command_writes_features_report_and_quarantine(tmp_path):
    source = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "", "c"],
            "order_ts": ["2024-01-01", "2024-02-01", "2024-01-15", "2024-01-20", "2024-03-01"],
            "amount": [10.0, 20.0, 5.0, 7.0, -3.0],
        }
    ).to_csv(source, index=False)
    out = tmp_path / "out" / "features.parquet"
    result = vipcast("features", "--data", str(source), "--out", str(out), "--workdir", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    features = pd.read_parquet(out)
    # c has only a refund: no purchase day, so no feature row, but counted in the report.
    assert sorted(features["customer_id"]) == ["a", "b"]
    report = json.loads((out.parent / "features.reconciliation.json").read_text())
    assert report["rows_read"] == 5 and report["rows_used"] == 4
    assert report["rows_set_aside"]["null_customer_id"] == 1
    assert report["customers_used"] == 3 and report["customers_featured"] == 2
    assert report["customers_without_purchase_day"] == 1
    # ... and named: with a count alone, a user looking for c in the outputs met "unknown customer".
    assert report["customers_without_purchase_day_examples"] == ["c"]
    # The BTYD columns' unit is said and kept: a file in weeks could not be told from one in days.
    assert report["time_unit"] == "days" and "as of 2024-03-01 (recency and T in days) -> " in result.stdout
    assert "warning: 1 customer(s) have only refunds (no purchase day) up to 2024-03-01 (e.g. 'c')" in result.stderr
    assert [f"warning: {text}" for text in report["warnings"]] == [  # the report's warnings are the ones printed
        line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    quarantine = pd.read_parquet(out.parent / "features.quarantine.parquet")
    assert list(quarantine["reason"]) == ["null_customer_id"]
    assert f"rows set aside: {out.parent / 'features.quarantine.parquet'})" in result.stdout  # was never named


def test_generate_writes_transactions_and_truth(tmp_path):
    out = tmp_path / "synthetic.parquet"
    result = vipcast("generate", "--customers", "300", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    transactions = pd.read_parquet(out)
    truth = pd.read_parquet(tmp_path / "synthetic.truth.parquet")
    assert transactions["customer_id"].nunique() <= 300 and len(truth) == 300
    assert {"customer_id", "order_ts", "amount"} <= set(transactions.columns)


def test_lists_before_any_scoring_run_says_what_to_do(tmp_path):
    result = vipcast("lists", "rising-stars", "--workdir", str(tmp_path))
    assert result.returncode == 2
    assert "no scoring run" in result.stderr and "vipcast score" in result.stderr


def chained(error: BaseException, cause: BaseException) -> BaseException:
    """`error` raised while handling `cause`."""
    error.__context__ = cause
    return error


@pytest.mark.parametrize(
    "error, line, hint, code",
    [
        (OSError(28, "No space left on device", "/ws/outputs.duckdb"), "error: No space left on device: /ws/outputs.duckdb",
         "hint: check that the folder is writable and the disk has free space", 1),
        (type("DatabaseError", (Exception,), {})("(sqlite3.DatabaseError) file is not a database\n[SQL: PRAGMA]"),
         "error: (sqlite3.DatabaseError) file is not a database",
         "hint: a database file is damaged or not a database: the workspace's mlflow.db can be moved aside", 1),
        (LookupError("no champion model for dataset 'shop': run `vipcast train --data shop.csv` first"),
         "error: no champion model for dataset 'shop'", None, 2),
        # A message quoting a database URL (the no-champion hint, a driver's error) printed its password.
        (LookupError("no champion model for dataset 'orders': run `vipcast train --data postgres://u:S3cr%2Ft@h/db#orders` first"),
         "error: no champion model for dataset 'orders': run `vipcast train --data postgres://u:***@h/db#orders` first", None, 2),
        (ValueError("Don't know how to connect to 'postgresql+psycopg://u:S3cr%2Ft@h/db'"),
         "error: Don't know how to connect to 'postgresql+psycopg://u:***@h/db'", None, 2),
        (ZeroDivisionError("boom"), "internal error (ZeroDivisionError): boom", "hint: run again with --debug", 1),
        # DuckDB's and SQLite's own words for a read-only workspace (exit 1, no path), a damaged file and a file-size limit.
        (duckdb.IOException('IO Error: Cannot open file "/ws/outputs.duckdb": Permission denied'),
         "error: [Errno 13] Permission denied: '/ws/outputs.duckdb'", None, 2),
        (chained(RuntimeError("MlflowException: (sqlite3.OperationalError) attempt to write a readonly database"),
                 type("OperationalError", (Exception,), {})("(sqlite3.OperationalError) attempt to write a readonly database")),
         "error: [Errno 13] Permission denied (a read-only database)", None, 2),
        (duckdb.IOException("IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2 in block at "
                            "location 274432"), "error: a database file is damaged (IO Error: Corrupt database file",
         "hint: a database file is damaged: the workspace's mlflow.db can be moved aside", 1),
        (duckdb.IOException('IO Error: The file "/ws/outputs.duckdb" exists, but it is not a valid DuckDB database file!'),
         "error: a database file is damaged", "hint: a database file is damaged: the workspace's mlflow.db can be moved aside", 1),
        # A store cut short: "attempted to read 262144 bytes" came with the hint to check the disk's free space.
        (duckdb.IOException('IO Error: Could not read enough bytes from file "/ws/outputs.duckdb": attempted to read '
                            "262144 bytes from location 12288"),
         'error: a database file is damaged (IO Error: Could not read enough bytes from file "/ws/outputs.duckdb"',
         "hint: a database file is damaged: the workspace's mlflow.db can be moved aside", 1),
        (duckdb.IOException('IO Error: Failure while replaying WAL file "/ws/outputs.duckdb.wal": Corrupt WAL file: entry '
                            "size exceeded remaining data in file"),
         "error: a database's write-ahead log is damaged (IO Error: Failure while replaying WAL file",
         "hint: move the .wal file named aside (keep a copy)", 1),
        (duckdb.TransactionException('TransactionContext Error: Failed to commit: could not write "/ws/outputs.duckdb.wal": '
                                     "File too large"), "error: File too large (a file reached the process's file-size limit, "
                                                        "`ulimit -f`", "hint: check that the folder is writable", 1),
        # Dates that cannot be used name what to do; the path-and-mapping hint sent users the wrong way.
        (DateError("orders.csv: the as-of date 1899-12-31 is outside the supported range"), "error: orders.csv: the as-of", None, 2),
        (IngestError("orders.csv: missing column 'amt'"), "error: orders.csv: missing column", "hint: check the source path", 2),
        # A full TMPDIR under MLflow's "Failed to serialize Python model" was an internal error.
        (chained(RuntimeError("Failed to serialize Python model"), OSError(28, "No space left on device")),
         "error: No space left on device", "hint: check that the folder is writable and the disk has free space", 1),
        # click turns an EOFError (a truncated model file or .pyc) into Abort: it printed "aborted", exit 130.
        (chained(click.exceptions.Abort(), EOFError("Ran out of input")), "error: a file ended early (Ran out of input)",
         "hint: a file vipcast read is truncated", 1),
    ],
)
def test_errors_of_the_machine_are_one_line_not_internal(monkeypatch, capsys, error, line, hint, code):
    """A full disk, a read-only folder or a damaged mlflow.db were 'internal error' with a --debug hint;
    expected errors carried the --debug hint too."""
    import flows.cli as cli

    def failing(**_):
        raise error

    monkeypatch.setattr(cli, "app", failing)
    monkeypatch.setattr(sys, "argv", ["vipcast", "score"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == code and err[0].startswith(line)
    assert (err[1].startswith(hint) if hint else len(err) == 1)


def test_ctrl_c_inside_a_command_exits_130_not_0(monkeypatch, capsys, tmp_path):
    """Typer turns a KeyboardInterrupt inside a command into a returned 130 when not standalone: an
    interrupted score exited 0, and a scheduler counted it a success."""
    import flows.cli as cli
    import flows.pipeline

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(flows.pipeline, "write_features", interrupted)
    monkeypatch.setattr(sys, "argv", ["vipcast", "features", "--data", "demo", "--out", str(tmp_path / "f.parquet"),
                                      "--workdir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


def test_serve_stopped_by_sigterm_exits_143(monkeypatch, capsys, tmp_path):
    """Prefect's runner handles SIGTERM with sys.exit(0), and Ctrl-C by returning: `vipcast serve` exited 0."""
    import flows.cli as cli
    import flows.deployments

    def prefect_sigterm(*_, **__):
        raise SystemExit(0)

    monkeypatch.setattr(flows.deployments, "serve_deployments", prefect_sigterm)
    monkeypatch.setattr(sys, "argv", ["vipcast", "serve", "--workdir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 143 and capsys.readouterr().err.strip().splitlines()[-1] == "terminated"
    # Ctrl-C: Prefect's serve catches it and returns.
    monkeypatch.setattr(flows.deployments, "serve_deployments", lambda *_, **__: None)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.parametrize("stop, code, line", [(None, 143, "terminated"), (KeyboardInterrupt(), 130, "interrupted")])
def test_a_stop_inside_a_duckdb_query_is_still_a_stop(monkeypatch, capsys, stop, code, line):
    """DuckDB turns the signal handler's exception into "RuntimeError: Query interrupted": it was an
    internal error (exit 1), or "cannot read as csv" blaming the file (exit 2)."""
    import flows.cli as cli
    from flows.ingest import IngestError

    def interrupted_query(**_):
        query = chained(RuntimeError("Query interrupted"), stop or cli.Terminated())
        raise IngestError("big.csv: cannot read as csv (Query interrupted)") from query

    monkeypatch.setattr(cli, "app", interrupted_query)
    monkeypatch.setattr(sys, "argv", ["vipcast", "train"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == code and capsys.readouterr().err.strip().splitlines() == [line]


def test_a_failure_after_a_sigterm_is_the_stop_even_without_its_cause(monkeypatch, capsys):
    """A `--prefect` run's task failure lost its chain (Prefect stores it): the stop was an internal error."""
    import flows.cli as cli

    def failed_flow(**_):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(cli, "app", failed_flow)
    monkeypatch.setattr(cli, "_stop_received", cli.Terminated())
    monkeypatch.setattr(sys, "argv", ["vipcast", "train", "--prefect"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 143 and capsys.readouterr().err.strip().splitlines() == ["terminated"]


def test_sigterm_inside_a_command_unwinds_and_exits_143(monkeypatch, capsys, tmp_path):
    """SIGTERM (a scheduler's stop, `timeout`) ended the process on the spot: no `finally` ran, so a
    --prefect run's temporary server outlived it. It now unwinds like Ctrl-C and exits 128 + 15."""
    import os
    import signal
    import time

    import flows.cli as cli
    import flows.pipeline

    unwound = []

    def stopped_by_the_scheduler(*_, **__):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises in here
        finally:
            unwound.append(True)

    monkeypatch.setattr(flows.pipeline, "write_features", stopped_by_the_scheduler)
    monkeypatch.setattr(sys, "argv", ["vipcast", "features", "--data", "demo", "--out", str(tmp_path / "f.parquet"),
                                      "--workdir", str(tmp_path)])
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert exit_.value.code == 143 and capsys.readouterr().err.strip().splitlines()[-1] == "terminated"
    assert unwound == [True]
    assert after == signal.SIG_DFL  # a second SIGTERM while unwinding ends the process at once


@pytest.mark.parametrize(
    "url, line, code",
    [
        ("mysql://shop:s3cret@db.example/shop", "error: outputs store URL mysql://shop:***@db.example/shop cannot be used", 2),
        ("sqlite:///{tmp}/missing/outputs.db", "error: cannot connect to the outputs store sqlite:///", 1),
    ],
)
def test_a_store_url_that_cannot_be_used_is_one_line_naming_it(tmp_path, url, line, code):
    config = tmp_path / "store.yaml"
    config.write_text(f"outputs:\n  store_url: {url.format(tmp=tmp_path)}\n")
    result = vipcast("lists", "tiers", "--config", str(config), "--workdir", str(tmp_path))
    assert result.returncode == code, result.stderr
    assert line in result.stderr and "s3cret" not in result.stderr
    assert "internal error" not in result.stderr and "hint: " in result.stderr and "outputs.store_url" in result.stderr


@pytest.mark.parametrize("command", ["score", "train"])
def test_a_future_as_of_date_is_refused_before_anything_is_written(tmp_path, command):
    """A mistyped --as-of 2099-01-01 became the store's latest run; every real run after it warned of a backfill."""
    result = vipcast(command, "--data", "cdnow-sample", "--as-of", "2099-01-01", "--workdir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "error: --as-of 2099-01-01 is in the future (today is " in result.stderr
    assert not (tmp_path / "outputs.duckdb").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_shop_of_refunds_only_is_named_not_trained_on_or_scored_as_empty(tmp_path):
    source = tmp_path / "refunds.csv"
    pd.DataFrame({"customer_id": ["a", "b", "c", "a"], "order_ts": ["2021-01-01", "2022-02-01", "2023-01-15", "2024-06-30"],
                  "amount": [-10.0, -20.0, -5.0, -1.0]}).to_csv(source, index=False)
    result = vipcast("train", "--data", str(source), "--workdir", str(tmp_path / "ws"))
    assert result.returncode == 2, result.stderr
    assert "no customer has a purchase day to fit on (only refunds" in result.stderr
    assert "all 0 customers" not in result.stderr


def test_train_as_of_after_the_data_names_the_last_order_not_a_cutoff(tmp_path):
    """It said "use a cutoff on or before 1998-05-31": train has no --cutoff."""
    result = vipcast("train", "--data", "cdnow-sample", "--horizon-days", "30", "--as-of", "1998-12-31", "--workdir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "--as-of 1998-12-31 is 184 days after the data's last order (1998-06-30)" in result.stderr
    assert "use an --as-of on or before 1998-06-30" in result.stderr and "cutoff on or before" not in result.stderr


@pytest.mark.parametrize("command", [("lists", "tiers"), ("app", "--no-auth", "--port", "1")])
def test_readers_name_a_workspace_that_does_not_exist_instead_of_creating_it(tmp_path, command):
    """`app --workdir typo` created an empty folder and served "no runs"."""
    missing = tmp_path / "no" / "such" / "workspace"
    result = vipcast(*command, "--workdir", str(missing))
    assert result.returncode == 2, result.stderr
    assert f"error: no workspace at {missing}: score into it first" in result.stderr
    assert not (tmp_path / "no").exists()


def test_a_taken_port_is_one_line_not_exit_3():
    import socket

    from app.server import PortUnavailable, check_port_free

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortUnavailable, match=f"cannot serve on 127.0.0.1:{port}: Address already in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again


@pytest.mark.parametrize("command", ["train", "score"])
def test_a_prefect_run_of_a_missing_file_fails_before_prefect_starts(tmp_path, monkeypatch, command):
    """It took 20-30 s (Prefect's temporary server) to say "no such file"."""
    from flows import orchestration
    from flows.ingest import IngestError

    def flow(**kwargs):
        raise AssertionError("the flow (and Prefect's server) started")

    monkeypatch.setattr(orchestration, command, flow)
    result = CliRunner().invoke(app, [command, "--prefect", "--data", str(tmp_path / "nope.csv"), "--workdir", str(tmp_path)])
    assert isinstance(result.exception, IngestError) and "nope.csv: no such file or folder" in str(result.exception)


def test_an_unreachable_prefect_api_is_one_line_with_a_hint(tmp_path):
    """It was "internal error (RuntimeError): Failed to reach API ..." with a --debug hint."""
    import os
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "score", "--data", "cdnow-sample", "--workdir", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    assert f"error: Prefect's API cannot be reached: Failed to reach API at http://127.0.0.1:{port}/api/" in result.stderr
    assert "hint: check PREFECT_API_URL" in result.stderr and "internal error" not in result.stderr


def test_a_workdir_that_is_a_file_is_named(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = vipcast("lists", "tiers", "--workdir", str(afile))
    assert result.returncode == 2 and f"workspace {afile} is a file, not a folder" in result.stderr


def test_summaries_go_to_stdout_and_their_warnings_to_stderr(capsys):
    """A scheduler that keeps the error log missed every warning (stale extract, backfill, ...)."""
    from flows.cli import echo_summary

    echo_summary("scored 10 customers\nwarning: the data ends 2024-03-01\noutputs: x")
    out, err = capsys.readouterr()
    assert out == "scored 10 customers\noutputs: x\n" and err == "warning: the data ends 2024-03-01\n"


def test_backtest_writes_metrics_and_the_predictions_they_come_from(tmp_path):
    """`--predictions` holds what every metric is computed from: a user can recompute them."""
    from models.metrics import backtest_metrics

    report, predictions = tmp_path / "out" / "backtest.json", tmp_path / "out" / "predictions.parquet"
    result = vipcast("backtest", "--data", "cdnow-sample", "--cutoff", "1997-09-30", "--horizon-days", "273",
                     "--json", str(report), "--predictions", str(predictions), "--workdir", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    assert "naive_last_12m: naive baseline, never ships" in result.stdout
    metrics = json.loads(report.read_text())
    frame = pd.read_parquet(predictions)
    assert len(frame) == metrics["n_customers"] == frame["customer_id"].nunique()
    for name, values in {**metrics["models"], **metrics["baselines"]}.items():
        again = backtest_metrics(frame[f"{name}_spend"], frame["actual_spend"], frame[f"{name}_churn"], frame["churned"].astype(float))
        assert again == pytest.approx(values, rel=1e-9), name


def test_score_out_and_symlinked_globs_never_land_where_the_source_reads(tmp_path):
    """`score --out shopdir/results` was accepted and the next run on shopdir failed; a glob through a
    `current -> <date>` symlink let `features --out` write into the folder it read."""
    dated = tmp_path / "extracts" / "2025-12-31"
    dated.mkdir(parents=True)
    pd.DataFrame({"customer_id": ["A", "A"], "order_ts": ["2024-01-01", "2024-02-01"], "amount": [10.0, 5.0]}).to_parquet(dated / "orders.parquet")
    (tmp_path / "extracts" / "current").symlink_to("2025-12-31")
    current = tmp_path / "extracts" / "current"
    result = vipcast("features", "--data", f"{current}/*.parquet", "--out", str(current / "features.parquet"), "--workdir", str(tmp_path))
    assert result.returncode == 2 and "would write over the source" in result.stderr, result.stderr
    result = vipcast("score", "--data", str(dated), "--out", str(dated / "results"), "--workdir", str(tmp_path / "ws"))
    assert result.returncode == 2 and f"--out {dated / 'results'} would write over the source" in result.stderr, result.stderr
    assert sorted(p.name for p in dated.iterdir()) == ["orders.parquet"]


@pytest.mark.parametrize("error_name, message", [
    ("ConnectError", "Prefect's API cannot be reached at"),
    ("PrefectHTTPStatusError", "does not answer as Prefect's API (a URL without /api, or another port?)"),
])
def test_serve_against_something_that_is_not_prefect_is_one_line(monkeypatch, tmp_path, error_name, message):
    """A PREFECT_API_URL of a web server that is not Prefect's API (no /api, another port) was an internal error."""
    import prefect

    import flows.deployments as deployments
    from flows.orchestration import PrefectUnavailable
    from flows.pipeline import Context

    def refused(*_, **__):
        raise type(error_name, (Exception,), {})("Client error '404 Not Found' for url 'http://127.0.0.1:8799/flows/'")

    monkeypatch.setattr(prefect, "serve", refused)
    monkeypatch.setattr(deployments, "build_deployments", lambda *_: [])
    with pytest.raises(PrefectUnavailable, match=re.escape(message)):
        deployments.serve_deployments(Context.create(tmp_path / "ws"))


def test_a_prefect_home_that_cannot_be_written_is_named_at_once(tmp_path):
    """A read-only HOME: `score --prefect` failed after ~100 s and 2,519 lines of tracebacks, as "Prefect's API
    cannot be reached" with advice to raise the start-up timeout."""
    import os

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(blocked / "prefect")
    result = subprocess.run([sys.executable, "-m", "flows.cli", "score", "--prefect", "--workdir", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {blocked / 'prefect'}: Prefect keeps its database in PREFECT_HOME and cannot write there (Not a "
        "directory): set PREFECT_HOME to a writable folder, or run without --prefect")


def test_the_config_hint_names_files_the_user_can_open(tmp_path):
    """From outside a checkout (a wheel install) the hint named configs/schema.py, which is not there."""
    import configs

    bad = tmp_path / "bad.yaml"
    bad.write_text("bogus: 1\n")
    result = vipcast("features", "--config", str(bad), "--out", str(tmp_path / "f.parquet"), cwd=tmp_path)
    installed = Path(configs.__file__).parent
    assert result.returncode == 2
    assert f"hint: see {installed / 'schema.py'} for every key and its type ({installed / 'base.yaml'} sets" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["lists", "tiers", "--out", ""], "Invalid value for '--out': is empty: name a file"),
        (["lists", "tiers", "--out", "-"], "'-' would be a file named '-'"),
        (["lists", "tiers", "--out", "exports/"], "exports/ is a folder: name a file"),
        (["features", "--out", "."], ". is a folder: name a file"),
        (["score", "--workdir", ""], "Invalid value for '--workdir': is empty: name a folder"),
        (["score", "--workdir", "  "], "Invalid value for '--workdir': is empty: name a folder"),
        (["backtest", "--json", ""], "Invalid value for '--json': is empty: name a file"),
    ],
)
def test_empty_dash_and_folder_paths_are_refused(arguments, message, tmp_path, monkeypatch):
    """`--workdir "$WS"` with the variable unset made the current folder the workspace (mlflow.db
    written into it); `--out exports/` wrote a file named exports; `--out -` a file named '-'."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_a_tilde_in_out_and_workdir_is_the_home_folder(tmp_path, monkeypatch):
    """`--out=~/f.parquet` (a Makefile, CI YAML: no shell expands it) failed, and `--out=~/out/t.csv`
    wrote a literal ./~ folder."""
    from flows.cli import file_option, folder_option

    monkeypatch.setenv("HOME", str(tmp_path))
    assert file_option("~/out/t.csv") == tmp_path / "out" / "t.csv"
    assert folder_option("~/ws") == tmp_path / "ws"
    assert file_option(None) is None and folder_option(None) is None
    (tmp_path / "a-file").write_text("x")
    import typer

    with pytest.raises(typer.BadParameter, match="a-file is a file, not a folder"):
        folder_option("~/a-file")
    # A name of another encoding's bytes failed later in DuckDB, MLflow or pyarrow, after a store commit.
    import os

    latin1 = os.fsdecode(b"o\xe9.parquet")
    for option in (file_option, folder_option):
        with pytest.raises(typer.BadParameter, match=r"o\\xe9.parquet: the name is not UTF-8"):
            option(latin1)


def test_a_reader_gone_from_stdout_leaves_the_exit_code_and_stderr_to_the_run():
    """`vipcast score | grep -q scored`: the committed run exited 1 in silence, its warnings unprinted."""
    import io
    import os

    from flows.cli import ReaderGoneSafe

    read_end, write_end = os.pipe()
    os.close(read_end)
    guarded = ReaderGoneSafe(io.TextIOWrapper(io.FileIO(write_end, "w"), encoding="utf-8"))
    assert guarded.write("x" * 200_000) == 200_000
    guarded.flush()
    assert guarded.reader_gone and guarded.write("more") == 4
    guarded.close()  # the text still buffered went to /dev/null

    # The whole command: the reader leaves before a word is read; stderr and the exit code are the command's.
    process = subprocess.Popen([sys.executable, "-m", "flows.cli", "lists", "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 0 and b"Error" not in stderr and b"Exception" not in stderr
    # stderr's reader gone: a refusal keeps its exit code (2), not 1 from the failed write of its message.
    process = subprocess.Popen([sys.executable, "-m", "flows.cli", "lists", "tiers", "--workdir", "/nonexistent/ws"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stderr.close()
    assert process.wait(timeout=60) == 2 and process.stdout.read() == b""


def test_a_misspelt_vipcast_variable_is_named():
    """`VIPCAST_HOEM=/srv/ws vipcast score` scored into ./.vipcast in silence."""
    from flows.cli import misspelt_variables

    environ = {"VIPCAST_HOEM": "/srv/ws", "VIPCAST_APIKEY": "k", "VIPCAST_HOME": "/ws", "VIPCAST_API_KEY_FILE": "f", "VIPCAST_home": "/x",
               "VIPCAST_NOTEBOOK_WORKDIR": "/nb", "VIPCAST_TEST_PG_URL": "postgres://", "HOME": "/root"}
    assert misspelt_variables(environ) == [
        "warning: VIPCAST_APIKEY is set, but vipcast reads no such variable: did you mean VIPCAST_API_KEY?",
        "warning: VIPCAST_HOEM is set, but vipcast reads no such variable: did you mean VIPCAST_HOME?",
        "warning: VIPCAST_home is set, but vipcast reads no such variable: did you mean VIPCAST_HOME?",
    ]


def test_a_refused_command_leaves_no_empty_workspace(monkeypatch, capsys, tmp_path):
    """`vipcast score --data nope.csv --workdir typo/ws` was refused and left typo/ws behind, empty; a
    workspace that holds something, or that existed before, stays."""
    import flows.cli as cli
    import flows.workspace

    monkeypatch.setattr(flows.workspace, "CREATED_FOLDERS", [])
    workdir = tmp_path / "typo" / "ws"
    monkeypatch.setattr(sys, "argv", ["vipcast", "score", "--data", str(tmp_path / "nope.csv"), "--workdir", str(workdir)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2 and "nope.csv" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()

    # A real data file and no champion: the lookup built an MLflow registry (1 MB) in the mistyped folder.
    monkeypatch.setattr(sys, "argv", ["vipcast", "score", "--data", "cdnow-sample", "--workdir", str(workdir)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2 and "no champion model for dataset 'cdnow-sample'" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    monkeypatch.setattr(sys, "argv", ["vipcast", "score", "--data", str(tmp_path / "nope.csv"), "--workdir", str(workdir)])

    workdir.mkdir(parents=True)  # existed before the command: kept, though empty
    with pytest.raises(SystemExit):
        cli.main()
    assert workdir.is_dir()

    workdir.rmdir()
    future = ["vipcast", "score", "--data", "cdnow-sample", "--as-of", "2999-01-01", "--workdir", str(workdir)]
    monkeypatch.setattr(sys, "argv", future)
    real_resolve = flows.workspace.Workspace.resolve.__func__

    def resolve_and_write(cls, *args, **kwargs):  # a command that wrote into its new workspace before failing
        workspace = real_resolve(cls, *args, **kwargs)
        (workspace.root / "mlflow.db").write_bytes(b"")
        return workspace

    monkeypatch.setattr(flows.workspace.Workspace, "resolve", classmethod(resolve_and_write))
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2 and (workdir / "mlflow.db").exists()


def test_lists_with_stdout_closed_is_refused(monkeypatch, capsys, tmp_path):
    """`vipcast lists tiers >&-` printed the list nowhere, exited 0 and said "2,357 rows" on stderr."""
    import flows.cli as cli

    monkeypatch.setattr(sys, "argv", ["vipcast", "lists", "tiers", "--workdir", str(tmp_path)])
    monkeypatch.setattr(sys, "stdout", None)  # what Python sets when descriptor 1 is closed
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: standard output is closed: there is nowhere to print the list; pass --out FILE"
