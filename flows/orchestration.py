"""Prefect 3 flows `vipcast-train` and `vipcast-score`.

Each flow runs the same steps as the CLI (flows/pipeline.py), with every step a Prefect task that
calls one plain function; steps that do I/O (reading data, MLflow, the outputs store) retry.
Without PREFECT_API_URL the flows run in Prefect's ephemeral mode; with it, against that server.
Each run leaves a markdown summary artifact (and the score flow a table of the top rising stars).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import pipeline

IO_RETRIES = 2
IO_RETRY_DELAY_SECONDS = 10


class PrefectSteps:
    """Runs each step as a Prefect task named after its function; I/O steps retry."""

    def __call__(self, label: str, function, *args, io: bool = False, **kwargs):
        runner = task(
            function,
            name=function.__name__,
            task_run_name=label,
            retries=IO_RETRIES if io else 0,
            retry_delay_seconds=IO_RETRY_DELAY_SECONDS,
            cache_policy=NO_CACHE,  # inputs are connections and frames: nothing to hash or reuse
        )
        return runner(*args, **kwargs)


def _date(value: str | date | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


@flow(name="vipcast-train", log_prints=True)
def train(
    data: str | None = None,
    as_of: str | None = None,
    horizon_days: int | None = None,
    workdir: str | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Build features, backtest the candidates, fit, log to MLflow, promote if no worse."""
    ctx = pipeline.Context.create(workdir, config, horizon_days=horizon_days)
    summary = pipeline.run_train(ctx, data, _date(as_of), step=PrefectSteps())
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
) -> dict[str, Any]:
    """Load the champion, score everyone as of a date, nominate, and write the outputs."""
    ctx = pipeline.Context.create(workdir, config)
    summary = pipeline.run_score(ctx, data, _date(as_of), step=PrefectSteps())
    create_markdown_artifact(f"# vipcast scoring run\n\n```\n{summary}\n```\n", key="vipcast-score-summary", description="vipcast scoring run")
    top = summary.rising_stars.head(top_rising_stars)
    if len(top):
        create_table_artifact(top.astype(str).to_dict(orient="records"), key="vipcast-top-rising-stars", description="top rising stars")
    return {
        "run_id": summary.run_id, "as_of": str(summary.as_of), "n_customers": summary.n_customers,
        "tiers": summary.tier_counts, "summary": str(summary),
    }
