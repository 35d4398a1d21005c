"""The `vipcast` command line (DESIGN.md "CLI contract").

Errors print one line and a hint, not a traceback, unless `--debug` is given.
Heavy libraries are imported inside the commands so `vipcast --help` answers at once.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import click
import typer
from typer._click import exceptions as typer_click_exceptions  # typer parses with its own copy of click

# Usage errors come from typer's copy of click (parsing) or from click itself (raised here).
CLICK_ERRORS = (click.ClickException, typer_click_exceptions.ClickException)
ABORTS = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="vipcast",
    help="Customer lifetime value, churn risk and VIP tiers from a transactions table.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _path_text(value: str, what: str) -> str:
    """A path option's text, refusing an empty or blank one (`--workdir "$WS"` with the variable unset
    made the current folder the workspace and wrote mlflow.db into it) and '-' (no option writes to stdout)."""
    if not value.strip():
        raise typer.BadParameter(f"is empty: name a {what}")
    from flows.workspace import NOT_UTF8, not_utf8

    if (shown := not_utf8(value)) is not None:  # DuckDB, MLflow and pyarrow failed on it later, after a commit
        raise typer.BadParameter(f"{shown}: the name is {NOT_UTF8}: choose a UTF-8 name")
    if value == "-":
        raise typer.BadParameter(f"'-' would be a {what} named '-': name a {what} (vipcast writes files, not stdout; "
                                 "`vipcast lists` without --out prints the list)")
    return value


def file_option(value: str | None) -> Path | None:
    """An --out file: `~` expanded (a Makefile's `--out=~/x.parquet` reaches vipcast unexpanded; it wrote a
    literal ./~ folder), refused when it names a folder (`--out exports/` wrote a file named exports)."""
    if value is None:
        return None
    text = _path_text(value, "file")
    path = Path(text).expanduser()
    if text.endswith("/") or path.is_dir():
        raise typer.BadParameter(f"{text} is a folder: name a file (e.g. {Path(text) / 'name'}.<extension>)")
    return path


def workdir_option(value: str | None) -> Path | None:
    """--workdir: `~` expanded, an empty one refused (the workspace names a file given instead)."""
    return None if value is None else Path(_path_text(value, "folder")).expanduser()


def folder_option(value: str | None) -> Path | None:
    """score's --out folder: as --workdir, and an existing file refused."""
    path = workdir_option(value)
    if path is not None and path.is_file():
        raise typer.BadParameter(f"{value} is a file, not a folder")
    return path


Workdir = Annotated[
    Optional[str],
    typer.Option("--workdir", callback=workdir_option, help="Workspace directory for all state (default: $VIPCAST_HOME or ./.vipcast)."),
]
ConfigFile = Annotated[
    Optional[str],
    typer.Option("--config", help="A YAML config file overlaid on configs/base.yaml (or a built-in: demo, cdnow)."),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
def named(value: str | None) -> str | None:
    """--data as given, refusing an empty or blank one: `--data "$ORDERS"` with the variable unset ran on
    the config's default dataset (the demo data) in silence."""
    if value is not None and not value.strip():
        raise typer.BadParameter("is empty: name a file, folder, glob, database URL#table or built-in dataset, "
                                 "or leave --data out for the config's dataset")
    return value


Data = Annotated[
    Optional[str],
    typer.Option(
        "--data", callback=named,
        help="Transactions: a CSV/Parquet file, folder or glob; a database URL#table; or 'cdnow', 'cdnow-sample', 'demo' "
             "(default: the config's dataset, 'demo' unless set: 20,000 synthetic customers).",
    ),
]
AsOf = Annotated[
    Optional[str], typer.Option("--as-of", help="Cutoff date YYYY-MM-DD (default: the date of the last transaction).")
]
# configs.schema.MAX_HORIZON_DAYS (a test keeps them equal; importing the schema here would load pydantic for --help).
MAX_HORIZON_DAYS = 36_500
HorizonDays = Annotated[Optional[int], typer.Option(
    "--horizon-days", min=7, max=MAX_HORIZON_DAYS,
    help="Prediction horizon in days (train and backtest default to the config's model.horizon_days; score to the "
         "champion's horizon).")]
Engine = Annotated[Optional[str], typer.Option("--engine", help="duckdb (default) or spark.")]
UsePrefect = Annotated[
    Optional[bool],
    typer.Option(
        "--prefect/--no-prefect",
        help="Run as a Prefect flow (default: only when PREFECT_API_URL is set; else in-process, no server start-up).",
    ),
]


def use_prefect(flag: bool | None) -> bool:
    import os

    return bool(os.environ.get("PREFECT_API_URL")) if flag is None else flag


class ListName(str, Enum):
    rising_stars = "rising-stars"
    at_risk = "at-risk"
    tiers = "tiers"
    events = "events"
    economics = "economics"


#: File names read as Parquet (flows.ingest reads the same; this module keeps ingest's imports out of --help).
PARQUET_SUFFIXES = (".parquet", ".pq")


class ListFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


#: The largest --top (far above any list; a number past 64 bits was an internal error).
MAX_TOP = 10**12


def echo_summary(summary) -> None:
    """A run's summary on stdout and its warnings on stderr, where a scheduler's error log looks."""
    for line in str(summary).splitlines():
        typer.echo(line, err=line.startswith("warning: "))


def parse_date(value: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option value, or a clear usage error."""
    from flows.listformats import iso_date

    if value is None:
        return None
    try:
        return iso_date(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def _context(workdir: Path | None, config: str | None, **overrides):
    from flows.pipeline import Context

    return Context.create(workdir=workdir, config=config, **overrides)


# Built-in data that comes with its own config (configs/cdnow.yaml: share-mode tiers, a 39-week horizon):
# on base.yaml's $2,000+ thresholds CDNOW's ~$100-a-year customers leave every list empty.
BUILTIN_DATA_CONFIGS = {"cdnow": "cdnow", "cdnow-sample": "cdnow"}


def _config_for(config: str | None, data: str | None) -> str | None:
    """`--config`, or the built-in config of built-in `--data` when none is given (said on stderr)."""
    if config is None and data in BUILTIN_DATA_CONFIGS:
        from configs.loader import BuiltinConfig

        config = BuiltinConfig(BUILTIN_DATA_CONFIGS[data])
        typer.echo(f"note: --data {data} uses its built-in config configs/{config}.yaml (pass --config to choose another)", err=True)
    return config


@app.command()
def demo(
    workdir: Workdir = None,
    config: ConfigFile = None,
    data: Data = None,
    debug: Debug = False,
) -> None:
    """End to end on the built-in data: load, train, score, and show the results."""
    from flows.pipeline import run_demo

    from configs.loader import BuiltinConfig

    ctx = _context(workdir, _config_for(config, data) or BuiltinConfig("demo"))
    echo_summary(run_demo(ctx, data=data))


# About 13 orders per customer: 100M customers is ~1.3 billion rows (a 2**63 count was an OverflowError).
MAX_GENERATED_CUSTOMERS = 100_000_000


@app.command()
def generate(
    customers: Annotated[int, typer.Option("--customers", min=1, max=MAX_GENERATED_CUSTOMERS,
                                           help="Number of customers (up to 100 million).")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (a whole number >= 0).")] = 0,
    out: Annotated[str, typer.Option("--out", callback=file_option,
                                     help="Output Parquet file; ground truth goes to FILE.truth.parquet.")] = "transactions.parquet",
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Generate synthetic transactions with heterogeneous buy-till-you-die behaviour."""
    from configs import load_config
    from flows.pipeline import generate_dataset

    require_parquet_name(out, "--out", "transactions")
    if config is not None:
        load_config(config)  # nothing in it changes the data, but a wrong --config is still named
    transactions_path, truth_path, rows = generate_dataset(customers, seed, out)
    typer.echo(f"wrote {rows:,} transactions of {customers:,} customers to {transactions_path}; ground truth: {truth_path}")


@app.command()
def features(
    data: Data = None,
    as_of: AsOf = None,
    out: Annotated[str, typer.Option("--out", callback=file_option, help="Output Parquet file, one row per customer.")] = "features.parquet",
    engine: Engine = None,
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Build per-customer features as of a date and write them to Parquet."""
    from flows.pipeline import write_features

    require_parquet_name(out, "--out", "features")
    ctx = _context(workdir, config, engine=engine)
    summary = write_features(ctx, data=data, as_of=parse_date(as_of, "--as-of"), out=out)
    echo_summary(summary)


@app.command()
def train(
    data: Data = None,
    as_of: AsOf = None,
    horizon_days: HorizonDays = None,
    engine: Engine = None,
    prefect: UsePrefect = None,
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Build features, fit the models, backtest them, log to MLflow and promote the winner if no worse."""
    cutoff = parse_date(as_of, "--as-of")
    config = _config_for(config, data)
    if use_prefect(prefect):
        from flows.deployments import absolute_config
        from flows.orchestration import console_without_tracebacks, run_flow, train as train_flow
        from flows.pipeline import check_request

        if not debug:
            console_without_tracebacks()
        ctx = _context(workdir, config, horizon_days=horizon_days, engine=engine)
        check_request(ctx, data, cutoff, "train")  # before Prefect's server starts (seconds)
        result = run_flow(train_flow, data=data, as_of=as_of, horizon_days=horizon_days, workdir=str(ctx.workspace.root), config=absolute_config(config),
                            engine=engine)
        echo_summary(result["summary"])
        return
    from flows.pipeline import run_train

    ctx = _context(workdir, config, horizon_days=horizon_days, engine=engine)
    echo_summary(run_train(ctx, data=data, as_of=cutoff))


@app.command()
def score(
    data: Data = None,
    as_of: AsOf = None,
    horizon_days: HorizonDays = None,
    out: Annotated[Optional[str], typer.Option("--out", callback=folder_option, help="Also write scores and lists to this folder.")] = None,
    engine: Engine = None,
    prefect: UsePrefect = None,
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Score every customer with the champion model, nominate the lists and write the outputs."""
    cutoff = parse_date(as_of, "--as-of")
    config = _config_for(config, data)
    ctx = _context(workdir, config, horizon_days=horizon_days, engine=engine)
    if use_prefect(prefect):
        if out is not None or horizon_days is not None:
            raise click.BadParameter("--out and --horizon-days go with in-process runs (--no-prefect)")
        from flows.deployments import absolute_config
        from flows.orchestration import console_without_tracebacks, run_flow, score as score_flow
        from flows.pipeline import check_request

        if not debug:
            console_without_tracebacks()
        check_request(ctx, data, cutoff, "score")  # before Prefect's server starts (seconds)
        result = run_flow(score_flow, data=data, as_of=as_of, workdir=str(ctx.workspace.root), config=absolute_config(config), engine=engine)
        echo_summary(result["summary"])
        return
    from flows.pipeline import run_score

    echo_summary(run_score(ctx, data=data, as_of=cutoff, out=out, horizon_days=horizon_days))


def require_parquet_name(path: Path, option: str, what: str) -> None:
    """A file written as Parquet must be named so: `preds.csv` holding Parquet bytes opens as garbage."""
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise click.BadParameter(f"{path} is not a .parquet file name ({what} are written as Parquet)", param_hint=option)


@app.command()
def backtest(
    data: Data = None,
    cutoff: Annotated[Optional[str], typer.Option(
        "--cutoff", help="Backtest cutoff YYYY-MM-DD (default: one horizon before the data's last order date).")] = None,
    horizon_days: HorizonDays = None,
    json_out: Annotated[Optional[str], typer.Option("--json", callback=file_option, help="Write the metrics as JSON to this file.")] = None,
    predictions_out: Annotated[
        Optional[str],
        typer.Option("--predictions", callback=file_option, help="Write per-customer predictions and actuals to this Parquet file."),
    ] = None,
    engine: Engine = None,
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Fit every candidate on data up to the cutoff and compare them on the horizon after it."""
    from flows.pipeline import run_backtest, summary_table, warning_lines

    if predictions_out is not None:
        require_parquet_name(predictions_out, "--predictions", "predictions")
    ctx = _context(workdir, _config_for(config, data), horizon_days=horizon_days, engine=engine)
    from flows.workspace import write_atomic

    for path in (json_out, predictions_out):
        if path is not None:  # before the backtest: a bad path fails now, not after minutes of fitting
            path.parent.mkdir(parents=True, exist_ok=True)
    result = run_backtest(ctx, data=data, cutoff=parse_date(cutoff, "--cutoff"))
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))
    if predictions_out is not None:
        # customer_id, the BTYD summary, actual_spend / actual_orders / churned over the horizon and,
        # per candidate and baseline NAME, NAME_spend and NAME_churn: every metric can be recomputed.
        frame = result.predictions.reset_index()
        write_atomic(predictions_out, lambda tmp: frame.to_parquet(tmp, index=False))
    typer.echo("\n".join([summary_table(result.to_dict()), *warning_lines(result.warnings)]))


@app.command("lists")
def lists_command(
    name: Annotated[ListName, typer.Argument(help="Which list.")],
    top: Annotated[Optional[int], typer.Option("--top", min=1, max=MAX_TOP, help="Only the first N rows.")] = None,
    fmt: Annotated[
        Optional[ListFormat], typer.Option("--format", help="Output format (default: from the --out file's extension, else csv).")
    ] = None,
    out: Annotated[Optional[str], typer.Option("--out", callback=file_option, help="Write to this file instead of stdout.")] = None,
    data: Annotated[
        Optional[str], typer.Option("--data", callback=named,
                                    help="The latest run of this dataset (default: the latest run of any).")
    ] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The run of this date YYYY-MM-DD (default: the latest).")] = None,
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Print or export a list from the latest scoring run."""
    from flows.pipeline import list_and_run, list_source_line, render_list

    fmt = _list_format(fmt, out)
    if out is None and sys.stdout is None:  # `>&-`: the list went nowhere, exit 0, and stderr said "2,357 rows"
        raise ValueError("standard output is closed: there is nowhere to print the list; pass --out FILE")
    if out is None and fmt is ListFormat.parquet:
        raise click.BadParameter("parquet output needs --out FILE", param_hint="--format")
    ctx = _context(workdir, config, reader=True)
    frame, run = list_and_run(ctx, name.value, top=top, data=data, as_of=parse_date(as_of, "--as-of"))
    text = render_list(frame, fmt.value, out)
    if text is not None:
        typer.echo(text, nl=False)
    # On stderr, so the list itself can be piped: which shop and date it is (a store can hold several).
    typer.echo(list_source_line(name.value, len(frame), run, out), err=True)


def _list_format(fmt: ListFormat | None, out: Path | None) -> ListFormat:
    """--format, or the one the --out file's extension names (csv without either, or for *.txt); a
    mismatch is refused, and so is an extension no format has (rs.xlsx got CSV text Excel would not open)."""
    suffixes = {f".{member.value}": member for member in ListFormat} | dict.fromkeys(PARQUET_SUFFIXES, ListFormat.parquet)
    named = suffixes.get(out.suffix.lower()) if out is not None else None
    if fmt is None:
        if out is not None and out.suffix and named is None and out.suffix.lower() != ".txt":
            raise click.BadParameter(
                f"{out.name}: lists are written as csv, json or parquet; name the file *.csv (spreadsheets open it), "
                "*.json or *.parquet, or pass --format", param_hint="--out")
        return named or ListFormat.csv
    if named is not None and named is not fmt:
        raise click.BadParameter(f"{fmt.value} does not match the --out file {out.name}: drop --format or name the file *.{fmt.value}",
                                 param_hint="--format")
    return fmt


@app.command()
def serve(
    workdir: Workdir = None,
    config: ConfigFile = None,
    data: Data = None,
    debug: Debug = False,
) -> None:
    """Serve the train and score flows as Prefect deployments on their schedules."""
    from flows.deployments import serve_deployments

    config = _config_for(config, data)
    ctx = _context(workdir, config)
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited", category=RuntimeWarning)
    # Serving ends only when stopped, and Prefect reads both stops as success: its runner takes SIGTERM
    # for itself and leaves with sys.exit(0) (after a stop() that only warned "coroutine
    # 'Runner.astop' was never awaited"), and it catches Ctrl-C and returns. They exit as the README's
    # exit codes name them: 143 and 130.
    try:
        serve_deployments(ctx, data=data, config=config)
    except SystemExit as exc:
        if exc.code in (0, None):
            raise Terminated() from None
        raise
    raise KeyboardInterrupt


@app.command("app")
def app_command(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without an API key (local use only).")] = False,
    behind_https: Annotated[bool, typer.Option(
        "--behind-https", help="Readers reach the app over HTTPS through a proxy: mark the session cookie Secure.")] = False,
    workdir: Workdir = None,
    config: ConfigFile = None,
    debug: Debug = False,
) -> None:
    """Web pages and API over the outputs store for marketing (key: VIPCAST_API_KEY)."""
    from flows.pipeline import open_store
    from app.server import resolve_api_key, run

    ctx = _context(workdir, config, reader=True)
    api_key = resolve_api_key(no_auth)
    run(host, port, open_store(ctx), api_key, no_auth, behind_https)


def config_file_shown(name: str) -> str:
    """A file of the configs package as a user can open it: relative in a checkout, else where the
    package is installed (a wheel's user has no configs/ folder in the current one)."""
    from configs.loader import package_file

    path = package_file(name)
    return os.path.relpath(path) if Path.cwd() in path.parents else str(path)


HINTS = {
    "IngestError": "check the source path and the column mapping (source.columns in your config)",
    "ConfigError": lambda: (f"see {config_file_shown('schema.py')} for every key and its type ({config_file_shown('base.yaml')} "
                            "sets the common ones)"),
    "ModelFitError": "see docs/models.md for what the models need; the error names the config key to change",
    "InsufficientDataError": "see docs/models.md for how much history the models need",
    "ApiKeyMissing": "set VIPCAST_API_KEY (or VIPCAST_API_KEY_FILE), or pass --no-auth for local use",
    "SparkStartError": "check engine.spark_master (local[*], spark://host:7077, yarn, ...) and engine.spark_conf in your config",
    "StoreBusy": "another process is writing the outputs store; try again in a moment",
    "RegistryBusy": "another vipcast run (or the MLflow UI) is writing the model registry; try again in a moment",
    "StoreUrlError": "correct outputs.store_url in your config (driver installed, user, password and database "
                     "right), or leave it out for the DuckDB file in the workspace",
}
EXPECTED = tuple(HINTS)
# The machine's, not the input's: a full disk, a read-only folder, a damaged database file. One line
# naming it (exit 1), not "internal error" and a traceback hint.
WAL_HINT = ("move the .wal file named aside (keep a copy): the database then opens as of its last checkpoint, without "
            "the runs written after it (usually the last one); score them again")
ENVIRONMENT_HINTS = {
    "OSError": "check that the folder is writable and the disk has free space (temporary files go to TMPDIR, /tmp by default)",
    "EOFError": "a file vipcast read is truncated (a full disk during `make setup` or a training run?): run `make setup` "
                "again, or train again if the champion model's files are damaged",
    "IOException": "check that the workspace folder is writable and the disk has free space",
    "DatabaseError": "a database file is damaged or not a database: the workspace's mlflow.db can be moved aside and "
                     "the models registered again with `vipcast train` (tier history is in outputs.duckdb); restore "
                     "outputs.duckdb or the outputs store from a backup (a new one starts the tier history over)",
    "DamagedDatabase": "a database file is damaged: the workspace's mlflow.db can be moved aside and the models registered "
                       "again with `vipcast train` (tier history is in outputs.duckdb); restore outputs.duckdb or the "
                       "outputs store from a backup (a new one starts the tier history over)",
    "StoreDamaged": "restore the outputs store from a backup (a new one starts the tier history over: grace periods, "
                    "events and movement compare with no earlier run)",
    "StoreWalDamaged": WAL_HINT,
    "DamagedRegistry": "move the file aside and run `vipcast train` to register a champion again (the outputs store, "
                       "with the tier history, is another file and stays as it is)",
    "DamagedWal": WAL_HINT,
    "PortUnavailable": "pass another --port (or --host), or stop the program listening on that port",
    "PrefectUnavailable": "check PREFECT_API_URL (a running `prefect server start`), or without it raise "
                          "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (90 s unless set), or run without --prefect",
    "StoreUnreachable": "check outputs.store_url in your config: is the database server running and reachable, "
                        "and are the user, password and database right?",
    "TrackingUnreachable": "start the tracking server, correct MLFLOW_TRACKING_URI, or unset it to use the workspace's "
                           "mlflow.db",
    "SourceUnreachable": "check the --data URL: is the database server running and reachable, and are the user, "
                         "password (or PGPASSWORD) and database right?",
}
# Errors of the user's input or paths (e.g. --out naming a folder, --workdir naming a file).
EXPECTED_TYPES = (ValueError, LookupError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


class Terminated(BaseException):
    """SIGTERM: a scheduler, `timeout` or a service manager stopping the command.

    Python's default action ends the process on the spot, which left a `--prefect` run's temporary
    Prefect server running with no parent and the MLflow run marked RUNNING. Raised as an exception
    instead, it unwinds like Ctrl-C: every `with` block closes (the server stops, the MLflow run ends
    as FAILED, a store transaction rolls back). Prefect's own handler inside a flow run reports the
    run as crashed, then passes the signal on to this one.
    """


# The SIGTERM this process received, if any. Raised inside a DuckDB query it comes back as "Query
# interrupted", and a Prefect task's failure reaches the retry condition without its chain of causes:
# a `--prefect` run retried the step, finished and exited 0 after the stop.
_stop_received: Terminated | None = None


def terminate(signum: int, frame: object) -> None:
    """SIGTERM handler: raise `Terminated` once (and remember it); a second SIGTERM ends the process at once."""
    global _stop_received
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _stop_received = Terminated()
    raise _stop_received


def stop_received() -> Terminated | None:
    """The SIGTERM this process received (None without one)."""
    return _stop_received


#: The environment variables vipcast reads (README, "The command line").
VARIABLES = ("VIPCAST_HOME", "VIPCAST_API_KEY", "VIPCAST_API_KEY_FILE")


def misspelt_variables(environ) -> list[str]:
    """Warnings for set VIPCAST_* variables that look like a misspelt one vipcast reads:
    `VIPCAST_HOEM=/srv/ws vipcast score` scored into ./.vipcast in silence."""
    import difflib

    lines = []
    for name in sorted(environ):
        if name.upper().startswith("VIPCAST_") and name not in VARIABLES:
            close = difflib.get_close_matches(name.upper(), VARIABLES, n=1, cutoff=0.8)  # VIPCAST_home too
            if close:
                lines.append(f"warning: {name} is set, but vipcast reads no such variable: did you mean {close[0]}?")
    return lines


class ReaderGoneSafe:
    """sys.stdout (or sys.stderr) that goes quiet once its reader has gone (`vipcast score | grep -q scored`,
    `vipcast lists tiers | head -1`): the run goes on, its other stream's lines and its exit code stay the
    run's. A committed score or train exited 1 in silence, its warnings unprinted, when the reader closed first."""

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        """Point the descriptor at /dev/null: the text still buffered flushes there at exit."""
        self.reader_gone = True
        quiet = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(quiet, self._stream.fileno())
        finally:
            os.close(quiet)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main() -> None:
    """Entry point: run the app; turn known errors into one line and a hint. A failed command leaves no
    empty workspace folder it created."""
    try:
        run_app()
    except SystemExit as stop:
        if stop.code not in (0, None):
            from flows.workspace import discard_created_if_empty

            discard_created_if_empty()
        raise


def run_app() -> None:
    """The app under main(): errors as one line and exit codes."""
    debug = "--debug" in sys.argv[1:]
    signal.signal(signal.SIGTERM, terminate)
    # stderr too: `vipcast features ... 2>&1 | head -1` aborted the run at its next step line.
    if not isinstance(sys.stdout, ReaderGoneSafe) and sys.stdout is not None:
        sys.stdout = ReaderGoneSafe(sys.stdout)
    if not isinstance(sys.stderr, ReaderGoneSafe) and sys.stderr is not None:
        sys.stderr = ReaderGoneSafe(sys.stderr)
    for line in misspelt_variables(os.environ):
        typer.echo(line, err=True)
    try:
        # Without standalone mode Typer returns an exit code instead of raising it: Ctrl-C inside a
        # command comes back as 130 (its Exit(130)), which ended the process with 0.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130:
                typer.echo("interrupted", err=True)
            sys.exit(code)
    except ABORTS as exc:
        if isinstance(exc.__context__, EOFError):  # click turns any EOFError into Abort: a truncated file, not the user
            report_failure(exc.__context__, debug)
        typer.echo("aborted", err=True)
        sys.exit(130)
    except CLICK_ERRORS as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, Terminated) as exc:
        exit_stopped(exc)
    except Exception as exc:
        # DuckDB turns a signal handler's exception inside a query into "RuntimeError: Query interrupted"
        # (the Terminated or KeyboardInterrupt as its cause): still a stop, not an internal error.
        stop = stop_in_chain(exc) or stop_received()
        if stop is not None:
            exit_stopped(stop)
        report_failure(exc, debug)


def exit_stopped(stop: BaseException) -> NoReturn:
    """Say how the command was stopped and exit: 143 after SIGTERM, 130 after Ctrl-C."""
    if isinstance(stop, Terminated):
        typer.echo("terminated", err=True)
        sys.exit(128 + signal.SIGTERM)
    typer.echo("interrupted", err=True)
    sys.exit(130)


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what it was raised from (its cause, else its context), and so on."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def stop_in_chain(exc: BaseException) -> BaseException | None:
    """The Terminated or KeyboardInterrupt an exception was raised from, if any. Inside a `--prefect` flow
    Prefect's own SIGTERM handler raises its TerminationSignal instead of Terminated, and inside a DuckDB query
    either comes back as "Query interrupted", sometimes without its chain: both are a SIGTERM (a Ctrl-C leaves
    its KeyboardInterrupt in the chain). A step stopped so was retried, and the run finished with exit 0."""
    chain = list(exception_chain(exc))
    found = next((link for link in chain if isinstance(link, (Terminated, KeyboardInterrupt))), None)
    if found is not None:
        return found
    if any(type(link).__name__ == "TerminationSignal" or (isinstance(link, RuntimeError) and str(link).startswith("Query interrupted"))
           for link in chain):
        return Terminated()
    return None


# OS errors of the machine, wherever they sit in an exception's chain: MLflow reported a full TMPDIR as
# "Failed to serialize Python model" (an internal error) with the OSError as its cause.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def machine_cause(exc: BaseException) -> OSError | None:
    """The first OSError of the machine (full disk, quota, read-only or failing device) in `exc`'s chain."""
    return next((link for link in exception_chain(exc) if isinstance(link, OSError) and link.errno in MACHINE_ERRNOS), None)


class DamagedDatabase(Exception):
    """A database file that fails its own checks (DuckDB's "Corrupt database file")."""


class DamagedWal(DamagedDatabase):
    """A DuckDB write-ahead log that cannot be replayed (the database file itself may be whole)."""




def translated(exc: BaseException) -> BaseException | None:
    """An error a database library words in its own terms, as what it is: a file the user may not write
    (exit 2, naming it), a damaged file, a full disk or file-size limit (the machine's, exit 1)."""
    from flows.store import DUCKDB_DAMAGED_FILE, DUCKDB_DAMAGED_WAL, SQLITE_DAMAGED_FILE, StoreDamaged
    from flows.tracking import RegistryBusy, registry_busy

    chain = list(exception_chain(exc))
    for link in chain:
        if isinstance(link, StoreDamaged):  # says which file already
            return link
        text = str(link)
        if "Permission denied" in text and (opened := re.search(r'Cannot open file "([^"]+)"', text)):
            return PermissionError(errno.EACCES, "Permission denied", opened.group(1))  # DuckDB's IOException
        if "attempt to write a readonly database" in text:  # SQLite under MLflow
            return PermissionError(errno.EACCES, "Permission denied (a read-only database)", registry_file())
        if any(words in text for words in DUCKDB_DAMAGED_WAL):
            return DamagedWal(f"a database's write-ahead log is damaged ({text.strip().splitlines()[0]})")
        if any(words in text for words in DUCKDB_DAMAGED_FILE):
            return DamagedDatabase(f"a database file is damaged ({text.strip().splitlines()[0]})")
        if isinstance(link, RegistryBusy):
            return link
        if "database is locked" in text and any(type(error).__module__.startswith("mlflow") for error in chain):
            return registry_busy(registry_file(), "database is locked")
        if any(words in text for words in SQLITE_DAMAGED_FILE) and any(
                type(error).__module__.startswith("mlflow") for error in chain):  # the model registry's SQLite file
            reason = next(words for words in SQLITE_DAMAGED_FILE if words in text)
            from flows.tracking import DamagedRegistry

            return DamagedRegistry(f"the model registry {registry_file()} is damaged ({reason})")
        for number in (errno.EFBIG, errno.ENOSPC):
            if os.strerror(number) in text and not isinstance(link, OSError):  # DuckDB's IO or transaction error
                return OSError(number, os.strerror(number))
    return None


def registry_file() -> str:
    """The model registry MLflow was using, for messages: MLflow sets MLFLOW_TRACKING_URI to the URI it was given."""
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    return tracking.removeprefix("sqlite:///") if tracking.startswith("sqlite:///") else "the workspace's mlflow.db"


def report_failure(exc: BaseException, debug: bool) -> NoReturn:
    """Print one line (and a hint) for a failed command and exit: 2 for the user's input, 1 for the
    machine's or an internal error; with --debug, raise it for the traceback."""
    if debug:
        raise exc
    from flows.ingest import hide_password  # a driver's or a hint's text may quote a database URL

    exc = machine_cause(exc) or translated(exc) or exc
    name = type(exc).__name__
    expected = isinstance(exc, EXPECTED_TYPES) or name in EXPECTED
    environment = not expected and (isinstance(exc, OSError) or name in ENVIRONMENT_HINTS)
    if expected:
        typer.echo(f"error: {hide_password(str(exc))}", err=True)
        if name in HINTS:  # the message itself says what to do otherwise
            hint = HINTS[name]
            typer.echo(f"hint: {hint() if callable(hint) else hint}", err=True)
        sys.exit(2)
    if environment:
        typer.echo(f"error: {hide_password(environment_message(exc))}", err=True)
        typer.echo(f"hint: {ENVIRONMENT_HINTS.get(name, ENVIRONMENT_HINTS['OSError'])}", err=True)
        sys.exit(1)
    typer.echo(f"internal error ({name}): {hide_password(str(exc))}", err=True)
    typer.echo("hint: run again with --debug for the full traceback", err=True)
    sys.exit(1)


def environment_message(exc: BaseException) -> str:
    """One line for an error of the machine: the OS's reason and the path, or the message's first line."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        if exc.errno == errno.EFBIG:  # "File too large" alone did not say which limit
            text += " (a file reached the process's file-size limit, `ulimit -f`, or the largest file its file system takes)"
        return text
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"a file ended early ({first})" if isinstance(exc, EOFError) else first


if __name__ == "__main__":
    # `python -m flows.cli` runs this file as __main__, a second copy of the module: the SIGTERM its handler
    # recorded was not the one flows.orchestration asks flows.cli about, and a stopped --prefect step retried.
    from flows.cli import main as installed_main

    installed_main()
