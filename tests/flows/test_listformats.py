"""One way to write a list as CSV and JSON for every outlet (flows/listformats.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from flows.listformats import list_csv, list_json


def awkward_list() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["=1+1", "-5", "+44 20", "@SUM(A1)", "\tlead", "C1", "00042", '=HYPERLINK("x","y")'],
        "tier": ["Gold", "Silver", "Base", "Base", "Base", "Platinum", "Gold", "Base"],
        "rising_star_score": [4.247e-13, 7.0895e-07, 0.1 + 0.2, np.nan, np.inf, -np.inf, 123456789.123456789, 2.5],
        "net_spend": [-5.0, 0.0, 10.0, -1.5, 2.0, 3.0, 4.0, 5.0],
        "days_left": pd.array([1, None, 3, 4, 5, 6, 7, 8], dtype="Int64"),
        "in_grace": [True, False, True, False, True, False, True, False],
        "grace_until": pd.to_datetime(["2026-03-31", None, "2026-04-01", None, None, None, None, None]),
    })


def test_csv_marks_formula_like_text_and_leaves_numbers_alone():
    """Excel runs a cell starting with = + - @ (quoted or not) as a formula: such text is marked with
    a leading apostrophe, which spreadsheets show as text; negative numbers stay numbers."""
    frame = awkward_list()
    text = list_csv(frame)
    read = pd.read_csv(io.StringIO(text), dtype={"customer_id": str})
    assert read["customer_id"].tolist() == ["'=1+1", "'-5", "'+44 20", "'@SUM(A1)", "'\tlead", "C1", "00042",
                                            '\'=HYPERLINK("x","y")']
    assert read["net_spend"].tolist() == frame["net_spend"].tolist()
    assert "-5.0" in text and "True" in text and "2026-03-31" in text and "00:00" not in text
    # The caller's frame is not changed.
    assert frame["customer_id"][0] == "=1+1"


def test_json_floats_are_exact_and_non_finite_values_are_null():
    """pandas' JSON writer rounds to 10 decimals: 4.247e-13 was 0.0 and 19,898 distinct scores read as 19,083."""
    frame = awkward_list()
    rows = json.loads(list_json(frame))
    scores = [row["rising_star_score"] for row in rows]
    assert scores[:3] == [4.247e-13, 7.0895e-07, 0.1 + 0.2] and scores[6] == 123456789.123456789
    assert scores[3] is None and scores[4] is None and scores[5] is None
    assert [row["customer_id"] for row in rows] == frame["customer_id"].tolist()  # as they are, in order
    assert rows[0]["grace_until"] == "2026-03-31" and rows[1]["grace_until"] is None
    assert rows[0]["in_grace"] is True and rows[1]["days_left"] is None and rows[0]["days_left"] == 1
    assert list(rows[0]) == list(frame.columns)
    assert json.loads(list_json(frame, one_per_line=True)) == rows


def test_empty_lists():
    assert json.loads(list_json(pd.DataFrame())) == []
    assert json.loads(list_json(awkward_list().head(0))) == []
    assert list_csv(awkward_list().head(0)).splitlines() == [",".join(awkward_list().columns)]
