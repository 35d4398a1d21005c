"""Read transactions from a source, check them against the contract, and account for every row.

A source is a CSV or Parquet file, a folder or glob of them, a table in a SQL database
(`URL#table`, e.g. `sqlite:///shop.db#orders` or `postgres://user@host/db#orders`), or a built-in
name: `cdnow` (the CDNOW master file shipped inside `lifetimes`), `cdnow-sample`, `demo`.

Rules (DESIGN.md "Transactions contract"):
- Whole-input problems stop the run with one clear error naming the source, the column and a few
  offending rows: empty input, a missing column, a column whose values do not parse (more than
  `max_invalid_share` of the rows: the column is of the wrong type, not a few bad rows).
- Row problems set the row aside into the quarantine with a reason, counted in the reconciliation
  report: null customer id, unparseable or missing date, non-numeric or missing amount, date after
  the as-of date, duplicate record (same order_id and the same values twice), an order_id already
  used by another customer.
- Zero-amount and negative (refund) rows are legal and kept.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from configs.schema import ColumnMapping
from features import contract

BUILTIN_SOURCES = ("cdnow", "cdnow-sample", "demo")
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


@dataclass(frozen=True)
class Source:
    kind: str  # csv | parquet | database | builtin
    location: str
    table: str | None = None

    @property
    def label(self) -> str:
        return f"{self.location}#{self.table}" if self.table else self.location


@dataclass
class Ingested:
    """Clean canonical transactions, the rows set aside, and the reconciliation report."""

    transactions: Any  # ibis Table in the canonical schema, materialised in the connection
    quarantine: pd.DataFrame
    report: dict[str, Any]
    as_of: date
    connection: Any = field(repr=False, default=None)


def parse_source(src: str, table: str | None = None) -> Source:
    """Classify a SRC argument; raise IngestError for a path that does not exist."""
    if src in BUILTIN_SOURCES:
        return Source("builtin", src)
    if "://" in src:
        url, _, fragment = src.partition("#")
        name = fragment or table
        if not name:
            raise IngestError(f"{src}: a database source needs a table: write URL#table (e.g. sqlite:///shop.db#orders)")
        return Source("database", url, name)
    matches = sorted(glob.glob(src)) if any(ch in src for ch in "*?[") else None
    path = Path(src)
    if matches is None and not path.exists():
        raise IngestError(
            f"{src}: no such file or folder (built-in sources: {', '.join(BUILTIN_SOURCES)})"
        )
    if matches == []:
        raise IngestError(f"{src}: the glob matches no file")
    files = matches or (sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [src])
    suffixes = {Path(f.removesuffix(".gz")).suffix.lower() for f in files}
    if suffixes <= {".parquet", ".pq"}:
        return Source("parquet", src)
    if suffixes <= {".csv", ".txt", ".tsv"}:
        return Source("csv", src)
    raise IngestError(f"{src}: cannot tell the format from the file names ({', '.join(sorted(suffixes))}); use .csv or .parquet files")


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_raw(con, source: Source, workdir: Path) -> str:
    """Register the source's raw rows as a DuckDB view; return the view name."""
    view = "vipcast_raw"
    if source.kind == "builtin":
        if source.location == "demo":
            path = ensure_demo_dataset(workdir)
            con.raw_sql(f"create or replace view {view} as select * from read_parquet({_sql_str(str(path))})")
        else:
            con.create_table(view, _cdnow_frame(sample=source.location == "cdnow-sample"), overwrite=True)
        return view
    if source.kind == "database":
        try:
            backend = ibis.connect(source.location)
            remote = backend.table(source.table)
        except Exception as exc:  # driver errors vary by database; the message says which
            raise IngestError(f"{source.label}: cannot read the table ({type(exc).__name__}: {exc})") from exc
        con.create_table(view, remote.to_pyarrow(), overwrite=True)
        return view
    location = source.location
    pattern = str(Path(location) / "*") if Path(location).is_dir() else location
    if source.kind == "parquet":
        reader = f"read_parquet({_sql_str(pattern)}, union_by_name = true)"
    else:
        # Everything as text: types are checked below, row by row, so a bad value is reported, not guessed.
        reader = f"read_csv({_sql_str(pattern)}, all_varchar = true, header = true, union_by_name = true)"
    try:
        con.raw_sql(f"create or replace view {view} as select * from {reader}")
        con.raw_sql(f"select count(*) from {view}").fetchall()
    except Exception as exc:
        raise IngestError(f"{source.label}: cannot read as {source.kind} ({str(exc).splitlines()[0]})") from exc
    return view


def _typed_expression(column: str, sql_type: str, kind: str, date_format: str | None) -> str:
    quoted = _quote(column)
    if kind == "timestamp":
        if sql_type in ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
            return f"cast({quoted} as timestamp)"
        if sql_type == "TIMESTAMP WITH TIME ZONE":
            return f"cast(timezone('UTC', {quoted}) as timestamp)"
        text = f"trim(cast({quoted} as varchar))"
        if date_format:
            return f"try_strptime({text}, {_sql_str(date_format)})"
        return f"try_cast({text} as timestamp)"
    if kind == "double":
        if sql_type in ("DOUBLE", "FLOAT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT") or sql_type.startswith("DECIMAL"):
            return f"cast({quoted} as double)"
        return f"try_cast(trim(cast({quoted} as varchar)) as double)"
    return f"nullif(trim(cast({quoted} as varchar)), '')"


def _examples(con, where: str, column: str, label: str, limit: int = 3) -> str:
    rows = con.raw_sql(f"select _row, {_quote(column)} from vipcast_typed where {where} order by _row limit {limit}").fetchall()
    return "; ".join(f"data row {row_number}: {label}={value!r}" for row_number, value in rows)


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
    """Read, type-check and classify every row of a source into clean transactions and a quarantine."""
    source = parse_source(src, table)
    if source.kind == "builtin":
        columns = builtin_columns(source.location)
        date_format = None
    con = connection if connection is not None else ibis.duckdb.connect()
    raw = read_raw(con, source, workdir)
    schema = dict(con.raw_sql(f"select column_name, column_type from (describe {raw})").fetchall())

    mapping = {field_name: getattr(columns, field_name) for field_name in contract.REQUIRED_COLUMNS + contract.OPTIONAL_COLUMNS}
    missing = [f"'{src_name}' (for {name})" for name, src_name in mapping.items() if src_name and src_name not in schema]
    if missing:
        raise IngestError(
            f"{source.label}: missing column {', '.join(missing)}; columns found: {', '.join(schema)}"
            " (map source columns in the config under source.columns)"
        )
    rows_read = con.raw_sql(f"select count(*) from {raw}").fetchone()[0]
    if rows_read == 0:
        raise IngestError(f"{source.label}: the input has no rows")

    kinds = {
        contract.CUSTOMER_ID: "string",
        contract.ORDER_TS: "timestamp",
        contract.AMOUNT: "double",
        contract.ORDER_ID: "string",
        contract.CATEGORY: "string",
        contract.QUANTITY: "double",
    }
    select = []
    for name, kind in kinds.items():
        src_name = mapping[name]
        if src_name is None:
            null_type = {"string": "varchar", "double": "double", "timestamp": "timestamp"}[kind]
            select.append(f"cast(null as {null_type}) as {name}")
        else:
            select.append(f"{_typed_expression(src_name, schema[src_name], kind, date_format)} as {name}")
            select.append(f"{_quote(src_name)} as {_quote('raw_' + name)}")
    con.raw_sql(
        f"create or replace temp table vipcast_typed as select row_number() over () as _row, {', '.join(select)} from {raw}"
    )

    invalid: dict[str, int] = {}
    checks = {
        "unparseable_date": f"{contract.ORDER_TS} is null",
        "non_numeric_amount": f"{contract.AMOUNT} is null",
    }
    for reason, condition in checks.items():
        name = TYPE_REASONS[reason]
        count = con.raw_sql(f"select count(*) from vipcast_typed where {condition}").fetchone()[0]
        invalid[reason] = count
        if count > max_invalid_share * rows_read:
            src_name = mapping[name]
            expected = f"dates in format {date_format!r}" if name == contract.ORDER_TS and date_format else (
                "dates (YYYY-MM-DD or ISO timestamps; set source.date_format for others)" if name == contract.ORDER_TS else "numbers"
            )
            raise IngestError(
                f"{source.label}: column '{src_name}' (for {name}) does not hold {expected} in {count:,} of "
                f"{rows_read:,} rows; e.g. {_examples(con, condition, 'raw_' + name, src_name)}"
            )

    if as_of is None:
        last = con.raw_sql(f"select max({contract.ORDER_TS}) from vipcast_typed where {contract.CUSTOMER_ID} is not null").fetchone()[0]
        if last is None:
            raise IngestError(f"{source.label}: no row has both a customer id and a valid date")
        as_of = last.date()
    end_of_as_of = datetime.combine(as_of + timedelta(days=1), time.min)

    con.raw_sql(
        f"""
        create or replace temp table vipcast_classified as
        with ranked as (
            select *,
                row_number() over (
                    partition by order_id, customer_id, order_ts, amount, category, quantity order by _row
                ) as _copy,
                min(customer_id) over (partition by order_id) as _first_customer,
                count(distinct customer_id) over (partition by order_id) as _customers
            from vipcast_typed
        )
        select *,
            case
                when customer_id is null then 'null_customer_id'
                when order_ts is null then 'unparseable_date'
                when amount is null then 'non_numeric_amount'
                when order_ts >= {_sql_str(end_of_as_of.isoformat(sep=' '))}::timestamp then 'after_as_of'
                when order_id is not null and _copy > 1 then 'duplicate_record'
                when order_id is not null and _customers > 1 and customer_id <> _first_customer then 'conflicting_order_id'
            end as reason
        from ranked
        """
    )
    canonical = ", ".join(contract.REQUIRED_COLUMNS + contract.OPTIONAL_COLUMNS)
    con.raw_sql(
        f"create or replace temp table vipcast_transactions as select {canonical} from vipcast_classified where reason is null order by _row"
    )
    raw_columns = [_quote(d[0]) for d in con.raw_sql("select * from vipcast_classified limit 0").description if d[0].startswith("raw_")]
    quarantine = con.raw_sql(
        f"select _row as source_row, reason, {canonical}, {', '.join(raw_columns)} from vipcast_classified "
        "where reason is not null order by _row"
    ).df()
    report = reconciliation_report(con, source, rows_read, as_of)
    transactions = con.table("vipcast_transactions")
    if report["rows_used"] == 0:
        raise IngestError(
            f"{source.label}: no usable rows (set aside: "
            + ", ".join(f"{k}={v}" for k, v in report["rows_set_aside"].items() if v)
            + ")"
        )
    return Ingested(transactions=transactions, quarantine=quarantine, report=report, as_of=as_of, connection=con)


def reconciliation_report(con, source: Source, rows_read: int, as_of: date) -> dict[str, Any]:
    """Counts that account for every row and customer of the input."""
    by_reason = dict(
        con.raw_sql("select reason, count(*) from vipcast_classified where reason is not null group by reason").fetchall()
    )
    used = con.raw_sql(
        """
        select count(*), count(distinct customer_id), coalesce(sum(amount), 0),
               count(*) filter (where amount < 0), coalesce(sum(amount) filter (where amount < 0), 0),
               count(*) filter (where amount = 0), min(order_ts), max(order_ts)
        from vipcast_transactions
        """
    ).fetchone()
    customers_read = con.raw_sql(
        "select count(distinct customer_id) from vipcast_classified where customer_id is not null"
    ).fetchone()[0]
    only_quarantined = con.raw_sql(
        """
        select count(distinct customer_id) from vipcast_classified
        where customer_id is not null and customer_id not in (select customer_id from vipcast_transactions)
        """
    ).fetchone()[0]
    report = {
        "source": source.label,
        "as_of": as_of.isoformat(),
        "rows_read": int(rows_read),
        "rows_used": int(used[0]),
        "rows_set_aside": {reason: int(by_reason.get(reason, 0)) for reason in REASONS},
        "customers_read": int(customers_read),
        "customers_used": int(used[1]),
        "customers_only_in_quarantine": int(only_quarantined),
        "net_revenue": round(float(used[2]), 2),
        "refund_rows": int(used[3]),
        "refund_amount": round(float(used[4]), 2),
        "zero_amount_rows": int(used[5]),
        "first_order": used[6].isoformat() if used[6] else None,
        "last_order": used[7].isoformat() if used[7] else None,
    }
    assert report["rows_used"] + sum(report["rows_set_aside"].values()) == report["rows_read"], report
    return report


def data_digest(con) -> str:
    """A stable digest of the clean transactions (order-independent), for MLflow and run ids."""
    row = con.raw_sql(
        """
        select count(*), coalesce(sum(hash(customer_id, order_ts, amount, order_id)), 0)::varchar,
               coalesce(sum(amount), 0)
        from vipcast_transactions
        """
    ).fetchone()
    return hashlib.sha256(f"{row[0]}|{row[1]}|{row[2]:.6f}".encode()).hexdigest()[:16]
