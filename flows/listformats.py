"""How a list reads as CSV and JSON, wherever marketing pulls it: `vipcast lists`, the export files,
the API. One set of rules, so the outlets agree cell for cell:

- CSV is pandas' ``to_csv(index=False)`` (the export files are written by flows.store's fast
  writer, which gives the same bytes): booleans True/False, floats as Python writes them (110.0),
  dates without a time of day as YYYY-MM-DD.
- CSV is opened in spreadsheets, which run a cell that starts with = + - @ (or a tab or carriage
  return) as a formula, quoted or not (OWASP "CSV injection"): such text cells get a leading
  apostrophe, which spreadsheets show as text and do not display. Numbers are never changed.
  Parquet, JSON and the database hold the values as they are.
- JSON is an array of records with every float exact (the shortest text that reads back as the
  same double; pandas' writer rounds to 10 decimals, which turned 4.2e-13 into 0.0), NaN and
  infinities as null, dates as YYYY-MM-DD (with a time of day only when a column has one).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(text: str) -> dt.date:
    """A date written YYYY-MM-DD (surrounding blanks allowed), as every command, page and API parameter
    reads one; ValueError naming the value otherwise (Python alone would also take 20250630, and the
    API read a number as Unix seconds)."""
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError(f"{text!r} is not a date in YYYY-MM-DD form")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:  # the form is right, the day is not
        raise ValueError(f"{text!r} is not a calendar date ({error})") from None


#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = "=+-@\t\r"
FORMULA_PATTERN = "^[=+\\-@\t\r]"
SPREADSHEET_TEXT_MARK = "'"


def guarded_text(text: pa.Array) -> pa.Array:
    """Arrow text cells, those starting like a formula with SPREADSHEET_TEXT_MARK in front."""
    return pc.if_else(pc.match_substring_regex(text, FORMULA_PATTERN),
                      pc.binary_join_element_wise(SPREADSHEET_TEXT_MARK, text, ""), text)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each text cell that starts like a formula marked as text (see the module doc)."""
    guarded = {}
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_object_dtype(values.dtype)):
            continue
        try:
            starts_like_formula = values.str.match(FORMULA_PATTERN, na=False).astype(bool)
        except AttributeError:  # an object column without text (dates)
            continue
        if starts_like_formula.any():
            marked = SPREADSHEET_TEXT_MARK + values[starts_like_formula].astype(str)
            guarded[column] = values.astype(object).where(~starts_like_formula, marked)
    return frame.assign(**guarded) if guarded else frame


def list_csv(frame: pd.DataFrame) -> str:
    """A list as CSV text (the module's rules)."""
    return spreadsheet_safe(frame).to_csv(index=False)


def dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Date and timestamp columns as ISO text (dates without a time when every value is midnight)."""
    converted = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            midnight = (values.dropna() == values.dropna().dt.normalize()).all()
            text = values.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S")
            converted[column] = text.astype(object).where(values.notna(), None)
        elif pd.api.types.is_object_dtype(values.dtype) and pd.api.types.infer_dtype(values, skipna=True) in (
                "date", "datetime"):
            converted[column] = values.map(lambda value: value.isoformat(), na_action="ignore")
    return frame.assign(**converted) if converted else frame


def list_json(frame: pd.DataFrame, *, one_per_line: bool = False) -> str:
    """A list as a JSON array of objects (the module's rules); `one_per_line` puts each record on its line."""
    import duckdb

    if not len(frame.columns):
        return "[]"
    rows = dates_as_text(frame)
    finite = {column: rows[column].where(np.isfinite(rows[column])) for column in rows.columns
              if pd.api.types.is_float_dtype(rows[column].dtype)}
    rows = rows.assign(**finite) if finite else rows
    connection = duckdb.connect()
    try:
        connection.register("list_rows", rows)
        # DuckDB writes each double in its shortest exact form; a pandas NaN is read as NULL.
        records = [record for (record,) in connection.execute("SELECT to_json(r) FROM list_rows AS r").fetchall()]
    finally:
        connection.close()
    if not records:
        return "[]"
    return "[\n" + ",\n".join(records) + "\n]" if one_per_line else "[" + ",".join(records) + "]"
