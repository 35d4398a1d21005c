"""Prefect 3 flows `vipcast-train` and `vipcast-score`.

Each flow runs the same steps as the CLI (flows/pipeline.py), with every step a Prefect task that
calls one plain function; steps that do I/O (reading data, MLflow, the outputs store) retry.
Without PREFECT_API_URL the flows run in Prefect's ephemeral mode; with it, against that server.
Each run leaves a markdown summary artifact (and the score flow a table of the top rising stars).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo
from typing import Any


def _without_the_current_folder() -> None:
    """Prefect loads this file for a deployment's run with the current folder first on sys.path
    (`load_script_as_module`): `vipcast serve` started in a project folder holding models/ or configs/
    (common names) imported those instead of vipcast's in every scheduled run. The current folder is
    dropped from sys.path, unless it is the folder holding vipcast's own packages (a checkout run
    without an install). Imported as flows.orchestration (the CLI, a notebook), sys.path is left alone."""
    if __name__ == "flows.orchestration":
        return
    here = os.path.realpath(os.getcwd())
    if here == os.path.dirname(os.path.dirname(os.path.realpath(__file__))):
        return
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or os.curdir) != here]


_without_the_current_folder()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows import pipeline  # noqa: E402

IO_RETRIES = 2
IO_RETRY_DELAY_SECONDS = 10


# Errors of the input, the config or the workspace's contents fail the same way every time: an I/O
# step retries anything else (a busy store, a network or database hiccup), not these. Retrying
# "no champion model" twice took 54 s to fail.
# A failed import fails again (a stop during an extension's first import left it half-registered:
# "initialization failed", then "type ExplainType is already registered" on each retry).
HOPELESS_ERRORS = (ValueError, LookupError, TypeError, PermissionError, ImportError)


def worth_retrying(task, task_run, state) -> bool:
    """Prefect's retry condition: a failure whose exception may pass on a second try (not one that a
    stop, SIGTERM or Ctrl-C, caused: the command is being stopped)."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return not isinstance(error, HOPELESS_ERRORS) and not caused_by_a_stop(error)


def caused_by_a_stop(error: BaseException | None) -> bool:
    """Whether a SIGTERM (the CLI's Terminated) or a Ctrl-C is in `error`'s chain of causes, or the
    process received a SIGTERM at all (the chain does not always survive: a task's stored failure)."""
    from flows.cli import stop_in_chain, stop_received

    return stop_received() is not None or (error is not None and stop_in_chain(error) is not None)


class PrefectUnavailable(RuntimeError):
    """Prefect's API did not answer: the server at PREFECT_API_URL, or the temporary one in time."""


def check_prefect_home(instead: str = ", or run without --prefect") -> None:
    """Without PREFECT_API_URL, Prefect's temporary server keeps its database in PREFECT_HOME
    (~/.prefect): a home it cannot write failed after ~100 s and 2,500 lines of tracebacks, as "Prefect's
    API cannot be reached" with advice to wait longer. PermissionError naming the folder, at once."""
    import tempfile
    from pathlib import Path

    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        return
    home = Path(settings.home).expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as error:
        raise PermissionError(
            f"{home}: Prefect keeps its database in PREFECT_HOME and cannot write there ({error.strerror}): set "
            f"PREFECT_HOME to a writable folder{instead}"
        ) from None


#: Prefect's messages when its API cannot be reached (RuntimeError in Prefect 3).
UNREACHABLE_API = ("Failed to reach API at", "Timed out while attempting to connect to ephemeral Prefect API server")


def _die_with_parent() -> None:
    """In the temporary server's process, before it starts: end it (SIGTERM) when the vipcast process that
    started it ends, however it ends (Linux's parent-death signal; elsewhere, Prefect's own stop at exit)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def server_outside_the_process_group():
    """Start Prefect's temporary server in a session of its own while the flow runs.

    Ctrl-C in a terminal, `timeout` and a process-group kill signal the whole group: the server died
    with the flow still running, whose client then retried the dead API for ~75 s before the run ended,
    after a SIGTERM as "internal error (ConnectError)". Outside the group, only vipcast gets the signal,
    unwinds (the flow run is reported as it ends) and Prefect stops the server at exit; the parent-death
    signal ends the server if vipcast is killed outright.
    """
    import subprocess
    import types

    from prefect.server.api import server as server_module

    def popen(*args, **kwargs):
        kwargs.setdefault("start_new_session", True)
        kwargs.setdefault("preexec_fn", _die_with_parent)
        return subprocess.Popen(*args, **kwargs)

    original = server_module.subprocess
    server_module.subprocess = types.SimpleNamespace(**{**vars(subprocess), "Popen": popen})
    try:
        yield
    finally:
        server_module.subprocess = original


def run_flow(flow_function, **parameters) -> dict[str, Any]:
    """Run a flow; PrefectUnavailable (one line, the machine's: exit 1) when Prefect's API cannot be reached.

    DuckDB and Ibis are imported first: the steps need them anyway, and a stop that landed in an
    extension's first import, inside the flow's first task, came back as an ImportError.
    """
    import duckdb  # noqa: F401
    import ibis  # noqa: F401

    check_prefect_home()
    try:
        with server_outside_the_process_group():
            return flow_function(**parameters)
    except RuntimeError as error:
        message = str(error)
        if any(marker in message for marker in UNREACHABLE_API):
            raise PrefectUnavailable(f"Prefect's API cannot be reached: {message.strip().splitlines()[0]}") from error
        raise


class _NoTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def console_without_tracebacks() -> None:
    """Prefect's flow and task run loggers keep their one-line failure messages but drop tracebacks
    (a `vipcast ... --prefect` failure printed one before the CLI's own line; --debug keeps it)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _NoTraceback) for existing in logger.filters):
            logger.addFilter(_NoTraceback())


class PrefectSteps:
    """Runs each step as a Prefect task named after its function; I/O steps retry transient failures."""

    def __call__(self, label: str, function, *args, io: bool = False, **kwargs):
        runner = task(
            function,
            name=function.__name__,
            task_run_name=label,
            retries=IO_RETRIES if io else 0,
            retry_delay_seconds=IO_RETRY_DELAY_SECONDS,
            retry_condition_fn=worth_retrying,
            cache_policy=NO_CACHE,  # inputs are connections and frames: nothing to hash or reuse
        )
        return runner(*args, **kwargs)


def log_warnings(warnings) -> None:
    """The run's warnings as WARNING lines of the flow run's log (the UI, `prefect flow-run logs`, alerts):
    a scheduled run's stale-feed warning was only in its artifact."""
    logger = get_run_logger()
    for warning in warnings:
        logger.warning(warning)


def _date(value: str | date | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


@flow(name="vipcast-train", log_prints=True)
def train(
    data: str | None = None,
    as_of: str | None = None,
    horizon_days: int | None = None,
    workdir: str | None = None,
    config: str | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """Build features, backtest the candidates, fit, log to MLflow, promote if no worse."""
    ctx = pipeline.Context.create(workdir, config, horizon_days=horizon_days, engine=engine)
    summary = pipeline.run_train(ctx, data, _date(as_of), step=PrefectSteps())
    log_warnings(summary.warnings)
    create_markdown_artifact(summary.markdown(), key="vipcast-train-summary", description="vipcast training run")
    return {
        "as_of": str(summary.as_of), "model_version": summary.model_version, "promoted": summary.promoted,
        "promotion": summary.promotion, "summary": str(summary),
    }


@flow(name="vipcast-score", log_prints=True)
def score(
    data: str | None = None,
    as_of: str | None = None,
    workdir: str | None = None,
    config: str | None = None,
    top_rising_stars: int = 20,
    engine: str | None = None,
    scheduled: bool = False,
) -> dict[str, Any]:
    """Load the champion, score everyone as of a date, nominate, and write the outputs.

    `scheduled` (the weekly deployment sets it): warn when the data end long before today, since a
    scheduled run takes the data's last date as its as-of and cannot see a stopped feed otherwise.
    """
    ctx = pipeline.Context.create(workdir, config, engine=engine)
    today = datetime.now(ZoneInfo(ctx.config.schedule.timezone)).date() if scheduled else None
    summary = pipeline.run_score(ctx, data, _date(as_of), step=PrefectSteps(), today=today)
    log_warnings(summary.warnings)
    create_markdown_artifact(f"# vipcast scoring run\n\n```\n{summary}\n```\n", key="vipcast-score-summary", description="vipcast scoring run")
    top = summary.rising_stars.head(top_rising_stars)
    if len(top):
        create_table_artifact(top.astype(str).to_dict(orient="records"), key="vipcast-top-rising-stars", description="top rising stars")
    return {
        "run_id": summary.run_id, "as_of": str(summary.as_of), "n_customers": summary.n_customers,
        "tiers": summary.tier_counts, "summary": str(summary),
    }
