"""Read transactions from a source, check them against the contract, and account for every row.

A source is a CSV or Parquet file, a folder or glob of them, a table in a SQL database
(`URL#table`, e.g. `sqlite:///shop.db#orders` or `postgres://user@host/db#orders`), or a built-in
name: `cdnow` (the CDNOW master file shipped inside `lifetimes`), `cdnow-sample`, `demo`.

Rules (the transactions contract; README "Your own data"):
- Whole-input problems stop the run with one clear error naming the source, the column and a few
  offending rows: empty input, a missing column, a column whose values do not parse (more than
  `max_invalid_share` of the rows: the column is of the wrong type, not a few bad rows).
- Row problems set the row aside into the quarantine with a reason, counted in the reconciliation
  report: null customer id, unparseable or missing date, non-numeric or missing amount, date after
  the as-of date, duplicate record (same order_id and the same values twice), an order_id already
  used by another customer (its first user: earliest usable row, then smallest id).
- Zero-amount and negative (refund) rows are legal and kept.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import gzip
import hashlib
import itertools
import operator
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from configs.schema import ColumnMapping
from features import contract
from flows.workspace import BUILTIN_SOURCES, GLOB_CHARACTERS, NOT_UTF8, not_utf8
DEMO_CUSTOMERS = 20_000
DEMO_SEED = 7

REASONS = (
    "null_customer_id",
    "unparseable_date",
    "non_numeric_amount",
    "after_as_of",
    "duplicate_record",
    "conflicting_order_id",
)
# Reasons that mean a value of the wrong type: too many of them is a wrong column, not bad rows.
TYPE_REASONS = {"unparseable_date": contract.ORDER_TS, "non_numeric_amount": contract.AMOUNT}


class IngestError(ValueError):
    """Input that cannot be used: names the source, the column and example rows."""


class FileFormatError(IngestError):
    """A file the reader cannot split into rows (encoding, line endings, quotes, ragged lines): the
    message names the line and what to do; the CLI's hint about paths and column mappings would mislead."""


class DateError(IngestError):
    """Dates that cannot be used as asked (an as-of date out of range, a last order standing apart, Unix
    times in the wrong unit, a date_format no engine reads): the message says what to do; the CLI's
    hint about paths and column mappings would mislead."""


class SourceUnreachable(Exception):
    """A source database that does not answer or refuses the connection (the machine's or the
    server's problem, not the data's)."""


# Query or connection-string parameters that carry credentials (?password=, sslpassword=, ;pwd=, &token=).
# The value ends at the next parameter, a URL's #table, a blank or a quote (it ran on through "#orders" and the
# rest of the message: "...?password=***" was all an error said).
SECRET_PARAMETER = re.compile(r"([?&;,]\s*[^=?&;,]*(?:pass|pwd|secret|token|key|auth|credential)[^=?&;,]*=)[^&;,#\s'\"`]*", re.IGNORECASE)


def hide_password(text: str) -> str:
    """Text with the credentials of any URL in it masked: the password of every user:password@ part
    (a password may hold '/'; a multi-host URL has several) and credential-like query parameters."""
    # Up to the '@' that ends the user part: a password holding a bare '@' (p@ss) was shown from it on.
    text = re.sub(r"((?:://|,)[^:/@,?#\s]*:)\S*?@(?=[^@\s,]*(?:[/?#,\s'\"]|$))", r"\1***@", text)
    return SECRET_PARAMETER.sub(r"\1***", text)


@dataclass(frozen=True)
class Source:
    kind: str  # csv | parquet | database | builtin
    location: str
    table: str | None = None

    @property
    def label(self) -> str:
        """The source as given, a database URL's password masked (messages and reports are shared)."""
        location = hide_password(self.location) if self.kind == "database" else self.location
        return f"{location}#{self.table}" if self.table else location

    @property
    def identity(self) -> str:
        """Where the data are, whatever the working folder: a file source's absolute path, else the label."""
        if self.kind in ("csv", "parquet"):
            return str(Path(self.location).resolve())
        return self.label


@dataclass
class Ingested:
    """Clean canonical transactions, the rows set aside, and the reconciliation report."""

    transactions: Any  # ibis Table in the canonical schema, materialised in the connection
    quarantine: pd.DataFrame
    report: dict[str, Any]
    as_of: date
    connection: Any = field(repr=False, default=None)


# DuckDB's CSV reader: every value as text (types are checked row by row, so a bad value is reported,
# not guessed); quotes as RFC 4180 writes them, always: the sniffer looks at the first ~20,000 rows
# only, and a file whose first quoted field ("1,587.65") came later failed on that line.
CSV_OPTIONS = "all_varchar = true, header = true, union_by_name = true, quote = '\"', escape = '\"'"


def parse_source(src: str, table: str | None = None) -> Source:
    """Classify a SRC argument; raise IngestError for a path that does not exist."""
    if src in BUILTIN_SOURCES:
        return Source("builtin", src)
    if "://" in src:
        from configs.schema import check_url_authority

        url, _, fragment = src.partition("#")
        try:
            check_url_authority(url)
        except ValueError as error:
            raise IngestError(f"{hide_password(url)}: {error}") from None
        name = fragment or table
        if not name:
            raise IngestError(f"{hide_password(src)}: a database source needs a table: write URL#table (e.g. "
                              "sqlite:///shop.db#orders) or set source.table in the config")
        source = Source("database", url, name)
        existing_database_file(source)  # before `score` looks for a champion: a typo is "no such file"
        return source
    matches = sorted(glob.glob(src)) if GLOB_CHARACTERS & set(src) else None
    path = Path(src)
    if matches is None and not path.exists():
        raise IngestError(
            f"{src}: no such file or folder (built-in sources: {', '.join(BUILTIN_SOURCES)})"
        )
    if matches == []:
        raise IngestError(f"{src}: the glob matches no file")
    files = matches or (folder_files(path) if path.is_dir() else [src])
    if not files:
        raise IngestError(f"{src}: the folder holds no data file (CSV or Parquet, in it or in its subfolders)")
    # DuckDB takes UTF-8 names only: "'utf-8' codec can't encode character '\\udce9' ... surrogates not allowed".
    for name in (src, *files):
        if (shown := not_utf8(str(name))) is not None:
            raise IngestError(f"{shown}: the file name is {NOT_UTF8}: rename it to a UTF-8 name (e.g. `convmv -f latin1 -t utf8 --notest FILE`)")
    suffixes = {Path(f.removesuffix(".gz")).suffix.lower() for f in files}
    if suffixes <= {".parquet", ".pq"}:
        return Source("parquet", src)
    if suffixes <= {".csv", ".txt", ".tsv"}:
        return Source("csv", src)
    raise IngestError(f"{src}: cannot tell the format from the file names ({', '.join(sorted(suffixes))}); use .csv or .parquet files")


def reads_path(source: Source, path: Path) -> bool:
    """Whether `path` is one of the files a file source reads, or inside the folder it reads (a file
    written there would be read next time)."""
    if source.kind not in ("csv", "parquet"):
        return False
    target = path.resolve()
    location = Path(source.location)
    if GLOB_CHARACTERS & set(source.location):
        patterns = {str(location.absolute())}
        if not GLOB_CHARACTERS & set(str(location.parent)):  # a symlinked folder (current -> 2025-12-31)
            patterns.add(str(location.parent.resolve() / location.name))
        return target in {Path(name).resolve() for name in glob.glob(source.location)} or any(
            fnmatch.fnmatch(str(target), pattern) for pattern in patterns)
    if location.is_dir():
        return target.is_relative_to(location.resolve())
    return target == location.resolve()


def lifetimes_dataset_path(name: str) -> Path:
    """Path of a data file shipped inside the installed lifetimes package."""
    return Path(str(resources.files("lifetimes").joinpath("datasets", name)))


def _cdnow_frame(sample: bool) -> pd.DataFrame:
    if sample:
        names = ["customer_id", "sample_id", "date", "quantity", "amount"]
        frame = pd.read_csv(lifetimes_dataset_path("CDNOW_sample.txt"), sep=r"\s+", header=None, names=names, dtype=str)
    else:
        frame = pd.read_csv(lifetimes_dataset_path("CDNOW_master.txt"), sep=r"\s+", dtype=str)
        frame.columns = ["customer_id", "date", "quantity", "amount"]
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str),
            "order_ts": pd.to_datetime(frame["date"], format="%Y%m%d"),
            "amount": frame["amount"].astype(float),
            "quantity": frame["quantity"].astype(float),
        }
    )


def builtin_columns(name: str) -> ColumnMapping:
    """The column mapping of a built-in source (already in canonical names)."""
    if name == "demo":
        return ColumnMapping(order_id="order_id", category="category", quantity="quantity")
    return ColumnMapping(quantity="quantity")


def demo_dataset_path(workdir: Path) -> Path:
    """Where the demo's synthetic data set is cached in the workspace."""
    return workdir / "data" / f"demo-{DEMO_CUSTOMERS}-{DEMO_SEED}.parquet"


def ensure_demo_dataset(workdir: Path) -> Path:
    """Generate the demo data set once per workspace (atomically) and return its path."""
    from features.synthetic import generate_transactions

    path = demo_dataset_path(workdir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        transactions, truth = generate_transactions(DEMO_CUSTOMERS, DEMO_SEED)
        tmp = path.with_suffix(".tmp")
        transactions.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        truth.to_parquet(path.with_name(path.stem + ".truth.parquet"), index=False)
    return path


def folder_files(folder: Path) -> list[str]:
    """The data files of a folder and its subfolders (e.g. Hive partitions `year=2024/`), sorted.

    Hidden files and folders and those starting with '_' are not data: Spark's and Hadoop's
    `_SUCCESS`, `_temporary/`, `.part-0.crc`, `.DS_Store`.
    """
    def is_data(path: Path) -> bool:
        parts = path.relative_to(folder).parts
        return path.is_file() and not any(part.startswith((".", "_")) for part in parts)

    return sorted(str(p) for p in folder.rglob("*") if is_data(p))


def source_files(source: Source) -> list[str]:
    """The files of a CSV or Parquet source, in the order their rows are numbered (sorted paths)."""
    location = source.location
    if GLOB_CHARACTERS & set(location):
        return sorted(glob.glob(location))
    path = Path(location)
    if path.is_dir():
        return folder_files(path)
    return [location]


def partition_base(source: Source) -> str | None:
    """The folder under which a folder or glob source's Hive partitions (`year=2024/`) are named:
    Spark reads partition columns from the paths of an explicit file list only given this base."""
    location = source.location
    if GLOB_CHARACTERS & set(location):
        return os.path.dirname(re.split(r"[*?\[]", location, maxsplit=1)[0]) or "."
    return location if Path(location).is_dir() else None


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ----------------------------------------------------------------------------- reading (engine-specific)
#
# A reader returns the source's rows as an Ibis table: ROW_NUMBER (the 1-based position of the
# row in the source: files in sorted order, then rows in file order) and the source columns, CSV
# columns as text. Everything after reading is one set of Ibis expressions for both engines.

ROW_NUMBER = "_vipcast_row"
RAW_VIEW = "vipcast_raw"


def _numbered_frame(frame, engine: str) -> Any:
    """An in-memory source (pandas or Arrow) with its row numbers, as an Ibis memtable for `engine`."""
    if isinstance(frame, pa.Table):
        if engine != "duckdb":
            # Ibis hands Spark a DECIMAL column through pandas as Decimal objects, and a NULL among
            # them fails: such columns go as their exact text, read like a CSV's.
            frame = frame.cast(pa.schema([
                field.with_type(pa.string()) if pa.types.is_decimal(field.type) else field for field in frame.schema
            ]))
        # A database column that holds only NULLs, or bytes (BLOB), has no type DuckDB takes from
        # pandas: text (bytes as hex).
        for index, column in enumerate(frame.schema):
            if pa.types.is_null(column.type):
                frame = frame.set_column(index, column.name, pa.nulls(len(frame), pa.string()))
            elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
                values = [None if value is None else value.hex() for value in frame.column(index).to_pylist()]
                frame = frame.set_column(index, column.name, pa.array(values, pa.string()))
        # Kept in Arrow: through pandas a DECIMAL column with a NULL became Decimal objects and None,
        # which Ibis could not turn back into a table (a nullable NUMERIC(12,2) failed the read).
        return ibis.memtable(frame.add_column(0, ROW_NUMBER, pa.array(range(1, len(frame) + 1), pa.int64())))
    frame = frame.to_pandas() if hasattr(frame, "to_pandas") and not isinstance(frame, pd.DataFrame) else frame
    numbered = frame.copy()
    numbered.insert(0, ROW_NUMBER, range(1, len(frame) + 1))
    return ibis.memtable(numbered)


def _builtin_or_database_frame(source: Source):
    if source.kind == "builtin":
        return _cdnow_frame(sample=source.location == "cdnow-sample")
    try:
        backend = connect_database(source)
    except IngestError:
        raise
    except ValueError as exc:  # Ibis knows no backend for the URL's scheme
        raise IngestError(
            f"{source.label}: cannot read this URL ({first_line(exc)}); source URLs look like "
            "postgres://user@host:5432/db#table, sqlite:///shop.db#table or duckdb:///shop.duckdb#table"
        ) from exc
    except Exception as exc:  # driver errors vary: a refused connection, a wrong password or database
        raise SourceUnreachable(f"{source.label}: cannot connect to the database ({type(exc).__name__}: {first_line(exc)})") from exc
    try:
        remote = backend.table(source.table)
        try:
            return remote.to_pyarrow()
        except Exception:  # noqa: BLE001 - whatever the driver's conversion raised, the text read decides
            # A column whose values do not all fit its declared type (SQLite keeps 'n/a' in a REAL
            # column, 'not a date' in a DATETIME one, '1,587.65' in a NUMERIC one; the conversion
            # fails in Arrow, pandas or decimal): read every column as text, so the rows are checked
            # one by one like a CSV's and the bad ones set aside, instead of the whole table failing.
            # A connection or permission error fails the text read too, and is reported below.
            return remote.select(**{name: remote[name].cast("string") for name in remote.columns}).to_pyarrow()
    except IngestError:
        raise
    except Exception as exc:  # driver errors vary by database; the message says which
        raise IngestError(f"{source.label}: cannot read the table ({type(exc).__name__}: {first_line(exc)})") from exc


def first_line(exc: Exception) -> str:
    """An exception's message in one line (drivers add hints and SQL on further lines), its password masked."""
    return hide_password((str(exc).strip().splitlines() or [type(exc).__name__])[0].strip())


# Databases kept in one file: their URL names the file the way SQLAlchemy reads it (the outputs
# store's URLs too): sqlite:///shop.db is ./shop.db, sqlite:////data/shop.db is /data/shop.db.
FILE_DATABASES = ("sqlite", "duckdb")


def database_file(url: str) -> Path | None:
    """The file a sqlite:// or duckdb:// URL names (relative to the working directory), else None."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in FILE_DATABASES:
        return None
    return Path(rest.removeprefix("/").split("?")[0])


def existing_database_file(source: Source) -> Path | None:
    """The file of a file database source (None for a server's URL); IngestError when it does not exist."""
    path = database_file(source.location)
    if path is not None and not path.is_file():
        raise IngestError(
            f"{source.label}: no such database file: {path.absolute()}"
            " (sqlite:///shop.db is ./shop.db, sqlite:////data/shop.db is /data/shop.db)"
        )
    return path


def connect_database(source: Source):
    """An Ibis connection to the source's database; a file database must exist (never created empty)."""
    path = existing_database_file(source)
    if path is None:
        return ibis.connect(source.location)
    scheme = source.location.partition("://")[0].lower()
    return ibis.sqlite.connect(path) if scheme == "sqlite" else ibis.duckdb.connect(path, read_only=True)


def _parquet_row_offsets(con, files: list[str]) -> list[tuple[str, int]]:
    """(file, rows before it) for Parquet files in reading order, from the footers alone."""
    listed = ", ".join(_sql_str(f) for f in files)
    return row_starts(files, dict(con.raw_sql(f"select file_name, num_rows from parquet_file_metadata([{listed}])").fetchall()))


def row_starts(files: list[str], rows: dict[str, int]) -> list[tuple[str, int]]:
    """(file, rows before it) for files in reading order, from each file's row count."""
    starts, total = [], 0
    for name in files:
        starts.append((name, total))
        total += int(rows.get(name, 0))
    return starts


INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT")
FLOAT_TYPES = ("FLOAT", "DOUBLE")


TEXT_TYPES = ("VARCHAR",)
ZONED_TYPES = ("TIMESTAMP WITH TIME ZONE",)


def _columns_read_per_file(con, files: list[str], union_types: dict[str, str]) -> dict[str, dict[str, str]]:
    """Columns whose values a multi-file Parquet read would change: {column: {file: type}}.

    - integers in some files and floats in others: read as one table they become doubles, and ids
      above 2**53 lose digits (two customers merged);
    - text in some files and floats in others: a float 103.0 became the text "103.0", another
      customer than the text "103";
    - text in some files and UTC timestamps in others: the timestamps became text with a "+00".
    Such columns are read file by file as text the way `as_text` reads a single file. Only footers
    are read.
    """
    candidates = [name for name, kind in union_types.items() if kind in FLOAT_TYPES or kind in TEXT_TYPES]
    if len(files) < 2 or not candidates:
        return {}
    by_file = {
        f: {row[0]: row[1] for row in con.raw_sql(f"describe select * from read_parquet({_sql_str(f)})").fetchall()}
        for f in files
    }
    mixed = {}
    for name in candidates:
        kinds = {f: types[name] for f, types in by_file.items() if name in types}
        changed = INTEGER_TYPES if union_types[name] in FLOAT_TYPES else FLOAT_TYPES + ZONED_TYPES
        if any(kind in changed for kind in kinds.values()):
            mixed[name] = kinds
    return mixed


def _as_text_sql(column: str, kind: str) -> str:
    """SQL giving a Parquet column as text the way `as_text` does (whole floats without '.0')."""
    quoted = f'"{column}"'
    if kind in FLOAT_TYPES:
        return (f"case when isnan({quoted}) then null when abs({quoted}) < {EXACT_FLOAT_INTEGER} and {quoted} = floor({quoted}) "
                f"then cast(cast({quoted} as bigint) as varchar) else cast({quoted} as varchar) end")
    if kind in ZONED_TYPES:  # the UTC time with its offset, which the date parser reads back to UTC
        return f"cast(timezone('UTC', {quoted}) as varchar) || '+00'"
    return f"cast({quoted} as varchar)"


def _read_files_duckdb(con, source: Source) -> None:
    files = source_files(source)
    listed = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    if source.kind == "parquet":
        union_types = dict(row[:2] for row in con.raw_sql(f"describe select * from read_parquet({listed}, union_by_name = true)").fetchall())
        columns = list(union_types)
        mixed = _columns_read_per_file(con, files, union_types)
        if mixed and not {"filename", "file_row_number"} & set(columns):
            # File by file, those columns as text: 6006491234567890123 (int64 in one month's file)
            # and 6006491234567890124 became one double when another month's file held floats.
            selects = []
            for name, offset in _parquet_row_offsets(con, files):
                here = {column: kinds[name] for column, kinds in mixed.items() if name in kinds}
                texts = "".join(f", {_as_text_sql(column, kind)} as \"{column}\"" for column, kind in here.items())
                excluded = ", ".join(["file_row_number", *(f'"{column}"' for column in here)])
                selects.append(
                    f"select cast({offset} + file_row_number + 1 as bigint) as {ROW_NUMBER}, * exclude ({excluded}){texts} "
                    f"from read_parquet({_sql_str(name)}, file_row_number = true)"
                )
            con.raw_sql(f"create or replace view {RAW_VIEW} as " + " union all by name ".join(selects))
            return
        if not {"filename", "file_row_number"} & set(columns):
            # The row position from the Parquet reader itself (rows in earlier files + row in the
            # file): no ordered window over the whole input, so the scan stays parallel.
            offsets = _parquet_row_offsets(con, files)
            position = "r.file_row_number + 1"
            if len(offsets) > 1:
                cases = " ".join(f"when {_sql_str(name)} then {offset}" for name, offset in offsets)
                position = f"(case r.filename {cases} end) + {position}"
            con.raw_sql(
                f"create or replace view {RAW_VIEW} as "
                f"select cast({position} as bigint) as {ROW_NUMBER}, r.* exclude (filename, file_row_number) "
                f"from read_parquet({listed}, union_by_name = true, filename = true, file_row_number = true) r"
            )
            return
        reader = f"read_parquet({listed}, union_by_name = true)"
    else:
        # Everything as text: types are checked row by row, so a bad value is reported, not guessed.
        reader = f"read_csv({listed}, {CSV_OPTIONS})"
    # DuckDB keeps insertion order, so row_number() over () is the position in the (sorted) files.
    con.raw_sql(f"create or replace view {RAW_VIEW} as select row_number() over () as {ROW_NUMBER}, * from {reader}")
    con.raw_sql(f"select count(*) from {RAW_VIEW}").fetchall()


def _read_files_spark(con, source: Source) -> None:
    """Read CSV/Parquet files with Spark and number the rows in file order, without a global sort.

    Spark packs file splits into partitions (largest first), and `monotonically_increasing_id`
    increases within a partition; so rows are numbered by counting each (file, partition) block
    once and adding the sizes of the blocks before it (one extra pass, like RDD.zipWithIndex).
    """
    from pyspark.sql import functions as F

    from flows.engine import active_spark_session

    spark = active_spark_session()
    files = source_files(source)
    base = partition_base(source)
    # Partition columns named in the folder names (category=books/), as DuckDB reads them.
    options = {"basePath": base} if base else {}

    def located_rows(frame):
        return frame.select(
            F.col("_metadata.file_path").alias("_vipcast_file"),
            F.spark_partition_id().alias("_vipcast_partition"),
            F.monotonically_increasing_id().alias("_vipcast_position"),
            *[F.col(f"`{name}`") for name in frame.columns],
        )

    if source.kind == "parquet":
        located = located_rows(spark.read.options(mergeSchema="true", **options).parquet(*files))
    else:
        tab_separated = all(Path(f.removesuffix(".gz")).suffix.lower() == ".tsv" for f in files)
        # Quotes as DuckDB reads them (CSV_OPTIONS): "" inside quotes is a quote, and a quoted value
        # may hold a line break (multiLine: each file is read whole, not split).
        reader = spark.read.options(header=True, inferSchema=False, sep="\t" if tab_separated else ",",
                                    quote='"', escape='"', multiLine=True, **options)
        # File by file, joined by column name: one read of many files takes every file's columns in
        # the first file's order, so a file with `tax,amount` read its tax as the amount.
        located = functools.reduce(
            lambda left, right: left.unionByName(right, allowMissingColumns=True),
            (located_rows(reader.csv(name)) for name in files),
        )
    frame_columns = [name for name in located.columns if not name.startswith("_vipcast_")]
    blocks = (
        located.groupBy("_vipcast_file", "_vipcast_partition")
        .agg(F.min("_vipcast_position").alias("_vipcast_first"), F.count(F.lit(1)).alias("_vipcast_rows"))
        .collect()
    )
    offsets, total = [], 0
    for block in sorted(blocks, key=lambda b: (b["_vipcast_file"], b["_vipcast_first"])):
        offsets.append((block["_vipcast_file"], block["_vipcast_partition"], block["_vipcast_first"], total))
        total += block["_vipcast_rows"]
    starts = spark.createDataFrame(
        offsets, "_vipcast_file string, _vipcast_partition int, _vipcast_first long, _vipcast_offset long"
    )
    numbered = located.join(F.broadcast(starts), ["_vipcast_file", "_vipcast_partition"]).select(
        (F.col("_vipcast_position") - F.col("_vipcast_first") + F.col("_vipcast_offset") + 1).alias(ROW_NUMBER),
        *[F.col(f"`{name}`") for name in frame_columns],
    )
    numbered.createOrReplaceTempView(RAW_VIEW)


def read_raw(con, source: Source, workdir: Path):
    """The source's raw rows as an Ibis table: ROW_NUMBER and the source columns."""
    from flows.engine import engine_of

    engine = engine_of(con)
    if source.kind == "builtin" and source.location == "demo":
        source = Source("parquet", str(ensure_demo_dataset(workdir)))
    if source.kind in ("builtin", "database"):
        rows = _numbered_frame(_builtin_or_database_frame(source), engine)
        if engine == "duckdb":
            con.create_table(RAW_VIEW, rows, overwrite=True)
        else:
            con.create_view(RAW_VIEW, rows, overwrite=True)
        return con.table(RAW_VIEW)
    try:
        if engine == "duckdb":
            _read_files_duckdb(con, source)
        else:
            _read_files_spark(con, source)
    except Exception as exc:
        if source.kind == "csv":
            check_csv_shape(source)  # an unclosed quote or a ragged line, named by file and line
        raise IngestError(f"{source.label}: cannot read as {source.kind} ({reader_problem(exc)})") from exc
    return con.table(RAW_VIEW)


# Lines of a reader's error that say what is wrong (DuckDB's CSV errors run to twenty lines).
TELLING_LINES = ("Original Line:", "Expected Number of Columns", "file = ", "Invalid unicode")


def reader_problem(exc: Exception) -> str:
    """A reader's error in one line: its first line and the lines naming the file, line and problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    telling = [line for line in lines[1:] if line.startswith(TELLING_LINES)]
    problem = "; ".join(lines[:1] + telling)
    if any(line.startswith("Invalid unicode") for line in telling):
        problem += "; save the file as UTF-8 text (Excel: 'CSV UTF-8')"
    return problem


def materialize(con, name: str, table):
    """Compute `table` once for the queries that follow: a temp table (DuckDB) or a cached view (Spark)."""
    from flows.engine import active_spark_session, engine_of

    if engine_of(con) == "duckdb":
        return con.create_table(name, table, temp=True, overwrite=True)
    con.create_view(name, table, overwrite=True)
    active_spark_session().catalog.cacheTable(name)
    return con.table(name)


# ----------------------------------------------------------------------------- typing and classifying (shared)

# What counts as a date or a number in a text column. The same patterns on both engines, so a
# value both engines would cast differently (e.g. '2024', '1d', 'NaN', a UTC offset) is set aside
# on both rather than read two ways; ISO dates with an optional time (and 'Z') are dates.
# Up to nine digits of a second (SQL Server's datetime2 and .NET write 7, pandas 9): read to the
# microsecond (the rest cut off, `at_most_micros`).
ISO_TIMESTAMP = r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?Z?$"
# An ISO timestamp with a UTC offset (+02:00, -0500) or zone name: read explicitly and converted to
# UTC. The minutes are optional (PostgreSQL writes UTC timestamps as '2024-02-05 10:00:00+00'); a
# space may come first, and UTC / GMT (alone or before the offset) or Z: '2024-02-05 10:00:00 -05:00',
# '... 10:00:00 UTC', '... 10:00 GMT+1'. Groups: 1 the local time, 4 the sign, 5 two-digit hours,
# 6 minutes, 7 one-digit hours (alone: '+123' is no offset).
ISO_WITH_OFFSET = (
    r"^(\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?) ?"
    r"(?:UTC|GMT|Z|(?:UTC|GMT)?([+-])(?:(0\d|1[0-4])(?::?([0-5]\d))?|(\d)))$"
)
# Hours 00-14 and minutes 00-59: '+99:99' or '-48' is no offset (the text is then no date: set aside
# as unparseable_date, not shifted by 100 hours); `utc_of_offset_timestamp` keeps -12:00 to +14:00.
DECIMAL_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# A number with thousands separators, as spreadsheets export it: 1,587.65 or -12,000.
GROUPED_NUMBER = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_try_strptime(text: str, date_format: str) -> datetime:
    """DuckDB: parse with a strftime format, null when the text does not match."""


@ibis.udf.scalar.builtin(name="try_to_timestamp")
def _spark_try_to_timestamp(text: str, date_format: str) -> datetime:
    """Spark: parse with a Java date-time pattern, null when the text does not match."""


def _spark_pattern(date_format: str) -> str:
    """A strftime format as the Java date-time pattern Spark parses with (e.g. %Y%m%d -> yyyyMMdd)."""
    from sqlglot.dialects.spark import Spark
    from sqlglot.time import format_time

    return format_time(date_format, Spark.INVERSE_TIME_MAPPING, Spark.INVERSE_TIME_TRIE)


@ibis.udf.scalar.builtin(name="trim")
def _duckdb_trim(text: str, characters: str) -> str:
    """DuckDB: `characters` removed from both ends."""


@ibis.udf.scalar.builtin(name="trim")
def _duckdb_trim_spaces(text: str) -> str:
    """DuckDB: spaces and Unicode space separators removed from both ends."""


@ibis.udf.scalar.builtin(name="strlen")
def _duckdb_byte_length(text: str) -> int:
    """DuckDB: the length of the text in bytes (UTF-8)."""


@ibis.udf.scalar.builtin(name="btrim")
def _spark_btrim(text: str, characters: str) -> str:
    """Spark: `characters` removed from both ends.

    Not Ibis's `strip()`: on Spark it trims the letters 'f' and 'v' too (its '\\f' and '\\v' are
    not escapes in Spark SQL string literals), turning customer 'f' into ''.
    """


# Trimmed from both ends of every text value: spaces, tabs, line breaks and the Unicode space
# separators (no-break space, em space, ideographic space, ...), which DuckDB's one-argument trim
# removes by itself.
# (Not \x0b and \x0c: Ibis writes them as '\v' and '\f', which Spark SQL reads as the letters v and f.)
CONTROL_BLANKS = "\t\n\r"
# Line and paragraph separators, NEL, zero-width space and a stray byte-order mark: above '!' and
# not ASCII, so the fast path sends every non-ASCII value to the full trim.
WIDE_BLANKS = "\x85\u2028\u2029\u200b\ufeff"
BLANKS = " " + CONTROL_BLANKS + WIDE_BLANKS + "\u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"
# Text that means "no value" in exports (pandas' default missing-value markers, SQL NULL, the
# '\N' of MySQL and PostgreSQL dumps): read as null, so "NULL" is never a customer or an order id.
NULL_TOKENS = (
    "", "NULL", "null", "Null", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "-NaN", "-nan",
    "None", "none", "NONE", "<NA>", "#N/A", "#NA", "\\N",
)
LONGEST_NULL_TOKEN = max(map(len, NULL_TOKENS))


def trimmed_text(text, engine: str):
    """`text` without BLANKS at either end.

    On DuckDB the two-argument trim costs three times the one-argument one (~0.2 s per million
    rows), so the one-argument trim (spaces and Unicode spaces) runs first, and the full trim only on
    what it leaves starting below '!' or ending in a tab or line break ("C1\t " is "C1\t" after
    the first trim: testing the value before it let that tab through and made two customers).
    """
    if engine != "duckdb":
        return _spark_btrim(text, BLANKS)
    spaced = _duckdb_trim_spaces(text)
    edged = spaced < "!"
    for control in CONTROL_BLANKS:
        edged = edged | spaced.endswith(control)
    # The wide blanks are not ASCII: a value with more bytes than characters takes the full trim
    # (one comparison; ten start/end tests cost 1.4 s per 13M values).
    edged = edged | (_duckdb_byte_length(spaced) != spaced.length())
    return edged.ifelse(_duckdb_trim(spaced, BLANKS), spaced)


# Whole numbers a float64 holds exactly (2^53): ids within this range are written without ".0".
EXACT_FLOAT_INTEGER = 2**53


def as_text(value):
    """A source value as text. A float column holding whole numbers (an integer id column that
    pandas stored as float because of missing values) gives "12345", not "12345.0", so the ids match
    the same customers' ids in an integer or text column; other floats keep the engine's text, and
    NaN is null."""
    text = value.cast("string")
    if not value.type().is_floating():
        return text
    whole = (value.abs() < EXACT_FLOAT_INTEGER) & (value % 1 == 0)  # no cast outside the int64 range
    return value.isnan().ifelse(ibis.null("string"), whole.ifelse(value.cast("int64").cast("string"), text))


# An id written as a whole number with a zero fraction ("13085.0", as pandas writes an integer id
# column with gaps to CSV): the ids of that whole number, as a float column's are (`as_text`).
ZERO_FRACTION_ID = r"^-?[0-9]+\.0+$"
ID_FIELDS = (contract.CUSTOMER_ID, contract.ORDER_ID)


def without_zero_fraction(text):
    """Id text without a zero fraction: "13085.0" and "13085.00" are "13085" (other text unchanged).

    The cheap test runs first, so the pattern is matched only on values ending in a zero."""
    whole = text.endswith("0") & text.re_search(ZERO_FRACTION_ID)
    return whole.ifelse(text.re_replace(r"\.0+$", ""), text)


def without_markers(trimmed):
    """Trimmed text with the missing-value markers (and the empty string) as null."""
    # The length test first: DuckDB then looks up only short values in the list.
    is_marker = (trimmed.length() <= LONGEST_NULL_TOKEN) & trimmed.isin(NULL_TOKENS)
    return is_marker.ifelse(ibis.null("string"), trimmed)


def text_of(value, engine: str):
    """A value as text without surrounding blanks; null for an empty string or a missing-value marker."""
    return without_markers(trimmed_text(as_text(value), engine))


@ibis.udf.scalar.builtin(name="make_timestamp")
def _duckdb_micros_timestamp(micros: int) -> datetime:
    """DuckDB: the UTC timestamp `micros` microseconds after 1970-01-01."""


@ibis.udf.scalar.builtin(name="timestamp_micros")
def _spark_micros_timestamp(micros: int) -> datetime:
    """Spark: the timestamp `micros` microseconds after 1970-01-01 (UTC in vipcast's sessions)."""


# source.date_format values for Unix times (numbers since 1970-01-01 UTC), and the units per second.
EPOCH_UNITS = {"epoch": 1, "epoch_ms": 1_000, "epoch_us": 1_000_000}


def check_date_format(date_format: str | None) -> None:
    """Refuse a date format no engine can parse with, naming it (before any row is read)."""
    if date_format is None or date_format in EPOCH_UNITS:
        return
    import duckdb

    try:
        duckdb.connect().execute("select try_strptime('2000-01-01', ?)", [date_format]).fetchall()
    except duckdb.Error as exc:
        raise DateError(
            f"source.date_format {date_format!r} is not a date format ({str(exc).splitlines()[0]}); write it with "
            f"strftime codes such as '%d/%m/%Y %H:%M', or 'epoch' / 'epoch_ms' / 'epoch_us' for Unix times"
        ) from None


def parsed_timestamp(value, date_format: str | None, engine: str, *, clean: bool = False):
    """A source column as a naive UTC timestamp; null where it does not hold a date in AS_OF_RANGE.

    `clean`: `value` is already `text_of` the source column. A date outside the range is a typo
    (31.12.24 read with %Y is the year 24, 0204-05-01 a slip of the keyboard): it made T about
    730,000 days, silently.
    """
    stamp = _parsed_timestamp(value, date_format, engine, clean=clean)
    first, last = AS_OF_RANGE
    in_range = (stamp >= ibis.literal(datetime.combine(first, time.min))) & (stamp < ibis.literal(datetime.combine(last + timedelta(days=1), time.min)))
    return in_range.ifelse(stamp, ibis.null("timestamp"))


def _parsed_timestamp(value, date_format: str | None, engine: str, *, clean: bool = False):
    dtype = value.type()
    if dtype.is_timestamp() or dtype.is_date():
        return value.cast("timestamp")
    if date_format in EPOCH_UNITS:
        seconds = parsed_number(value, engine, clean=clean) / EPOCH_UNITS[date_format]
        # The whole of the range's last day (ending at its first midnight set aside 2199-12-31 12:00 given
        # in epoch seconds, while the same instant as text was read).
        first, end = (datetime.combine(day, time.min).replace(tzinfo=timezone.utc).timestamp()
                      for day in (AS_OF_RANGE[0], AS_OF_RANGE[1] + timedelta(days=1)))
        in_range = (seconds >= first) & (seconds < end)
        micros = (seconds * 1_000_000).round().cast("int64")
        stamp = _duckdb_micros_timestamp(micros) if engine == "duckdb" else _spark_micros_timestamp(micros)
        return in_range.ifelse(stamp, ibis.null("timestamp"))
    text = value if clean else text_of(value, engine)
    if date_format:
        if engine == "duckdb":
            return _duckdb_try_strptime(text, date_format)
        return _spark_try_to_timestamp(text, _spark_pattern(date_format))
    text = at_most_micros(text)
    # A trailing 'Z' (UTC, as every naive time is read) after a date alone is dropped: both casts refuse
    # it. The cheap test first: a regular expression on every value cost the parse a third more.
    plain_text = text.endswith("Z").ifelse(text.re_search(r"^[^ T]*Z$").ifelse(text.re_extract(r"^([^ T]*)Z$", 1), text), text)
    plain = text.re_search(ISO_TIMESTAMP).ifelse(plain_text.try_cast("timestamp"), ibis.null("timestamp"))
    return text.re_search(ISO_WITH_OFFSET).ifelse(utc_of_offset_timestamp(text), plain)


# The fraction of a second past its sixth digit, and what follows it (an offset, a zone name); the
# shortest text that can hold one ('2024-1-1 1:00:00.1234567').
_SUB_MICROS = r"^([^.]*\.\d{6})\d{1,3}(\D.*|)$"
_SUB_MICROS_MIN_LENGTH = 24


def at_most_micros(text):
    """Text timestamps with 7-9 digits of a second cut to 6 (both engines keep microseconds and refuse more).
    Shorter texts (dates, whole seconds) skip the regular expression."""
    cut = text.re_search(_SUB_MICROS).ifelse(text.re_extract(_SUB_MICROS, 1) + text.re_extract(_SUB_MICROS, 2), text)
    return (text.length() >= _SUB_MICROS_MIN_LENGTH).ifelse(cut, text)


def utc_of_offset_timestamp(text):
    """'2024-03-01T10:00:00+02:00' (or +0200, +02, ' +02:00', ' GMT+2') as the naive UTC timestamp 2024-03-01
    08:00:00; '... UTC', '... GMT' and '...Z' as written."""
    local = text.re_extract(ISO_WITH_OFFSET, 1).replace("T", " ").try_cast("timestamp")
    east = text.re_extract(ISO_WITH_OFFSET, 4) != "-"

    def number(group: int):  # "" where the group took no part (no offset, or no minutes)
        digits = text.re_extract(ISO_WITH_OFFSET, group)
        return (digits == "").ifelse("0", digits).cast("int64")

    minutes = (number(5) + number(7)) * 60 + number(6)
    # Offsets run from UTC-12:00 to UTC+14:00: others (-13, +14:30) are no time (unparseable_date).
    real = east.ifelse(minutes <= EAST_MOST_MINUTES, minutes <= WEST_MOST_MINUTES)
    # Interval arithmetic keeps the fraction of a second on both engines (Spark's epoch seconds drop it).
    return real.ifelse(local - east.ifelse(minutes, -minutes).as_interval("m"), ibis.null("timestamp"))


EAST_MOST_MINUTES, WEST_MOST_MINUTES = 14 * 60, 12 * 60


def parsed_number(value, engine: str, *, clean: bool = False):
    """A source column as a finite float64; null where it does not hold a number (NaN and infinities
    included). `clean`: `value` is already `text_of` the source column."""
    if is_number(value):
        number = value.cast("float64")
    else:
        text = value if clean else text_of(value, engine)
        grouped = text.re_search(GROUPED_NUMBER).ifelse(text.replace(",", "").try_cast("float64"), ibis.null("float64"))
        number = text.re_search(DECIMAL_NUMBER).ifelse(text.try_cast("float64"), grouped)
    return (number.isnan() | number.isinf()).ifelse(ibis.null("float64"), number)


KINDS = {
    contract.CUSTOMER_ID: "string",
    contract.ORDER_TS: "timestamp",
    contract.AMOUNT: "double",
    contract.ORDER_ID: "string",
    contract.CATEGORY: "string",
    contract.QUANTITY: "double",
}
NULL_TYPES = {"string": "string", "double": "float64", "timestamp": "timestamp"}
#: Amounts of this size or more (either sign) are set aside as non_numeric_amount: a typo or a
#: parse of an id as an amount (features sum money exactly only up to 9e9 units per sum).
MAX_ABS_AMOUNT = 1e15


def is_number(value) -> bool:
    dtype = value.type()
    return dtype.is_numeric() and not dtype.is_boolean()


def is_textual(value, kind: str, date_format: str | None) -> bool:
    """Whether a source column is read through its text (`text_of`) for a canonical column of `kind`."""
    if kind == "timestamp":
        typed = value.type().is_timestamp() or value.type().is_date() or (date_format in EPOCH_UNITS and is_number(value))
        return not typed
    if kind == "double":
        return not is_number(value)
    return True


def typed_rows(raw, mapping: dict[str, str | None], date_format: str | None, engine: str, line_break_columns: Sequence[str] = ()):
    """The row number and the canonical columns parsed from the mapped source columns.

    Text is trimmed, then cleared of missing-value markers, then parsed, one projection each: Ibis
    writes an expression out again wherever it is used, and DuckDB would trim each value up to
    five times (1.2 s instead of 0.7 s per text column at 13M rows). The raw values are not carried
    along: they are read back for the few rows set aside (`quarantine_rows`), so the typed copy of
    the input is no wider than the clean one. Flags for warnings (SHAPE_FLAGS, and LINE_BREAKS over
    `line_break_columns`) are computed in the same pass: another pass would read a CSV file again.
    """
    sources = {name: raw[src_name] for name, src_name in mapping.items() if src_name is not None}
    textual = {name for name, value in sources.items() if is_textual(value, KINDS[name], date_format)}
    breaks = {LINE_BREAKS: has_line_break(raw, line_break_columns)} if line_break_columns else {}
    trimmed = raw.select(
        _row=raw[ROW_NUMBER].cast("int64"),
        **{name: trimmed_text(as_text(value), engine) if name in textual else value for name, value in sources.items()},
        **breaks,
    )
    cleaned = trimmed.mutate(**{name: without_markers(trimmed[name]) for name in textual})
    columns = {"_row": cleaned._row, **{name: cleaned[name] for name in breaks}}
    for name, kind in KINDS.items():
        if name not in sources:
            columns[name] = ibis.null(NULL_TYPES[kind])
            continue
        value, clean = cleaned[name], name in textual
        if kind == "timestamp":
            columns[name] = parsed_timestamp(value, date_format, engine, clean=clean)
            swapped = day_month_swapped(date_format)
            if clean and swapped:  # does every date read the other way round too?
                other = parsed_timestamp(value, swapped, engine, clean=True)
                columns[ONE_WAY_ONLY] = columns[name].notnull() & other.isnull()
                columns[OTHER_WAY] = columns[name].notnull() & (other != columns[name])
        elif name == contract.AMOUNT:  # no order is worth 10**15; features sum money exactly below 10**32
            amount = parsed_number(value, engine, clean=clean)
            columns[name] = (amount.abs() < MAX_ABS_AMOUNT).ifelse(amount, ibis.null("float64"))
            if clean:
                shapes = decimal_shapes(value)
                # "Read as thousands" only where the value was read (1,2,3 has three characters after its
                # first comma and is set aside): the parse runs again on the few flagged values only.
                shapes[COMMA_THOUSANDS] = shapes[COMMA_THOUSANDS].ifelse(columns[name].notnull(), False)
                columns |= shapes
        elif kind == "double":
            columns[name] = parsed_number(value, engine, clean=clean)
            if clean:  # quantity: text that is not a number is read as empty, and counted for a warning
                columns[UNREAD_QUANTITY] = value.notnull() & columns[name].isnull()
        else:
            columns[name] = without_zero_fraction(value) if name in ID_FIELDS and clean else value
    if contract.QUANTITY in sources:  # a return's line (negative quantity) priced as a purchase: a unit price?
        columns[RETURN_PRICED] = (columns[contract.QUANTITY] < 0) & (columns[contract.AMOUNT] > 0)
    return cleaned.select(**columns)


# Flags typed_rows adds for text columns, counted in load_transactions' one pass for its warnings.
LINE_BREAKS = "_line_breaks"
UNREAD_QUANTITY = "_quantity_unread"
RETURN_PRICED = "_negative_quantity_positive_amount"
THREE_DECIMALS, OTHER_DECIMALS = "_three_decimals", "_other_decimals"
COMMA_DECIMALS, COMMA_THOUSANDS = "_comma_decimals", "_comma_thousands"
ONE_WAY_ONLY, OTHER_WAY = "_date_one_way_only", "_date_other_way"
SHAPE_FLAGS = (UNREAD_QUANTITY, RETURN_PRICED, THREE_DECIMALS, OTHER_DECIMALS, COMMA_DECIMALS, COMMA_THOUSANDS, ONE_WAY_ONLY, OTHER_WAY)


def day_month_swapped(date_format: str | None) -> str | None:
    """The format with day and month exchanged, for a day-first or month-first format (else None:
    year-month-day is never written year-day-month)."""
    if not date_format or date_format in EPOCH_UNITS or "%d" not in date_format or "%m" not in date_format:
        return None
    if date_format.startswith("%Y") and date_format.index("%m") < date_format.index("%d"):
        return None
    return date_format.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def decimal_shapes(text) -> dict[str, Any]:
    """An amount text's shape: three digits after the point and 1-3 before it (1.299), other decimals
    after a point; without a point, one or two characters after the first comma (12,50: a decimal
    comma, set aside) or three (1,250: read as thousands)."""
    point = text.find(".")  # 0-based, -1 without one
    after = text.length() - point - 1
    # Digits after the first comma, for the few values with a comma and no point (-1 for the rest: the
    # engine then computes it on those values only).
    after_comma = (text.contains(",") & (point < 0)).ifelse(text.length() - text.find(",") - 1, -1)
    return {
        THREE_DECIMALS: (point >= 1) & (point <= 4) & (after == 3), OTHER_DECIMALS: (point >= 0) & (after != 3),
        COMMA_DECIMALS: (after_comma >= 1) & (after_comma <= 2) & ~text.startswith(","),
        COMMA_THOUSANDS: (after_comma == 3) & ~text.startswith(","),
    }


def row_reason(typed, end_of_as_of: datetime):
    """The rules a row breaks on its own (null id, bad date or amount, after the as-of date), or null."""
    return ibis.cases(
        (typed.customer_id.isnull(), "null_customer_id"),
        (typed.order_ts.isnull(), "unparseable_date"),
        (typed.amount.isnull(), "non_numeric_amount"),
        (typed.order_ts >= ibis.literal(end_of_as_of, type="timestamp"), "after_as_of"),
        else_=ibis.null("string"),
    )


def set_aside_reasons(typed, end_of_as_of: datetime):
    """(_row, reason): why each row is set aside (the first rule it breaks, in REASONS order), or null.

    The order-id rules look at every row with the same order id, so `typed` must hold all of them
    (the whole input, or `repeated_order_rows`). An order id belongs to its first user: the customer
    of its earliest usable row (not set aside by a row rule, so on or before the as-of date), the
    smallest id among customers tied on that time; another customer's row with it conflicts. (The
    owner was the smallest id among all rows: a later row, even one after the as-of date, took an
    earlier customer's order away.) Spark has no COUNT(DISTINCT) over a window, and this needs none.
    """
    usable = row_reason(typed, end_of_as_of)
    first_use = (usable.isnull()).ifelse(typed.order_ts, ibis.null(typed.order_ts.type())).min().over(group_by=typed.order_id)
    step = typed.mutate(_row_rule=usable, _first_use=first_use)
    is_first_use = step._row_rule.isnull() & (step.order_ts == step._first_use)
    owner = is_first_use.ifelse(step.customer_id, ibis.null("string")).min().over(group_by=step.order_id)
    record = [step.order_id, step.customer_id, step.order_ts, step.amount, step.category, step.quantity]
    copy_number = ibis.row_number().over(group_by=record, order_by=step._row)  # 0 for the first copy
    by_order = ibis.cases(
        (step.order_id.notnull() & (copy_number > 0), "duplicate_record"),
        (step.order_id.notnull() & owner.notnull() & (step.customer_id != owner), "conflicting_order_id"),
        else_=ibis.null("string"),
    )
    return step.select("_row", reason=step._row_rule.fill_null(by_order))


ORDER_REASONS = ("duplicate_record", "conflicting_order_id")


def repeated_order_rows(typed):
    """Every row whose order id is on more than one row: the only rows the order-id rules can hit.

    Grouping by a hash of the id instead of the id keeps the big aggregate on integers; a hash
    collision only brings a few clean rows along, and the window rules then decide exactly.
    """
    with_id = typed.filter(typed.order_id.notnull())
    hashed = with_id.mutate(_order_hash=with_id.order_id.hash())
    repeated = hashed.group_by("_order_hash").aggregate(_copies=hashed.count()).filter(lambda t: t._copies > 1)
    return hashed.filter(hashed._order_hash.isin(repeated._order_hash)).drop("_order_hash")


def microsecond_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps in microseconds, the unit of both engines (Spark's pandas conversion gives nanoseconds)."""
    units = {name: "datetime64[us]" for name, dtype in frame.dtypes.items() if pd.api.types.is_datetime64_dtype(dtype)}
    return frame.astype(units) if units else frame


def _python_rows(table) -> list[dict[str, Any]]:
    """Rows of a small result as plain Python values (the same on both engines)."""
    return table.to_pyarrow().to_pylist()


def _examples(values, label: str, source: Source | None = None, limit: int = 3) -> str:
    """A few offending raw values: `values` has the row number (_row) and the raw value (value).

    For a source of several files each row also names its file and its row there.
    """
    rows = _python_rows(values.order_by("_row").limit(limit))
    starts = file_row_starts(source) if source is not None else None
    return "; ".join(f"{data_row_place(row['_row'], starts)}: {label}={_shown(row['value'])}" for row in rows)


def data_row_place(row_number: int, starts: list[tuple[str, int]] | None) -> str:
    """'data row 301', or in a source of several files (`file_row_starts`) 'data row 301 (b.csv, its data row 101)'."""
    if not starts:
        return f"data row {row_number}"
    name, before = next((name, before) for name, before in reversed(starts) if before < row_number)
    return f"data row {row_number} ({Path(name).name}, its data row {row_number - before})"


def file_row_starts(source: Source) -> list[tuple[str, int]] | None:
    """(file, rows before it) for a CSV or Parquet source of several files, else None.

    Counted on a local DuckDB, for error messages only (None if the files cannot be read so).
    """
    if source.kind not in ("csv", "parquet"):
        return None
    files = source_files(source)
    if len(files) < 2:
        return None
    import duckdb

    from flows.engine import duckdb_connection

    con = duckdb_connection()
    try:
        if source.kind == "parquet":
            return _parquet_row_offsets(con, files)
        listed = "[" + ", ".join(_sql_str(f) for f in files) + "]"
        reader = f"read_csv({listed}, {CSV_OPTIONS}, filename = true)"
        return row_starts(files, dict(con.raw_sql(f"select filename, count(*) from {reader} group by filename").fetchall()))
    except duckdb.Error:
        return None


def _shown(value) -> str:
    """A raw value as a user wrote it: dates and times in ISO form, text quoted, a missing value as
    "(empty)" (it read np.float64(nan)), numbers plainly."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return "(empty)"
    if isinstance(value, (datetime, date)):
        return repr(value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat())
    if hasattr(value, "item") and not isinstance(value, str):  # NumPy scalars
        value = value.item()
        if isinstance(value, float) and value != value:
            return "(empty)"
    return repr(value)


def source_column(name: str | None, schema: list[str]) -> str | None:
    """The source column a mapping names; a header with blanks around the name (which the CSV reader
    trims) matches the trimmed name, and a name in other letter case (Customer_ID for customer_id)
    matches when it is the only one: the readers tell names apart without regard to case, and a
    folder's files are joined under the first file's spelling."""
    if name is None or name in schema:
        return name
    if name.strip() in schema:
        return name.strip()
    folded = [column for column in schema if column.casefold() == name.strip().casefold()]
    return folded[0] if len(folded) == 1 else name


CSV_DELIMITERS = ",;\t|"
# How many non-blank lines of a CSV file are searched for its header (title lines may come first).
HEADER_SEARCH_LINES = 50


def _csv_header(lines) -> tuple[str | None, str | None]:
    """The first non-blank line of a CSV file and its delimiter (None when it has none)."""
    header = next(lines, None)
    if header is None:
        return None, None
    delimiter = max(CSV_DELIMITERS, key=header.count)
    return header, (delimiter if header.count(delimiter) else None)


def _open_csv_text(name: str):
    opener = gzip.open if name.endswith(".gz") else open
    return opener(name, "rt", newline="", encoding="utf-8", errors="replace")


def _open_csv_bytes(name: str):
    return (gzip.open if name.endswith(".gz") else open)(name, "rb")


def check_csv_encoding(name: str) -> None:
    """Raise IngestError for a UTF-16 file (Excel's "Unicode Text"): read as UTF-8 its NUL bytes
    split no line the way the header does, and the reader's complaint is about fields, not the encoding."""
    with _open_csv_bytes(name) as handle:
        start = handle.read(4096)
    if start.startswith(b"PAR1"):  # read as text its NUL bytes looked like UTF-16
        raise FileFormatError(f"{name}: this is a Parquet file, not CSV text (it starts with PAR1): give it a .parquet name")
    if start.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in start:
        raise FileFormatError(f"{name}: the file is UTF-16 text (Excel's 'Unicode Text'), not UTF-8; save it as UTF-8 (Excel: 'CSV UTF-8')")


def check_csv_utf8(name: str) -> None:
    """Raise FileFormatError naming the first line of the file that is not UTF-8 (a Windows-1252 or Latin-1
    export: 'Côte d’Ivoire' written in one byte per letter). DuckDB's message quotes the line before it."""
    with _open_csv_bytes(name) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                shown = line[max(exc.start - 30, 0):exc.start + 30].decode("utf-8", errors="replace").strip()
                raise FileFormatError(
                    f"{name}: line {number} is not UTF-8 text (byte 0x{line[exc.start]:02x} in {shown!r}; a Windows-1252 "
                    "or Latin-1 export?): save the file as UTF-8 (Excel: 'CSV UTF-8')"
                ) from None


def check_csv_quotes(name: str) -> None:
    """Raise IngestError naming the line where a quoted field opens and the file ends inside it
    (RFC 4180: a field's quotes are doubled inside it, so an odd count of quotes on a line toggles),
    or the first line outside quotes that holds only spaces or tabs (the reader then splits the
    header into no columns; an empty line is fine)."""
    opened = None
    with _open_csv_text(name) as handle:
        for number, line in enumerate(handle, start=1):
            if opened is None and line.strip("\r\n") and not line.strip():
                raise FileFormatError(
                    f"{name}: line {number} holds only blanks (spaces or tabs), which the CSV reader cannot split "
                    "into the header's columns; delete that line (empty lines are fine)"
                )
            if line.count('"') % 2:
                opened = number if opened is None else None
    if opened is not None:
        raise FileFormatError(
            f"{name}: line {opened} opens a quoted field (\") that is never closed, so the rest of the file "
            "reads as one value; close or remove that quote"
        )


LINE_BREAK = re.compile(rb"\r\n|\r|\n")
LINE_BREAK_NAMES = {b"\r\n": "CRLF (Windows)", b"\n": "LF", b"\r": "CR (old Mac)"}


def check_csv_line_endings(name: str) -> None:
    """Refuse a file whose lines end in more than one way (CRLF, LF, a bare CR: a script appending to a
    spreadsheet's export): the reader cannot detect its dialect and said only "Error when sniffing file"."""
    counts: dict[bytes, int] = {}
    first: dict[bytes, int] = {}
    line, carry = 1, b""
    with _open_csv_bytes(name) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            chunk, carry = carry + chunk, b""
            if chunk.endswith(b"\r"):  # its \n may open the next chunk
                chunk, carry = chunk[:-1], b"\r"
            for found in LINE_BREAK.finditer(chunk):
                kind = found.group()
                counts[kind] = counts.get(kind, 0) + 1
                first.setdefault(kind, line)
                line += 1
    if carry:
        counts[b"\r"] = counts.get(b"\r", 0) + 1
        first.setdefault(b"\r", line)
    if len(counts) > 1:
        kinds = " and ".join(f"{count:,} in {LINE_BREAK_NAMES[kind]} (first: line {first[kind]})"
                             for kind, count in sorted(counts.items(), key=lambda item: first[item[0]]))
        raise FileFormatError(
            f"{name}: mixed line endings: {kinds}; the CSV reader needs one kind: save the file again with one "
            "(e.g. `dos2unix`)"
        )


def check_csv_shape(source: Source) -> None:
    """Explain a CSV source whose header the reader could not split: an empty file, a quote that
    never closes, or the first line whose number of fields differs from the header's (raised as
    IngestError); else return."""
    import csv

    for name in source_files(source):
        check_csv_encoding(name)
        check_csv_utf8(name)
        check_csv_line_endings(name)
        check_csv_quotes(name)
        with _open_csv_text(name) as handle:
            header_line, header = 0, None
            for header_line, line in enumerate(handle, start=1):
                if line.strip():
                    header = line
                    break
            if header is None:
                raise IngestError(f"{name}: the file is empty (no header, no rows)")
            _, delimiter = _csv_header(iter([header]))
            if delimiter is None:
                continue
            width = len(next(csv.reader([header], delimiter=delimiter)))
            rows = csv.reader(handle, delimiter=delimiter)
            for fields in rows:  # line numbers of the file: blank lines and quoted line breaks counted
                if fields and len(fields) != width:
                    raise FileFormatError(
                        f"{name}: line {header_line + rows.line_num} has {len(fields)} fields where the header has "
                        f"{width} (a value holding an unquoted {delimiter!r}?); quote or fix that line"
                    )


def check_csv_header_names(source: Source, mapped: list[str], required: list[str]) -> None:
    """Refuse a CSV file whose header names a mapped column twice (IngestError naming the file, the
    column and its positions): the reader renames the second one (amount -> amount_1), so which of
    the two columns the mapping reads would be a silent guess. In a source of several files, refuse
    a file whose header lacks a `required` column: a file without a header had its first order read
    as the header (its values became column names) and the rest as rows without an id."""
    import csv

    # The reader tells names apart without regard to case (Amount and amount: amount_1) and drops a BOM.
    wanted = {name.strip().casefold() for name in mapped}
    required_names = {column.strip().casefold() for column in required}

    def fields(line: str) -> list[str]:
        _, delimiter = _csv_header(iter([line]))
        split = next(csv.reader([line.lstrip("\ufeff")], delimiter=delimiter)) if delimiter else [line]
        return [field.strip().casefold() for field in split]

    files = source_files(source)
    for name in files:
        with _open_csv_text(name) as handle:
            # The reader skips title lines above the header: the header is the first line naming the required columns.
            first = list(itertools.islice((line for line in handle if line.strip()), HEADER_SEARCH_LINES))
        if not first:
            continue
        header = next((line for line in first if required_names <= set(fields(line))), None)
        if header is None and len(files) > 1:
            absent = [column for column in required if column.strip().casefold() not in fields(first[0])]
            raise IngestError(
                f"{name}: no header naming column {', '.join(map(repr, absent))} (mapped in source.columns); "
                f"its first line is {first[0].strip()!r}. Every file of the source needs a header naming the mapped "
                "columns (a file without one would lose its first order as the header)"
            )
        names = fields(header or first[0])
        for column in sorted(wanted):
            positions = [str(index) for index, field in enumerate(names, start=1) if field == column]
            if len(positions) > 1:
                raise IngestError(
                    f"{name}: the header names column '{column}' {len(positions)} times (columns "
                    f"{', '.join(positions)}); rename all but one so the mapping (source.columns) reads the right one"
                )


def check_parquet_file_columns(source: Source, mapped: list[str]) -> None:
    """Refuse a Parquet source where a file lacks a mapped column the others have: read by name across
    files, its rows got nulls there, and a file with `cust` for `customer_id` lost its customers as
    "null ids" (exit 0). Reads only the files' schemas."""
    import pyarrow.parquet as pq

    files = source_files(source)
    if len(files) < 2 or not mapped:
        return
    for name in files:
        try:
            names = pq.read_schema(name).names
        except Exception:  # an unreadable file: the reader has named it already, or will
            continue
        present = {field.casefold() for field in names}
        # Hive-partitioned folders (category=books/part.parquet) hold a column in the path instead.
        present |= {part.split("=", 1)[0].casefold() for part in Path(name).parent.parts if "=" in part}
        absent = [column for column in mapped if column.casefold() not in present]
        if absent:
            raise IngestError(
                f"{name}: no column {', '.join(map(repr, absent))} (mapped in source.columns), which other files of "
                f"{source.label} have; its columns: {', '.join(map(repr, names))}. Every file needs "
                "the mapped columns under the same names"
            )


def load_transactions(
    src: str,
    *,
    columns: ColumnMapping,
    workdir: Path,
    as_of: date | None = None,
    date_format: str | None = None,
    table: str | None = None,
    max_invalid_share: float = 0.01,
    connection=None,
) -> Ingested:
    """Read, type-check and classify every row of a source into clean transactions and a quarantine.

    `connection` is an Ibis backend from `flows.engine.connect` (default: a new in-process DuckDB);
    the rules and the report are the same on every engine.
    """
    from flows.engine import duckdb_connection, engine_of

    source = parse_source(src, table)
    if source.kind == "builtin":
        columns = builtin_columns(source.location)
        date_format = None
    check_date_format(date_format)
    con = connection if connection is not None else duckdb_connection()
    engine = engine_of(con)
    raw = read_raw(con, source, workdir)
    schema = [name for name in raw.columns if name != ROW_NUMBER]

    mapping = {field_name: source_column(getattr(columns, field_name), schema) for field_name in contract.REQUIRED_COLUMNS + contract.OPTIONAL_COLUMNS}
    if source.kind == "csv":
        check_csv_header_names(
            source,
            [getattr(columns, name) for name in mapping if getattr(columns, name)],
            [getattr(columns, name) for name in contract.REQUIRED_COLUMNS],
        )
    if source.kind == "parquet":
        check_parquet_file_columns(source, [src_name for src_name in mapping.values() if src_name and src_name in schema])
    missing = [f"'{src_name}' (for {name})" for name, src_name in mapping.items() if src_name and src_name not in schema]
    if missing:
        if source.kind == "csv":
            check_csv_shape(source)
        raise IngestError(
            f"{source.label}: missing column {', '.join(missing)}; columns found: {', '.join(map(repr, schema))}"
            " (map source columns in the config under source.columns)"
        )

    try:
        typed = materialize(con, "vipcast_typed", typed_rows(raw, mapping, date_format, engine, schema if source.kind == "csv" else ()))
    except Exception as exc:  # a CSV's bad bytes far down the file surface only when every row is read
        if source.kind != "csv" or "interrupted" in str(exc):  # a stop (Ctrl-C, SIGTERM) is not the file's fault
            raise
        check_csv_shape(source)
        raise IngestError(f"{source.label}: cannot read as csv ({reader_problem(exc)})") from exc
    # A row counts against a column only if the rules before it pass (REASONS order): a row with no
    # id at all (a spreadsheet's padding line ';;') is set aside as null_customer_id, not blamed on the dates.
    has_id = typed[contract.CUSTOMER_ID].notnull()
    checks = {
        "unparseable_date": has_id & typed[contract.ORDER_TS].isnull(),
        "non_numeric_amount": has_id & typed[contract.ORDER_TS].notnull() & typed[contract.AMOUNT].isnull(),
    }
    # One pass for the size, the type checks, the customers and the default as-of date (each pass
    # is a Spark job).
    counts = _python_rows(
        typed.aggregate(
            rows_read=typed.count(),
            customers_read=typed[contract.CUSTOMER_ID].nunique(),
            rows_with_id=has_id.sum(),
            # The default as-of date: the last order of a row that is not set aside on its own (an empty
            # amount on a late row moved every customer's recency and T by the gap).
            last_order=typed[contract.ORDER_TS].max(where=has_id & typed[contract.AMOUNT].notnull()),
            **{reason: condition.sum() for reason, condition in checks.items()},
            **{flag: typed[flag].sum() for flag in SHAPE_FLAGS if flag in typed.columns},
        )
    )[0]
    rows_read = int(counts["rows_read"])
    if rows_read == 0:
        raise IngestError(f"{source.label}: the input has no rows")
    for reason, condition in checks.items():
        name = TYPE_REASONS[reason]
        count = int(counts[reason] or 0)
        if count > max_invalid_share * rows_read:
            src_name = mapping[name]
            expected = f"dates in format {date_format!r} from 1900 to 2199" if name == contract.ORDER_TS and date_format else (
                "dates from 1900 to 2199 (YYYY-MM-DD or ISO timestamps; set source.date_format for others, e.g. '%d/%m/%Y', "
                "or 'epoch' / 'epoch_ms' for Unix times)" if name == contract.ORDER_TS else
                "numbers below 10^15 either way (a decimal point, an optional sign and thousands commas: -12.5, 1,587.65; "
                "decimal commas as in 260,67, currency signs and (5.00) negatives are not read: convert the column first)"
            )
            without_id = rows_read - int(counts["rows_with_id"] or 0)
            of_rows = f"{rows_read:,} rows" if not without_id else f"the {rows_read - without_id:,} rows with a customer id"
            no_id = f"{without_id:,} rows without one are set aside as null_customer_id; " if without_id else ""
            raise IngestError(
                f"{source.label}: column '{src_name}' (for {name}) does not hold {expected} in {count:,} of "
                f"{of_rows} (empty values included; {no_id}more than source.max_invalid_share, {max_invalid_share:.0%}: "
                "fix the column, or raise that share to set such rows aside); "
                f"e.g. {raw_examples(raw, src_name, typed.filter(condition), source)}"
            )

    format_warnings = dotted_thousands_warnings(typed, raw, mapping[contract.AMOUNT], counts, rows_read, source)
    format_warnings += comma_decimal_warnings(typed, raw, mapping[contract.AMOUNT], counts, source)
    format_warnings += date_format_doubts(typed, raw, mapping[contract.ORDER_TS], date_format, source, counts)
    as_of_given = as_of is not None
    if as_of is None:
        if counts["last_order"] is None:
            raise IngestError(f"{source.label}: no row has a customer id, a valid date and an amount")
        as_of = counts["last_order"].date()
        check_last_order(typed, raw, source, mapping[contract.ORDER_TS], counts["last_order"], rows_read)
        check_last_order_not_future(typed, raw, source, mapping[contract.ORDER_TS], as_of)
    check_as_of_range(as_of, source)
    end_of_as_of = datetime.combine(as_of + timedelta(days=1), time.min)

    set_aside = materialize(con, "vipcast_set_aside", set_aside_rows(typed, end_of_as_of, has_order_ids=mapping[contract.ORDER_ID] is not None))
    by_reason = {row["reason"]: int(row["rows"]) for row in _python_rows(set_aside.group_by("reason").aggregate(rows=set_aside.count()))}
    canonical = list(contract.REQUIRED_COLUMNS + contract.OPTIONAL_COLUMNS)
    if not by_reason:
        # Nothing set aside (the usual case): the typed rows are the transactions, no second copy
        # (a view under the same name as the copy, for the queries that name it: data_digest).
        transactions = con.create_view("vipcast_transactions", typed.select(*canonical), overwrite=True)
    else:
        clean = typed.filter(row_reason(typed, end_of_as_of).isnull())
        if any(reason in ORDER_REASONS for reason in by_reason):
            clean = clean.filter(~clean._row.isin(set_aside._row))
        transactions = materialize(con, "vipcast_transactions", clean.select(*canonical))
    quarantine = quarantine_rows(raw, typed, set_aside, mapping, canonical) if by_reason else empty_quarantine(typed, mapping, canonical, raw)
    report = reconciliation_report(transactions, source, counts, by_reason, as_of)
    if not as_of_given and report["last_order"] is not None and report_day(report, "last_order") < as_of:
        # The last dated row was set aside by an order-id rule (a conflicting or repeated order id): the
        # default as-of date is the last usable order's, as for rows set aside on their own.
        as_of = report_day(report, "last_order")
        report["as_of"] = as_of.isoformat()
    report["warnings"] = set_aside_warnings(report, quarantine, source)
    report["warnings"] += line_break_warnings(typed, raw, schema)
    report["warnings"] += unread_quantity_warnings(typed, raw, mapping[contract.QUANTITY], counts, source)
    report["warnings"] += return_priced_warnings(typed, raw, mapping, counts, source, end_of_as_of)
    report["warnings"] += format_warnings
    if report["rows_used"] == 0:
        set_aside_counts = {k: v for k, v in report["rows_set_aside"].items() if v}
        why, error = "", IngestError
        if set(set_aside_counts) == {"after_as_of"}:
            why, error = f": every row is after the as-of date {as_of}; choose a later --as-of", DateError
        elif "after_as_of" in set_aside_counts:
            # Say so whatever the other rows' faults (one null date hid the advice).
            later = set_aside_counts["after_as_of"]
            why = f": {later:,} row(s) are after the as-of date {as_of} (a later --as-of uses them)"
        raise error(
            f"{source.label}: no usable rows (set aside: " + ", ".join(f"{k}={v}" for k, v in set_aside_counts.items()) + ")" + why
        )
    return Ingested(transactions=transactions, quarantine=quarantine, report=report, as_of=as_of, connection=con)


# The as-of dates vipcast computes with (tier grace periods, horizons and labels run past them).
AS_OF_RANGE = (date(1900, 1, 1), date(2199, 12, 31))
# The default as-of date is the last order's; it must not stand apart from the rest of the data
# (a mistyped year, a 9999-12-31 placeholder): the last TRAILING_DAYS up to it hold at least
# TRAILING_MIN_SHARE of the rows (a live shop's last month holds a few percent).
TRAILING_DAYS = 31
TRAILING_MIN_SHARE = 0.001
# In a small input one row is already more than 0.1%: a few rows (at most STRAY_ROWS, or 1% of the
# rows) after more than a year without orders stand apart too (one 2099 row among 300 of 2024),
# once there are STRAY_MIN_ROWS rows to tell a pattern from (5 rows and a sixth two years later may
# be the data).
STRAY_MIN_ROWS = 100
STRAY_GAP_DAYS = 366
STRAY_ROWS = 3
STRAY_MAX_SHARE = 0.01


def check_as_of_range(as_of: date, source: Source) -> None:
    first, last = AS_OF_RANGE
    if not first <= as_of <= last:
        raise DateError(f"{source.label}: the as-of date {as_of} is outside the supported range {first} to {last}; pass a date in that range")


# How many stray-looking ends are stepped over to find the date a suggested --as-of should be.
STRAY_STEPS = 5


def check_last_order(typed, raw, source: Source, date_column: str, last_order: datetime, rows_read: int) -> None:
    """Refuse a default as-of date that a few stray rows far after the rest would set; the suggested
    --as-of is where the data really end (stepping over several strays: a 2050 typo below a 2099 one)."""
    has_customer = typed[contract.CUSTOMER_ID].notnull()
    tail = _stray_tail(typed, has_customer, last_order, rows_read)
    if tail is None:
        return
    stray, rest_end, trailing = tail
    suggested = rest_end
    for _ in range(STRAY_STEPS):
        further = _stray_tail(typed, has_customer, datetime.combine(suggested, time.max), rows_read)
        if further is None:
            break
        suggested = further[1]
    raise DateError(
        f"{source.label}: the last order date {last_order.date()} stands apart from the data: {stray:,} of {rows_read:,} rows "
        f"fall in the {TRAILING_DAYS} days up to it and the others end {rest_end} (a mistyped date?); e.g. "
        f"{raw_examples(raw, date_column, typed.filter(trailing & has_customer), source)}. Fix those rows, or pass --as-of {suggested} to set them aside"
        + (f" ({rest_end} stands apart too)" if suggested != rest_end else "")
    )


def _stray_tail(typed, has_customer, last_order: datetime, rows_read: int):
    """(rows in the trailing window, the end of the rest, the window's condition) when the rows up to
    `last_order`'s trailing window stand apart from the rest; None when they do not."""
    try:
        window_start = last_order - timedelta(days=TRAILING_DAYS)
    except OverflowError:
        return None
    upto = typed[contract.ORDER_TS] <= ibis.literal(last_order, type="timestamp")
    trailing = (typed[contract.ORDER_TS] > ibis.literal(window_start, type="timestamp")) & upto
    tail = _python_rows(
        typed.aggregate(
            rows=(trailing & has_customer).sum(),
            rest_end=typed[contract.ORDER_TS].max(where=~trailing & upto & has_customer),
        )
    )[0]
    stray = int(tail["rows"] or 0)
    if tail["rest_end"] is None:
        return None
    rest_end = tail["rest_end"].date()
    few = stray < TRAILING_MIN_SHARE * rows_read or (
        rows_read >= STRAY_MIN_ROWS
        and stray <= max(STRAY_ROWS, STRAY_MAX_SHARE * rows_read)
        and (last_order.date() - rest_end).days > STRAY_GAP_DAYS
    )
    return (stray, rest_end, trailing) if few else None


# Rows set aside for one reason beyond this share of the input get a warning (with an example):
# a few bad rows are normal, a pattern (thousands of "NULL" ids, every order over $1,000) is not.
# Rows after the as-of date are expected when scoring a past date.
WARN_SET_ASIDE_SHARE = 0.001
# The raw column that shows why a row was set aside for each reason.
REASON_COLUMNS = {
    "null_customer_id": contract.CUSTOMER_ID,
    "unparseable_date": contract.ORDER_TS,
    "non_numeric_amount": contract.AMOUNT,
    "duplicate_record": contract.ORDER_ID,
    "conflicting_order_id": contract.ORDER_ID,
}


def has_line_break(raw, columns: Sequence[str]):
    """Whether any of a row's values holds a line break (LF or CR)."""
    text = [raw[name].cast("string") for name in columns]
    return functools.reduce(operator.or_, [value.contains("\n") | value.contains("\r") for value in text])


def line_break_warnings(typed, raw, columns: Sequence[str]) -> list[str]:
    """A warning when CSV values hold line breaks (LF, CRLF or a lone CR): legal inside quotes, but a
    stray quote makes the lines up to the next quote one value, and their orders vanish without an
    error (rows read 80 of 100 lines). It counts the rows and the file lines joined into them."""
    if LINE_BREAKS not in typed.columns:
        return []
    flagged = typed.filter(typed[LINE_BREAKS])
    if not int(_python_rows(flagged.aggregate(rows=flagged.count()))[0]["rows"] or 0):
        return []

    def breaks(value):
        text = value.cast("string").fill_null("")
        return sum(text.length() - text.replace(mark, "").length() for mark in ("\n", "\r")) - (
            (text.length() - text.replace("\r\n", "").length()) // 2
        )

    broken = raw.filter(raw[ROW_NUMBER].cast("int64").isin(flagged._row))
    joined = functools.reduce(operator.add, [breaks(broken[name]) for name in columns])
    found = _python_rows(broken.aggregate(rows=broken.count(), lines=joined.sum(), first=broken[ROW_NUMBER].min()))[0]
    return [
        f"{int(found['rows']):,} row(s) hold a line break inside a quoted value, joining {int(found['lines']):,} more line(s) of "
        f"the file into them (first: data row {int(found['first'])}); a stray quote makes every line up to the next "
        "quote one value: check those rows if they were not meant to"
    ]


# Amounts written with exactly three decimals, and none with other decimals, in at least this share
# of the rows: probably thousands grouped with a dot (1.299 for 1,299), read a thousand times too small.
DOTTED_THOUSANDS_MIN_SHARE = 0.01


def dotted_thousands_warnings(typed, raw, src_name: str, counts: dict[str, Any], rows_read: int, source: Source) -> list[str]:
    """A warning when a text amount column looks dot-grouped: every value with a point has three digits after it."""
    three = int(counts.get(THREE_DECIMALS) or 0)
    if int(counts.get(OTHER_DECIMALS) or 0) or three < max(1, DOTTED_THOUSANDS_MIN_SHARE * rows_read):
        return []
    return [
        f"{three:,} of {rows_read:,} amounts in column '{src_name}' have exactly three digits after the point and none "
        f"has other decimals: e.g. {raw_examples(raw, src_name, typed.filter(typed[THREE_DECIMALS]), source)}. "
        "If the file groups thousands with a dot (1.299 for 1,299), they are read a thousand times too small: convert "
        "the column first (in a currency with three decimals, such as KWD or BHD, they are read right)"
    ]


def comma_decimal_warnings(typed, raw, src_name: str, counts: dict[str, Any], source: Source) -> list[str]:
    """A warning when a text amount column holds decimal commas (12,50: set aside) beside values read as
    comma-grouped thousands (1,250 read as 1250, which in such a file is 1.25)."""
    decimals, thousands = int(counts.get(COMMA_DECIMALS) or 0), int(counts.get(COMMA_THOUSANDS) or 0)
    if not decimals or not thousands:
        return []

    def example(flag: str) -> str:
        return raw_examples(raw, src_name, typed.filter(typed[flag]), source, limit=1)

    return [
        f"column '{src_name}' holds {decimals:,} amount(s) with a decimal comma, set aside ({example(COMMA_DECIMALS)}), "
        f"and {thousands:,} with three digits after a comma, read as thousands ({example(COMMA_THOUSANDS)}): if the "
        "file writes decimals with a comma, those are a thousand times too big: convert the column first"
    ]


def raw_examples(raw, src_name: str, rows, source: Source, limit: int = 3) -> str:
    """A few of the typed `rows` as the source wrote them in column `src_name` (`_examples`)."""
    return _examples(raw_values_of(raw, src_name, rows), src_name, source, limit)


def raw_values_of(raw, src_name: str, rows):
    """_row and the raw value of `src_name` for the typed `rows` (for examples in messages)."""
    values = raw.select(_row=raw[ROW_NUMBER].cast("int64"), value=raw[src_name])
    return values.filter(values._row.isin(rows._row))


# Unix times read in too fine a unit (seconds as milliseconds) put every order within weeks of
# 1970-01-01 (after it, or before it for negative numbers); data ending before 1969 are real old dates.
EPOCH_TOO_EARLY = datetime(1971, 1, 1)
EPOCH_REAL_BEFORE = datetime(1969, 1, 1)


def check_last_order_not_future(typed, raw, source: Source, src_name: str, last_day: date) -> None:
    """Refuse a default as-of date (the last order's day) after today, a day of slack for time zones, as
    an explicit future --as-of is refused (a mistyped 2099 in a small file, which the stray-date check
    does not judge, became the store's latest run and made every real run after it a backfill)."""
    today = datetime.now(timezone.utc).date()
    if last_day <= today + timedelta(days=1):
        return
    future = typed.filter(typed[contract.ORDER_TS] >= datetime.combine(today + timedelta(days=2), time()))
    raise DateError(
        f"{source.label}: the last order is on {last_day}, in the future (today is {today}): a mistyped date or a wrong "
        f"clock? e.g. {raw_examples(raw, src_name, future.order_by('_row'), source)}; fix those rows, or pass --as-of "
        "(today or earlier) to set later rows aside as after_as_of"
    )


def date_format_doubts(typed, raw, src_name: str, date_format: str | None, source: Source, counts: dict[str, Any]) -> list[str]:
    """Check an explicit date_format against what it read: Unix times that all land before 1971 (an
    IngestError naming the units), or day-first / month-first formats that read every date the other
    way round too (a warning with an example: 01/02/2024 is a date either way)."""
    last_order = counts["last_order"]
    if date_format in EPOCH_UNITS and last_order is not None and EPOCH_REAL_BEFORE <= last_order < EPOCH_TOO_EARLY:
        # Read as seconds, every day number up to 2119 (Excel's serial dates: 45292 is 2024-01-01) lands
        # on 1970-01-01 or 02; no epoch unit reads them.
        epoch = datetime(1970, 1, 1)
        days = epoch <= last_order < (datetime(1970, 1, 3) if date_format == "epoch" else datetime(1970, 1, 1, 0, 3))
        raise DateError(
            f"{source.label}: column '{src_name}' read with date_format {date_format!r} puts every order in "
            f"1969-1970 (the last on {last_order.date()}): the numbers are in a coarser unit; "
            + ("they look like day numbers such as Excel's serial dates (45292 is 2024-01-01), which no date_format "
               "reads: format the column as dates in the spreadsheet and save again"
               if days else "date_format 'epoch' reads seconds, 'epoch_ms' milliseconds, 'epoch_us' microseconds")
        )
    if int(counts.get(ONE_WAY_ONLY) or 0) or not int(counts.get(OTHER_WAY) or 0):
        return []
    swapped = day_month_swapped(date_format)
    first = typed.filter(typed[OTHER_WAY]).order_by("_row").limit(1)
    example = _python_rows(raw_values_of(raw, src_name, first).join(first.select("_row", read=first[contract.ORDER_TS]), "_row"))[0]
    try:
        other = f", {datetime.strptime(str(example['value']).strip(), swapped).date()} with {swapped!r}"
    except ValueError:  # a directive Python reads otherwise than the engine: the example without it
        other = ""
    return [
        f"every date in column '{src_name}' also reads with day and month the other way round ({swapped!r}): "
        f"e.g. data row {example['_row']}: {src_name}={_shown(example['value'])} is {example['read'].date()} with "
        f"date_format {date_format!r}{other}; check that the configured format is this file's"
    ]


def unread_quantity_warnings(typed, raw, src_name: str | None, counts: dict[str, Any], source: Source) -> list[str]:
    """A warning when a mapped quantity column of text holds values that are not numbers ("2 pcs").

    They are read as empty without setting the row aside (quantity is optional); but quantity is part
    of an order line's record, so two lines of one order that differ only in such quantities would
    count as one record copied twice (duplicate_record).
    """
    count = int(counts.get(UNREAD_QUANTITY) or 0)
    if not count:
        return []
    return [
        f"column '{src_name}' (for quantity) does not hold numbers in {count:,} row(s), read as empty: e.g. "
        f"{raw_examples(raw, src_name, typed.filter(typed[UNREAD_QUANTITY]), source)}; rows of one "
        "order id that differ only there count as one record copied (duplicate_record): convert the column to numbers, "
        "or leave quantity unmapped"
    ]


def return_priced_warnings(typed, raw, mapping: dict[str, str | None], counts: dict[str, Any], source: Source,
                           end_of_as_of: datetime) -> list[str]:
    """A warning when used rows have a negative quantity and a positive amount: a return's line counted
    as a purchase, as when `amount` is mapped to a unit price (vipcast reads amount as the line's net
    total and uses quantity only to tell repeated lines apart). Rows set aside on their own are not
    counted (one more pass, only when the first found any)."""
    if not int(counts.get(RETURN_PRICED) or 0):
        return []
    rows = typed.filter(typed[RETURN_PRICED] & row_reason(typed, end_of_as_of).isnull())
    count = int(_python_rows(rows.aggregate(rows=rows.count()))[0]["rows"])
    if not count:
        return []
    amount, quantity = mapping[contract.AMOUNT], mapping[contract.QUANTITY]
    return [
        f"{count:,} row(s) have a negative quantity (column '{quantity}') and a positive amount (column '{amount}'), "
        f"e.g. {raw_examples(raw, quantity, rows, source)}: they count as purchases. "
        "The amount must be the line's net total (quantity x unit price, negative for a return; quantity only tells "
        "repeated lines apart): if it is a unit price, write the line total into a column and map amount to it"
    ]


def set_aside_warnings(report: dict[str, Any], quarantine: pd.DataFrame, source: Source | None = None) -> list[str]:
    """Plain-language warnings for reasons that set aside more than WARN_SET_ASIDE_SHARE of the rows
    (an example's row names its file in a source of several files)."""
    warnings = []
    rows_read = report["rows_read"]
    starts = None
    for reason, column in REASON_COLUMNS.items():
        count = report["rows_set_aside"][reason]
        if count <= WARN_SET_ASIDE_SHARE * rows_read:
            continue
        example = quarantine.loc[quarantine["reason"] == reason].head(1)
        raw = f"raw_{column}"
        shown = ""
        if len(example) and raw in example:
            starts = starts or (file_row_starts(source) if source is not None else None)
            place = data_row_place(int(example["source_row"].iloc[0]), starts)
            shown = f" (e.g. {place}: {_shown(example[raw].iloc[0])})"
        warnings.append(
            f"{count:,} of {rows_read:,} rows ({count / rows_read:.1%}) set aside as {reason}{shown}; "
            f"they are in the quarantine file{REASON_ADVICE.get(reason, '')}"
        )
    return warnings


# What a common cause of a reason looks like and what to do about it, after its warning.
REASON_ADVICE = {
    "duplicate_record": (
        ": each repeats an earlier row's order id, customer, time and amount (and category and quantity, when "
        "mapped); if these are distinct lines of one order told apart only by an unmapped column (a SKU), map "
        "order_id to a line id, or leave order_id unmapped"
    ),
}


def set_aside_rows(typed, end_of_as_of: datetime, *, has_order_ids: bool):
    """(_row, reason) of every row set aside: the row rules over all rows, the order-id rules over
    the rows of repeated order ids only (the rows a row rule already took are not counted twice)."""
    reasons = typed.select("_row", reason=row_reason(typed, end_of_as_of))
    by_row = reasons.filter(reasons.reason.notnull())
    if not has_order_ids:
        return by_row
    repeated = repeated_order_rows(typed)
    by_order = set_aside_reasons(repeated, end_of_as_of)
    by_order = by_order.filter(by_order.reason.isin(ORDER_REASONS))
    return by_row.union(by_order)


def unmapped_columns(raw, mapping: dict[str, str | None]) -> dict[str, str]:
    """{quarantine column: source column} for the source columns no mapping reads: `raw.<name>`,
    so a set-aside row keeps everything it had (a SKU, a note) and can be fixed and loaded again."""
    mapped = {src for src in mapping.values() if src is not None}
    return {f"raw.{name}": name for name in raw.columns if name != ROW_NUMBER and name not in mapped}


def quarantine_rows(raw, typed, set_aside, mapping: dict[str, str | None], canonical: list[str]) -> pd.DataFrame:
    """The rows set aside, in input order: position, reason, the parsed values, the raw ones of the
    mapped columns (`raw_<field>`) and every other source column (`raw.<name>`)."""
    parsed = typed.filter(typed._row.isin(set_aside._row)).join(set_aside, "_row")
    raw_values = {f"raw_{name}": raw[src] for name, src in mapping.items() if src is not None}
    raw_values |= {column: raw[name] for column, name in unmapped_columns(raw, mapping).items()}
    originals = raw.select(_row=raw[ROW_NUMBER].cast("int64"), **raw_values)
    originals = originals.filter(originals._row.isin(set_aside._row))
    rows = parsed.join(originals, "_row").order_by("_row")
    return microsecond_timestamps(rows.select(source_row="_row", reason="reason", **{n: n for n in canonical + list(raw_values)}).to_pandas())


def empty_quarantine(typed, mapping: dict[str, str | None], canonical: list[str], raw=None) -> pd.DataFrame:
    """The quarantine's columns with no rows (the parsed types; raw values as text)."""
    schema = typed.select(*canonical).schema().to_pandas()
    frame = pd.DataFrame({"source_row": pd.Series(dtype="int64"), "reason": pd.Series(dtype="object")})
    for name, dtype in schema:
        frame[name] = pd.Series(dtype=dtype)
    for name, src in mapping.items():
        if src is not None:
            frame[f"raw_{name}"] = pd.Series(dtype="object")
    for column in unmapped_columns(raw, mapping) if raw is not None else ():
        frame[column] = pd.Series(dtype="object")
    return microsecond_timestamps(frame)


def report_day(report: dict[str, Any], key: str) -> date:
    """The calendar day of a timestamp in the reconciliation report (``first_order``, ``last_order``)."""
    return date.fromisoformat(report[key][:10])


def holds_rows_of(ingested: Ingested, report: dict[str, Any]) -> bool:
    """Whether the clean rows of ``ingested`` up to the last order of an earlier run's reconciliation
    ``report`` (its as-of date when it names none) are as many, and add up to the same net revenue, as
    that run's: the same shop's newer extract (weekly files in dated folders), not another shop's file
    of the same name."""
    rows, revenue, as_of = report.get("rows_used"), report.get("net_revenue"), report.get("as_of")
    if rows is None or revenue is None or as_of is None:
        return False
    transactions = ingested.transactions
    order_ts = transactions[contract.ORDER_TS]
    if report.get("last_order"):
        # Up to the earlier run's last order, not the end of its day: an extract pulled on a Monday morning
        # holds part of that day, and the next one the rest of it (the warning came back every week).
        earlier = transactions.filter(order_ts <= datetime.fromisoformat(report["last_order"]))
    else:
        earlier = transactions.filter(order_ts < datetime.combine(date.fromisoformat(as_of) + timedelta(days=1), time()))
    found = _python_rows(earlier.aggregate(rows=earlier.count(), revenue=earlier[contract.AMOUNT].sum()))[0]
    return int(found["rows"]) == int(rows) and round(float(found["revenue"] or 0.0), 2) == round(float(revenue), 2)


def reconciliation_report(transactions, source: Source, counts: dict[str, Any], by_reason: dict[str, int], as_of: date) -> dict[str, Any]:
    """Counts that account for every row and customer of the input (one more pass, over the clean rows)."""
    amount = transactions[contract.AMOUNT]
    aggregates = dict(
        rows=transactions.count(),
        net_revenue=amount.sum(),
        refund_rows=amount.count(where=amount < 0),
        refund_amount=amount.sum(where=amount < 0),
        zero_amount_rows=amount.count(where=amount == 0),
        first_order=transactions[contract.ORDER_TS].min(),
        last_order=transactions[contract.ORDER_TS].max(),
    )
    if by_reason:  # otherwise the customers used are the customers read
        aggregates["customers"] = transactions[contract.CUSTOMER_ID].nunique()
    used = _python_rows(transactions.aggregate(**aggregates))[0]
    customers_read = int(counts["customers_read"])
    customers_used = int(used.get("customers", customers_read))
    report = {
        "source": source.label,
        "source_identity": source.identity,
        "as_of": as_of.isoformat(),
        "rows_read": int(counts["rows_read"]),
        "rows_used": int(used["rows"]),
        "rows_set_aside": {name: by_reason.get(name, 0) for name in REASONS},
        "customers_read": customers_read,
        "customers_used": customers_used,
        # Every customer of the clean rows is a customer read, so the rest are only in the quarantine.
        "customers_only_in_quarantine": customers_read - customers_used,
        "net_revenue": round(float(used["net_revenue"] or 0.0), 2),
        "refund_rows": int(used["refund_rows"]),
        "refund_amount": round(float(used["refund_amount"] or 0.0), 2),
        "zero_amount_rows": int(used["zero_amount_rows"]),
        "first_order": used["first_order"].isoformat() if used["first_order"] else None,
        "last_order": used["last_order"].isoformat() if used["last_order"] else None,
    }
    assert report["rows_used"] + sum(report["rows_set_aside"].values()) == report["rows_read"], report
    return report


def data_digest(con) -> str:
    """A stable digest of the clean transactions (order-independent), for MLflow and run ids.

    Each engine hashes rows with its own hash function, so the same data has one digest per engine.
    """
    from flows.engine import active_spark_session, engine_of

    if engine_of(con) == "duckdb":
        row = con.raw_sql(
            """
            select count(*), coalesce(sum(hash(customer_id, order_ts, amount, order_id)), 0)::varchar,
                   coalesce(sum(amount), 0)
            from vipcast_transactions
            """
        ).fetchone()
    else:
        row = active_spark_session().sql(
            """
            select count(*),
                   cast(coalesce(sum(cast(xxhash64(customer_id, order_ts, amount, order_id) as decimal(38, 0))), 0) as string),
                   coalesce(sum(amount), 0)
            from vipcast_transactions
            """
        ).first()
    return hashlib.sha256(f"{row[0]}|{row[1]}|{row[2]:.6f}".encode()).hexdigest()[:16]
