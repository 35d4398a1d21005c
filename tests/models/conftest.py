"""CDNOW transactions as the canonical table, shared by the model tests."""

from __future__ import annotations

import importlib.resources

import ibis
import pandas as pd
import pytest


def cdnow_frame(name: str) -> pd.DataFrame:
    """A lifetimes CDNOW file as canonical transactions (customer_id, order_ts, amount, ...)."""
    path = importlib.resources.files("lifetimes") / "datasets" / name
    if name == "CDNOW_master.txt":
        raw = pd.read_csv(path, sep=r"\s+", header=0, names=["id", "date", "cds", "dollars"], dtype={"id": str, "date": str})
    else:
        raw = pd.read_csv(path, sep=r"\s+", header=None, names=["id", "sample", "date", "cds", "dollars"], dtype={"id": str, "date": str})
    return pd.DataFrame(
        {
            "customer_id": raw["id"],
            "order_ts": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["dollars"].astype("float64"),
            "order_id": pd.Series([None] * len(raw), dtype="string"),
            "category": pd.Series([None] * len(raw), dtype="string"),
            "quantity": raw["cds"].astype("float64"),
        }
    )


@pytest.fixture(scope="session")
def cdnow_sample_frame() -> pd.DataFrame:
    return cdnow_frame("CDNOW_sample.txt")


@pytest.fixture(scope="session")
def cdnow_sample(cdnow_sample_frame) -> ibis.Table:
    return ibis.memtable(cdnow_sample_frame)


@pytest.fixture(scope="session")
def cdnow_master() -> ibis.Table:
    return ibis.memtable(cdnow_frame("CDNOW_master.txt"))
