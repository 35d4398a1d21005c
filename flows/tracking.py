"""Every MLflow call of vipcast lives here (STYLE.md: one module for tracking).

- One experiment per dataset (`vipcast/<dataset>`), one registered model per dataset
  (`vipcast-<dataset>`); the alias `champion` marks the version in use.
- A training run logs the model's settings (defaults included), the whole config (parameters
  `config.<key>` and the artifact config.json), the as-of and backtest cutoff dates, the code
  version (tags `vipcast.version`, `vipcast.git_commit`), the data digest and size, the backtest metrics of every
  candidate (`<candidate>.<metric>`), the plots, and the whole scoring model as one pyfunc model.
- Promotion rule: the new version becomes champion only if its backtest is no worse than the
  current champion's on normalized_gini, decile_mape, |total_error| and churn_auc of the shipped
  candidates (`PROMOTION_METRICS`), compared on the same backtest split (the champion's settings are refitted on the new split by the train flow,
  so data drift between runs cannot make an old score look better or worse than it is).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pickle
import re
import shlex
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flows.workspace import BUILTIN_SOURCES, GLOB_CHARACTERS, Workspace, write_atomic


class OutdatedChampion(LookupError):
    """The champion was pickled by a vipcast version whose model format this code cannot score with."""

    def __init__(self, version: str, found: int, expected: int) -> None:
        self.version, self.found, self.expected = version, found, expected
        super().__init__(
            f"the champion {version} was trained by another vipcast version (model format {found}, this one reads "
            f"{expected}): run `vipcast train` again to register a model this version can score with"
        )


class DamagedRegistry(Exception):
    """The workspace's MLflow SQLite file fails its own checks (the CLI's hint: move it aside, train)."""


class RegistryBusy(Exception):
    """The workspace's MLflow SQLite file stayed locked by another process past SQLite's wait."""


def missing_table(database: Path, error: BaseException) -> bool:
    """Whether a registry read failed on a table a half-built schema lacks; RegistryBusy for a lock. Only a missing
    table is a half-built schema: a locked file read as one was rebuilt, empty, over every champion."""
    if "no such table" in str(error):
        return True
    if "locked" in str(error) or "busy" in str(error):
        raise registry_busy(database, error) from error
    return False


def registry_busy(database: Path | str, error: BaseException) -> RegistryBusy:
    return RegistryBusy(f"the model registry {database} is busy: another process holds its lock ({error}); "
                        "nothing was changed")



class NoChampion(LookupError):
    """The registry has no champion for the dataset."""


class DamagedChampion(LookupError):
    """The registry names a champion whose model files cannot be loaded (deleted, truncated, damaged)."""

    def __init__(self, version: str, dataset: str, cause: BaseException) -> None:
        self.version, self.cause = version, cause
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(
            f"the champion {version}'s model files cannot be loaded ({type(cause).__name__}: {reason}): run "
            f"`vipcast train --data {shlex.quote(dataset)}` to register and promote a new one, or restore the "
            "workspace's mlartifacts/ folder from a backup"
        )


# What loading a champion whose files were deleted, truncated or overwritten raises (MLflow's missing
# artifact or MLmodel file; an emptied MLmodel is None to MLflow, AttributeError, and a broken one a
# YAML error; pickle's truncated, empty or foreign data: UnpicklingError, EOFError, or an object
# without the attributes a vipcast model has); the registry itself read fine. A file vipcast may not
# read (PermissionError) is not damage, and stays the machine's error.
DAMAGED_MODEL_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, EOFError, pickle.UnpicklingError,
                        AttributeError, TypeError, ValueError, KeyError, ImportError)


CHAMPION_ALIAS = "champion"
PREDICTION_COLUMNS = ("predicted_orders", "predicted_spend", "predicted_spend_12m", "predicted_ltv", "p_alive", "churn_probability")


def source_name(dataset: str) -> str:
    """The name a data source goes by: a table's name, a file's stem, a folder's name; for a glob, the stem
    of its file name when that is fixed (`data/*/orders.parquet`: orders), else the literal part of its
    first wildcard name (`orders_*.csv`: orders, `shop[12].csv`: shop12), else the folder it searches
    (`shopA/*.parquet`, `shopA/**/*.csv`: shopA, as the folder `shopA` is named). Relative paths are
    named as their absolute form: `.`, `*.csv` and the current folder by its path are one dataset. Every
    glob was named "data" before, so two shops' globs shared one champion and one tier history."""
    if "#" in dataset:
        return dataset.split("#")[-1]
    if "://" in dataset:  # a database URL without its table (the flows add the config's): never its password
        from flows.ingest import hide_password

        return hide_password(dataset)
    if dataset in BUILTIN_SOURCES:
        return dataset
    parts = Path(os.path.abspath(dataset)).parts
    wild = next((i for i, part in enumerate(parts) if GLOB_CHARACTERS & set(part)), None)
    if wild is None:
        if len(parts) <= 1:
            return "data"
        return file_stem(parts[-1])
    if wild < len(parts) - 1 and not GLOB_CHARACTERS & set(parts[-1]):
        return file_stem(parts[-1])
    literal = re.sub(r"[*?\[\]]", "", file_stem(parts[wild])).strip("_-. ")
    if literal:
        return literal
    return parts[wild - 1] if wild > 1 else "data"


#: The suffixes of the files vipcast reads (flows.ingest), and of their compression (orders.csv.gz).
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz",)


def file_stem(name: str) -> str:
    """A source's name without a data file's suffix (and its compression's): `orders.csv.gz` was named
    `orders.csv` beside `orders.csv`'s `orders`, and the folder `shop.eu` was `shop` beside `shop.eu/*.parquet`'s
    `shop.eu`. Other suffixes are part of the name (`shop.v2.parquet`: shop.v2); whether the name is a file or a
    folder is not asked (a stored run's name must not change when its folder is gone)."""
    for suffixes in (COMPRESSION_SUFFIXES, DATA_SUFFIXES):
        suffix = next((end for end in suffixes if name.lower().endswith(end) and len(name) > len(end)), None)
        if suffix is not None:
            name = name[: -len(suffix)]
    return name


def dataset_slug(dataset: str) -> str:
    """A registry-safe name for a data source (`source_name`: file stem, folder, table or built-in name)."""
    base = unicodedata.normalize("NFC", source_name(dataset))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-").lower()
    if not base.isascii():
        # Registry names are ASCII: 売上 and 注文 both became "data" and shared one champion and one
        # tier history. A digest of the name keeps them apart (ASCII names keep their old slug).
        # Lower case and NFC before the digest, as ASCII names are compared case-folded: Ordérs.csv and
        # ordérs.csv (or the same name in NFD from a Mac) were two datasets. Names already lower case and
        # NFC keep their digest.
        digest = hashlib.sha256(base.lower().encode()).hexdigest()[:8]
        return f"{slug}-{digest}" if slug else f"data-{digest}"
    return slug or "data"


def registered_model_name(dataset: str) -> str:
    return f"vipcast-{dataset_slug(dataset)}"


def experiment_name(dataset: str) -> str:
    return f"vipcast/{dataset_slug(dataset)}"


# MLflow's routine remarks that say nothing to a vipcast user, by the logger that emits them: they
# broke the step lines ("[5/6] comparing with the champion ...2026/11/23 INFO mlflow.store...").
ROUTINE_MLFLOW_MESSAGES = {
    "mlflow.store.db.utils": ("Creating initial MLflow database tables", "Updating database tables"),
    # vipcast's model is a Python object by design (pickled with the code of this version).
    "mlflow.pyfunc": ("Passing a Python object as `python_model`", "Failed to infer model signature"),
    # A uv-made environment has no pip; the model's requirements are written without pip's version.
    "mlflow.utils.environment": ("Failed to resolve installed pip version",),
    # spark_udf: which backend serves the python_function flavour.
    "mlflow.models.flavor_backend_registry": ("Selected backend for flavor",),
    # The backtest plots logged to MLflow: with HOME unwritable, matplotlib works from a temporary
    # folder and said so in a paragraph over the step line ("[3/6] drawing the backtest plots ...mkdir -p failed").
    "matplotlib": ("mkdir -p failed for path", "Matplotlib created a temporary cache directory"),
}


class _RoutineMlflowMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


class _LockedRegistryRecords(logging.Filter):
    """MLflow's SQLAlchemy error record for a locked registry (60 lines with the SQL and a traceback, printed before
    vipcast's one line: RegistryBusy says it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "database is locked" not in record.getMessage()


def quiet_routine_mlflow_logs() -> None:
    """Drop MLflow's routine remarks (ROUTINE_MLFLOW_MESSAGES) and its artifact progress bars (they drew
    "Downloading artifacts: 100%" over the step lines), and its record of a locked registry (RegistryBusy says
    it); its other warnings and errors pass."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, prefixes in ROUTINE_MLFLOW_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RoutineMlflowMessages) for f in logger.filters):
            logger.addFilter(_RoutineMlflowMessages(prefixes))
    database_logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _LockedRegistryRecords) for f in database_logger.filters):
        database_logger.addFilter(_LockedRegistryRecords())


@contextlib.contextmanager
def registry_remarks_held():
    """Hold what MLflow prints to stderr while registering ("Successfully registered model ...",
    "Created version ..."; vipcast's summary names the version); printed after all if the call fails."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise


class TrackingUnreachable(RuntimeError):
    """MLFLOW_TRACKING_URI names a server that does not answer (MLflow retried for minutes, silently)."""


def check_tracking_server(uri: str) -> None:
    """Refuse an http(s) tracking URI whose host does not answer within a few seconds."""
    from urllib.parse import urlsplit

    from flows.engine import unreachable

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    problem = unreachable(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    if problem is not None:
        raise TrackingUnreachable(f"cannot reach the MLflow tracking server MLFLOW_TRACKING_URI={uri}: {problem}")
    status = health_status(uri)
    if status in NOT_MLFLOW_STATUSES:  # something answers there, not MLflow ("no champion: run train", then HTML)
        raise TrackingUnreachable(f"MLFLOW_TRACKING_URI={uri} does not answer as an MLflow tracking server "
                                  f"(GET /health: HTTP {status}; another port, or a path too many?)")


# Answers of a server that has no MLflow /health route (an authenticated MLflow says 401 or 403: not these).
NOT_MLFLOW_STATUSES = (404, 405, 501)


def health_status(uri: str) -> int | None:
    """The HTTP status of GET <uri>/health (MLflow's server answers 200), None when no answer comes."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


# (workspace folder, tracking URI) pairs this process has checked and prepared (`_mlflow`).
_PREPARED: set[tuple[Path, str]] = set()


def _mlflow(workspace: Workspace):
    import mlflow

    quiet_routine_mlflow_logs()
    store = (workspace.root, workspace.tracking_uri)
    if store not in _PREPARED:  # once a process: a training run reaches MLflow five times
        check_tracking_server(workspace.tracking_uri)
        prepare_tracking_database(workspace)
        _PREPARED.add(store)
    mlflow.set_tracking_uri(workspace.tracking_uri)
    return mlflow


def workspace_database(workspace: Workspace) -> Path | None:
    """The workspace's own SQLite tracking file (None when MLFLOW_TRACKING_URI names another store;
    MLflow sets that variable to the URI it was given, so it is compared, not only looked up)."""
    database = workspace.root / "mlflow.db"
    return database if workspace.tracking_uri == f"sqlite:///{database}" else None


def prepare_tracking_database(workspace: Workspace) -> None:
    """The workspace's MLflow database, complete and pointing at this workspace's artifacts.

    - MLflow builds its schema in dozens of steps on first use: a first run stopped among them (a
      scheduler's timeout, a full disk) left a file every later run failed on ("table spans already
      exists"). The schema is now built in a temporary file put in place whole; a half-built file
      that holds nothing (no run, model or experiment of vipcast's) is built again.
    - MLflow keeps absolute artifact paths: a workspace moved or copied to another folder failed
      ("No such artifact"), or wrote its models into the original. They are moved to this folder.
    """
    import sqlite3

    database = workspace_database(workspace)
    if database is None:
        return
    try:
        if not schema_complete(database) and not (database.exists() and holds_records(database)):
            create_tracking_database(database, workspace.artifact_location, replace=database.exists())
        relocate_artifacts(database, workspace)
    except sqlite3.DatabaseError as error:  # "database disk image is malformed", naming no file
        from flows.store import SQLITE_DAMAGED_FILE

        if any(words in str(error) for words in SQLITE_DAMAGED_FILE):
            raise DamagedRegistry(f"the model registry {database} is damaged ({error})") from error
        raise


#: Seconds a read of the registry file waits for another process's lock (SQLite's default).
REGISTRY_LOCK_WAIT = 5.0


def _read_only(database: Path):
    import sqlite3

    return sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=REGISTRY_LOCK_WAIT)


def schema_complete(database: Path) -> bool:
    """Whether `database` holds MLflow's schema at this MLflow version's last migration."""
    import sqlite3

    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    if not database.exists():
        return False
    try:
        with contextlib.closing(_read_only(database)) as connection:
            version = connection.execute("select version_num from alembic_version").fetchone()
    except sqlite3.OperationalError as error:
        if missing_table(database, error):
            return False
        raise
    head = ScriptDirectory.from_config(_get_alembic_config(f"sqlite:///{database}")).get_current_head()
    return version is not None and version[0] == head


def holds_records(database: Path) -> bool:
    """Whether an MLflow database holds a run, a registered model or an experiment besides Default."""
    import sqlite3

    queries = ("select 1 from runs limit 1", "select 1 from registered_models limit 1",
               "select 1 from experiments where experiment_id != 0 limit 1")
    with contextlib.closing(_read_only(database)) as connection:
        for query in queries:
            try:
                if connection.execute(query).fetchone() is not None:
                    return True
            except sqlite3.OperationalError as error:
                if missing_table(database, error):  # a table the half-built schema lacks holds nothing
                    continue
                raise
    return False


def create_tracking_database(database: Path, artifact_location: str, *, replace: bool) -> None:
    """Build MLflow's schema in a temporary file and put it in place whole (`replace`: over a half-built
    file; else only if no other process put one there first)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    temporary = database.with_name(f".{database.name}.init-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        SqlAlchemyStore(f"sqlite:///{temporary}", artifact_location).engine.dispose()
        if replace:
            os.replace(temporary, database)
        else:
            try:
                os.link(temporary, database)  # fails if another first run got there first: use theirs
            except FileExistsError:
                pass
    finally:
        temporary.unlink(missing_ok=True)


# Columns of MLflow's SQLite schema that hold absolute artifact URIs.
ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"), ("model_versions", "storage_location"))


def relocate_artifacts(database: Path, workspace: Workspace) -> None:
    """Point the database's artifact URIs at this workspace's `mlartifacts/` when they name the same
    folder of another workspace path (the workspace was moved or copied with its artifacts)."""
    import sqlite3

    here = workspace.artifact_location + "/"
    if not database.exists() or not (workspace.root / "mlartifacts").is_dir():
        return
    try:
        with contextlib.closing(_read_only(database)) as connection:
            locations = [row[0] for row in connection.execute(
                "select artifact_location from experiments where experiment_id != 0 and artifact_location like 'file://%/mlartifacts/%'")]
    except sqlite3.Error:
        return
    before = {location[:location.rindex("/mlartifacts/") + len("/mlartifacts/")] for location in locations}
    before.discard(here)
    if len(before) != 1:  # this workspace's own paths, or several roots (not one workspace's move)
        return
    (old,) = before
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        for table, column in ARTIFACT_COLUMNS:
            connection.execute(f"update {table} set {column} = ? || substr({column}, ?) where substr({column}, 1, ?) = ?",
                               (here, len(old) + 1, len(old), old))
    from urllib.parse import unquote

    from flows.progress import note

    note(f"note: this workspace was moved or copied from {unquote(old.removeprefix('file://').removesuffix('/mlartifacts/'))}: "
         f"its MLflow records now point at {workspace.root / 'mlartifacts'}")


#: Tracking URIs of a server (MLflow's, Databricks') that stores artifacts itself.
TRACKING_SERVER_SCHEMES = ("http", "https", "databricks")


def _use_experiment(mlflow, workspace: Workspace, dataset: str) -> str:
    name = experiment_name(dataset)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        # A tracking server keeps the artifacts where it is configured to: a location in this workspace kept every
        # model on the machine that trained it, and another machine's score could not load the champion.
        served = workspace.tracking_uri.split("://", 1)[0].lower() in TRACKING_SERVER_SCHEMES
        location = None if served else f"{workspace.artifact_location}/{dataset_slug(dataset)}"
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _pyfunc_class():
    """The pyfunc wrapper, defined lazily so importing this module does not import MLflow."""
    import mlflow.pyfunc

    class CustomerValuePyfunc(mlflow.pyfunc.PythonModel):
        """The whole scoring model (BTYD + Gamma-Gamma + LightGBM + blend + feature spec) as one pyfunc.

        Input: a customer feature table as `features.build.customer_features` writes it (one row per
        customer, `customer_id` and the feature columns). Output: `customer_id` and the predictions.
        """

        def __init__(self, model) -> None:
            self.model = model

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            predictions = self.model.predict(model_input)
            return predictions.reset_index()[["customer_id", *PREDICTION_COLUMNS]]

    return CustomerValuePyfunc


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    name: str
    version: str


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str


def log_training(
    workspace: Workspace,
    dataset: str,
    model,
    *,
    params: dict[str, Any],
    backtest: dict[str, Any] | None,
    data_info: dict[str, Any],
    figures: dict[str, Any],
    input_example: pd.DataFrame | None = None,
    config: dict[str, Any] | None = None,
) -> LoggedModel:
    """Log one training run and register its scoring model; return the run id and model version.

    `params` (the model's settings, defaults included, the source, dates) and `config` (the whole
    config, also kept as the artifact config.json) become run parameters, nested keys joined by
    dots; the code version (vipcast's version, and the git commit when run from a checkout) and the
    data digest become tags; the model's requirements are pinned to the versions installed."""
    mlflow = _mlflow(workspace)
    _use_experiment(mlflow, workspace, dataset)
    name = registered_model_name(dataset)
    with mlflow.start_run(run_name=f"train {data_info.get('as_of', '')}") as run:
        mlflow.log_params(flat_params(params))
        if config is not None:
            config = shareable_config(config)
            mlflow.log_params(flat_params(config, "config."))
            mlflow.log_dict(config, "config.json")  # the whole config, to train again with `--config`
        from flows.ingest import hide_password  # the tag held the --data URL's password (the params did not)

        mlflow.set_tags({"vipcast.dataset": hide_password(dataset), "vipcast.data_digest": data_info.get("digest", ""), **code_version()})
        mlflow.log_metrics({k: float(v) for k, v in data_info.items() if isinstance(v, (int, float))})
        if backtest is not None:
            mlflow.log_dict(backtest, "backtest.json")
            for candidate, metrics in backtest["models"].items():
                mlflow.log_metrics({f"{candidate}.{metric}": float(value) for metric, value in metrics.items() if value is not None})
            shipped = backtest["models"][backtest["champion"]]
            mlflow.log_metrics({f"backtest.{metric}": float(value) for metric, value in shipped.items() if value is not None})
            for baseline, metrics in backtest.get("baselines", {}).items():
                mlflow.log_metrics({f"baseline.{baseline}.{metric}": float(value) for metric, value in metrics.items() if value is not None})
            mlflow.set_tag("vipcast.backtest_champion", backtest["champion"])
        for figure_name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{figure_name}.png")
        with registry_remarks_held():
            info = mlflow.pyfunc.log_model(
                name="scoring_model",
                python_model=_pyfunc_class()(model),
                registered_model_name=name,
                input_example=input_example,
                pip_requirements=pinned_requirements(),
            )
        return LoggedModel(run.info.run_id, name, str(info.registered_model_version))


#: What the pickled scoring model needs to load and predict (pinned to the versions installed).
MODEL_REQUIREMENTS = ("vipcast", "lifetimes", "lightgbm", "pandas", "numpy", "scipy", "scikit-learn")


def pinned_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in MODEL_REQUIREMENTS:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def flat_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow parameters: keys joined by dots, lists and nulls as JSON."""
    import json

    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= flat_params(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            flat[PARAM_NAME_UNSAFE.sub("_", f"{prefix}{key}")] = value
        else:
            flat[PARAM_NAME_UNSAFE.sub("_", f"{prefix}{key}")] = json.dumps(list(value) if isinstance(value, tuple) else value, default=str)
    return flat


# spark_conf values under keys like these are credentials (fs.s3a.secret.key, ...password, ...token).
SECRET_WORDS = r"secret|pass|pwd|token|credential|private|auth|key"
SECRET_KEY_PATTERN = re.compile(SECRET_WORDS, re.IGNORECASE)
# ... and `name=value` settings inside a value: `-Djavax.net.ssl.trustStorePassword=...` in
# spark.driver.extraJavaOptions, `sslpassword=...` in a URL's query.
SECRET_SETTING = re.compile(rf"(?<![\w.-])([\w.-]*(?:{SECRET_WORDS})[\w.-]*=)(\"[^\"]*\"|'[^']*'|[^\s&;]+)", re.IGNORECASE)
# MLflow parameter names allow these characters only (a spark_conf key may hold others).
PARAM_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /:]")


def shareable_config(values: Any, key: str = "") -> Any:
    """A config dump without credentials: URL passwords and secret-looking spark_conf values masked
    (MLflow parameters and artifacts are readable by everyone with the tracking server)."""
    from flows.ingest import hide_password

    if isinstance(values, dict):
        return {name: shareable_config(value, name) for name, value in values.items()}
    if isinstance(values, list):
        return [shareable_config(value, key) for value in values]
    if isinstance(values, str):
        return "***" if SECRET_KEY_PATTERN.search(key) else SECRET_SETTING.sub(r"\1***", hide_password(values))
    return values


def code_version() -> dict[str, str]:
    """Tags naming the code that trained: vipcast's version, and the git commit of a checkout
    (``-dirty`` when it has uncommitted changes)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        tags = {"vipcast.version": version("vipcast")}
    except PackageNotFoundError:
        tags = {"vipcast.version": "unknown"}
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        try:
            def git(*args: str) -> str:
                return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()

            commit = git("rev-parse", "HEAD")
            dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
            tags["vipcast.git_commit"] = commit + ("-dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return tags


def champion_version(workspace: Workspace, dataset: str):
    """The registry's champion model version for a dataset, or None."""
    mlflow = _mlflow(workspace)
    client = mlflow.MlflowClient()
    try:
        return client.get_model_version_by_alias(registered_model_name(dataset), CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException as error:
        # No such model, or no champion alias: None. Any other failure (a locked registry) read as "no champion
        # yet", and train promoted whatever it fitted.
        if error.error_code == "RESOURCE_DOES_NOT_EXIST" or (
                error.error_code == "INVALID_PARAMETER_VALUE" and "alias" in str(error) and "not found" in str(error)):
            return None
        raise


def champion_datasets(workspace: Workspace) -> list[str]:
    """The dataset names (slugs) that have a champion in the workspace's registry, sorted."""
    mlflow = _mlflow(workspace)
    client = mlflow.MlflowClient()
    names = []
    for model in client.search_registered_models(filter_string="name LIKE 'vipcast-%'"):
        if CHAMPION_ALIAS in (getattr(model, "aliases", None) or {}):
            names.append(model.name.removeprefix("vipcast-"))
    return sorted(names)


def champion_training_data(workspace: Workspace, dataset: str) -> dict[str, Any]:
    """What the champion was trained on, from its MLflow run: the data digest and rows_used (empty if unknown)."""
    version = champion_version(workspace, dataset)
    if version is None or not version.run_id:
        return {}
    run = _mlflow(workspace).MlflowClient().get_run(version.run_id)
    found = {"digest": run.data.tags.get("vipcast.data_digest")}
    if "rows_used" in run.data.metrics:
        found["rows_used"] = int(run.data.metrics["rows_used"])
    return found


#: The backtest metrics a new model must be no worse on (the champion's settings refitted on the
#: same split): ranking, calibration by decile, the planning total and the churn ranking. Gini alone
#: let a heavily penalised model (better gini, decile_mape 0.41 vs 0.20) replace the champion.
PROMOTION_METRICS = {"normalized_gini": "higher", "decile_mape": "lower", "total_error": "closer to 0", "churn_auc": "higher"}
PROMOTION_TOLERANCE = 1e-9


def decide_promotion(new_metrics: dict[str, float], champion_metrics: dict[str, float] | None) -> Promotion:
    """The promotion rule: no champion yet, or no worse on every PROMOTION_METRICS metric on the same split."""
    if champion_metrics is None:
        return Promotion(True, "no champion yet")
    worse, compared = [], []
    for metric, better in PROMOTION_METRICS.items():
        new, old = new_metrics.get(metric), champion_metrics.get(metric)
        if new is None or old is None:
            continue
        if better == "closer to 0":
            metric, new, old = f"|{metric}|", abs(new), abs(old)
        compared.append(f"{metric} {new:.4f} vs {old:.4f}")
        if (new > old + PROMOTION_TOLERANCE) if better != "higher" else (new < old - PROMOTION_TOLERANCE):
            worse.append(metric)
    figures = f"on the same backtest split ({', '.join(compared)}; new vs champion)"
    if worse:
        return Promotion(False, f"worse than the champion on {', '.join(worse)} {figures}: champion kept")
    return Promotion(True, f"no worse than the champion {figures}")


def set_champion(workspace: Workspace, logged: LoggedModel, promotion: Promotion) -> None:
    """Record the decision on the model version, and move the alias if promoted."""
    mlflow = _mlflow(workspace)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(logged.name, logged.version, "vipcast.promotion", promotion.reason)
    if promotion.promoted:
        client.set_registered_model_alias(logged.name, CHAMPION_ALIAS, logged.version)


def load_champion(workspace: Workspace, dataset: str):
    """The champion scoring model object and its version label; LookupError when none is registered.

    A weekly scoring run pays for importing MLflow and reading the registry (seconds) only when the
    registry changed: with a local SQLite registry the champion is kept in the workspace cache,
    stamped with the registry file's size and modification time, and used while the stamp holds.
    Any registry write (a new version, a moved alias) changes the stamp and reloads from MLflow.
    """
    stamp = registry_stamp(workspace)
    cache = workspace.root / "cache" / f"{registered_model_name(dataset)}.champion.pkl"
    cached = _read_champion_cache(cache, stamp)
    if cached is not None:
        return check_model_format(*cached)
    database = workspace_database(workspace)
    if database is not None and not database.exists():
        # No registry, no champion: opening MLflow built one (a 1 MB mlflow.db) in a mistyped --workdir.
        version, mlflow = None, None
    else:
        mlflow = _mlflow(workspace)
        version = champion_version(workspace, dataset)
    if version is None:
        others = champion_datasets(workspace) if mlflow is not None else []
        known = ""
        if others:
            names = ", ".join(f"'{name}'" for name in others)
            known = (f" (it has champions for {names}: a dataset is named by its file stem, folder or table, so a file named "
                     "by its date is a new dataset each week, with no tier history; keep one name, e.g. in dated folders)")
        raise NoChampion(
            f"no champion model for dataset '{dataset_slug(dataset)}' in {workspace.tracking_uri}{known}: "
            f"run `vipcast train --data {shlex.quote(dataset)}` first"
        )
    import yaml

    label = f"{version.name}/{version.version}"
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{version.name}@{CHAMPION_ALIAS}")
        loaded = pyfunc.unwrap_python_model().model, label
    except (mlflow.exceptions.MlflowException, yaml.YAMLError, *DAMAGED_MODEL_ERRORS) as damaged:
        raise DamagedChampion(label, dataset, damaged) from damaged
    if stamp is not None and stamp == registry_stamp(workspace):
        _write_champion_cache(cache, stamp, loaded)
    return check_model_format(*loaded)


def check_model_format(model, version: str):
    """(model, version) if this code can score with the model; else a LookupError saying to retrain."""
    from models.pipeline import MODEL_FORMAT, CustomerValueModel

    found = getattr(model, "model_format_", 1)
    if isinstance(model, CustomerValueModel) and found != MODEL_FORMAT:
        raise OutdatedChampion(version, found, MODEL_FORMAT)
    return model, version


def registry_stamp(workspace: Workspace) -> str | None:
    """Size and modification time of a local SQLite registry (and its journal), or None for other stores."""
    uri = workspace.tracking_uri
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    if not database.exists():
        return None
    # Bytes 24-27 of a SQLite file count its committed write transactions (rollback-journal mode),
    # so a change is seen even within one tick of the file clock; size and time cover WAL mode.
    with open(database, "rb") as handle:
        parts = [handle.read(100)[24:28].hex()]
    for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-journal")):
        if path.exists():
            info = path.stat()
            parts.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return "|".join(parts) or None


def _read_champion_cache(cache: Path, stamp: str | None):
    """The cached (model, version label) if its stamp is the registry's current one, else None."""
    import pickle

    if stamp is None or not cache.exists():
        return None
    try:
        with open(cache, "rb") as handle:
            entry = pickle.load(handle)
    except Exception:  # a cache from other code or a torn file: the registry is the truth, reload
        return None
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    return entry["model"], entry["version"]


def _write_champion_cache(cache: Path, stamp: str, loaded) -> None:
    import pickle

    entry = {"stamp": stamp, "model": loaded[0], "version": loaded[1]}
    write_atomic(cache, lambda tmp: tmp.write_bytes(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)))


def champion_model_uri(workspace: Workspace, dataset: str) -> str:
    """The champion's registry URI, with MLflow pointed at the workspace's registry to resolve it
    (a weekly run that took the champion from the cache had not: spark_udf looked for it in
    MLflow's default store, ./mlflow.db, and failed)."""
    _mlflow(workspace)
    return f"models:/{registered_model_name(dataset)}@{CHAMPION_ALIAS}"


def spark_udf(session, model_uri: str, result_type: str, env_manager: str = "local"):
    """A registered model as a Spark UDF (the tracking URI must already point at its registry)."""
    import mlflow.pyfunc

    quiet_routine_mlflow_logs()
    return mlflow.pyfunc.spark_udf(session, model_uri, result_type=result_type, env_manager=env_manager)
