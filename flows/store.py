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
into a temporary folder next to the target, fsynced, then renamed over the old files; export files
the run did not write (another format, a list it lacks) are removed before ``run.json`` goes last.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from flows.listformats import guarded_text, list_csv

# `state` is the tier state (tier, grace_until, flags) the next run starts from: stored, not exported.
LIST_NAMES = ("scores", "tiers", "rising_stars", "at_risk", "events", "economics", "state")
INTERNAL_LISTS = ("state",)
"""The lists a run may hold, each stored as one table of that name."""

RUNS_TABLE = "runs"
RESERVED_COLUMNS = ("run_id", "as_of", "row_order")
"""Columns the store adds in front of every list's own columns."""

TIER_COLUMNS = ("tier", "current_tier", "to_tier")
"""The column a tier filter applies to, first one present: the customer's current tier."""
MOVES = ("tier_upgrade", "tier_downgrade")
"""Events whose to_tier is the customer's tier now; every other event's from_tier is (segments/events.py)."""

EXPORT_FORMATS = ("csv", "parquet")
_EXPORT_FILE_NAMES = frozenset(
    {f"{name}.{fmt}" for name in LIST_NAMES if name not in INTERNAL_LISTS for fmt in EXPORT_FORMATS} | {"run.json"})
"""Every file name an export writes: the only files in its folder it replaces or removes."""

_DUCKDB_LOCK_MESSAGE = "Could not set lock"
_DUCKDB_ROW_GROUP_ROWS = 122_880
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


class AmbiguousRun(StoreError, ValueError):
    """An as-of date that runs of several datasets share, with no dataset named."""


class StoreBusy(StoreError):
    """Another process held the store's lock (the DuckDB file's, a SQLite file's, a PostgreSQL table's) for
    longer than the wait."""


class StoreUrlError(StoreError, ValueError):
    """An outputs store URL SQLAlchemy cannot use: malformed, an unknown database, a driver not installed."""


class StoreUnreachable(StoreError):
    """The outputs store's database refused or failed the connection (server down, credentials, path)."""


class StoreDamaged(StoreError):
    """The outputs store's DuckDB file fails its own checks: cut short, overwritten, not a database."""


class StoreWalDamaged(StoreDamaged):
    """The DuckDB store's write-ahead log cannot be replayed (the database file may be whole)."""


# DuckDB's words for a damaged file: a bad header or checksum, a file cut short ("attempted to read
# 262144 bytes"), a write-ahead log that cannot be replayed.
DUCKDB_DAMAGED_FILE = ("Corrupt database file", "is not a valid DuckDB database file", "Could not read enough bytes from file")
DUCKDB_DAMAGED_WAL = ("Corrupt WAL file", "Failure while replaying WAL file")
SQLITE_DAMAGED_FILE = ("database disk image is malformed", "file is not a database")


def _damage_of(error: BaseException, path: Path) -> StoreDamaged | None:
    """The StoreDamaged a DuckDB error of the store's file stands for, if it is one."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if any(words in first for words in DUCKDB_DAMAGED_WAL):
        return StoreWalDamaged(f"the outputs store's write-ahead log {path}.wal is damaged ({first})")
    if any(words in first for words in DUCKDB_DAMAGED_FILE):
        return StoreDamaged(f"the outputs store {path} is damaged ({first})")
    return None


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

    def report_field(self, key: str) -> Any:
        """One field of the run's reconciliation report (None when absent)."""
        return json.loads(self.reconciliation or "{}").get(key)

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


def _storable_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each column as :func:`_column_for_storage` makes it.

    Only converted columns are replaced, in a shallow copy: rebuilding a frame from its columns
    would copy every column of a million-row list into new blocks for nothing.
    """
    storable = frame.copy(deep=False)
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        stored = _column_for_storage(series, _logical_type_of_series(series))
        if stored is not series:
            storable.isetitem(position, stored)
    return storable


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

    def fetch_rows(self, table: str, sql: str, params: Mapping[str, Any], limit: int | None = None) -> pd.DataFrame | pa.Table:
        """The rows of ``sql`` over ``table`` in row order (the first ``limit``), without row_order.

        ``sql`` selects row_order, then a list's columns, with no ORDER BY. The rows come as a
        DataFrame, or as an Arrow table where the backend gives one directly (DuckDB): exports
        then format them without pandas.
        """
        return self.fetch_ordered_df(table, sql, params, limit)

    def fetch_ordered_df(self, table: str, sql: str, params: Mapping[str, Any], limit: int | None = None) -> pd.DataFrame:
        """:meth:`fetch_rows` as a DataFrame."""
        sql += " ORDER BY row_order"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.fetch_df(sql, params).drop(columns="row_order")

    def lock_for_write(self) -> None:
        """Serialise writers (DuckDB's file lock already does)."""


def _duckdb_params(sql: str) -> str:
    return re.sub(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)", r"$\1", sql)


class _DuckDBConnection(_Connection):
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def fetch_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        # Through Arrow: faster than .df() and DATE columns come back as dates, as from PostgreSQL.
        return self.fetch_arrow(sql, params).to_pandas()

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        return self._connection.execute(_duckdb_params(sql), dict(params or {})).to_arrow_table()

    def fetch_rows(self, table: str, sql: str, params: Mapping[str, Any], limit: int | None = None) -> pa.Table:
        if limit is not None:
            # ORDER BY ... LIMIT is a cheap top-N in DuckDB.
            return self.fetch_arrow(f"{sql} ORDER BY row_order LIMIT {int(limit)}", params).drop_columns(["row_order"])
        # A whole list: sorting a million rows with all their columns costs more than the rest of the
        # read, and DuckDB scans a table in insertion order (preserve_insertion_order), which is row
        # order, so sort here only when the rows did not come back in order.
        return _in_row_order(self.fetch_arrow(sql, params))

    def fetch_ordered_df(self, table: str, sql: str, params: Mapping[str, Any], limit: int | None = None) -> pd.DataFrame:
        return self.fetch_rows(table, sql, params, limit).to_pandas()

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
        arrow_table = pa.Table.from_pandas(frame, preserve_index=False)
        arrow_table = arrow_table.append_column("row_order", pa.array(np.arange(len(frame), dtype=np.int64)))
        # DuckDB scans an Arrow table one record batch per thread: in one big batch a million rows
        # are converted and compressed on one thread; in row-group-sized batches, on all of them.
        arrow_table = pa.Table.from_batches(arrow_table.to_batches(max_chunksize=_DUCKDB_ROW_GROUP_ROWS),
                                            schema=arrow_table.schema)
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
        import duckdb

        try:
            connection = self._open(write=write)
        except duckdb.Error as error:
            raise _damage_of(error, self.path) or error from error
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
        except duckdb.Error as error:  # a damaged block is found when a query reads it
            raise _damage_of(error, self.path) or error from error
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

    def fetch_ordered_df(self, table: str, sql: str, params: Mapping[str, Any], limit: int | None = None) -> pd.DataFrame:
        """As DuckDB gives them: the drivers return SQLite's booleans as 0/1 and its dates as text."""
        frame = super().fetch_ordered_df(table, sql, params, limit)
        typed = {}
        for column, logical_type in self.columns(table).items():
            if column not in frame.columns or frame[column].isna().all():
                continue
            values = frame[column]
            if logical_type == "boolean" and not pd.api.types.is_bool_dtype(values.dtype):
                flags = values.astype(object).map(bool, na_action="ignore")
                typed[column] = flags.astype(bool) if flags.notna().all() else flags.where(flags.notna(), None)
            elif logical_type == "timestamp" and not pd.api.types.is_datetime64_any_dtype(values.dtype):
                typed[column] = pd.to_datetime(values)
            elif logical_type == "date" and pd.api.types.infer_dtype(values, skipna=True) == "string":
                typed[column] = pd.to_datetime(values).dt.date.where(values.notna(), None)
        return frame.assign(**typed) if typed else frame

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
        for column in frame.columns[[pd.api.types.is_datetime64_any_dtype(dtype) for dtype in frame.dtypes]]:
            # Python datetimes: SQLite's driver takes no pandas Timestamp (a run with anyone in grace failed).
            values[column] = pd.Series(frame[column].dt.to_pydatetime(), index=frame.index, dtype=object).where(
                frame[column].notna(), None)
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
    """One SQLAlchemy engine (one connection pool) per URL in this process.

    Raises StoreUrlError naming the URL (password hidden) when SQLAlchemy cannot parse it, knows no
    such database, or its driver is not installed.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    with _ENGINES_LOCK:
        if url not in _ENGINES:
            try:
                _ENGINES[url] = create_engine(url, pool_pre_ping=True)
            except (ArgumentError, ImportError) as error:
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                driver = "; install its driver into vipcast's environment" if isinstance(error, ImportError) else ""
                raise StoreUrlError(
                    f"outputs store URL {_hidden(url)} cannot be used: {reason}{driver} "
                    "(or use duckdb:///PATH, sqlite:///FILE or postgresql://...)"
                ) from error
        return _ENGINES[url]


def _hidden(url: str) -> str:
    """`url` with its password masked, as the reports show it."""
    from flows.ingest import hide_password

    return hide_password(url)


def sqlalchemy_url(url: str) -> str:
    """`url` as SQLAlchemy names its dialect: postgres:// (which sources accept, as Ibis, psql and
    Heroku write it) is postgresql://."""
    return "postgresql" + url[len("postgres"):] if url.lower().startswith(("postgres://", "postgres+")) else url


class _SqlBackend(_Backend):
    def __init__(self, url: str, *, read_only: bool) -> None:
        url = sqlalchemy_url(url)
        self.url = url
        self.read_only = read_only
        self.engine = _engine(url)
        self.dialect = self.engine.dialect.name

    @contextlib.contextmanager
    def connect(self, *, write: bool) -> Iterator[_SqlConnection]:
        engine = self.engine
        if not write and self.dialect == "postgresql" and self.read_only:
            engine = engine.execution_options(postgresql_readonly=True)
        from sqlalchemy.exc import DatabaseError

        try:
            with self._opened(engine) as connection:
                if write:
                    with connection.begin():
                        yield _SqlConnection(connection)
                    return
                yield _SqlConnection(connection)
                connection.rollback()
        except DatabaseError as error:  # SQLite's words for a damaged file ("internal error" on every page)
            reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
            if any(words in reason for words in SQLITE_DAMAGED_FILE):
                raise StoreDamaged(f"the outputs store {_hidden(self.url)} is damaged ({reason})") from error
            if any(words in reason for words in SQL_BUSY):  # was "internal error (OperationalError)", a 500
                raise StoreBusy(f"the outputs store {_hidden(self.url)} is busy: another process holds its lock ({reason})") from error
            raise

    def _opened(self, engine: Any) -> Any:
        """A new connection of `engine`; StoreUnreachable (naming the store and the reason) when it fails."""
        from sqlalchemy.exc import DBAPIError

        try:
            return engine.connect()
        except DBAPIError as error:
            reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
            message = f"cannot connect to the outputs store {_hidden(self.url)}: {_hidden(reason)}"
            if any(words in reason for words in SQLITE_DAMAGED_FILE):
                raise StoreDamaged(f"the outputs store {_hidden(self.url)} is damaged ({reason})") from error
            if any(marker in reason for marker in CONFIG_REFUSALS):  # the URL's fault, not the machine's
                raise StoreUrlError(message) from error
            raise StoreUnreachable(message) from error


#: A database's words for a lock another process held past the wait (SQLite's 5 s, PostgreSQL's lock_timeout).
SQL_BUSY = ("database is locked", "database table is locked", "lock timeout", "could not obtain lock")

#: Connection refusals that a corrected outputs.store_url mends (PostgreSQL's wording): config errors.
CONFIG_REFUSALS = ("password authentication failed", "no password supplied", "does not exist")


def _is_url(url_or_path: str | os.PathLike[str]) -> bool:
    return isinstance(url_or_path, str) and "://" in url_or_path


def run_dataset(run: RunInfo) -> str | None:
    """The dataset a run scored (its registry name: file stem, table or built-in name), from the
    source its reconciliation report names; None for a run stored without one."""
    from flows.tracking import dataset_slug

    source = run.report_field("source")
    return dataset_slug(source) if source else None


def unscored_note(run: RunInfo, customer_id: str, shown: str | None = None) -> str:
    """Why a customer may be missing from a run: the customers its data held without a score (refunds
    only, or only rows set aside), from its reconciliation report; "" when every customer was scored.
    A refund-only customer's page said "unknown customer" of a customer the run had read. `shown`: the id
    as the message should show it (default: its repr)."""
    refunds_only = run.report_field("customers_without_purchase_day") or 0
    set_aside_only = run.report_field("customers_only_in_quarantine") or 0
    if customer_id in (run.report_field("customers_without_purchase_day_examples") or []):
        return (f" {shown or repr(customer_id)} has only refunds (no purchase day) up to {run.as_of}: no features, scores or tier "
                "(customers_without_purchase_day in the run's reconciliation report)")
    parts = []
    if refunds_only:
        parts.append(f"{refunds_only:,} customer(s) with only refunds")
    if set_aside_only:
        parts.append(f"{set_aside_only:,} with only rows set aside (quarantine)")
    if not parts:
        return ""
    return (f" The run's data held {' and '.join(parts)}, which have no scores: if this customer is one of them, "
            "the run's reconciliation report counts them (and names the first refund-only ones).")


def dataset_names(runs: Sequence[RunInfo]) -> list[str]:
    """The names of the datasets the runs scored, sorted (runs stored without a source left out)."""
    return sorted({name for name in map(run_dataset, runs) if name})


def runs_of_dataset(runs: Sequence[RunInfo], dataset: str) -> list[RunInfo]:
    """The runs (in their order) of one dataset, a source or its registry name; a run stored without
    its source counts as any dataset's.

    A stored name is matched as it is: named again, `shop.v2` (the file shop.v2.parquet) became `shop`, a file
    stem, and the app, `lists --data shop.v2` and the score's exports found no run of it."""
    from flows.tracking import dataset_slug

    names = {run_dataset(run) for run in runs}
    wanted = dataset if dataset in names else dataset_slug(dataset)
    return [run for run in runs if run_dataset(run) in (None, wanted)]


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

    def write_run(self, run: RunInfo, tables: Mapping[str, pd.DataFrame], replacing: Sequence[str] = ()) -> None:
        """Store one run and its lists in one transaction, replacing a run with the same run_id and the
        runs named in ``replacing`` (the same dataset and date stored under another id: an older vipcast
        named runs otherwise, and a re-scored date kept both)."""
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
        storable = {name: _storable_frame(frame) for name, frame in lists.items()}
        summary = {name: {"columns": [str(column) for column in frame.columns], "rows": len(frame)}
                   for name, frame in lists.items()}
        with self._backend.connect(write=True) as connection:
            connection.lock_for_write()
            self._ensure_runs_table(connection)
            for name, frame in storable.items():
                self._ensure_list_table(connection, name, frame)
            # A run's list rows exist only with its runs row (one transaction): a new run deletes
            # nothing, so it does not scan the rows of every earlier run (~1M per weekly run).
            for run_id in dict.fromkeys([run.run_id, *replacing]):
                stored = connection.fetch_df(f"SELECT count(*) AS n FROM {RUNS_TABLE} WHERE run_id = :run_id", {"run_id": run_id})
                if int(stored["n"].iloc[0]):
                    for name in LIST_NAMES:
                        if connection.columns(name):
                            connection.execute(f"DELETE FROM {_quote(name)} WHERE run_id = :run_id", {"run_id": run_id})
                    connection.execute(f"DELETE FROM {RUNS_TABLE} WHERE run_id = :run_id", {"run_id": run_id})
            for name, frame in storable.items():
                connection.insert_df(name, frame.reset_index(drop=True), run.run_id, as_of)
            connection.execute(
                f"INSERT INTO {RUNS_TABLE} (run_id, as_of, created_at, model_name, model_version, horizon_days, "
                "n_customers, data_digest, config_digest, reconciliation, lists, dataset) VALUES (:run_id, :as_of, "
                ":created_at, :model_name, :model_version, :horizon_days, :n_customers, :data_digest, "
                ":config_digest, :reconciliation, :lists, :dataset)",
                {
                    "run_id": run.run_id, "as_of": as_of, "created_at": _utc_naive(run.created_at),
                    "model_name": run.model_name, "model_version": str(run.model_version),
                    "horizon_days": int(run.horizon_days), "n_customers": int(run.n_customers),
                    "data_digest": run.data_digest, "config_digest": run.config_digest,
                    "reconciliation": run.reconciliation or "{}", "lists": json.dumps(summary),
                    "dataset": run_dataset(run),
                },
            )

    def _sql_type(self, logical_type: str) -> str:
        return _SQL_TYPES["duckdb" if self._backend.dialect == "duckdb" else "sql"][logical_type]

    def _ensure_runs_table(self, connection: _Connection) -> None:
        text_type, integer_type = self._sql_type("text"), self._sql_type("bigint")
        existing = connection.columns(RUNS_TABLE)
        if not existing:
            connection.execute(
                f"CREATE TABLE {RUNS_TABLE} (run_id {text_type} NOT NULL, as_of DATE NOT NULL, "
                f"created_at {self._sql_type('timestamp')} NOT NULL, model_name {text_type}, model_version {text_type}, "
                f"horizon_days {integer_type}, n_customers {integer_type}, data_digest {text_type}, "
                f"config_digest {text_type}, reconciliation {text_type}, lists {text_type}, dataset {text_type})"
            )
            return
        if "dataset" not in existing:
            # Stores written before runs named their dataset (as `--data`/`data=` and the pages name it, so
            # a database reader can pick "the latest run of shop"): the column, filled from each run's source.
            connection.execute(f"ALTER TABLE {RUNS_TABLE} ADD COLUMN dataset {text_type}")
        # Filled for the runs without it: those of an older store, and those an older vipcast (rolled
        # back to) wrote since; runs that never recorded a source stay empty.
        from flows.tracking import dataset_slug

        stored = connection.fetch_df(f"SELECT run_id, reconciliation FROM {RUNS_TABLE} WHERE dataset IS NULL")
        for run_id, reconciliation in zip(stored["run_id"], stored["reconciliation"]):
            source = json.loads(reconciliation or "{}").get("source")
            if source:
                connection.execute(f"UPDATE {RUNS_TABLE} SET dataset = :dataset WHERE run_id = :run_id",
                                   {"dataset": dataset_slug(source), "run_id": run_id})

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
        retyped: dict[str, str] = {}
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
            elif (existing[column], kind) == ("double", "bigint") and self._only_whole_numbers(connection, name, column):
                # A column an older vipcast wrote as floats and this one as whole numbers (at-risk's
                # days_since_last_order read 117.0 in every outlet after the upgrade): whole numbers again.
                widened = kind
            if widened != existing[column]:
                retyped[column] = widened
        if retyped:
            self._retype_columns(connection, name, retyped)

    def _retype_columns(self, connection: _Connection, name: str, retyped: dict[str, str]) -> None:
        """Give the list table's columns `retyped` (column -> logical type) their new types, keeping every row."""
        table = _quote(name)
        if self._backend.dialect in ("duckdb", "postgresql"):
            for column, kind in retyped.items():
                sql_type = self._sql_type(kind)
                connection.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {_quote(column)} TYPE {sql_type} USING CAST({_quote(column)} AS {sql_type})"
                )
            return
        # SQLite (and other databases without ALTER COLUMN ... TYPE): copy the rows into a table of
        # the new types and put it in the old one's place, in the write's transaction.
        types = {column: retyped.get(column, kind) for column, kind in connection.columns(name).items()}
        staging = _quote(f"{name}__retyped")
        connection.execute(
            f"CREATE TABLE {staging} ({', '.join(f'{_quote(c)} {self._sql_type(k)}' for c, k in types.items())})"
        )
        values = ", ".join(
            f"CAST({_quote(c)} AS {self._sql_type(k)})" if c in retyped else _quote(c) for c, k in types.items()
        )
        connection.execute(f"INSERT INTO {staging} SELECT {values} FROM {table}")
        connection.execute(f"DROP TABLE {table}")
        connection.execute(f"ALTER TABLE {staging} RENAME TO {table}")

    @staticmethod
    def _only_whole_numbers(connection: _Connection, table: str, column: str) -> bool:
        """Whether every stored value of a float column is a whole number a BIGINT holds (NaN is not)."""
        quoted = _quote(column)
        found = connection.fetch_df(
            f"SELECT count(*) AS n FROM {_quote(table)} WHERE {quoted} IS NOT NULL AND "
            f"({quoted} <> round({quoted}) OR {quoted} > 9.0e18 OR {quoted} < -9.0e18)"
        )
        return int(found["n"].iloc[0]) == 0

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

    def find_run(self, run_id: str | None = None, as_of: date | str | None = None, dataset: str | None = None) -> RunInfo:
        """The run by id, else the latest run of an as-of date, else the latest run; of `dataset` (a
        source or its name) when given.

        Raises NoRunsYet in an empty store and RunNotFound when nothing matches.
        """
        runs = self.runs()
        if dataset is None or not runs:
            return _pick_run(runs, run_id, as_of)
        of_dataset = runs_of_dataset(runs, dataset)
        if not of_dataset:
            names = ", ".join(dataset_names(runs))
            raise RunNotFound(f"no scoring run of dataset {dataset!r}; the store holds runs of {names or 'unnamed sources'}")
        try:
            return _pick_run(of_dataset, run_id, as_of)
        except RunNotFound as missing:
            raise RunNotFound(f"{missing} (dataset {dataset!r})") from None

    def previous_run(self, run: RunInfo) -> RunInfo | None:
        """The latest run of the same dataset with an earlier as-of date than ``run`` (for movement
        between runs; a run stored without its source counts as any dataset's)."""
        dataset = run_dataset(run)
        runs = self.runs() if dataset is None else runs_of_dataset(self.runs(), dataset)
        return next((candidate for candidate in runs if candidate.as_of < run.as_of), None)  # latest first

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
            sql, params = self._list_query(name, run.run_id, columns)
            if tier is not None:
                sql += f" AND lower(CAST({self._current_tier(name, columns)} AS {self._sql_type('text')})) = :tier"
                params["tier"] = tier.strip().lower()
            if customer_id is not None:
                condition = self._customer_condition(connection, name, customer_id)
                if condition is None:
                    sql += " AND 1 = 0"
                else:
                    sql += f" AND {condition[0]}"
                    params["customer_id"] = condition[1]
            return connection.fetch_ordered_df(name, sql, params, top)

    @staticmethod
    def _list_query(name: str, run_id: str, columns: Sequence[str]) -> tuple[str, dict[str, Any]]:
        """SELECT of one run's rows of a list: row_order, then the list's columns (no ORDER BY)."""
        selected = ", ".join(_quote(column) for column in ["row_order", *columns])
        return f"SELECT {selected} FROM {_quote(name)} WHERE run_id = :run_id", {"run_id": run_id}

    @staticmethod
    def _current_tier(name: str, columns: Sequence[str]) -> str:
        """SQL for the customer's current tier in a list's rows (what a tier filter matches)."""
        if {"event", "from_tier", "to_tier"} <= set(columns):
            moves = ", ".join(f"'{event}'" for event in MOVES)
            return f"CASE WHEN {_quote('event')} IN ({moves}) THEN {_quote('to_tier')} ELSE {_quote('from_tier')} END"
        tier_column = next((column for column in TIER_COLUMNS if column in columns), None)
        if tier_column is None:
            raise ValueError(f"list {name!r} has no tier column to filter on")
        return _quote(tier_column)

    def _customer_condition(self, connection: _Connection, table: str, customer_id: Any,
                            column: str = "customer_id") -> tuple[str, Any] | None:
        """SQL condition and parameter matching a customer id given as text or number.

        ``column`` is how the query names the table's customer_id column (``s.customer_id`` when
        the table has an alias); the condition applies to it as a whole, cast and all.
        """
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
                return f"{column} = :customer_id", int(number)
            return f"{column} = :customer_id", number
        return f"CAST({column} AS {self._sql_type('text')}) = :customer_id", str(customer_id)

    def customer_rows(self, customer_id: Any, run_id: str) -> dict[str, dict[str, Any]]:
        """The customer's row in each list of one run (lists the customer is not in are left out; the internal
        tier state too: it carries members a run did not score, whom the app then showed as scored, with no scores)."""
        found: dict[str, dict[str, Any]] = {}
        with self._reading() as connection:
            for name, columns in self._run_columns(connection, run_id).items():
                if "customer_id" not in columns or name in INTERNAL_LISTS:
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

    def customer_history(self, customer_id: Any, of_run: RunInfo | None = None) -> pd.DataFrame:
        """One row per run in which the customer was scored, oldest first: run, tier and scores.

        With `of_run`, only the runs of that run's dataset (another shop's customer may have the same id).
        """
        with self._reading() as connection:
            if connection is None or not connection.columns(RUNS_TABLE):
                return pd.DataFrame()
            condition = self._customer_condition(connection, "scores", customer_id, column="s.customer_id")
            if condition is None:
                return pd.DataFrame()
            score_columns = [column for column in connection.columns("scores")
                             if column not in RESERVED_COLUMNS and column != "customer_id"]
            selected = "".join(f", s.{_quote(column)}" for column in score_columns)
            history = connection.fetch_df(
                f"SELECT r.run_id, r.as_of, r.model_name, r.model_version{selected} "
                f"FROM scores s JOIN {RUNS_TABLE} r ON r.run_id = s.run_id "
                f"WHERE {condition[0]} ORDER BY r.as_of, r.created_at",
                {"customer_id": condition[1]},
            )
            dataset = None if of_run is None else run_dataset(of_run)
            if dataset is None or history.empty:
                return history
            same_dataset = {run.run_id for run in runs_of_dataset([run for run, _ in self._runs(connection)], dataset)}
            return history[history["run_id"].isin(same_dataset)].reset_index(drop=True)

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

        The files hold what :meth:`read_list` gives, as pandas' ``to_csv(index=False)`` and
        ``to_parquet(index=False)`` write it. Files are written into a temporary folder inside
        out_dir, fsynced, then renamed over the old ones, so a reader never sees half a file and a
        killed export leaves the previous files whole. Export files of an earlier export that this
        one does not write (another format, a list this run lacks) are then removed, and ``run.json``
        is renamed last: once it names this run, out_dir holds exactly this run's export files.
        Other files in out_dir are left alone. Returns the paths written.
        """
        unknown = [fmt for fmt in formats if fmt not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(f"unknown export format(s) {unknown}: choose from {', '.join(EXPORT_FORMATS)}")
        self.get_run(run_id)  # RunNotFound before anything is written
        target = Path(out_dir)
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob(".vipcast-export-*"):
            # Left by a killed export; an hour old means no export is still writing it.
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".vipcast-export-", dir=target))
        written: list[Path] = []
        try:
            staged = self._stage_export(run_id, staging, formats)
            left_over = _EXPORT_FILE_NAMES - {path.name for path in staged}
            for path in staged:
                if path.name == "run.json":  # staged last: remove the files of earlier exports first
                    for name in sorted(left_over):
                        (target / name).unlink(missing_ok=True)
                final = target / path.name
                os.replace(path, final)
                written.append(final)
            _fsync(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return written

    def _stage_export(self, run_id: str, staging: Path, formats: Sequence[str]) -> list[Path]:
        """Write a run's export files into staging, each fsynced; their paths, ``run.json`` last."""
        staged: list[Path] = []
        # fsync each file in the background while the next one is formatted: flushing a few
        # hundred MB of CSV to disk takes about as long as formatting them.
        with ThreadPoolExecutor(max_workers=1) as syncing:
            syncs: list[Future[None]] = []
            # One read connection for the whole export: every file is of the same committed run.
            with self._reading() as connection:
                run, run_lists = self._run_and_columns(connection, run_id)
                for name, columns in run_lists.items():
                    if name in INTERNAL_LISTS:
                        continue
                    rows = self._export_rows(connection, run, name, columns)
                    for fmt in formats:
                        path = staging / f"{name}.{fmt}"
                        _EXPORT_WRITERS[fmt](rows, path)
                        staged.append(path)
                        syncs.append(syncing.submit(_fsync, path))
                    del rows  # before the next list is read: one million-row list in memory at a time
            run_file = staging / "run.json"
            run_file.write_text(json.dumps(run.to_dict(), indent=2) + "\n")
            staged.append(run_file)
            _fsync(run_file)
            for sync in syncs:
                sync.result()
        return staged

    def _run_and_columns(self, connection: _Connection | None, run_id: str) -> tuple[RunInfo, dict[str, list[str]]]:
        for run, columns in self._runs(connection):
            if run.run_id == run_id:
                return run, columns
        raise RunNotFound(f"no scoring run with run_id {run_id!r}")

    def _export_rows(self, connection: _Connection | None, run: RunInfo, name: str,
                     columns: list[str]) -> pd.DataFrame | pa.Table:
        """A list's rows for export, as :meth:`read_list` reads them (before to_pandas() on DuckDB)."""
        if connection is None or not columns:
            return pd.DataFrame(index=range(run.lists.get(name, 0)))
        return connection.fetch_rows(name, *self._list_query(name, run.run_id, columns))


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
        names = dataset_names(matches)
        if len(names) > 1:  # the first of them was shown, and nothing said whose list it was
            raise AmbiguousRun(f"runs of several datasets are as of {wanted} ({', '.join(names)}): name the dataset "
                               "(--data on the command line; data=, or the run's run_id=, in a page's or the API's address)")
        return matches[0]
    return runs[0]


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# Export files. `read_list(...).to_csv(index=False)` takes ~15 s for a million-row list (pandas
# formats every cell in Python); _write_csv gives the same bytes from Arrow compute in about one.

_CSV_CHUNK_ROWS = 1 << 16  # small enough for Arrow's 32-bit string offsets, big enough to be fast
_CSV_WORKERS = min(4, os.cpu_count() or 1)
_CSV_SPECIAL = ',"\n'
"""What pandas' CSV writer (Python's csv module, QUOTE_MINIMAL, os.linesep line ends) quotes."""
_FEW_VALUES_SAMPLE = 4096


def _in_row_order(rows: pa.Table) -> pa.Table:
    """Rows whose first column is row_order, sorted by it (if they are not already) and without it."""
    order = rows.column("row_order").to_numpy()
    if len(order) > 1 and not (order[1:] > order[:-1]).all():
        rows = rows.take(pc.sort_indices(rows.column("row_order")))
    return rows.drop_columns(["row_order"])


def _write_parquet(rows: pd.DataFrame | pa.Table, path: Path) -> None:
    frame = rows if isinstance(rows, pd.DataFrame) else rows.to_pandas()
    frame.to_parquet(path, index=False)


def _write_csv(rows: pd.DataFrame | pa.Table, path: Path) -> None:
    """Write rows as ``flows.listformats.list_csv`` writes them as a DataFrame (``to_pandas()`` for Arrow):
    pandas' ``to_csv(index=False)`` of the rows with formula-like text marked as text.

    An Arrow table is formatted with Arrow compute, in chunks of rows on a few threads, when
    :func:`_csv_exact` says the result is byte for byte pandas'; otherwise pandas writes it.
    """
    if isinstance(rows, pd.DataFrame) or not _csv_exact(rows):
        frame = rows if isinstance(rows, pd.DataFrame) else rows.to_pandas()
        path.write_text(list_csv(frame), encoding="utf-8", newline="")
        return
    chunks = (rows.slice(start, _CSV_CHUNK_ROWS) for start in range(0, rows.num_rows, _CSV_CHUNK_ROWS))
    with open(path, "wb") as out, ThreadPoolExecutor(max_workers=_CSV_WORKERS) as pool:
        out.write(_csv_header(rows.column_names).encode())
        for lines in pool.map(_csv_lines, chunks):
            out.write(lines)


def _csv_exact(rows: pa.Table) -> bool:
    """Whether :func:`_csv_lines` writes these rows exactly as pandas would after ``rows.to_pandas()``.

    It does for every type the store creates, with two exceptions left to pandas: a timestamp
    column with a time of day (pandas picks its format chunk by chunk) and text with a carriage
    return (whether the csv module quotes it depends on the Python version).
    """
    if not rows.num_columns or any("\r" in name for name in rows.column_names):
        return False
    for column in rows.columns:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if any(_contains_any(chunk, "\r") for chunk in column.chunks):
                return False
        elif pa.types.is_timestamp(kind):
            if kind.tz is not None or pc.all(pc.equal(pc.floor_temporal(column, unit="day"), column)).as_py() is False:
                return False
        elif not (pa.types.is_float64(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
                  or pa.types.is_date32(kind)):
            return False
    return True


def _csv_header(names: Sequence[str]) -> str:
    if len(names) == 1 and names[0] == "":
        return '""' + os.linesep  # the csv module quotes a record's lone empty field
    quoted = ('"' + name.replace('"', '""') + '"' if any(char in name for char in _CSV_SPECIAL) else name
              for name in names)
    return ",".join(quoted) + os.linesep


def _csv_lines(rows: pa.Table) -> pa.Buffer | np.ndarray:
    """The CSV lines of some rows (no header), as bytes."""
    cells = [_csv_cells(column.combine_chunks()) for column in rows.columns]
    if len(cells) > 1 and os.linesep == "\n" and not any(_contains_any(cell, '"') for cell in cells):
        # No cell needed quoting: Arrow's CSV writer joins the cells twice as fast as
        # binary_join_element_wise (it refuses to write a quote, comma or line end unquoted).
        out = pa.BufferOutputStream()
        pa_csv.write_csv(pa.table(cells, names=[str(n) for n in range(len(cells))]), out,
                         pa_csv.WriteOptions(include_header=False, quoting_style="none"))
        return out.getvalue()
    cells = [pc.fill_null(cell, "") for cell in cells]
    if len(cells) == 1:
        cells[0] = pc.if_else(pc.equal(cells[0], ""), '""', cells[0])  # a record's lone empty field
    cells[-1] = pc.binary_join_element_wise(cells[-1], os.linesep, "")
    lines = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
    return _text_bytes(lines)


def _csv_cells(values: pa.Array) -> pa.Array:
    """One column's CSV cells as strings (null where pandas writes nothing)."""
    kind = values.type
    if pa.types.is_float64(kind):
        if len(values) > _FEW_VALUES_SAMPLE and len(pc.unique(values.slice(0, _FEW_VALUES_SAMPLE))) <= 64:
            # Few distinct values (tier thresholds): format each once.
            encoded = pc.dictionary_encode(values)
            return pc.take(_csv_floats(encoded.dictionary), encoded.indices)
        return _csv_floats(values)
    if pa.types.is_integer(kind):
        if values.null_count:
            # to_pandas() makes integers with gaps float64, which pandas writes as 90.0.
            return _csv_floats(pc.cast(values, pa.float64(), safe=False))
        return pc.cast(values, pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(values, "True", "False")
    if pa.types.is_timestamp(kind):
        # Midnights only (see _csv_exact): pandas writes them as dates.
        return pc.cast(pc.cast(values, pa.date32(), safe=False), pa.string())
    text = pc.cast(values, pa.string())
    if pa.types.is_date32(kind):
        return text
    text = guarded_text(text)
    if not _contains_any(text, _CSV_SPECIAL):
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(pc.match_substring_regex(text, f"[{_CSV_SPECIAL}]"), quoted, text)


def _csv_floats(values: pa.Array) -> pa.Array:
    """Each double as Python's repr() writes it, as pandas does (0.5, 1.0, 2.5e-05, 1e+16; NaN empty).

    Arrow's cast finds the same shortest digits but writes some differently: 1 for 1.0, and other
    notations below 1e-4 and from 1e10 up. So: Arrow's text as it is from 1e-4 to 1e9, with ".0"
    added to whole numbers; tiny numbers rewritten into Python's exponent form; the rest (huge or
    infinite: rare) through repr() itself.
    """
    text = pc.cast(values, pa.string())
    numbers = values.to_numpy(zero_copy_only=False)  # nulls come back as NaN
    magnitude = np.abs(numbers)
    missing = np.isnan(numbers)
    plain = (numbers == 0) | ((magnitude >= 1e-4) & (magnitude < 1e9))
    tiny = (magnitude < 1e-4) & (numbers != 0)
    odd = ~(plain | tiny | missing)
    nan = missing & values.is_valid().to_numpy(zero_copy_only=False)  # NaN itself, not a null
    return _rewrite_where(text, [
        (plain & (numbers == np.trunc(numbers)), lambda whole: pc.binary_join_element_wise(whole, ".0", "")),
        (tiny, lambda small: _python_exponent(small, numbers[tiny])),
        (odd, lambda _: _reprs(numbers[odd])),
        (nan, lambda nans: pc.utf8_slice_codeunits(nans, 0, 0)),
    ])


def _python_exponent(text: pa.Array, numbers: np.ndarray) -> pa.Array:
    """Arrow's text of these numbers (all below 1e-4) in Python's notation: 1.25e-05, 3e-07.

    Arrow writes the same digits as 0.0000125 (down to 1e-6 or so) or as 3e-7. String kernels
    move them around: a regex per value would cost more than formatting the number.
    """
    plain = pc.starts_with(pc.utf8_ltrim(text, "-"), "0.").to_numpy(zero_copy_only=False)
    exponent = ~plain & pc.match_substring(text, "e-").to_numpy(zero_copy_only=False)
    text = _rewrite_where(text, [(plain, _exponent_of_plain), (exponent, _exponent_of_short_exponent)])
    # Anything else Arrow might write goes through repr() itself.
    python_like = pc.match_substring_regex(text, r"^-?[1-9](\.[0-9]*[1-9])?e-[0-9]{2,3}$")
    unexpected = ~python_like.to_numpy(zero_copy_only=False)
    return _rewrite_where(text, [(unexpected, lambda _: _reprs(numbers[unexpected]))])


def _exponent_of_plain(text: pa.Array) -> pa.Array:
    """-0.0000125 -> -1.25e-05: the digits after the zeros; the exponent from how many characters led them."""
    body = pc.utf8_ltrim(text, "-")
    digits = pc.utf8_ltrim(body, "0.")
    mantissa = pc.utf8_rtrim(pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 1), pc.utf8_slice_codeunits(digits, 1), "."), ".")
    exponent = pc.cast(pc.subtract(pc.subtract(pc.utf8_length(body), pc.utf8_length(digits)), 1), pa.string())
    sign = pc.if_else(pc.starts_with(text, "-"), "-", "")
    return pc.binary_join_element_wise(sign, mantissa, "e-", pc.utf8_lpad(exponent, 2, "0"), "")


def _exponent_of_short_exponent(text: pa.Array) -> pa.Array:
    """3e-7 -> 3e-07: Python writes at least two exponent digits."""
    parts = pc.split_pattern(text, "e-", max_splits=1)
    exponent = pc.utf8_lpad(pc.list_element(parts, 1), 2, "0")
    return pc.binary_join_element_wise(pc.list_element(parts, 0), "e-", exponent, "")


def _reprs(numbers: np.ndarray) -> pa.Array:
    return pa.array([repr(number) for number in numbers.tolist()], pa.string())


def _rewrite_where(text: pa.Array, rewrites: Sequence[tuple[np.ndarray, Callable[[pa.Array], pa.Array]]]) -> pa.Array:
    """text with, for each (mask, rewrite), the entries the mask picks replaced by rewrite(those entries).

    The masks do not overlap. One replace_with_mask for all of them: each copies the whole column.
    """
    positions, replacements = [], []
    for mask, rewrite in rewrites:
        if mask.any():
            positions.append(np.flatnonzero(mask))
            replacements.append(rewrite(text.filter(pa.array(mask))))
    if not positions:
        return text
    picked = np.zeros(len(text), dtype=bool)
    for chosen in positions:
        picked[chosen] = True
    replacement = pa.concat_arrays(replacements)
    if len(replacements) > 1:
        replacement = replacement.take(np.argsort(np.concatenate(positions), kind="stable"))
    return pc.replace_with_mask(text, pa.array(picked), replacement)


def _text_bytes(text: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of a string array's values, back to back (no copy)."""
    if not len(text) or text.buffers()[2] is None:
        return np.empty(0, dtype=np.uint8)
    width = 8 if pa.types.is_large_string(text.type) else 4
    offsets = np.frombuffer(text.buffers()[1], dtype=f"int{8 * width}", count=len(text) + 1, offset=width * text.offset)
    return np.frombuffer(text.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]


def _contains_any(text: pa.Array, chars: str) -> bool:
    """Whether any value of a string array holds one of these ASCII characters (a scan of its bytes)."""
    data = _text_bytes(text)
    return any((data == ord(char)).any() for char in chars)


_EXPORT_WRITERS: dict[str, Callable[[pd.DataFrame | pa.Table, Path], None]] = {
    "csv": _write_csv,
    "parquet": _write_parquet,
}
