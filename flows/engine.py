"""Where the Ibis expressions run: DuckDB in process (the default), or Spark through Ibis's PySpark backend.

The feature and ingest code is the same on both (DESIGN.md "Engines"); only the connection and the
way raw files are read differ. A Spark session is built from the config's `engine` section:
`spark_master` (`local[*]`, `spark://host:7077`, `yarn`, `k8s://...`) and `spark_conf` (any Spark
property). The session time zone is always UTC, so naive timestamps mean the same instant on both
engines, whatever the machines' time zones.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import ibis

ENGINES = ("duckdb", "spark")
APP_NAME = "vipcast"

# Properties every vipcast Spark session gets (the config may override all but the time zone).
SPARK_DEFAULTS = {
    # pandas <-> Spark through Arrow: built-in sources and scoring batches cross this boundary.
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Spark's console progress bar ("[Stage 43:>  (0 + 1) / 1]") draws over vipcast's step lines;
    # the Spark UI (or spark.ui.showConsoleProgress=true in the config) shows the stages instead.
    "spark.ui.showConsoleProgress": "false",
    # A feature table's plan has more fields than Spark's default 25 and warned "Truncated the string
    # representation of a plan" into the step lines; this only sizes plan strings in logs.
    "spark.sql.debug.maxToStringFields": "200",
}
SPARK_FIXED = {"spark.sql.session.timeZone": "UTC"}


def local_defaults(master: str) -> dict[str, str]:
    """On a local master, a few shuffle partitions per core instead of Spark's 200 (each a task)."""
    if not master.startswith("local"):
        return {}
    return {"spark.sql.shuffle.partitions": str(4 * (os.cpu_count() or 2)), "spark.ui.enabled": "false"}


def session_properties(master: str, conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Spark properties vipcast sets: its defaults, the local ones, `conf` over them, then the fixed ones."""
    return {**SPARK_DEFAULTS, **local_defaults(master), **dict(conf or {}), **SPARK_FIXED}


class SparkStartError(ValueError):
    """The Spark session of the config could not start or run a job (bad master URL or spark_conf)."""


def java_reason(exc: BaseException) -> str:
    """The innermost cause a Py4J error names ("Caused by: java.lang.X: reason", as 'X: reason'), else
    its first line ("Error while instantiating 'org.apache.spark.sql.internal.SessionStateBuilder'" hid
    "spark.sql.shuffle.partitions should be int, but was abc")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    reason = causes[-1] if causes else (lines[0] if lines else type(exc).__name__)
    kind, separator, message = reason.partition(": ")
    return f"{kind.rsplit('.', 1)[-1]}: {message}" if separator and "." in kind and " " not in kind else reason


# Master URLs Spark accepts (a typo like `foo` failed with "Java gateway process exited").
MASTER_URL = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[.+\]|spark://.+|yarn|k8s://.+|mesos://.+)$")
MASTER_CONNECT_SECONDS = 5.0


def unreachable(host: str, port: int, seconds: float = MASTER_CONNECT_SECONDS) -> str | None:
    """Why nothing answers a TCP connection to host:port within `seconds` (None when something does)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=seconds).close()
        return None
    except socket.gaierror:
        return f"no host named {host!r} is known"
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or type(exc).__name__})"


def check_master(master: str) -> None:
    """Refuse a master that is no Spark master URL, or a standalone master (spark://host:port[,host:port])
    no listed host answers, with the reason: Spark retried for over a minute and buried the reason
    (UnknownHostException, Connection refused) in Java stack traces above a generic last line."""
    if not MASTER_URL.match(master):
        raise SparkStartError(f"engine.spark_master {master!r} is not a Spark master URL: use local[*], local[N], "
                              "spark://host:7077, yarn or k8s://https://host:port")
    if not master.startswith("spark://"):
        return
    problems = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or (address.startswith("[") and not host.endswith("]")):
            host, port = address, "7077"
        problem = unreachable(host.removeprefix("[").removesuffix("]"), int(port))  # an IPv6 host is bracketed
        if problem is None:
            return
        problems.append(problem)
    raise SparkStartError(f"cannot reach engine.spark_master {master!r}: {'; '.join(problems)}")


def spark_session(master: str = "local[*]", conf: Mapping[str, str] | None = None, app_name: str = APP_NAME):
    """A SparkSession for vipcast: `master`, the defaults, `conf`, and the UTC session time zone.

    Spark keeps one session per process: if one is already running, it is reused and `conf` is
    applied to it where Spark allows changing a property at run time.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the spark extra is optional
        raise RuntimeError("the Spark engine needs pyspark: pip install 'vipcast[spark]' (and Java 17)") from exc

    if master.startswith("local"):
        # Local Python workers (UDF scoring) run in this interpreter's environment, not whatever
        # `python3` is on the PATH (PySpark reads the variable when the context starts). On a
        # cluster, point PYSPARK_PYTHON at the executors' Python that has vipcast installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    check_master(master)
    properties = session_properties(master, conf)
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in properties.items():
        builder = builder.config(key, str(value))
    try:
        session = builder.getOrCreate()
        session.range(1).count()  # a master that cannot run a job fails here, not mid-run
    except Exception as exc:  # Py4J and PySpark errors; the JVM's own reason is in its log above
        raise SparkStartError(
            f"cannot start Spark with engine.spark_master {master!r}"
            + (f" and engine.spark_conf keys {', '.join(sorted(conf))}" if conf else "")
            + f": {java_reason(exc)[:300]} (more in Spark's log lines above)"
        ) from exc
    for key, value in properties.items():
        if session.conf.isModifiable(key):
            session.conf.set(key, str(value))
    quiet_known_spark_warnings(session)
    return session


# Spark's warnings that vipcast expects and documents (docs/scaling.md): the RFM ranks are global
# windows, and each logged "No Partition Defined for Window operation!" through the step lines.
KNOWN_SPARK_WARNINGS = ("org.apache.spark.sql.execution.window.WindowExec",)


def quiet_known_spark_warnings(session) -> None:
    """Raise the log level of KNOWN_SPARK_WARNINGS' loggers to ERROR (Spark's log4j2 in the driver JVM)."""
    try:
        jvm = session.sparkContext._jvm
        for name in KNOWN_SPARK_WARNINGS:
            jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, jvm.org.apache.logging.log4j.Level.ERROR)
    except Exception:  # a cluster's own logging setup may not allow it: the warnings then stay
        pass


def duckdb_connection():
    """An in-process DuckDB database for vipcast's queries, with DuckDB's progress bar off.

    DuckDB draws a progress bar on the terminal for any statement over two seconds; it would
    break into vipcast's own step lines ("[3/6] building features ... done in 6.7 s").
    """
    import duckdb

    con = ibis.duckdb.connect()
    try:
        con.raw_sql("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        # In Jupyter DuckDB draws the bar as a widget, not over any step line, and refuses to
        # change the setting at all when ipywidgets is not installed.
        pass
    return con


def connect(engine: str = "duckdb", spark_master: str = "local[*]", spark_conf: Mapping[str, str] | None = None):
    """An Ibis backend for `engine`: an in-process DuckDB database, or Spark via a session built from the config."""
    if engine == "duckdb":
        return duckdb_connection()
    if engine == "spark":
        return ibis.pyspark.connect(spark_session(spark_master, spark_conf))
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def connect_config(engine_config: Any):
    """`connect` from a `configs.schema.EngineConfig`."""
    return connect(engine_config.name, engine_config.spark_master, dict(engine_config.spark_conf))


def engine_of(backend) -> str:
    """"duckdb" or "spark" for an Ibis backend made by `connect`."""
    name = getattr(backend, "name", None)
    if name == "duckdb":
        return "duckdb"
    if name == "pyspark":
        return "spark"
    raise ValueError(f"unsupported Ibis backend {name!r}: vipcast runs on {', '.join(ENGINES)}")


def active_spark_session():
    """The SparkSession behind a `connect("spark")` backend (Spark keeps one per process)."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        raise RuntimeError("no active Spark session: connect with flows.engine.connect('spark', ...) first")
    return session
