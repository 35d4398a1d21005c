"""The outputs store: every scoring run, kept whole, keyed by run id and as-of date.

A store is an embedded DuckDB file (the default, ``<workdir>/outputs.duckdb``, written with the
``duckdb`` package directly) or any SQLAlchemy URL (PostgreSQL through psycopg 3:
``postgresql+psycopg://user:password@host/db``)::

    store = OutputsStore(workdir / "outputs.duckdb")        # or OutputsStore("postgresql+psycopg://...")
    store.write_run(run_info, {"scores": scores, "tiers": tiers, "rising_stars": rising_stars, ...})
    store.read_list("rising_stars", top=100, tier="Gold")    # latest run by default
    store.export_run(run_info.run_id, out_dir, formats=("csv", "parquet"))

Tables
------
``runs`` holds one row per run (the fields of :class:`RunInfo`, ``reconciliation`` as JSON text,
and ``lists``: JSON ``{name: {"columns": [...], "rows": n}}``). Each list in :data:`LIST_NAMES`
(``scores, tiers, rising_stars, at_risk, events, economics``) is one table holding the rows of
every run: ``run_id``, ``as_of``, ``row_order`` (the row's position in the list, best first),
then the list's own columns. Tables are created on first write; columns that appear later are
added, and a column whose values outgrow its type is widened (integer -> double -> text,
date -> timestamp -> text). Marketing can query these tables directly, e.g.
``SELECT * FROM rising_stars WHERE run_id = (...) ORDER BY row_order``. On PostgreSQL the tables
go in the connection's current schema (set ``options=-csearch_path=...`` in the URL to choose one).

Atomicity
---------
A run's list rows and its ``runs`` row are written in ONE transaction, so a run is visible only
once committed; a writer that fails or is killed (even with SIGKILL) leaves the previous runs
whole and no partial run. Writing a ``run_id`` that already exists replaces that run (delete and
insert in the same transaction), so re-running a scoring run is idempotent. Exports are written
into a temporary folder next to the target, fsynced, then renamed over the old files.

Concurrency
-----------
DuckDB allows one writing process and locks the file while it is open, so the store never holds
a connection between calls: each read or write opens the file, does its work and closes it,
retrying for up to ``lock_timeout`` seconds while another process holds the lock (then
:class:`StoreBusy`). Readers such as the web app use :meth:`OutputsStore.read_only_view`
(``read_only=True``: DuckDB opens the file read-only, PostgreSQL runs read-only transactions).
PostgreSQL writers take a transaction-level advisory lock so two writers never interleave their
schema changes.

Reads
-----
:meth:`~OutputsStore.runs`, :meth:`~OutputsStore.latest_run`, :meth:`~OutputsStore.get_run`,
:meth:`~OutputsStore.find_run` (by run id or as-of date), :meth:`~OutputsStore.previous_run`,
:meth:`~OutputsStore.read_list`, :meth:`~OutputsStore.customer_history`,
:meth:`~OutputsStore.customer_rows`, :meth:`~OutputsStore.tier_summary`,
:meth:`~OutputsStore.tier_movement`. "Latest" orders runs by as-of date, then creation time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# `state` is the tier state (tier, grace_until, flags) the next run starts from: stored, not exported.
LIST_NAMES = ("scores", "tiers", "rising_stars", "at_risk", "events", "economics", "state")
INTERNAL_LISTS = ("state",)
"""The lists a run may hold, each stored as one table of that name."""

RUNS_TABLE = "runs"
RESERVED_COLUMNS = ("run_id", "as_of", "row_order")
"""Columns the store adds in front of every list's own columns."""

TIER_COLUMNS = ("tier", "current_tier", "to_tier")
"""The column a tier filter applies to, first one present: the customer's current tier."""

EXPORT_FORMATS = ("csv", "parquet")

_DUCKDB_LOCK_MESSAGE = "Could not set lock"
_PG_ADVISORY_LOCK_KEY = 0x76697063  # "vipc": serialises writers of one PostgreSQL store


class StoreError(Exception):
    """Base class of the outputs store's errors; the message is meant for users."""


class NoRunsYet(StoreError, LookupError):
    """The store holds no scoring run."""

    def __init__(self) -> None:
        super().__init__("no scoring run yet: run `vipcast score`")


class RunNotFound(StoreError, LookupError):
    """No run matches the requested run id or as-of date."""


class UnknownList(StoreError, ValueError):
    """A list name that is not one of LIST_NAMES."""


class StoreBusy(StoreError):
    """Another process held the DuckDB file's lock for longer than the lock timeout."""


@dataclass(frozen=True)
class RunInfo:
    """One scoring run's identity and provenance.

    ``reconciliation`` is the ingest reconciliation report as JSON text. ``lists`` maps each list
    of the run to its row count; the store fills it on read and ignores it on write.
    ``created_at`` is stored in UTC (a naive value is taken as UTC) and read back timezone-aware.
    """

    run_id: str
    as_of: date
    created_at: datetime
    model_name: str
    model_version: str
    horizon_days: int
    n_customers: int
    data_digest: str
    config_digest: str
    reconciliation: str = "{}"
    lists: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (dates as ISO text, reconciliation parsed)."""
        fields = asdict(self)
        fields["as_of"] = self.as_of.isoformat()
        fields["created_at"] = self.created_at.isoformat()
        fields["reconciliation"] = json.loads(self.reconciliation or "{}")
        return fields


def list_name(name: str) -> str:
    """The canonical name of a list (``rising-stars`` -> ``rising_stars``); UnknownList if none."""
    canonical = name.strip().lower().replace("-", "_")
    if canonical not in LIST_NAMES:
        raise UnknownList(f"unknown list {name!r}: choose one of {', '.join(LIST_NAMES)}")
    return canonical


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# Logical column types and how values widen when a later run brings wider values.
_WIDENING = {
    ("boolean", "bigint"): "bigint",
    ("boolean", "double"): "double",
    ("bigint", "double"): "double",
    ("date", "timestamp"): "timestamp",
}
_SQL_TYPES = {
    "duckdb": {"boolean": "BOOLEAN", "bigint": "BIGINT", "double": "DOUBLE", "date": "DATE",
               "timestamp": "TIMESTAMP", "text": "VARCHAR"},
    "sql": {"boolean": "BOOLEAN", "bigint": "BIGINT", "double": "DOUBLE PRECISION", "date": "DATE",
            "timestamp": "TIMESTAMP", "text": "TEXT"},
}


def _wider_type(old: str, new: str) -> str:
    if old == new:
        return old
    pair = tuple(sorted((old, new), key=("boolean", "bigint", "double", "date", "timestamp", "text").index))
    return _WIDENING.get(pair, "text")


def _logical_type_of_sql(sql_type: str) -> str:
    sql_type = sql_type.upper()
    if sql_type.startswith("BOOL"):
        return "boolean"
    if any(word in sql_type for word in ("INT", "SERIAL")):
        return "bigint"
    if any(word in sql_type for word in ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC")):
        return "double"
    if sql_type.startswith("TIMESTAMP") or sql_type.startswith("DATETIME"):
        return "timestamp"
    if sql_type == "DATE":
        return "date"
    return "text"


def _logical_type_of_series(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "double" if dtype == np.uint64 else "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if isinstance(dtype, pd.CategoricalDtype):
        return _logical_type_of_series(series.astype(dtype.categories.dtype))
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        return {"boolean": "boolean", "integer": "bigint", "floating": "double",
                "mixed-integer-float": "double", "date": "date", "datetime": "timestamp",
                "datetime64": "timestamp"}.get(inferred, "text")
    return "text"


def _column_for_storage(series: pd.Series, logical_type: str) -> pd.Series:
    """The series as values every backend takes for its logical type (NaN stays missing)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(series.dtype.categories.dtype)
    if logical_type == "text":
        if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
            if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
                return series
        return series.astype(object).where(series.notna(), None).map(
            lambda value: None if value is None else str(value)
        )
    if logical_type == "timestamp" and pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:
            return series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series
    if logical_type == "timestamp":
        return pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return series


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _as_utc(value: Any) -> datetime:
    moment = pd.Timestamp(value).to_pydatetime()
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class _Backend:
    """What the store needs from a database: transactions, schema look-ups, bulk inserts."""

    dialect: str

    def connect(self, *, write: bool) -> contextlib.AbstractContextManager[_Connection | None]:
        raise NotImplementedError


class _Connection:
    """One open connection (inside a transaction when writing)."""

    def fetch_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> logical type of a table, in table order; empty if there is no table."""
        raise NotImplementedError

    def insert_df(self, table: str, frame: pd.DataFrame, run_id: str, as_of: date) -> None:
        """Append a list's rows, preceded by run_id, as_of and row_order (0, 1, ...)."""
        raise NotImplementedError

    def lock_for_write(self) -> None:
        """Serialise writers (DuckDB's file lock already does)."""


def _duckdb_params(sql: str) -> str:
    return re.sub(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)", r"$\1", sql)


class _DuckDBConnection(_Connection):
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def fetch_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        # Through Arrow: faster than .df() and DATE columns come back as dates, as from PostgreSQL.
        return self._connection.execute(_duckdb_params(sql), dict(params or {})).to_arrow_table().to_pandas()

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._connection.execute(_duckdb_params(sql), dict(params or {}))

    def columns(self, table: str) -> dict[str, str]:
        rows = self._connection.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = $table AND schema_name = current_schema() ORDER BY column_index",
            {"table": table},
        ).fetchall()
        return {name: _logical_type_of_sql(sql_type) for name, sql_type in rows}

    def insert_df(self, table: str, frame: pd.DataFrame, run_id: str, as_of: date) -> None:
        import pyarrow as pa

        arrow_table = pa.Table.from_pandas(frame, preserve_index=False)
        arrow_table = arrow_table.append_column("row_order", pa.array(np.arange(len(frame), dtype=np.int64)))
        view = "_vipcast_insert"
        self._connection.register(view, arrow_table)
        try:
            columns = ", ".join(_quote(str(column)) for column in frame.columns)
            self._connection.execute(
                f"INSERT INTO {_quote(table)} (run_id, as_of, row_order{', ' if columns else ''}{columns}) "
                f"SELECT $run_id, $as_of, row_order{', ' if columns else ''}{columns} FROM {view}",
                {"run_id": run_id, "as_of": as_of},
            )
        finally:
            self._connection.unregister(view)


class _DuckDBBackend(_Backend):
    dialect = "duckdb"

    def __init__(self, path: Path, *, read_only: bool, lock_timeout: float) -> None:
        self.path = path
        self.read_only = read_only
        self.lock_timeout = lock_timeout

    def _open(self, *, write: bool) -> Any:
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        pause = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=not write)
            except duckdb.IOException as error:
                if _DUCKDB_LOCK_MESSAGE not in str(error) or time.monotonic() >= deadline:
                    if _DUCKDB_LOCK_MESSAGE in str(error):
                        raise StoreBusy(
                            f"the outputs store {self.path} is locked by another process "
                            f"(a scoring run writing?) for more than {self.lock_timeout:g} s; try again"
                        ) from error
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    @contextlib.contextmanager
    def connect(self, *, write: bool) -> Iterator[_DuckDBConnection | None]:
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            yield None
            return
        connection = self._open(write=write)
        try:
            if write:
                connection.execute("BEGIN TRANSACTION")
                try:
                    yield _DuckDBConnection(connection)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            else:
                yield _DuckDBConnection(connection)
        finally:
            connection.close()


class _SqlConnection(_Connection):
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def fetch_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        from sqlalchemy import text

        result = self._connection.execute(text(sql), dict(params or {}))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        from sqlalchemy import text

        self._connection.execute(text(sql), dict(params or {}))

    def columns(self, table: str) -> dict[str, str]:
        from sqlalchemy import inspect

        inspector = inspect(self._connection)
        if not inspector.has_table(table):
            return {}
        return {column["name"]: _logical_type_of_sql(str(column["type"])) for column in inspector.get_columns(table)}

    def lock_for_write(self) -> None:
        if self._connection.dialect.name == "postgresql":
            self.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _PG_ADVISORY_LOCK_KEY})

    def insert_df(self, table: str, frame: pd.DataFrame, run_id: str, as_of: date) -> None:
        if frame.empty:
            return
        values = frame.astype(object).where(frame.notna(), None)
        records = (
            (run_id, as_of, row_order, *record)
            for row_order, record in enumerate(values.itertuples(index=False, name=None))
        )
        columns = ["run_id", "as_of", "row_order", *map(str, frame.columns)]
        if self._connection.dialect.name == "postgresql":
            self._copy(table, columns, records)
            return
        from sqlalchemy import text

        names = [f"c{position}" for position in range(len(columns))]
        column_list = ", ".join(_quote(column) for column in columns)
        statement = text(f"INSERT INTO {_quote(table)} ({column_list}) VALUES ({', '.join(':' + n for n in names)})")
        while batch := [dict(zip(names, record, strict=True)) for record in itertools.islice(records, 10_000)]:
            self._connection.execute(statement, batch)

    def _copy(self, table: str, columns: Sequence[str], records: Iterator[tuple]) -> None:
        raw = self._connection.connection.driver_connection
        column_list = ", ".join(_quote(column) for column in columns)
        with raw.cursor() as cursor, cursor.copy(f"COPY {_quote(table)} ({column_list}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)


_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> Any:
    """One SQLAlchemy engine (one connection pool) per URL in this process."""
    from sqlalchemy import create_engine

    with _ENGINES_LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = create_engine(url, pool_pre_ping=True)
        return _ENGINES[url]


class _SqlBackend(_Backend):
    def __init__(self, url: str, *, read_only: bool) -> None:
        self.url = url
        self.read_only = read_only
        self.engine = _engine(url)
        self.dialect = self.engine.dialect.name

    @contextlib.contextmanager
    def connect(self, *, write: bool) -> Iterator[_SqlConnection]:
        if write:
            with self.engine.begin() as connection:
                yield _SqlConnection(connection)
            return
        engine = self.engine
        if self.dialect == "postgresql" and self.read_only:
            engine = engine.execution_options(postgresql_readonly=True)
        with engine.connect() as connection:
            yield _SqlConnection(connection)
            connection.rollback()


def _is_url(url_or_path: str | os.PathLike[str]) -> bool:
    return isinstance(url_or_path, str) and "://" in url_or_path


class OutputsStore:
    """Scoring runs and their lists in DuckDB (a path) or any SQLAlchemy database (a URL).

    Parameters
    ----------
    url_or_path
        A DuckDB file path (``duckdb:///path`` also works) or a SQLAlchemy URL.
    read_only
        Open for reading only: writes raise, DuckDB opens the file read-only, and a DuckDB file
        that does not exist yet reads as an empty store.
    lock_timeout
        Seconds to wait for another process's DuckDB lock before :class:`StoreBusy`.
    """

    def __init__(self, url_or_path: str | os.PathLike[str], *, read_only: bool = False,
                 lock_timeout: float = 30.0) -> None:
        self.url_or_path = url_or_path
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self._local = threading.local()
        if _is_url(url_or_path) and not str(url_or_path).startswith("duckdb://"):
            self._backend: _Backend = _SqlBackend(str(url_or_path), read_only=read_only)
        else:
            path = str(url_or_path).removeprefix("duckdb:///")
            self._backend = _DuckDBBackend(Path(path), read_only=read_only, lock_timeout=lock_timeout)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"OutputsStore({self.description!r}{mode})"

    @property
    def description(self) -> str:
        """Where the store lives, without any password."""
        if isinstance(self._backend, _SqlBackend):
            return self._backend.engine.url.render_as_string(hide_password=True)
        return str(self._backend.path)

    @contextlib.contextmanager
    def session(self) -> Iterator[OutputsStore]:
        """Share one read connection among the reads of this thread inside the block.

        The web app wraps each request in a session: one brief open of the store per request
        instead of one per read. Do not hold a session open between requests (DuckDB's lock).
        """
        if getattr(self._local, "active", False):
            yield self
            return
        with self._backend.connect(write=False) as connection:
            self._local.connection = connection
            self._local.active = True
            try:
                yield self
            finally:
                self._local.connection = None
                self._local.active = False

    @contextlib.contextmanager
    def _reading(self) -> Iterator[_Connection | None]:
        if getattr(self._local, "active", False):
            yield self._local.connection
            return
        with self._backend.connect(write=False) as connection:
            yield connection

    def read_only_view(self, *, lock_timeout: float = 5.0) -> OutputsStore:
        """The same store opened read-only (what the web app uses)."""
        return OutputsStore(self.url_or_path, read_only=True, lock_timeout=lock_timeout)

    # Writing

    def write_run(self, run: RunInfo, tables: Mapping[str, pd.DataFrame]) -> None:
        """Store one run and its lists in one transaction, replacing a run with the same run_id."""
        if self.read_only:
            raise StoreError("this outputs store was opened read-only")
        lists = {list_name(name): frame for name, frame in tables.items()}
        for name, frame in lists.items():
            clashing = [column for column in frame.columns if column in RESERVED_COLUMNS]
            if clashing:
                raise StoreError(f"list {name!r} has column(s) {clashing} that the store reserves for itself")
            if len(set(frame.columns)) != len(frame.columns):
                raise StoreError(f"list {name!r} has duplicate column names")
        as_of = _as_date(run.as_of)
        storable = {
            name: pd.DataFrame(
                {column: _column_for_storage(frame[column], _logical_type_of_series(frame[column]))
                 for column in frame.columns},
                index=frame.index,
            )
            for name, frame in lists.items()
        }
        summary = {name: {"columns": [str(column) for column in frame.columns], "rows": len(frame)}
                   for name, frame in lists.items()}
        with self._backend.connect(write=True) as connection:
            connection.lock_for_write()
            self._ensure_runs_table(connection)
            for name, frame in storable.items():
                self._ensure_list_table(connection, name, frame)
            for name in LIST_NAMES:
                if connection.columns(name):
                    connection.execute(f"DELETE FROM {_quote(name)} WHERE run_id = :run_id", {"run_id": run.run_id})
            connection.execute(f"DELETE FROM {RUNS_TABLE} WHERE run_id = :run_id", {"run_id": run.run_id})
            for name, frame in storable.items():
                connection.insert_df(name, frame.reset_index(drop=True), run.run_id, as_of)
            connection.execute(
                f"INSERT INTO {RUNS_TABLE} (run_id, as_of, created_at, model_name, model_version, horizon_days, "
                "n_customers, data_digest, config_digest, reconciliation, lists) VALUES (:run_id, :as_of, "
                ":created_at, :model_name, :model_version, :horizon_days, :n_customers, :data_digest, "
                ":config_digest, :reconciliation, :lists)",
                {
                    "run_id": run.run_id, "as_of": as_of, "created_at": _utc_naive(run.created_at),
                    "model_name": run.model_name, "model_version": str(run.model_version),
                    "horizon_days": int(run.horizon_days), "n_customers": int(run.n_customers),
                    "data_digest": run.data_digest, "config_digest": run.config_digest,
                    "reconciliation": run.reconciliation or "{}", "lists": json.dumps(summary),
                },
            )

    def _sql_type(self, logical_type: str) -> str:
        return _SQL_TYPES["duckdb" if self._backend.dialect == "duckdb" else "sql"][logical_type]

    def _ensure_runs_table(self, connection: _Connection) -> None:
        if connection.columns(RUNS_TABLE):
            return
        text_type, integer_type = self._sql_type("text"), self._sql_type("bigint")
        connection.execute(
            f"CREATE TABLE {RUNS_TABLE} (run_id {text_type} NOT NULL, as_of DATE NOT NULL, "
            f"created_at {self._sql_type('timestamp')} NOT NULL, model_name {text_type}, model_version {text_type}, "
            f"horizon_days {integer_type}, n_customers {integer_type}, data_digest {text_type}, "
            f"config_digest {text_type}, reconciliation {text_type}, lists {text_type})"
        )

    def _ensure_list_table(self, connection: _Connection, name: str, frame: pd.DataFrame) -> None:
        wanted = {"run_id": "text", "as_of": "date", "row_order": "bigint"}
        wanted |= {str(column): _logical_type_of_series(frame[column]) for column in frame.columns}
        existing = connection.columns(name)
        table = _quote(name)
        if not existing:
            columns = ", ".join(f"{_quote(column)} {self._sql_type(kind)}" for column, kind in wanted.items())
            connection.execute(f"CREATE TABLE {table} ({columns})")
            if self._backend.dialect == "postgresql":
                connection.execute(f"CREATE INDEX {_quote(name + '_run_id')} ON {table} (run_id, row_order)")
                if "customer_id" in wanted:
                    connection.execute(f"CREATE INDEX {_quote(name + '_customer_id')} ON {table} (customer_id)")
            return
        for column, kind in wanted.items():
            if column not in existing:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(column)} {self._sql_type(kind)}")
                continue
            if frame.get(column) is not None and frame[column].isna().all():
                continue
            widened = _wider_type(existing[column], kind)
            if widened == existing[column] == "text" != kind and self._only_nulls(connection, name, column):
                # Typed only by empty lists so far (an all-null column reads as text): take the real type.
                widened = kind
            if widened != existing[column]:
                sql_type = self._sql_type(widened)
                connection.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {_quote(column)} TYPE {sql_type} "
                    f"USING CAST({_quote(column)} AS {sql_type})"
                )

    @staticmethod
    def _only_nulls(connection: _Connection, table: str, column: str) -> bool:
        frame = connection.fetch_df(f"SELECT count(*) AS n FROM {_quote(table)} WHERE {_quote(column)} IS NOT NULL")
        return int(frame.iloc[0, 0]) == 0

    # Runs

    def runs(self) -> list[RunInfo]:
        """Every committed run, latest first (by as-of date, then creation time)."""
        with self._reading() as connection:
            return [run for run, _ in self._runs(connection)]

    def _runs(self, connection: _Connection | None) -> list[tuple[RunInfo, dict[str, list[str]]]]:
        """Every run, latest first, with the columns of each of its lists."""
        if connection is None or not connection.columns(RUNS_TABLE):
            return []
        frame = connection.fetch_df(f"SELECT * FROM {RUNS_TABLE} ORDER BY as_of DESC, created_at DESC, run_id DESC")
        return [self._run_from_row(row) for row in frame.to_dict("records")]

    @staticmethod
    def _run_from_row(row: Mapping[str, Any]) -> tuple[RunInfo, dict[str, list[str]]]:
        lists = json.loads(row.get("lists") or "{}")
        run = RunInfo(
            run_id=str(row["run_id"]),
            as_of=_as_date(row["as_of"]),
            created_at=_as_utc(row["created_at"]),
            model_name=str(row["model_name"]),
            model_version=str(row["model_version"]),
            horizon_days=int(row["horizon_days"]),
            n_customers=int(row["n_customers"]),
            data_digest=str(row["data_digest"]),
            config_digest=str(row["config_digest"]),
            reconciliation=row["reconciliation"] or "{}",
            lists={name: int(entry["rows"]) for name, entry in lists.items()},
        )
        return run, {name: list(entry["columns"]) for name, entry in lists.items()}

    def _run_columns(self, connection: _Connection | None, run_id: str) -> dict[str, list[str]]:
        for run, columns in self._runs(connection):
            if run.run_id == run_id:
                return columns
        raise RunNotFound(f"no scoring run with run_id {run_id!r}")

    def latest_run(self) -> RunInfo | None:
        """The latest committed run, or None in an empty store."""
        runs = self.runs()
        return runs[0] if runs else None

    def get_run(self, run_id: str) -> RunInfo:
        """The run with this id; RunNotFound if there is none."""
        for run in self.runs():
            if run.run_id == run_id:
                return run
        raise RunNotFound(f"no scoring run with run_id {run_id!r}")

    def find_run(self, run_id: str | None = None, as_of: date | str | None = None) -> RunInfo:
        """The run by id, else the latest run of an as-of date, else the latest run.

        Raises NoRunsYet in an empty store and RunNotFound when nothing matches.
        """
        return _pick_run(self.runs(), run_id, as_of)

    def previous_run(self, run: RunInfo) -> RunInfo | None:
        """The latest run with an earlier as-of date than ``run`` (for movement between runs)."""
        earlier = [candidate for candidate in self.runs() if candidate.as_of < run.as_of]
        return earlier[0] if earlier else None

    # Lists

    def read_list(self, name: str, run_id: str | None = None, as_of: date | str | None = None,
                  top: int | None = None, tier: str | None = None, customer_id: Any = None) -> pd.DataFrame:
        """One list of one run, best first, with exactly the columns that run wrote.

        ``run_id`` or ``as_of`` (latest run of that date) pick the run, else the latest run.
        ``top`` keeps the first N rows; ``tier`` keeps rows whose current tier (the first of
        TIER_COLUMNS the list has) matches, case-insensitively; ``customer_id`` (text or number)
        keeps that customer's rows. A run without this list gives an empty frame. Raises
        NoRunsYet, RunNotFound, UnknownList, or ValueError for a bad top.
        """
        name = list_name(name)
        if top is not None and (isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0):
            raise ValueError(f"top must be a whole number >= 0, got {top!r}")
        with self._reading() as connection:
            runs = self._runs(connection)
            run = _pick_run([run for run, _ in runs], run_id, as_of)
            columns = dict((candidate.run_id, columns) for candidate, columns in runs)[run.run_id].get(name)
            if columns is None:
                return pd.DataFrame()
            if not columns:
                return pd.DataFrame(index=range(run.lists.get(name, 0)))
            selected = ", ".join(_quote(column) for column in columns)
            sql = f"SELECT {selected} FROM {_quote(name)} WHERE run_id = :run_id"
            params: dict[str, Any] = {"run_id": run.run_id}
            if tier is not None:
                tier_column = next((column for column in TIER_COLUMNS if column in columns), None)
                if tier_column is None:
                    raise ValueError(f"list {name!r} has no tier column to filter on")
                sql += f" AND lower(CAST({_quote(tier_column)} AS {self._sql_type('text')})) = :tier"
                params["tier"] = tier.strip().lower()
            if customer_id is not None:
                condition = self._customer_condition(connection, name, customer_id)
                if condition is None:
                    sql += " AND 1 = 0"
                else:
                    sql += f" AND {condition[0]}"
                    params["customer_id"] = condition[1]
            sql += " ORDER BY row_order"
            if top is not None:
                sql += f" LIMIT {int(top)}"
            return connection.fetch_df(sql, params)

    def _customer_condition(self, connection: _Connection, table: str, customer_id: Any) -> tuple[str, Any] | None:
        """SQL condition and parameter matching a customer id given as text or number."""
        kind = connection.columns(table).get("customer_id")
        if kind is None:
            return None
        if kind in ("bigint", "double"):
            try:
                number = float(str(customer_id).strip())
            except ValueError:
                return None
            if kind == "bigint":
                if not number.is_integer():
                    return None
                return "customer_id = :customer_id", int(number)
            return "customer_id = :customer_id", number
        return f"CAST(customer_id AS {self._sql_type('text')}) = :customer_id", str(customer_id)

    def customer_rows(self, customer_id: Any, run_id: str) -> dict[str, dict[str, Any]]:
        """The customer's row in each list of one run (lists the customer is not in are left out)."""
        found: dict[str, dict[str, Any]] = {}
        with self._reading() as connection:
            for name, columns in self._run_columns(connection, run_id).items():
                if "customer_id" not in columns:
                    continue
                condition = self._customer_condition(connection, name, customer_id)
                if condition is None:
                    continue
                selected = ", ".join(_quote(column) for column in columns)
                frame = connection.fetch_df(
                    f"SELECT {selected} FROM {_quote(name)} WHERE run_id = :run_id AND {condition[0]} "
                    "ORDER BY row_order LIMIT 1",
                    {"run_id": run_id, "customer_id": condition[1]},
                )
                if not frame.empty:
                    found[name] = frame.iloc[0].to_dict()
        return found

    def customer_history(self, customer_id: Any) -> pd.DataFrame:
        """One row per run in which the customer was scored, oldest first: run, tier and scores."""
        with self._reading() as connection:
            if connection is None or not connection.columns(RUNS_TABLE):
                return pd.DataFrame()
            condition = self._customer_condition(connection, "scores", customer_id)
            if condition is None:
                return pd.DataFrame()
            score_columns = [column for column in connection.columns("scores")
                             if column not in RESERVED_COLUMNS and column != "customer_id"]
            selected = "".join(f", s.{_quote(column)}" for column in score_columns)
            return connection.fetch_df(
                f"SELECT r.run_id, r.as_of, r.model_name, r.model_version{selected} "
                f"FROM scores s JOIN {RUNS_TABLE} r ON r.run_id = s.run_id "
                f"WHERE s.{condition[0]} ORDER BY r.as_of, r.created_at",
                {"customer_id": condition[1]},
            )

    def tier_summary(self, run_id: str) -> pd.DataFrame:
        """Per tier of one run's scores: customers, and totals or means of the scores it has."""
        with self._reading() as connection:
            columns = self._run_columns(connection, run_id).get("scores") or []
            if "tier" not in columns:
                return pd.DataFrame(columns=["tier", "customers"])
            aggregates = ["count(*) AS customers"]
            aggregates += [f"sum({_quote(column)}) AS {_quote(column)}"
                           for column in ("rolling_12m_spend", "predicted_spend", "predicted_ltv") if column in columns]
            aggregates += [f"avg({_quote(column)}) AS {_quote('mean_' + column)}"
                           for column in ("p_alive", "churn_probability") if column in columns]
            return connection.fetch_df(
                f"SELECT tier, {', '.join(aggregates)} FROM scores WHERE run_id = :run_id GROUP BY tier",
                {"run_id": run_id},
            )

    def tier_movement(self, run_id: str, previous_run_id: str) -> pd.DataFrame:
        """Customers by (tier in the previous run, tier now); a missing side is null (new or gone)."""
        with self._reading() as connection:
            if any("tier" not in self._run_columns(connection, wanted).get("scores", [])
                   for wanted in (run_id, previous_run_id)):
                return pd.DataFrame(columns=["from_tier", "to_tier", "customers"])
            return connection.fetch_df(
                "SELECT p.tier AS from_tier, c.tier AS to_tier, count(*) AS customers FROM "
                "(SELECT customer_id, tier FROM scores WHERE run_id = :run_id) c FULL OUTER JOIN "
                "(SELECT customer_id, tier FROM scores WHERE run_id = :previous_run_id) p "
                "ON c.customer_id = p.customer_id GROUP BY p.tier, c.tier",
                {"run_id": run_id, "previous_run_id": previous_run_id},
            )

    # Exports

    def export_run(self, run_id: str, out_dir: str | os.PathLike[str],
                   formats: Sequence[str] = ("csv",)) -> list[Path]:
        """Write each list of a run as ``<name>.<format>`` and ``run.json`` into out_dir.

        Files are written into a temporary folder inside out_dir, fsynced, then renamed over
        the old ones, so a reader never sees half a file and a killed export leaves the
        previous files whole. Returns the paths written.
        """
        unknown = [fmt for fmt in formats if fmt not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(f"unknown export format(s) {unknown}: choose from {', '.join(EXPORT_FORMATS)}")
        run = self.get_run(run_id)
        target = Path(out_dir)
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob(".vipcast-export-*"):
            # Left by a killed export; an hour old means no export is still writing it.
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".vipcast-export-", dir=target))
        written: list[Path] = []
        try:
            staged: list[Path] = []
            for name in (name for name in run.lists if name not in INTERNAL_LISTS):
                frame = self.read_list(name, run_id=run.run_id)
                for fmt in formats:
                    path = staging / f"{name}.{fmt}"
                    if fmt == "csv":
                        frame.to_csv(path, index=False)
                    else:
                        frame.to_parquet(path, index=False)
                    staged.append(path)
            run_file = staging / "run.json"
            run_file.write_text(json.dumps(run.to_dict(), indent=2) + "\n")
            staged.append(run_file)
            for path in staged:
                _fsync(path)
            for path in staged:
                final = target / path.name
                os.replace(path, final)
                written.append(final)
            _fsync(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return written


def _pick_run(runs: Sequence[RunInfo], run_id: str | None, as_of: date | str | None) -> RunInfo:
    if not runs:
        raise NoRunsYet()
    if run_id is not None:
        matches = [run for run in runs if run.run_id == run_id]
        if not matches:
            raise RunNotFound(f"no scoring run with run_id {run_id!r}")
        if as_of is not None and matches[0].as_of != _as_date(as_of):
            raise RunNotFound(f"scoring run {run_id!r} is as of {matches[0].as_of}, not {as_of}")
        return matches[0]
    if as_of is not None:
        wanted = _as_date(as_of)
        matches = [run for run in runs if run.as_of == wanted]
        if not matches:
            dates = ", ".join(sorted({run.as_of.isoformat() for run in runs}, reverse=True)[:5])
            raise RunNotFound(f"no scoring run as of {wanted}; latest as-of dates: {dates}")
        return matches[0]
    return runs[0]


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
