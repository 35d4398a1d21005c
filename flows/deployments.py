"""`vipcast serve`: the train and score flows as Prefect deployments on the config's schedules."""

from __future__ import annotations

import os
from pathlib import Path

from flows.ingest import BUILTIN_SOURCES
from flows.pipeline import Context

SCORE_DEPLOYMENT = "weekly-scoring"
TRAIN_DEPLOYMENT = "scheduled-training"


def absolute_source(data: str) -> str:
    """`data` with a relative file, folder or glob made absolute, and a SQLite URL's relative file
    (`sqlite:///shop.db#orders`, read from the folder a scheduled run starts in); names and other database
    URLs as they are."""
    if data.startswith("sqlite:///") and not data.startswith("sqlite:////"):
        path, hash_mark, table = data.removeprefix("sqlite:///").partition("#")
        if path and path != ":memory:":
            return f"sqlite:///{Path(path).expanduser().absolute()}{hash_mark}{table}"
    if data in BUILTIN_SOURCES or "://" in data:
        return data
    return str(Path(data).expanduser().absolute())


def absolute_config(config: str | None) -> str | None:
    """A config file path made absolute; a built-in config name (or none) as it is. A `BuiltinConfig`
    (the one a built-in --data implies) becomes its file in the package: a flow's parameters are plain
    text, and a file of that name in the current folder read as the config again."""
    from configs.loader import BUILTIN_CONFIGS, BuiltinConfig, package_file

    if isinstance(config, BuiltinConfig):
        return str(package_file(f"{config}.yaml"))
    if config is None or not Path(config).exists():
        return config
    if config in BUILTIN_CONFIGS and not Path(config).is_file():  # a folder `demo/` here is not the config
        return config
    return str(Path(config).absolute())


def build_deployments(ctx: Context, data: str | None = None, config: str | None = None):
    """The two RunnerDeployments, with cron schedules and parameters from the config.

    Paths in the parameters are absolute: a scheduled run may start in another working directory
    (a worker's, or the runner's) than the `vipcast serve` that registered it.
    """
    from prefect.schedules import Cron

    from flows.orchestration import score, train

    schedule = ctx.config.schedule
    parameters = {
        "data": absolute_source(data or ctx.config.dataset),
        "workdir": str(ctx.workspace.root),
        "config": absolute_config(config),
    }
    scoring = score.to_deployment(
        name=SCORE_DEPLOYMENT,
        schedules=[Cron(schedule.score_cron, timezone=schedule.timezone)],
        parameters={**parameters, "scheduled": True},
        description="Score every customer with the champion model and refresh the lists",
        tags=["vipcast", "score"],
    )
    training = train.to_deployment(
        name=TRAIN_DEPLOYMENT,
        schedules=[Cron(schedule.train_cron, timezone=schedule.timezone)],
        parameters=parameters,
        description="Retrain, backtest and promote the champion model if no worse",
        tags=["vipcast", "train"],
    )
    return scoring, training


def serve_deployments(ctx: Context, data: str | None = None, config: str | None = None) -> None:
    """Register both deployments and serve them until interrupted."""
    from prefect import serve

    from flows.ingest import hide_password
    from flows.orchestration import check_prefect_home

    check_prefect_home(instead="")  # serve has no run without Prefect
    # Prefect's runner starts each flow run as `python -m ...` in the current folder, which Python puts
    # first on sys.path: a project folder holding models/ or configs/ (common names) replaced vipcast's
    # packages in every scheduled run ("No module named 'models.pipeline'"). Runs inherit this.
    os.environ["PYTHONSAFEPATH"] = "1"

    if data is not None and hide_password(data) != data:
        import sys

        print(
            "warning: --data holds a password, which Prefect stores with the deployments' parameters (its database, "
            "`prefect deployment inspect`); give it by environment instead (PostgreSQL: PGPASSWORD, with a URL "
            "without the password)",
            file=sys.stderr,
        )
    try:
        serve(*build_deployments(ctx, data, config), pause_on_shutdown=False)
    except Exception as error:  # httpx's ConnectError ("All connection attempts failed") at PREFECT_API_URL
        from flows.orchestration import PrefectUnavailable

        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value() or "the temporary Prefect server"
        if type(error).__name__ in ("ConnectError", "ConnectTimeout"):
            raise PrefectUnavailable(f"Prefect's API cannot be reached at {url}: {error}") from error
        if type(error).__name__ == "PrefectHTTPStatusError":  # something answers there, not Prefect's API
            first = (str(error).strip().splitlines() or [""])[0]
            raise PrefectUnavailable(f"{url} does not answer as Prefect's API (a URL without /api, or another port?): "
                                     f"{first}") from error
        raise
