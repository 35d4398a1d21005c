"""The steps vipcast runs, as plain functions over a Context: the CLI and the Prefect flows call these.

Only this layer touches files, config, the outputs store and MLflow; features/, models/ and
segments/ get plain values.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from configs import VipcastConfig, load_config
from flows.progress import Progress
from flows.workspace import Workspace


@dataclass(frozen=True)
class Context:
    """What every step needs: the workspace and the validated config."""

    workspace: Workspace
    config: VipcastConfig

    @classmethod
    def create(
        cls,
        workdir: str | Path | None = None,
        config: str | Path | None = None,
        *,
        horizon_days: int | None = None,
        engine: str | None = None,
    ) -> "Context":
        overrides: dict[str, Any] = {}
        if horizon_days is not None:
            overrides["model"] = {"horizon_days": horizon_days}
        if engine is not None:
            overrides["engine"] = {"name": engine}
        return cls(Workspace.resolve(workdir), load_config(config, overrides))


def write_atomic(path: Path, write) -> Path:
    """Write a file through a temporary sibling and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str)))


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def generate_dataset(customers: int, seed: int, out: Path) -> tuple[Path, Path, int]:
    """Write synthetic transactions and their ground truth (FILE.truth.parquet)."""
    from features.synthetic import generate_transactions

    transactions, truth = generate_transactions(customers, seed)
    truth_path = out.with_name(out.stem + ".truth.parquet")
    write_parquet(out, transactions)
    write_parquet(truth_path, truth)
    return out, truth_path, len(transactions)


def ingest(ctx: Context, data: str | None, as_of: date | None = None):
    """Load and validate the transactions of `data` (default: the config's dataset)."""
    from flows.ingest import load_transactions

    source = ctx.config.source
    return load_transactions(
        data or ctx.config.dataset,
        columns=source.columns,
        workdir=ctx.workspace.root,
        as_of=as_of or ctx.config.as_of,
        date_format=source.date_format,
        table=source.table,
        max_invalid_share=source.max_invalid_share,
    )


def build_features(ctx: Context, ingested, cutoff: date) -> pd.DataFrame:
    """Per-customer features as of `cutoff`, as a pandas frame."""
    from features.build import customer_features

    table = customer_features(
        ingested.transactions,
        cutoff,
        time_unit=ctx.config.features.time_unit,
        windows_days=ctx.config.features.windows_days,
    )
    return table.to_pandas()


def account_for_customers(report: dict[str, Any], n_featured: int) -> dict[str, Any]:
    """Add to the reconciliation report the customers that have rows but no purchase day (refunds only)."""
    accounted = dict(report)
    accounted["customers_featured"] = n_featured
    accounted["customers_without_purchase_day"] = report["customers_used"] - n_featured
    return accounted


def write_side_files(target_dir: Path, stem: str, ingested, report: dict[str, Any]) -> dict[str, Path]:
    """The reconciliation report and the quarantine, next to the outputs they explain."""
    paths = {"reconciliation": write_json(target_dir / f"{stem}reconciliation.json", report)}
    if len(ingested.quarantine):
        paths["quarantine"] = write_parquet(target_dir / f"{stem}quarantine.parquet", ingested.quarantine)
    return paths


def write_features(ctx: Context, data: str | None, as_of: date | None, out: Path) -> str:
    """`vipcast features`: features for every customer as of a date, written to Parquet."""
    progress = Progress(3)
    with progress.step("loading and checking transactions"):
        ingested = ingest(ctx, data, as_of)
    with progress.step(f"building features as of {ingested.as_of}"):
        frame = build_features(ctx, ingested, ingested.as_of)
    with progress.step(f"writing {out}"):
        report = account_for_customers(ingested.report, len(frame))
        write_parquet(out, frame)
        side = write_side_files(out.parent, out.stem + ".", ingested, report)
    set_aside = sum(report["rows_set_aside"].values())
    return (
        f"{len(frame):,} customers x {frame.shape[1] - 1} features as of {ingested.as_of} -> {out}\n"
        f"rows read {report['rows_read']:,}, used {report['rows_used']:,}, set aside {set_aside:,}"
        f" (report: {side['reconciliation']})"
    )
