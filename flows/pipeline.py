"""The steps vipcast runs, as plain functions over a Context: the CLI and the Prefect flows call these.

Only this layer touches files, config, the outputs store and MLflow; features/, models/ and
segments/ get plain values.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any

import pandas as pd

from configs import VipcastConfig, load_config
from flows.progress import LocalSteps
from flows.workspace import Workspace, write_atomic

if TYPE_CHECKING:
    from flows.store import RunInfo


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
        reader: bool = False,
    ) -> "Context":
        """`reader`: a command that only reads the outputs store (`lists`, `app`); a workspace folder
        that does not exist is an error unless the config names an outputs store URL."""
        overrides: dict[str, Any] = {}
        if horizon_days is not None:
            overrides["model"] = {"horizon_days": horizon_days}
        if engine is not None:
            overrides["engine"] = {"name": engine}
        loaded = load_config(config, overrides)
        return cls(Workspace.resolve(workdir, create=not reader or bool(loaded.outputs.store_url)), loaded)


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str)))


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def generate_dataset(customers: int, seed: int, out: Path) -> tuple[Path, Path, int]:
    """Write synthetic transactions and their ground truth (FILE.truth.parquet)."""
    from features.synthetic import generate_transactions

    transactions, truth = generate_transactions(customers, seed)
    truth_path = out.with_name(out.stem + ".truth.parquet")
    # Ground truth first: a truth file that cannot be written left the transactions without theirs.
    write_parquet(truth_path, truth)
    write_parquet(out, transactions)
    return out, truth_path, len(transactions)


def ingest(ctx: Context, data: str | None, as_of: date | None = None):
    """Load and validate the transactions of `data` (default: the config's dataset)."""
    from flows.engine import connect_config
    from flows.ingest import load_transactions

    source = ctx.config.source
    engine = ctx.config.engine
    return load_transactions(
        data or ctx.config.dataset,
        columns=source.columns,
        workdir=ctx.workspace.root,
        as_of=as_of or ctx.config.as_of,
        date_format=source.date_format,
        table=source.table,
        max_invalid_share=source.max_invalid_share,
        connection=None if engine.name == "duckdb" else connect_config(engine),
    )


def build_features(ingested, cutoff: date, time_unit: str, windows_days) -> pd.DataFrame:
    """Per-customer features as of `cutoff` with a feature spec (the config's, or a model's), as pandas."""
    from features.build import customer_features_frame

    return customer_features_frame(ingested.transactions, cutoff, time_unit=time_unit, windows_days=tuple(windows_days))


def scoring_windows(model_windows_days) -> tuple[int, ...]:
    """The model's feature windows plus any the segments need that it lacks (e.g. 90 days for spend momentum)."""
    from segments.inputs import REQUIRED_WINDOWS_DAYS

    windows = tuple(model_windows_days)
    return windows + tuple(days for days in REQUIRED_WINDOWS_DAYS if days not in windows)


#: How many refund-only customers the reconciliation report and its warning name.
REFUND_ONLY_EXAMPLES = 5


def account_for_customers(report: dict[str, Any], n_featured: int, transactions=None) -> dict[str, Any]:
    """Add to the reconciliation report the customers that have rows but no purchase day (refunds only),
    and, given the transactions, the first few of their ids (a count alone left a user who looked for
    one in the outputs with "unknown customer")."""
    accounted = dict(report)
    accounted["customers_featured"] = n_featured
    accounted["customers_without_purchase_day"] = report["customers_used"] - n_featured
    if accounted["customers_without_purchase_day"] > 0 and transactions is not None:
        # No purchase day = no row of zero or more (a day is a purchase day when its largest amount is >= 0).
        # Grouped over the rows of customers with a refund only (a semi-join), not every customer's.
        refunding = transactions.filter(transactions.amount < 0).select("customer_id").distinct()
        rows = transactions.semi_join(refunding, "customer_id")
        largest = rows.group_by("customer_id").aggregate(largest=rows.amount.max())
        examples = largest.filter(largest.largest < 0).order_by("customer_id").limit(REFUND_ONLY_EXAMPLES)
        accounted["customers_without_purchase_day_examples"] = [str(value) for value in examples.customer_id.to_pandas()]
    return accounted


def quarantine_path(target_dir: Path, prefix: str = "") -> Path:
    """Where `write_side_files` puts the rows set aside."""
    return target_dir / f"{prefix}quarantine.parquet"


def write_side_files(target_dir: Path, report: dict[str, Any], quarantine: pd.DataFrame, prefix: str = "") -> Path:
    """The reconciliation report and (when rows were set aside) the quarantine, next to the outputs they explain."""
    if len(quarantine):
        write_parquet(quarantine_path(target_dir, prefix), quarantine)
    else:  # a re-scored date (corrected data) must not keep the rows an earlier run set aside
        quarantine_path(target_dir, prefix).unlink(missing_ok=True)
    return write_json(target_dir / f"{prefix}reconciliation.json", report)


def check_out_not_source(source, out: Path | None, written: Path | None = None) -> None:
    """A ValueError when a file `--out` writes (`written`, default `out` itself) would replace a file
    of `source` or land where it reads (a folder source reads every file under it, so the next run
    would read the outputs too)."""
    from flows.ingest import reads_path

    if out is not None and reads_path(source, written or out):
        raise ValueError(f"--out {out} would write over the source {source.label} (or into the folder it reads): choose another path")


def write_features(ctx: Context, data: str | None, as_of: date | None, out: Path) -> str:
    """`vipcast features`: features for every customer as of a date, written to Parquet."""
    from flows.ingest import parse_source

    check_out_not_source(parse_source(data or ctx.config.dataset, ctx.config.source.table), out)
    step = LocalSteps(3)
    ingested = step("loading and checking transactions", ingest, ctx, data, as_of)
    spec = ctx.config.features
    frame = step(f"building features as of {ingested.as_of}", build_features, ingested, ingested.as_of, spec.time_unit, spec.windows_days)
    report = account_for_customers(ingested.report, len(frame), ingested.transactions)
    # The BTYD columns' unit: a file in weeks could not be told from one in days.
    report["time_unit"] = spec.time_unit
    # The report keeps the warnings printed (the refunds-only and stale-extract ones were only on stderr).
    report["warnings"] = data_warnings(report, ingested.as_of)
    step(f"writing {out}", write_parquet, out, frame)
    report_path = write_side_files(out.parent, report, ingested.quarantine, prefix=out.stem + ".")
    set_aside = sum(report["rows_set_aside"].values())
    return (
        f"{len(frame):,} customers x {frame.shape[1] - 1} features as of {ingested.as_of} (recency and T in "
        f"{spec.time_unit}) -> {out}\n"
        f"rows read {report['rows_read']:,}, used {report['rows_used']:,}, set aside {set_aside:,}"
        f" (report: {report_path}" + (f"; rows set aside: {quarantine_path(out.parent, out.stem + '.')}" if set_aside else "") + ")"
        + "".join(f"\n{line}" for line in warning_lines(report["warnings"]))
    )


# ----------------------------------------------------------------------------- models


#: The scoring model's settings (keyword arguments of CustomerValueModel) and the config key of each.
SETTING_KEYS = {
    "horizon_days": "model.horizon_days", "btyd": "model.btyd", "penalizer": "model.penalizer",
    "gamma_gamma_penalizer": "model.gamma_gamma_penalizer", "discount_rate_annual": "model.discount_rate_annual",
    "label_window_days": "model.label_window_days", "time_unit": "features.time_unit",
    "windows_days": "features.windows_days", "sample_customers": "model.lightgbm.sample_customers",
    "n_estimators": "model.lightgbm.n_estimators", "learning_rate": "model.lightgbm.learning_rate",
    "num_leaves": "model.lightgbm.num_leaves", "min_child_samples": "model.lightgbm.min_child_samples",
    "random_state": "model.lightgbm.seed",
}
#: LightGBM settings left unset in the config are not passed, so the model's own defaults apply.
OPTIONAL_SETTINGS = frozenset({"n_estimators", "learning_rate", "num_leaves", "min_child_samples", "random_state"})


def model_settings(config: VipcastConfig) -> dict[str, Any]:
    """The scoring model's settings from the config (keyword arguments of CustomerValueModel)."""
    settings = {}
    for key, dotted in SETTING_KEYS.items():
        value = config
        for name in dotted.split("."):
            value = getattr(value, name)
        if value is None and key in OPTIONAL_SETTINGS:
            continue
        settings[key] = tuple(value) if isinstance(value, list) else value
    return settings


def settings_of(model) -> dict[str, Any]:
    """The constructor settings of a fitted model (to refit the champion's recipe on a new split)."""
    import inspect

    # `champion` is the backtest's choice for that fit, not part of the recipe.
    names = [name for name in inspect.signature(type(model).__init__).parameters if name not in ("self", "champion")]
    # A setting newer than the pickled model is absent: its default applies when the recipe is refitted.
    return {name: getattr(model, name) for name in names if hasattr(model, name)}


def backtest_cutoff(as_of: date, horizon_days: int) -> date:
    """The backtest cutoff of a training run: one horizon before the as-of date."""
    from datetime import timedelta

    return as_of - timedelta(days=horizon_days)


def report_day(report: dict[str, Any], key: str) -> date:
    """The calendar day of a timestamp in the reconciliation report (``first_order``, ``last_order``)."""
    from flows.ingest import report_day as day

    return day(report, key)


def check_backtest_room(ingested, cutoff: date, horizon_days: int) -> None:
    """A clear error when the training run's backtest cutoff (as-of minus one horizon) has no history before it."""
    from models.backtest import horizon_slack_days
    from models.btyd import InsufficientDataError

    first_order = report_day(ingested.report, "first_order")
    last_order = report_day(ingested.report, "last_order")
    if (ingested.as_of - last_order).days > horizon_slack_days(horizon_days):
        # The backtest's horizon is (as-of - H, as-of]: a later as-of than the data reach is unscored time.
        raise InsufficientDataError(
            f"--as-of {ingested.as_of} is {(ingested.as_of - last_order).days} days after the data's last order "
            f"({last_order}): training backtests on the {horizon_days} days before the as-of date, which the data "
            f"do not cover; use an --as-of on or before {last_order + timedelta(days=horizon_slack_days(horizon_days))}, "
            "or leave --as-of out (the last order's date)"
        )
    if cutoff <= first_order:
        history = (ingested.as_of - first_order).days
        raise InsufficientDataError(
            f"training backtests one horizon before the as-of date ({ingested.as_of} - {horizon_days} days = {cutoff}), "
            f"but the first order is on {first_order}: the data holds {history} days of history; "
            f"{horizon_advice(history, later_as_of=bool(ingested.report.get('rows_set_aside', {}).get('after_as_of')))}"
        )


def horizon_advice(history: int, later_as_of: bool = False) -> str:
    """The longest horizon a history of `history` days leaves room for: the backtest's models need, before
    its cutoff (as-of minus the horizon), a label window of at least MIN_LABEL_WINDOW_DAYS with history
    before it; the default window is half that history. ("Use a shorter --horizon-days" led a user
    through three refusals on 59 days of data.) `later_as_of`: the data hold orders after the as-of date
    (rows set aside as after_as_of), so a later one is possible."""
    from models.pipeline import MIN_LABEL_WINDOW_DAYS

    # Before the backtest's cutoff: a label window of at least MIN_LABEL_WINDOW_DAYS, and as many days
    # before it to learn from (the default window is half that history). A label window set to its
    # minimum with fewer days before it left a day or two of history: nobody could be a repeat buyer.
    needed = 2 * MIN_LABEL_WINDOW_DAYS
    longest = history - needed
    if longest >= SHORTEST_HORIZON_DAYS:  # a later --as-of only when one was given before the last order
        return (f"use {'a later --as-of or ' if later_as_of else ''}a --horizon-days of at most {longest} (the backtest "
                f"needs {needed} days of history before its cutoff)")
    # A later as-of or a shorter horizon cannot help (every order on one day said to use them).
    return (f"that is too short for any horizon (at least {SHORTEST_HORIZON_DAYS} days, with {needed} days of history "
            f"before it: {SHORTEST_HORIZON_DAYS + needed} days in all): load a longer history")


# The shortest horizon the config accepts (model.horizon_days >= 7).
SHORTEST_HORIZON_DAYS = 7


def fit_scoring_model(ingested, as_of: date, settings: dict[str, Any]):
    """Fit the whole scoring model on everything up to the as-of date."""
    from models.pipeline import CustomerValueModel

    return CustomerValueModel(**settings).fit(ingested.transactions, as_of)


def backtest_models(ingested, cutoff: date, settings: dict[str, Any]):
    """Every candidate fitted on data up to `cutoff`, scored on (cutoff, cutoff + horizon]."""
    from models.backtest import backtest

    settings = dict(settings)
    horizon_days = settings.pop("horizon_days")
    return backtest(ingested.transactions, cutoff, horizon_days, **settings)


def backtest_figures(result) -> dict[str, Any]:
    """The diagnostic plots of a backtest, as matplotlib figures for MLflow."""
    from flows.tracking import quiet_routine_mlflow_logs

    quiet_routine_mlflow_logs()  # matplotlib's remarks about an unwritable HOME among them
    import matplotlib

    if "inline" not in matplotlib.get_backend().lower():  # a notebook keeps its inline figures
        matplotlib.use("Agg")
    from models import plots

    purchase_model = result.model.purchase_model_
    axes = {
        "calibration_purchases": plots.plot_calibration_purchases(result),
        "deciles": plots.plot_deciles(result),
        "gain": plots.plot_gain(result),
        "feature_importance": plots.plot_feature_importance(result.model),
        "p_alive_matrix": plots.plot_probability_alive_matrix(purchase_model, unit=result.model.time_unit),
        "frequency_recency_matrix": plots.plot_frequency_recency_matrix(purchase_model, unit=result.model.time_unit),
    }
    return {name: ax.figure for name, ax in axes.items()}


def summary_table(result: dict[str, Any]) -> str:
    """A plain-text table of a backtest's metrics, one row per candidate, champion marked."""
    from models.metrics import METRIC_NAMES as metrics

    header = f"{'model':<14}" + "".join(f"{m:>20}" for m in metrics)
    lines = [
        f"backtest: cutoff {result['cutoff']}, horizon {result['horizon_days']} days, {result['n_customers']:,} customers",
        header,
    ]
    rows = [(name + (" *" if name == result["champion"] else ""), values) for name, values in result["models"].items()]
    for label, values in rows + list(result.get("baselines", {}).items()):
        lines.append(f"{label:<14}" + "".join(f"{values.get(m, float('nan')):>20.4f}" for m in metrics))
    lines.append("* champion (the rule: docs/models.md)" + (f"; {', '.join(result['baselines'])}: naive baseline, never ships" if result.get("baselines") else ""))
    return "\n".join(lines)


def run_backtest(ctx: Context, data: str | None, cutoff: date | None):
    """`vipcast backtest`: compare the candidates at a cutoff (a models.backtest.BacktestResult)."""
    step = LocalSteps(2)
    ingested = step("loading and checking transactions", ingest, ctx, data)
    settings = model_settings(ctx.config)
    cutoff = cutoff or backtest_cutoff(ingested.as_of, settings["horizon_days"])
    if cutoff >= ingested.as_of:
        raise ValueError(f"cutoff {cutoff} must be before the last transaction date {ingested.as_of}")
    return step(f"fitting and scoring every candidate at {cutoff}", backtest_models, ingested, cutoff, settings)


#: The purchase models of model.btyd by name, for the summaries.
BTYD_NAMES = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto": "Pareto/NBD"}


@dataclass(frozen=True)
class TrainSummary:
    as_of: date
    model_version: str
    shipped: str
    promotion: str
    promoted: bool
    backtest: dict[str, Any] | None
    warnings: tuple[str, ...] = ()
    btyd: str = "bgnbd"

    def __str__(self) -> str:
        lines = [f"trained {self.model_version} as of {self.as_of}; ships '{self.shipped}'{self.btyd_note()}",
                 f"promotion: {self.verdict()}"]
        if self.backtest is not None:
            lines.append(summary_table(self.backtest))
        return "\n".join(lines + warning_lines(self.warnings))

    def btyd_note(self) -> str:
        """The purchase model inside the textbook candidate when it is not BG/NBD: `bgnbd_gg` names that
        candidate whatever model.btyd sets, and a Pareto/NBD champion read as BG/NBD everywhere."""
        if self.btyd == "bgnbd" or self.shipped not in ("bgnbd_gg", "blend"):
            return ""
        return f" (its BTYD part is {BTYD_NAMES.get(self.btyd, self.btyd)} + Gamma-Gamma: model.btyd {self.btyd})"

    def verdict(self) -> str:
        """The promotion in one phrase that starts with its outcome ("same settings and the same data ..."
        read like nothing was done, for a model that had become champion)."""
        if self.promoted:
            return f"now the champion ({self.promotion})"
        return self.promotion if self.promotion.startswith("not promoted") else f"not promoted: {self.promotion}"

    def markdown(self) -> str:
        table = summary_table(self.backtest) if self.backtest else "no backtest"
        return (
            f"# vipcast training, as of {self.as_of}\n\n- model: `{self.model_version}` (ships `{self.shipped}`)\n"
            f"- promotion: {self.verdict()}\n\n```\n{table}\n```\n"
        )


def compare_with_champion(ctx: Context, dataset: str, ingested, cutoff: date, settings: dict[str, Any], backtest: dict[str, Any]):
    """The promotion decision: the new model's backtest vs the champion's recipe on the same split."""
    from flows import tracking

    if tracking.champion_version(ctx.workspace, dataset) is None:
        return tracking.decide_promotion(backtest["models"][backtest["champion"]], None)
    from models.pipeline import CustomerValueModel

    try:
        champion, _ = tracking.load_champion(ctx.workspace, dataset)
    except tracking.OutdatedChampion as outdated:
        # This code cannot score with it, so it cannot stay champion whatever its backtest says.
        return tracking.Promotion(
            True, f"replaces an outdated champion ({outdated.version}, model format {outdated.found}; this version reads {outdated.expected})"
        )
    except tracking.DamagedChampion as damaged:
        # Nothing can score with it (score refuses it and says to train): train must be the way out.
        return tracking.Promotion(
            True, f"replaces the champion {damaged.version}, whose model files cannot be loaded ({type(damaged.cause).__name__})"
        )
    champion_cutoff = fitted_through(champion)
    # The new data's last order day, as the champion's (`fitted_through`): `train --as-of` a few days past the
    # last order read as newer data, and a partial extract of the same dates was promoted.
    data_end = ingested.as_of
    if ingested.report.get("last_order") is not None:
        from flows.ingest import report_day

        data_end = min(data_end, report_day(ingested.report, "last_order"))
    if champion_cutoff is not None and champion_cutoff > data_end:
        # Data that end earlier cannot replace a model of later data, whatever the backtests say.
        return tracking.Promotion(
            False, f"not promoted: the champion was fitted on data up to {champion_cutoff}, after this model's {data_end}"
        )
    champion_settings = settings_of(champion)
    if champion_settings["horizon_days"] != settings["horizon_days"]:
        # The champion cannot score the new horizon (score refuses it), and its backtest measured
        # another target: comparing the two kept the old model and sent the user round in circles.
        return tracking.Promotion(
            True, f"replaces a champion trained for a {champion_settings['horizon_days']}-day horizon: "
            f"this model's horizon is {settings['horizon_days']} days"
        )
    if champion_settings == settings_of(CustomerValueModel(**settings)):
        if champion_cutoff is None or champion_cutoff < data_end:
            return tracking.Promotion(True, f"same settings as the champion, refitted on newer data (up to {data_end})")
        return same_date_refit(ctx, dataset, ingested, data_end)
    from models.btyd import InsufficientDataError, ModelFitError

    try:
        result = backtest_models(ingested, cutoff, champion_settings).to_dict()
    except (InsufficientDataError, ModelFitError) as refused:
        # The champion's recipe (e.g. its label window) does not fit this data: train failed here and named a
        # setting the user had not set, and no model could be trained on the data again.
        return tracking.Promotion(
            False, f"not promoted: the champion's settings cannot be backtested on this data, so the two cannot be "
            f"compared ({refused}); to use this version anyway, move the champion alias to it"
        )
    return tracking.decide_promotion(backtest["models"][backtest["champion"]], result["models"][result["champion"]])


def same_date_refit(ctx: Context, dataset: str, ingested, day: date):
    """The champion's settings refitted on data up to the champion's own date: the backtests would be
    the same recipe on the same split, so the data decide. The same data, or a corrected extract of at
    least as many rows, replace it; fewer rows look like a partial reload and keep the champion."""
    from flows import tracking
    from flows.ingest import data_digest

    trained = tracking.champion_training_data(ctx.workspace, dataset)
    rows, before = ingested.report["rows_used"], trained.get("rows_used")
    if trained.get("digest") == data_digest(ingested.connection):
        return tracking.Promotion(True, f"same settings and the same data up to {day} as the champion")
    if before is not None and rows < before:
        return tracking.Promotion(
            False,
            f"not promoted: same settings and data up to the same date {day} as the champion, but {rows:,} rows "
            f"instead of the {before:,} it was trained on (a partial extract?); to use this version anyway, move the "
            "champion alias to it",
        )
    counted = f"{rows:,} rows, the champion's {before:,}" if before is not None else f"{rows:,} rows"
    return tracking.Promotion(True, f"same settings as the champion, refitted on changed data up to the same date {day} ({counted})")


def register_model(ctx: Context, dataset: str, ingested, model, settings: dict[str, Any], backtest: dict[str, Any], figures, promotion):
    """Log the run, register the scoring model, and move the champion alias if promoted."""
    from flows import tracking
    from flows.ingest import data_digest

    data_info = {
        "as_of": ingested.as_of.isoformat(),
        "digest": data_digest(ingested.connection),
        "rows_used": ingested.report["rows_used"],
        "customers_used": ingested.report["customers_used"],
    }
    # The ingest report's source: a database URL's password masked (MLflow params are for everyone).
    params = {
        **settings_of(model), "dataset": ingested.report["source"], "as_of": data_info["as_of"], "backtest_cutoff": backtest["cutoff"],
        "fitted": fitted_choices(model),
    }
    logged = tracking.log_training(
        ctx.workspace, dataset, model, params=params, backtest=backtest, data_info=data_info, figures=figures,
        # The config as this run used it: its dataset is the source read (`--data`), not the file's default.
        config={**ctx.config.model_dump(mode="json"), "dataset": ingested.report["source"]},
    )
    tracking.set_champion(ctx.workspace, logged, promotion)
    return logged


def fitted_choices(model) -> dict[str, Any]:
    """What the fit chose that the settings leave open: the label window used (settings may say
    null), and the blend's churn source; logged so a model can be explained after the fact."""
    chosen = {"champion": model.champion_, "label_window_days": getattr(model, "label_window_days_", None)}
    if model.champion_ == "blend":
        chosen["churn_source"] = getattr(model, "churn_source_", "booster")
    return chosen


#: How much lower than BG/NBD's a shipped churn AUC may be before train warns.
CHURN_AUC_SLACK = 0.02


def churn_warnings(backtest: dict[str, Any]) -> list[str]:
    """A warning when the backtest's champion ranks churners clearly worse than BG/NBD, or than chance:
    the champion rule weighs spend, and the at-risk list reads the shipped churn."""
    from models.pipeline import TEXTBOOK as textbook

    shipped, base = backtest["models"][backtest["champion"]], backtest["models"].get(textbook, {})
    auc, base_auc = shipped.get("churn_auc"), base.get("churn_auc")
    if auc is None or backtest["champion"] == textbook:
        return []
    if auc < 0.5 or (base_auc is not None and auc < base_auc - CHURN_AUC_SLACK):
        versus = f" vs {textbook}'s {base_auc:.3f}" if base_auc is not None else ""
        return [
            f"the shipped {backtest['champion']} ranks churners worse in the backtest (churn AUC {auc:.3f}{versus}): "
            "at-risk members are ranked by its churn probability; a longer history before the cutoff, or another "
            "label window (model.label_window_days), usually mends it"
        ]
    return []


def check_not_future(as_of: date | None, command: str) -> None:
    """Refuse an as-of date after today (a day of slack for time zones): a mistyped 2099 became the
    store's latest run (or the champion's date), and every real run after it looked like a backfill."""
    today = datetime.now(timezone.utc).date()
    if as_of is not None and as_of > today + timedelta(days=1):
        raise ValueError(
            f"--as-of {as_of} is in the future (today is {today}): `vipcast {command}` works on orders up to a "
            "past or present date; leave --as-of out to use the data's last order date"
        )


def check_request(ctx: Context, data: str | None, as_of: date | None, command: str, out: Path | None = None) -> str:
    """The dataset of a train or score request, after the checks that need no data read: a future
    as-of date, a source path that does not exist (before a champion lookup, or a Prefect server
    start of 20 s, makes a typo look like something else), a `score --out` folder where the source reads,
    a workspace this process may not write to."""
    from flows.ingest import parse_source

    dataset = data or ctx.config.dataset
    check_not_future(as_of or ctx.config.as_of, command)
    source = parse_source(dataset, ctx.config.source.table)
    if source.kind == "database" and "#" not in dataset:
        # Named by its table, as `URL#table` is: the whole URL (its password too) named the registered model,
        # the experiment and the artifact folder, while the outputs store named the run's dataset by the table.
        dataset = f"{dataset}#{source.table}"
    check_out_not_source(source, out, out / "scores.parquet" if out is not None else None)
    # Before minutes of fitting: a read-only workspace failed at the end. Train writes the workspace's
    # MLflow database (unless MLFLOW_TRACKING_URI names another), score its outputs store (unless
    # outputs.store_url names another).
    workspace = ctx.workspace
    if command == "train":
        written = [workspace.root / "mlflow.db"] if workspace.tracking_uri == f"sqlite:///{workspace.root / 'mlflow.db'}" else []
    else:
        written = [] if ctx.config.outputs.store_url else [workspace.outputs_path]
    workspace.check_writable(*written)
    if command == "score":  # written after the run is stored
        workspace.check_writable_folders(workspace.root / "runs", workspace.exports_dir, *([out] if out is not None else []))
    return dataset


def run_train(ctx: Context, data: str | None, as_of: date | None, *, step=None) -> TrainSummary:
    """`vipcast train`: backtest, fit on all data, compare with the champion, log, promote if no worse."""
    step = step or LocalSteps(6)
    dataset = check_request(ctx, data, as_of, "train")
    settings = model_settings(ctx.config)
    ingested = step("loading and checking transactions", ingest, ctx, dataset, as_of, io=True)
    cutoff = backtest_cutoff(ingested.as_of, settings["horizon_days"])
    check_backtest_room(ingested, cutoff, settings["horizon_days"])
    result = step(f"backtesting the candidates at {cutoff}", backtest_models, ingested, cutoff, settings)
    backtest = result.to_dict()
    figures = step("drawing the backtest plots", backtest_figures, result)
    # The model that ships is the backtest's winner, refitted on everything up to the as-of date.
    shipped = {**settings, "champion": backtest["champion"]}
    model = step(f"fitting the scoring model up to {ingested.as_of}", fit_scoring_model, ingested, ingested.as_of, shipped)
    promotion = step("comparing with the champion", compare_with_champion, ctx, dataset, ingested, cutoff, settings, backtest, io=True)
    logged = step("logging to MLflow", register_model, ctx, dataset, ingested, model, settings, backtest, figures, promotion, io=True)
    close_figures(figures)
    return TrainSummary(
        ingested.as_of, f"{logged.name}/{logged.version}", model.champion_, promotion.reason, promotion.promoted, backtest,
        (*backtest["warnings"], *model.fit_warnings(), *churn_warnings(backtest), *data_warnings(ingested.report, ingested.as_of)),
        settings.get("btyd", "bgnbd"),
    )


def close_figures(figures: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    for figure in figures.values():
        plt.close(figure)


# ----------------------------------------------------------------------------- scoring

SCORE_COLUMNS = (
    "customer_id",
    "tier",
    "rolling_12m_spend",
    "predicted_orders",
    "predicted_spend",
    "predicted_ltv",
    "p_alive",
    "churn_probability",
    "rising_star_score",
)


def segment_settings(config: VipcastConfig):
    from segments.settings import SegmentSettings

    return SegmentSettings.from_mapping(config.segments.model_dump())


def open_store(ctx: Context):
    """The outputs store: the config's SQLAlchemy URL, or the workspace's DuckDB file."""
    from flows.store import OutputsStore

    return OutputsStore(ctx.config.outputs.store_url or ctx.workspace.outputs_path)


def dataset_runs(store, dataset: str) -> list:
    """The store's runs of one dataset (runs stored without a source count as any dataset's)."""
    from flows.store import NoRunsYet, runs_of_dataset

    try:
        return runs_of_dataset(store.runs(), dataset)
    except NoRunsYet:
        return []


def previous_run(store, as_of: date, dataset: str):
    """The dataset's latest stored run strictly before `as_of` (None on a first run): another dataset
    scored into the same store has other customers' tiers."""
    runs = [run for run in dataset_runs(store, dataset) if run.as_of < as_of]
    return max(runs, key=lambda run: (run.as_of, run.created_at)) if runs else None


def run_state(store, run):
    """The tier state and as-of date of a stored run ((None, None) for no run)."""
    if run is None:
        return None, None
    return store.read_list("state", run_id=run.run_id), run.as_of


def score_customers(model, features: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every featured customer."""
    return model.predict(features)


def score_customers_on_spark(ctx: Context, dataset: str, model, ingested) -> pd.DataFrame:
    """Distributed scoring: the registered champion via spark_udf, Parquet partitioned by as-of date."""
    from flows import tracking
    from flows.spark_scoring import score_on_spark

    # One folder per dataset: keyed by date alone, a second dataset's scores replaced the first's.
    folder = ctx.workspace.root / "spark_scores" / tracking.dataset_slug(dataset)
    uri = tracking.champion_model_uri(ctx.workspace, dataset)
    score_on_spark(ingested.connection, ingested.transactions, ingested.as_of, uri, model, folder)
    predictions = pd.read_parquet(folder / f"as_of={ingested.as_of.isoformat()}")
    return predictions.set_index("customer_id")


def explainer(model, features: pd.DataFrame):
    """SHAP reason contributions on demand, for just the customers asked about (the rising stars)."""

    def explain(customer_ids: pd.Series) -> pd.DataFrame:
        return model.explain(features[features["customer_id"].isin(customer_ids)])

    return explain


def expiring_spend(ingested):
    """The segments' `expiring_by`: each customer's spend leaving the rolling 12-month window within a
    number of days of their own (a member's grace period), from the ingested transactions."""
    import ibis

    from features.behaviour import spend_expiring_within

    def expiring_by(ids: pd.Series, days: pd.Series) -> pd.Series:
        within = ibis.memtable(pd.DataFrame({"customer_id": ids.to_numpy(), "within_days": days.to_numpy()}))
        longest = int(days.max()) if len(days) else 0
        found = ingested.connection.to_pandas(spend_expiring_within(ingested.transactions, ingested.as_of, within, longest))
        leaving = found.set_index("customer_id")["spend_expiring"].reindex(ids.to_numpy()).fillna(0.0)
        return leaving.set_axis(ids.index)

    return expiring_by


def nominate_segments(ctx: Context, model, features: pd.DataFrame, predictions: pd.DataFrame, store, as_of: date, dataset: str,
                      expiring_by=None):
    """Tiers, rising stars (with reason codes), at-risk members, events and economics from the scores."""
    from segments import nominate

    customers = with_predictions(features, predictions)
    last = previous_run(store, as_of, dataset)
    state, previous_as_of = run_state(store, last)
    segments = nominate(
        customers,
        state,
        as_of,
        segment_settings(ctx.config),
        model.horizon_days,
        explainer(model, features),
        feature_values=features.set_index("customer_id"),
        previous_as_of=previous_as_of,
        expiring_by=expiring_by,
    )
    return segments, scored_from(last)


def scored_from(run) -> dict[str, str | None] | None:
    """What a run's tiers were computed from: the previous run's date and the digest of its tier state
    (its report's `state_digest`, None for runs stored before it was kept; no previous run: None).
    Kept in the run's report as `previous_state`."""
    return None if run is None else {"as_of": run.as_of.isoformat(), "state_digest": run.report_field("state_digest")}


def config_digest(config: VipcastConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def run_id_for(as_of: date, dataset: str) -> str:
    """One run per dataset and as-of date: re-scoring a date (with a new model, config or corrected
    data) replaces that date's run; the run keeps which model, data digest and config made it."""
    from flows.tracking import dataset_slug

    key = f"{as_of}|{dataset_slug(dataset)}"
    return f"{as_of:%Y%m%d}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def with_predictions(features: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The feature rows with each customer's predictions (predictions indexed by customer_id) alongside.

    `predict` keeps the feature table's order, so the rows usually line up and no join is needed
    (a million-row merge on string ids with one-to-one validation took ~3 s); otherwise the
    predictions are looked up by id. A customer without predictions gets missing values.
    """
    ids = pd.Index(features["customer_id"], name="customer_id")
    if not predictions.index.is_unique:
        raise ValueError("predictions hold a customer more than once")
    aligned = predictions if predictions.index.equals(ids) else predictions.reindex(ids)
    return pd.concat([features.reset_index(drop=True), aligned.reset_index(drop=True)], axis=1)


def score_table(features: pd.DataFrame, predictions: pd.DataFrame, segments) -> pd.DataFrame:
    """The scores of the CLI contract: one row per customer, in the feature table's order; the
    12-month spend to the decimals the tiers compare (the tiers list's value, not 1999.9999999999998)."""
    from segments.keys import money

    spend = features[["customer_id", "rolling_12m_spend"]]
    scores = with_predictions(spend.assign(rolling_12m_spend=money(spend["rolling_12m_spend"])), predictions)
    tiers = segments.tiers.set_index("customer_id")[["tier", "rising_star_score"]].reindex(scores["customer_id"])
    for column in ("tier", "rising_star_score"):
        scores[column] = tiers[column].reset_index(drop=True)
    return scores[list(SCORE_COLUMNS)]


def same_date_runs(runs, as_of: date, dataset: str):
    """(the stored run this date's run replaces, or None; the ids of stored runs of this dataset and date
    under another run id). Runs written by a vipcast before run ids named only the date and dataset
    have other ids: a re-scored date kept them beside the new run, listed twice in the app."""
    from flows.store import run_dataset
    from flows.tracking import dataset_slug

    this_id, slug = run_id_for(as_of, dataset), dataset_slug(dataset)
    same_date = [run for run in runs if run.as_of == as_of and (run.run_id == this_id or run_dataset(run) == slug)]
    replaced = next((run for run in same_date if run.run_id == this_id), same_date[0] if same_date else None)
    return replaced, [run.run_id for run in same_date if run.run_id != this_id]


def write_outputs(ctx: Context, store, run, tables: dict[str, pd.DataFrame], report: dict[str, Any], quarantine,
                  out: Path | None, replacing: list[str] = ()) -> list[Path | str]:
    """Write the run to the store (one transaction, replacing the runs named in `replacing` too), then
    export the lists (atomic file swaps)."""
    from flows.store import run_dataset

    store.write_run(run, tables, replacing)
    # The exports hold the latest run scored: a backfilled past date does not touch them (they hold its
    # dataset's latest run, or another dataset's, which re-exporting this dataset's latest replaced).
    dataset = run_dataset(run)
    latest = dataset_runs(store, dataset)[0] if dataset else run
    paths: list[Path | str] = [ctx.workspace.exports_dir]
    if latest.run_id == run.run_id:
        try:
            store.export_run(run.run_id, ctx.workspace.exports_dir, formats=ctx.config.outputs.export_formats)
        except OSError as error:  # it named a temporary file, and not that the run was stored
            raise stored_anyway(error, run, "the export files were not updated, run.json names the run they hold",
                                str(ctx.workspace.exports_dir)) from error
    else:
        paths[0] = (f"{ctx.workspace.exports_dir} (not replaced: this dataset's latest run is as of {latest.as_of}; "
                    "this run is in the store)")
    try:
        write_side_files(ctx.workspace.run_dir(run.run_id), report, quarantine)
    except OSError as error:  # a run that failed here read as not stored
        raise stored_anyway(error, run, "exports updated; its reconciliation report and quarantine file were not written") from error
    for replaced in replacing:  # their reconciliation reports went with their runs
        if replaced and Path(replaced).name == replaced and replaced not in (".", ".."):
            shutil.rmtree(ctx.workspace.root / "runs" / replaced, ignore_errors=True)
    if len(quarantine):  # the set-aside warnings say "in the quarantine file": this is where
        paths.append(quarantine_path(ctx.workspace.run_dir(run.run_id)))
    if out is not None:
        try:
            write_score_folder(out, tables, report, quarantine)
        except OSError as error:
            raise stored_anyway(error, run, "exports updated; the --out folder was not written") from error
        paths.append(out)
    return paths


def stored_anyway(error: OSError, run, unwritten: str, filename: str | None = None) -> OSError:
    """`error` of a write after the store committed `run`, saying the run is stored and what was not written."""
    return type(error)(error.errno, f"{error.strerror or error} (run {run.run_id} is stored: `vipcast lists` and the app "
                       f"show it; {unwritten})", filename or error.filename)


def write_score_folder(out: Path, tables: dict[str, pd.DataFrame], report: dict[str, Any], quarantine) -> None:
    """`score --out DIR`: scores.parquet, the five lists as CSV, reconciliation.json (and quarantine)."""
    from flows.listformats import list_csv

    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "scores.parquet", tables["scores"])
    for name in ("rising_stars", "at_risk", "tiers", "events", "economics"):
        text = list_csv(tables[name])  # as the exports, `vipcast lists` and the API write it (formula-like text marked)
        write_atomic(out / f"{name}.csv", lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8", newline=""))
    write_side_files(out, report, quarantine)


@dataclass(frozen=True)
class ScoreSummary:
    run_id: str
    as_of: date
    model_version: str
    n_customers: int
    tier_counts: dict[str, int]
    rising_stars: pd.DataFrame
    n_at_risk: int
    warnings: list[str]
    outputs: list[Path | str]

    def __str__(self) -> str:
        tiers = ", ".join(f"{tier} {count:,}" for tier, count in self.tier_counts.items())
        lines = [
            f"scored {self.n_customers:,} customers as of {self.as_of} with {self.model_version} (run {self.run_id})",
            f"tiers: {tiers}",
            f"rising stars: {len(self.rising_stars):,}; at-risk members: {self.n_at_risk:,}",
        ]
        lines += warning_lines(self.warnings)
        lines.append("outputs: " + ", ".join(str(p) for p in self.outputs))
        return "\n".join(lines)


# No transaction at all in this many days before the as-of date: the extract is probably stale.
STALE_DATA_DAYS = 31


def data_warnings(report: dict[str, Any], as_of: date) -> list[str]:
    """Plain-language warnings about the input itself: ingest's (many rows set aside), a stale extract."""
    warnings = list(report.get("warnings", []))
    refunds_only = report.get("customers_without_purchase_day", 0)
    if refunds_only:
        examples = report.get("customers_without_purchase_day_examples") or []
        named = f" (e.g. {', '.join(repr(example) for example in examples)})" if examples else ""
        warnings.append(
            f"{refunds_only:,} customer(s) have only refunds (no purchase day) up to {as_of}{named}: they get no features, "
            "scores or tier; counted as customers_without_purchase_day in the reconciliation report"
        )
    last_order = report_day(report, "last_order")
    quiet_days = (as_of - last_order).days
    if quiet_days > STALE_DATA_DAYS:
        warnings.append(
            f"the data ends {last_order}, {quiet_days} days before the as-of date {as_of}: no customer ordered since, "
            "so spends, tiers and lists read as if everyone stopped buying; check that the extract is complete"
        )
    return warnings


def short_history_warnings(report: dict[str, Any], as_of: date) -> list[str]:
    """Tiers are measured on 12-month spend and rising stars projected over 12 months (whatever the
    horizon): on less than a year of data, every customer's 12-month spend covers only part of one."""
    if not report.get("first_order"):
        return []
    first_order = report_day(report, "first_order")
    days = (as_of - first_order).days  # counted as train counts it; the window is the 365 days ending on as_of
    if days >= 364:
        return []
    return [
        f"the data hold {days} day(s) of history (from {first_order}), less than the 365 days of the 12-month spend tiers "
        "are measured on: tiers count part of a year while rising stars are projected over a full one, so expect fewer "
        "VIPs and more rising stars than a year of data would give"
    ]


def lost_history_warnings(ctx: Context, dataset: str, as_of: date, previous: dict[str, str] | None) -> list[str]:
    """Runs of the dataset the workspace's runs/ folder records before this date, after the previous
    stored run, that the store does not hold: it was lost, replaced by an older backup or pointed
    elsewhere, and tier history (grace periods, events, movement) skips them in silence (a deleted
    outputs.duckdb demoted every member in grace)."""
    from flows.tracking import dataset_slug

    wanted, after, missing = dataset_slug(dataset), (previous or {}).get("as_of") or "", []
    for report_file in (ctx.workspace.root / "runs").glob("*/reconciliation.json"):
        try:
            recorded = json.loads(report_file.read_text())
        except (OSError, ValueError):
            continue
        source, day = recorded.get("source"), str(recorded.get("as_of") or "")
        if source and after < day < as_of.isoformat() and dataset_slug(str(source)) == wanted:
            missing.append(day)
    if not missing:
        return []
    missing.sort()
    dates = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    if previous is None:
        return [
            f"the outputs store holds no earlier run of {wanted}, but the workspace's runs/ folder records {len(missing)} "
            f"(the latest as of {max(missing)}): tier history starts over in this run (members in grace lose their tier, "
            "every listed customer is new); if the store was lost or replaced, restore it and score this date again"
        ]
    return [
        f"the workspace's runs/ folder records {len(missing)} run(s) of {wanted} after the previous stored run ({after}) "
        f"and before this date that the outputs store does not hold (as of {dates}; restored from an older backup?): "
        f"tier history continues from {after} without them; score those dates again, in date order, to put them back"
    ]


def backfill_warnings(later_runs, this_run: dict[str, str | None] | None = None) -> list[str]:
    """Stored runs of later dates whose tier history is not this run: the next one was scored from
    another previous run, or from this date's run with another tier state (`this_run`: this run as a
    later run's `previous_state` would name it). Re-scoring a date and getting the same state
    changes nothing after it."""
    if not later_runs:
        return []
    following = min(later_runs, key=lambda run: (run.as_of, run.created_at))
    seen = following.report_field("previous_state")
    if this_run is not None and this_run["state_digest"] is not None and seen == this_run:
        return []
    dates = ", ".join(sorted({run.as_of.isoformat() for run in later_runs}))
    if this_run is not None and isinstance(seen, dict) and seen.get("as_of") == this_run["as_of"]:
        if seen.get("state_digest") is None:  # scored by a version that kept no digests
            return [
                f"this run replaced the stored run of {this_run['as_of']} that the stored runs of later dates ({dates}) "
                "were scored from: if its tiers changed, score those dates again, in date order, to update them "
                "(exports and lists stay on the latest run)"
            ]
        return [
            f"this run replaced the stored run of {this_run['as_of']} with another tier state; the stored runs of later "
            f"dates ({dates}) were scored from the old one: score them again, in date order, to update them (exports "
            "and lists stay on the latest run)"
        ]
    return [
        f"the store holds runs of later dates ({dates}) scored without this one: their tier grace periods do not "
        "count it; score those dates again, in date order, to update them (exports and lists stay on the latest run)"
    ]


def warning_lines(warnings) -> list[str]:
    return [f"warning: {text}" for text in warnings]


def assemble_run(ctx: Context, dataset: str, ingested, model, model_version: str, features, predictions, segments,
                 stored_runs=(), replaced=None, as_of_given: bool = True, today: date | None = None,
                 previous: dict[str, str] | None = None):
    """The run record and the tables of one scoring run (`stored_runs`: the stored runs of this
    dataset, latest first; `replaced`: the stored run of the same id; `as_of_given` and `today` as
    `feed_warnings` reads them; `previous`: what its tiers were scored from, see `scored_from`).
    Every warning of the run is in its report, which the store and reconciliation.json keep."""
    from segments.inputs import state_digest

    from flows.ingest import data_digest, holds_rows_of
    from flows.store import RunInfo

    scores = score_table(features, predictions, segments)
    report = account_for_customers(ingested.report, len(features), ingested.transactions)
    report["customers_scored"] = len(scores)
    report["previous_state"] = previous
    report["state_digest"] = state_digest(segments.state)
    digest = data_digest(ingested.connection)
    run = RunInfo(
        run_id=run_id_for(ingested.as_of, dataset),
        as_of=ingested.as_of,
        created_at=datetime.now(timezone.utc),
        model_name=model.champion_,
        model_version=model_version,
        horizon_days=model.horizon_days,
        n_customers=len(scores),
        data_digest=digest,
        config_digest=config_digest(ctx.config),
        reconciliation="{}",  # the report, once its warnings (which read the run's digests) are in
    )
    later_runs = [stored for stored in stored_runs if stored.as_of > ingested.as_of]
    report["warnings"] = [
        *settings_warnings(ctx.config, model, model_version),
        *same_name_warnings(stored_runs, ingested.report, dataset, replaced, digest,
                            functools.partial(holds_rows_of, ingested)),
        *data_warnings(report, ingested.as_of), *short_history_warnings(report, ingested.as_of),
        *lost_history_warnings(ctx, dataset, ingested.as_of, previous), *segments.warnings,
        *backfill_warnings(later_runs, {"as_of": ingested.as_of.isoformat(), "state_digest": report["state_digest"]}),
        *feed_warnings(report, run, replaced, as_of_given, today, later_runs), *lookahead_warnings(model, model_version, ingested.as_of),
    ]
    run = dataclasses.replace(run, reconciliation=json.dumps(report, default=str))
    tables = {
        "scores": scores,
        "tiers": segments.tiers,
        "rising_stars": segments.rising_stars,
        "at_risk": segments.at_risk,
        "events": segments.events,
        "economics": segments.economics,
        "state": segments.state,
    }
    return run, tables, report


def registry_lost_note(ctx: Context, dataset: str) -> str:
    """For a score without a champion: the store's runs of the dataset scored by registered models say
    the registry was emptied or replaced (a new workspace and an emptied mlflow.db read the same)."""
    from flows.store import StoreError

    try:
        scored = dataset_runs(open_store(ctx), dataset)
    except (StoreError, OSError):
        return ""
    if not scored:
        return ""
    return (f" (the outputs store holds {len(scored)} run(s) of it, the latest as of {scored[0].as_of} scored by "
            f"{scored[0].model_version}: if the model registry was lost or replaced, restore it; a new one numbers "
            "its versions from 1 again)")


def check_horizon(requested: int | None, model, model_version: str) -> None:
    """Scores are for the horizon the champion was trained for: `score --horizon-days` asking for
    another one is refused, not ignored."""
    if requested is not None and requested != model.horizon_days:
        raise ValueError(
            f"the champion {model_version} was trained for a {model.horizon_days}-day horizon, not {requested} days: "
            f"train one for it (vipcast train --horizon-days {requested}), or score without --horizon-days"
        )


def settings_warnings(config: VipcastConfig, model, model_version: str) -> list[str]:
    """Model settings of the config that the champion was not trained with are not silently ignored:
    scoring uses the champion's, and the summary names the keys (a new horizon, BTYD model or
    windows takes a `vipcast train`)."""
    wanted, trained = model_settings(config), settings_of(model)
    # The windows are a set: the model reads its features by name, so [365, 30] scores as [30, 365].
    differ = [key for key in wanted if key in trained and _setting(wanted[key]) != _setting(trained[key])
              and not (key == "windows_days" and sorted(wanted[key]) == sorted(trained[key]))]
    if not differ:
        return []
    changes = "; ".join(f"{SETTING_KEYS.get(key, key)} {_shown_setting(wanted[key])} (champion: {_champion_setting(model, key, trained[key])})"
                        for key in differ)
    advice = "run `vipcast train` with this config to use them"
    if "horizon_days" in differ:  # `train --horizon-days N` is not kept in the config: every score would say so
        advice += (f", or set model.horizon_days: {trained['horizon_days']} in the config if the champion's horizon "
                   "came from `train --horizon-days`")
    return [f"the config's model settings differ from the champion {model_version}'s, which scored: {changes}; {advice}"]


def _setting(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def _shown_setting(value) -> str:
    """A setting as the config writes it ("not set" for null: Python's None was printed)."""
    return "not set" if value is None else str(_setting(value))


def _champion_setting(model, key: str, value) -> str:
    """The champion's setting, with what it came to when it was not set (the label window it used)."""
    used = getattr(model, f"{key}_", None)
    if value is None and used is not None:
        return f"not set, so {_setting(used)}"
    return _shown_setting(value)


def same_name_warnings(runs, report: dict[str, Any], dataset: str, replaced=None, digest: str | None = None,
                       holds_rows=None) -> list[str]:
    """The previous run of this dataset name read other data: two shops' `orders.csv` share one
    champion and one tier history (a dataset is named by its file stem, folder or table), which a user should
    hear. Silent when the rows are those of the run this one replaces (the same data moved), or when
    ``holds_rows(report of the previous run)`` finds that run's rows in this data: the same shop's newer
    extract at a new path (weekly files in dated folders warned every week). The previous run is the
    latest one up to this run's date (a backfill compares with the run before it, not a later one)."""
    from flows.tracking import dataset_slug

    here = report.get("source_identity")
    read = [run for run in runs if run.report_field("source_identity") is not None]
    as_of = date.fromisoformat(report["as_of"]) if report.get("as_of") else None
    # A backfill before every run that recorded its source (runs of an older vipcast did not) has none to
    # compare with: a later run's extract cannot hold this one's rows, and called it another shop's.
    previous = next((run for run in read if as_of is None or run.as_of <= as_of), None)
    before = previous.report_field("source_identity") if previous is not None else None
    if here is None or before is None or before == here:
        return []
    if replaced is not None and digest is not None and replaced.data_digest == digest:
        return []
    if holds_rows is not None and holds_rows(json.loads(previous.reconciliation)):
        return []
    return [
        f"the previous run of dataset '{dataset_slug(dataset)}' in this workspace read {before}, this one reads {here}: "
        "datasets are named by file stem, folder (a folder or glob) or table, so they share one champion model and one "
        "tier history; nothing to do if this is the same shop's newer extract, but if it is another shop, rename one of "
        "the files (or folders) or score it in another workspace (--workdir)"
    ]


def feed_warnings(report: dict[str, Any], run, replaced, as_of_given: bool, today: date | None,
                  later_runs=()) -> list[str]:
    """A feed that stopped: a scheduled run (`today` given) whose data end long before today, or a run
    at the data's last date that replaces the latest stored run, of the same date, with the same data
    (with later runs stored the feed went on: an old extract scored again, as a backfill asks)."""
    warnings = []
    last_order = report_day(report, "last_order")
    if today is not None and not as_of_given and (today - last_order).days > STALE_DATA_DAYS:
        warnings.append(
            f"the data end {last_order}, {(today - last_order).days} days before today ({today}): this scheduled run "
            "scores that date again; check that the extract is still being refreshed"
        )
    same_scoring = replaced is not None and (replaced.model_version, replaced.config_digest) == (run.model_version, run.config_digest)
    if not as_of_given and same_scoring and replaced.data_digest == run.data_digest and not later_runs:  # a retrain or new config is a reason
        warnings.append(
            f"no new data since the stored run of {run.as_of} (the same rows as then): this run replaces it; "
            "if orders were expected since, check that the extract is still being refreshed"
        )
    return warnings + smaller_extract_warnings(report, run, replaced)


def smaller_extract_warnings(report: dict[str, Any], run, replaced) -> list[str]:
    """A re-score of a date from fewer rows or customers than the run it replaces: a partial extract
    (the run is replaced all the same, as asked: corrected data can be smaller; `train` keeps the champion)."""
    if replaced is None or replaced.data_digest == run.data_digest:
        return []
    rows_before, rows_now = replaced.report_field("rows_used"), report.get("rows_used")
    fewer_rows = rows_before is not None and rows_now is not None and rows_now < rows_before
    if not fewer_rows and run.n_customers >= replaced.n_customers:
        return []
    rows = f"{rows_now:,} rows and " if rows_now is not None else ""
    before = f"{rows_before:,} rows and " if rows_before is not None else ""
    return [
        f"this run replaces the stored run of {run.as_of}, which used {before}{replaced.n_customers:,} customers, with "
        f"{rows}{run.n_customers:,} customers (a partial extract?): customers missing from this data are no longer "
        "in that date's lists; if the full extract was meant, score it again"
    ]


def fitted_through(model) -> date | None:
    """The last date whose orders a model saw: its cutoff, or its data's last purchase day when the
    data end before it (`train --as-of` a few days past the last order saw no later orders)."""
    cutoff = getattr(model, "cutoff_", None)
    data_end = getattr(model, "data_end_", None)  # models saved before it was kept have only the cutoff
    return cutoff if cutoff is None or data_end is None else min(cutoff, data_end)


#: A champion fitted on data ending more than this many days before the as-of date is named as out of date
#: (six of the default monthly trainings missed).
STALE_CHAMPION_DAYS = 180


def lookahead_warnings(model, model_version: str, as_of: date) -> list[str]:
    """A past date scored with a champion fitted on later data: its lists are not what a model of the time gave.
    A champion fitted long before the as-of date: the weekly runs went on with it in silence (18 months)."""
    fitted = fitted_through(model)
    if fitted is not None and (as_of - fitted).days > STALE_CHAMPION_DAYS:
        return [
            f"the champion {model_version} was fitted on data up to {fitted}, {(as_of - fitted).days} days before this as-of "
            f"date {as_of}: it has not learnt from the orders since; train again (`vipcast train`; `vipcast serve` runs it on "
            "schedule.train_cron)"
        ]
    if fitted is None or fitted <= as_of:
        return []
    return [
        f"the champion {model_version} was fitted on data up to {fitted}, after this as-of date {as_of}: the scores of "
        "this past date use what the model learnt from later orders (a look-ahead), so its lists can differ from those "
        "of the model of the time"
    ]


def run_score(
    ctx: Context, data: str | None, as_of: date | None, out: Path | None = None, *, horizon_days: int | None = None, step=None,
    today: date | None = None,
) -> ScoreSummary:
    """`vipcast score`: champion model -> features -> scores -> segments -> outputs store and exports.

    `today` (scheduled runs): warn when the data end more than STALE_DATA_DAYS before it.
    """
    from flows import tracking

    step = step or LocalSteps(6)
    dataset = check_request(ctx, data, as_of, "score", out)  # a mistyped path is "no such file", not "no champion: train"
    try:
        model, model_version = step("loading the champion model", tracking.load_champion, ctx.workspace, dataset, io=True)
    except tracking.NoChampion as missing:
        raise tracking.NoChampion(f"{missing}{registry_lost_note(ctx, dataset)}") from None
    check_horizon(horizon_days, model, model_version)
    ingested = step("loading and checking transactions", ingest, ctx, dataset, as_of, io=True)
    # Features with the spec the model was trained on, whatever the config says now, plus the
    # windows the segments read (the model ignores columns it was not trained on).
    windows = scoring_windows(model.windows_days)
    features = step(f"building features as of {ingested.as_of}", build_features, ingested, ingested.as_of, model.time_unit, windows)
    if features.empty:
        raise ValueError(
            f"nothing to score: none of the {ingested.report['customers_used']:,} customer(s) of {dataset} has a purchase "
            f"day up to {ingested.as_of} (only refunds); the reconciliation counts them as customers_without_purchase_day"
        )
    if ctx.config.engine.name == "spark":
        predictions = step("scoring on Spark (spark_udf)", score_customers_on_spark, ctx, dataset, model, ingested, io=True)
    else:
        predictions = step(f"scoring {len(features):,} customers", score_customers, model, features)
    store = open_store(ctx)
    # From reading the previous run's tier state to committing this run, one score of the workspace at
    # a time: two dates scored at once each read the state before either wrote, and the later date's
    # tiers skipped the other run's (in silence: it was not stored yet when the backfill check looked).
    with ctx.workspace.scoring_lock():
        return finish_score(ctx, step, dataset, model, model_version, ingested, features, predictions, store, as_of, out, today)


def finish_score(ctx: Context, step, dataset: str, model, model_version: str, ingested, features: pd.DataFrame,
                 predictions: pd.DataFrame, store, as_of: date | None, out: Path | None, today: date | None) -> ScoreSummary:
    """`run_score`'s steps from the tier history to the outputs (under the workspace's scoring lock)."""
    segments, previous = step(
        "nominating tiers, rising stars and at-risk members",
        nominate_segments, ctx, model, features, predictions, store, ingested.as_of, dataset, expiring_spend(ingested), io=True,
    )
    runs_of_this_dataset = dataset_runs(store, dataset)
    replaced, legacy = same_date_runs(runs_of_this_dataset, ingested.as_of, dataset)
    run, tables, report = assemble_run(ctx, dataset, ingested, model, model_version, features, predictions, segments,
                                       runs_of_this_dataset, replaced, as_of is not None, today, previous)
    outputs = step("writing the outputs", write_outputs, ctx, store, run, tables, report, ingested.quarantine, out, legacy,
                   io=True)
    counts = segments.tiers["tier"].value_counts()
    return ScoreSummary(
        run.run_id,
        ingested.as_of,
        model_version,
        len(tables["scores"]),
        {tier: int(counts.get(tier, 0)) for tier in ("Platinum", "Gold", "Silver", "Base")},
        segments.rising_stars,
        len(segments.at_risk),
        report["warnings"],
        outputs,
    )


# ----------------------------------------------------------------------------- lists and demo

STORE_LIST_NAMES = {"rising-stars": "rising_stars", "at-risk": "at_risk", "tiers": "tiers", "events": "events", "economics": "economics"}


def read_list(ctx: Context, name: str, top: int | None = None, data: str | None = None, as_of: date | None = None) -> pd.DataFrame:
    """A list of the latest scoring run (of the dataset `data`, of the date `as_of`, when given), ranked best first."""
    return list_and_run(ctx, name, top, data, as_of)[0]


def list_and_run(ctx: Context, name: str, top: int | None = None, data: str | None = None,
                 as_of: date | None = None) -> tuple[pd.DataFrame, RunInfo]:
    """`read_list` and the run the list came from (the CLI names it: a store can hold several shops)."""
    from flows.store import AmbiguousRun, RunNotFound, dataset_names, runs_of_dataset

    store = open_store(ctx)
    runs = store.runs()  # latest first
    if not runs:
        where = store.description if ctx.config.outputs.store_url else ctx.workspace.root
        raise LookupError(
            f"no scoring run in {where} yet: run `vipcast score` first (scores written to a database are read "
            "with the --config that names its outputs.store_url)"
        )
    candidates = runs
    if data is not None:
        candidates = runs_of_dataset(runs, data)
        if not candidates:
            when = f" as of {as_of}" if as_of else ""
            scored = dataset_names(runs)
            known = f"; the store holds runs of {', '.join(scored)}: pass one of those to --data, or" if scored else ":"
            raise LookupError(f"no scoring run of {data}{when} in {ctx.workspace.root}{known} run `vipcast score --data {quote(data)}` first")
    chosen = [run for run in candidates if as_of is None or run.as_of == as_of]
    if not chosen:
        dates = ", ".join(sorted({run.as_of.isoformat() for run in candidates}))
        if data is not None:
            raise LookupError(f"no scoring run of {data} as of {as_of} in {ctx.workspace.root}; its runs are as of {dates}")
        raise LookupError(f"no scoring run as of {as_of} in {ctx.workspace.root}; runs are as of {dates}")
    if data is None and as_of is not None and len(dataset_names(chosen)) > 1:
        raise AmbiguousRun(f"runs of several datasets are as of {as_of} ({', '.join(dataset_names(chosen))}): name the "
                           "dataset with --data")
    run = chosen[0]
    try:
        return store.read_list(STORE_LIST_NAMES[name], run_id=run.run_id, top=top), run
    except RunNotFound:  # replaced by a run of the same date written meanwhile
        raise LookupError(f"the run as of {run.as_of} was replaced while it was read: run the command again") from None


def list_source_line(name: str, rows: int, run: RunInfo, out: Path | None) -> str:
    """What `vipcast lists` printed, for stderr: the list, its run (dataset, as-of date, id) and where it went."""
    from flows.store import run_dataset

    dataset = run_dataset(run)
    total = run.lists.get(STORE_LIST_NAMES[name])
    count = f"{rows:,} of {total:,} rows" if total is not None and total != rows else f"{rows:,} row{'' if rows == 1 else 's'}"
    where = f"dataset {dataset}" if dataset else "a run without a recorded source"
    to = f" to {quote(str(out))}" if out is not None else ""
    return f"{name}: {count} of {where} as of {run.as_of.isoformat()} (run {run.run_id}){to}"


def render_list(frame: pd.DataFrame, fmt: str, out: Path | None) -> str | None:
    """Write a list to `out` in a format, or return its text for stdout."""
    if fmt == "parquet":
        write_parquet(out, frame)
        return None
    from flows.listformats import list_csv, list_json

    text = list_csv(frame) if fmt == "csv" else list_json(frame, one_per_line=True) + "\n"
    if out is None:
        return text
    write_atomic(out, lambda tmp: tmp.write_text(text))
    return None


def command_path(name: str) -> str:
    """How to type a command installed beside the running `vipcast`: its bare name when the shell
    finds that one, else its path (`make demo` runs .venv/bin/vipcast, which is not on PATH)."""
    import os
    import shutil
    import sys

    here = Path(sys.argv[0]).parent if sys.argv and sys.argv[0] else Path(sys.executable).parent
    beside = here / name
    if not beside.exists():
        beside = Path(sys.executable).parent / name
    found = shutil.which(name)
    if not beside.exists() or (found is not None and Path(found).resolve() == beside.resolve()):
        return name
    return os.path.relpath(beside) if not beside.is_absolute() or Path.cwd() in beside.parents else str(beside)


def demo_report(train: TrainSummary, score: ScoreSummary, ctx: Context, dataset: str = "demo", top: int = 5) -> str:
    """What `vipcast demo` prints at the end."""
    shown = score.rising_stars.head(top)
    lines = ["", "== vipcast demo ==", str(train), "", str(score), "",
             f"top {len(shown)} rising stars:" if len(shown) else "no rising stars in this run"]
    for row in shown.itertuples(index=False):
        reasons = "; ".join(str(getattr(row, f"reason_{i}")) for i in (1, 2, 3) if isinstance(getattr(row, f"reason_{i}", None), str))
        lines.append(f"  {row.customer_id}: {row.tier} -> {row.target_tier} ({reasons})")
    lines += [
        "",
        # Shell-quoted: a path with spaces pasted as printed split into extra arguments.
        f"lists: {quote(command_path('vipcast'))} lists rising-stars --data {quote(dataset)} --workdir "
        f"{quote(str(ctx.workspace.root))}   (exports in {ctx.workspace.exports_dir})",
        f"MLflow UI: {quote(command_path('mlflow'))} ui --backend-store-uri {quote(ctx.workspace.tracking_uri)}",
        f"web app: VIPCAST_API_KEY=... {quote(command_path('vipcast'))} app --workdir {quote(str(ctx.workspace.root))}",
    ]
    return "\n".join(lines)


def run_demo(ctx: Context, data: str | None = None) -> str:
    """`vipcast demo`: train and score on the built-in data, then summarise."""
    step = LocalSteps(12)
    train = run_train(ctx, data, None, step=step)
    score = run_score(ctx, data, None, None, step=step)
    return demo_report(train, score, ctx, data or ctx.config.dataset)
