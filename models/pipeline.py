"""The whole scoring model as one object: BTYD + Gamma-Gamma + LightGBM spend and churn + blend.

How it is trained (cutoff C, horizon H days):

1. BTYD and Gamma-Gamma are fitted on the summary at C (all history on or before C).
2. LightGBM learns from an earlier window: features at C - L, labels in (C - L, C]. L = H when the
   history allows it (but at least ``MIN_LABEL_WINDOW_DAYS``: shorter horizons train on that
   window and carry it to H as in step 4), otherwise half the history before C, so the features
   at C - L see at least as much history as the labels span. The BTYD features of
   the training rows come from BTYD models fitted at C - L: nothing after C - L leaks in.
3. The boosters start from the BTYD forecast and learn corrections to it: the spend booster
   (Tweedie, log link) has ``init_score = log(BTYD expected spend over L)``, the churn booster
   ``init_score = logit(BTYD P(no order in L))``.
4. Carry from L to H: at scoring the spend correction multiplies the BTYD expected spend over H
   instead of over L; this equals LightGBM's window spend times the customer's ratio of BTYD
   expected spend over H to that over L, so the extension follows the shape of that customer's
   BTYD forecast.
   Carry from C - L to C, spend: the spend booster reads each feature as the customer's percentile
   among the customers at the same cutoff (``quantile_grid`` / ``to_percentiles``: the grid of the
   training rows at C - L in training, the grid of all customers at C, stored at fit, at scoring).
   Lifetime totals (net spend, frequency, T, long windows) grow with the history, so in raw units
   the customers at C sit beyond the training range and land in the trees' top leaves; in
   percentiles the inputs have the same distribution at both cutoffs. Its aggregate level is then
   shrunk halfway (in logs) toward the BTYD level at C (``LEVEL_SHRINKAGE``, ``level_shift_``): the
   booster's mean uplift is the bias of a BTYD fitted on shorter history at C - L in the label
   window, which does not carry reliably (CDNOW 1997-12-31: 1.15 in the window, 1.03 after;
   synthetic seed 2 2024-12-31: 1.00 in the window, 1.17 after); the ranking is the booster's. Churn is carried the same way through P(at least one order), with the BG/NBD
   form P(order in t) = P(alive) (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)):
   churn_H = 1 - (1 - churn_L) * P_BTYD(order in H) / P_BTYD(order in L).
5. A seeded share of the training customers (``holdout_fraction``) is held out: on it the blend's
   total scaling is learnt and the churn booster is calibrated (Platt scaling of its log-odds on one half,
   reliability measured on the other half, ``churn_reliability_``); on that other half the blend's
   churn source is chosen too (``churn_source_``: the calibrated booster's or BG/NBD's, whichever
   has the higher churn AUC, ``churn_selection_``).

Candidates are ``bgnbd_gg`` (BTYD orders x Gamma-Gamma order value, churn = P(no order in H)),
``lightgbm`` (boosted spend with its level shrunk toward BTYD's, calibrated churn) and ``blend``
(``spend_scale_ * (w * lightgbm + (1 - w) * bgnbd_gg)`` with the churn of ``churn_source_``). ``w`` is a
setting (default 0.5): weights estimated in the training window favour LightGBM, whose edge
shrinks out of time, and equal-weight combinations are the robust default of the forecasting
literature (Stock and Watson 2004, "Combination forecasts of output growth", J. Forecasting 23).
The candidate that ships (``champion_``) is the ``champion`` setting when given (the train flow
passes the backtest's champion), else ``champion_rule`` on the training window's holdout.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import ibis.expr.types as ir
import lightgbm
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.btyd import days_per_unit
from features.build import customer_features_frame, model_feature_columns
from features.labels import horizon_labels
from models.btyd import InsufficientDataError, ModelFitError, NotFittedError, PurchaseModel, SpendModel, customer_frame, refuse_unfittable
from models.metrics import churn_auc, decile_mape, normalized_gini, total_error

MIN_LABEL_WINDOW_DAYS = 28
BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")
BTYD_FEATURES = ("btyd_expected_orders", "btyd_p_alive", "btyd_p_order", "btyd_expected_aov", "btyd_expected_spend")
# The textbook forecast's factors (expected orders x expected order value) and the feature whose
# value says where each customer stands on it, for reasons (``CustomerValueModel.btyd_explanation``).
BTYD_FACTORS = {"frequency": "btyd_expected_orders", "monetary_value": "btyd_expected_aov"}
SMALLEST_SPEND = 1e-6
PROBABILITY_CLIP = 1e-6
CANDIDATES = ("bgnbd_gg", "lightgbm", "blend")
#: The textbook candidate every other one must beat (BTYD orders x Gamma-Gamma order value).
TEXTBOOK = CANDIDATES[0]
# The layout of a fitted model's attributes; bumped when a fitted model from older code can no
# longer score (2: the spend booster reads percentiles, ``quantiles_`` and ``level_shift_``).
MODEL_FORMAT = 2
QUANTILE_POINTS = 1001
# Below this many rows the percentile map runs on one thread (a pool costs more than it saves).
PARALLEL_PERCENTILE_ROWS = 50_000
LEVEL_SHRINKAGE = 0.5
DAYS_PER_UNIT = {"days": 1, "weeks": 7}
DAYS_PER_YEAR = 365


def champion_rule(metrics: dict[str, dict[str, float]], textbook: str = TEXTBOOK) -> str:
    """The candidate to ship, from ``{name: {metric: value}}``.

    A candidate is eligible when it is no worse than the textbook model on normalized_gini,
    decile_mape and |total_error| at once, and better on at least one of them (a candidate that
    only ties is the textbook model again: a booster without splits); among eligible candidates
    the highest normalized_gini wins (ties: lower decile_mape). If none is eligible the textbook
    model ships.
    """
    base = metrics[textbook]

    def compared(values: dict[str, float]) -> tuple[float, float, float]:  # larger is better on each
        return values["normalized_gini"], -values["decile_mape"], -abs(values["total_error"])

    eligible = [
        name
        for name, values in metrics.items()
        if name != textbook
        and all(mine >= theirs for mine, theirs in zip(compared(values), compared(base)))
        and compared(values) != compared(base)
    ]
    if not eligible:
        return textbook
    return max(eligible, key=lambda name: (metrics[name]["normalized_gini"], -metrics[name]["decile_mape"]))


def _window_range(history_days: int) -> str:
    """The label windows to suggest: up to half the history, so as many days are left to learn from as
    to label (up to history - 1, the old suggestion, left a day or two before the window: too few
    customers to train on)."""
    longest = max(MIN_LABEL_WINDOW_DAYS, history_days // 2)
    return f"to {MIN_LABEL_WINDOW_DAYS}" if longest == MIN_LABEL_WINDOW_DAYS else f"between {MIN_LABEL_WINDOW_DAYS} and {longest}"


def label_window_days(horizon_days: int, history_days: int, requested: int | None = None) -> int:
    """Length L of the training label window: ``requested``, else H if the history allows, else half the history.

    L is at least ``MIN_LABEL_WINDOW_DAYS`` (a shorter horizon trains on that window and carries
    the result to H like any other L != H), and less than the history before the cutoff.
    """
    if requested is not None:
        window = requested
    else:
        window = min(max(horizon_days, MIN_LABEL_WINDOW_DAYS), history_days // 2)
    setting = "label_window_days (config key model.label_window_days)"
    if history_days <= MIN_LABEL_WINDOW_DAYS:
        raise InsufficientDataError(
            f"{history_days} day(s) of history before the cutoff leave no training window: LightGBM needs at least "
            f"{MIN_LABEL_WINDOW_DAYS} days of labels with history before them; use a later cutoff or more history"
        )
    if window < MIN_LABEL_WINDOW_DAYS:
        chosen = f"label_window_days={requested}" if requested is not None else f"half of the {history_days} days of history"
        raise InsufficientDataError(
            f"{chosen} gives a {window}-day training window; LightGBM needs at least {MIN_LABEL_WINDOW_DAYS} days "
            f"of labels: set {setting} {_window_range(history_days)}, or use a later cutoff"
        )
    if window >= history_days:
        raise InsufficientDataError(
            f"label window of {window} days leaves no history before it ({history_days} days of history before the "
            f"cutoff): set {setting} {_window_range(history_days)}"
        )
    return window


def probability_of_order(purchase_model: PurchaseModel, btyd: pd.DataFrame, p_alive: np.ndarray, days: float, unit_days: int) -> np.ndarray:
    """P(at least one order within ``days``) per customer: P(alive) times the Poisson-gamma chance of a purchase.

    Exact for BG/NBD (a customer can only drop out right after a purchase); for Pareto/NBD and
    MBG/NBD it ignores drop-out during the window, an upper bound used only as a carry ratio.
    """
    r, alpha = purchase_model.params_["r"], purchase_model.params_["alpha"]
    age = btyd["T"].to_numpy()
    t = days / unit_days
    return p_alive * (1.0 - ((alpha + age) / (alpha + age + t)) ** (r + btyd["frequency"].to_numpy()))


@contextlib.contextmanager
def fitted_as_of(when: str, advice: str = ""):
    """A BTYD fit's refusal (too few repeat buyers, no convergence) prefixed with the date it was fitted
    at, and `advice` appended: the fit at C - L said "only 20 customers with a repeat purchase" of a shop
    holding 760 at the cutoff."""
    try:
        yield
    except (InsufficientDataError, ModelFitError) as error:
        raise type(error)(f"{when}: {error}{advice}") from None


class OneChurnOutcome(InsufficientDataError):
    """Every training customer had the same churn outcome in the label window (a shop where nobody
    stops buying): more history would not change that, so no "how much history" hint."""


class CustomerValueModel:
    """Per-customer spend, discounted lifetime value and churn risk over a horizon.

    Combines the BG/NBD (Fader, Hardie and Lee 2005, Marketing Science 24(2)) or Pareto/NBD
    (Schmittlein, Morrison and Colombo 1987) purchase model and the Gamma-Gamma spend model
    (Fader, Hardie and Lee 2005, JMR 42(4)) with LightGBM gradient-boosted trees (Ke et al. 2017,
    NeurIPS) trained on an earlier window, and a calibrated blend; see the module docstring for the
    training scheme. Holds only parameters and boosters, so it pickles and serves from the
    feature columns alone.

    Parameters
    ----------
    horizon_days : int
        Forecast horizon H in days.
    btyd : {"bgnbd", "pareto", "mbgnbd"}
        Purchase-count model.
    penalizer : float
        L2 penalty (lifetimes' ``penalizer_coef``) of the purchase model (BG/NBD, Pareto/NBD, MBG/NBD).
    gamma_gamma_penalizer : float
        L2 penalty of the Gamma-Gamma spend model, separate from ``penalizer``: a penalty pulls the
        Gamma-Gamma q towards 0, and q <= 1 has no finite mean order value (CDNOW_sample at
        1997-09-30: q = 3.74 unpenalized, 2.45 at 0.001, 0.97 at 0.01), so the purchase model's
        penalty is not carried over.
    discount_rate_annual : float
        Annual discount rate for ``predicted_ltv``: spend expected at day t is worth
        ``(1 + rate) ** (-t / 365)``; the spend is spread over the horizon along the customer's
        BTYD cumulative expected orders (30-day steps, mid-step discounting).
    label_window_days : int or None
        Training label window L (at least ``MIN_LABEL_WINDOW_DAYS``); None chooses H (at least 28
        days) or half the history (see ``label_window_days``).
    time_unit : {"days", "weeks"}
        Unit of recency and T in the BTYD summary.
    windows_days : tuple of int
        Recent-spend windows of the behaviour features.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings. The defaults
        (100 rounds at 0.03, 15 leaves, 200 customers a leaf) keep the correction to the BTYD
        forecast small and smooth: stronger boosters fit the training window better but were
        over-confident out of time in the CDNOW and synthetic backtests (docs/models.md).
    num_threads : int
        LightGBM threads (keep small on shared machines).
    random_state : int
        Seed for sampling, the holdout split and LightGBM.
    sample_customers : int or None
        Train LightGBM on at most this many customers (a seeded random sample).
    holdout_fraction : float
        Share of training customers held out for blend, scaling and churn calibration.

    Attributes
    ----------
    purchase_model_, spend_model_ : fitted BTYD models at the cutoff.
    regressor_, classifier_ : lightgbm.Booster for window spend and window churn.
    churn_calibrator_ : sklearn LogisticRegression on the classifier's log-odds (Platt scaling: strictly
        monotone, so calibration keeps the booster's ranking and its churn AUC; isotonic steps tie customers).
    feature_names_ : list of str, the LightGBM input columns.
    quantiles_ : ndarray (QUANTILE_POINTS x features), the feature quantiles of the customers at the
        cutoff; the spend booster reads percentiles on this grid (``to_percentiles``).
    booster_level_ : float, sum of the booster's H spend over sum of the BTYD H spend over the
        customers at the cutoff; ``level_shift_ = -LEVEL_SHRINKAGE * log(booster_level_)`` is added
        to the spend correction, so the ``lightgbm`` total is ``booster_level_ ** 0.5`` times BTYD's.
    label_window_days_ : int, the L used.
    spend_scale_ : float, the blend's total scaling learnt on the training window's holdout.
    champion_ : str, the candidate ``predict`` ships; ``selection_`` holds the holdout metrics per
        candidate that chose it (the blend's with its scale learnt on the other half of the holdout);
        ``churn_reliability_`` the reliability table of calibrated churn.
    churn_source_ : str, "booster" or "bgnbd_gg", whose churn the blend ships (``churn_selection_``:
        each one's churn AUC on the holdout half that chose it).
    """

    def __init__(
        self,
        horizon_days: int = 365,
        btyd: str = "bgnbd",
        penalizer: float = 0.0,
        gamma_gamma_penalizer: float = 0.0,
        discount_rate_annual: float = 0.1,
        label_window_days: int | None = None,
        time_unit: str = "days",
        windows_days: tuple[int, ...] = (30, 90, 180, 365),
        n_estimators: int = 100,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 200,
        num_threads: int = 2,
        random_state: int = 0,
        sample_customers: int | None = None,
        holdout_fraction: float = 0.3,
        spend_objective: str = "tweedie",
        blend_weight: float = 0.5,
        champion: str | None = None,
    ):
        self.spend_objective = spend_objective
        self.blend_weight = blend_weight
        self.champion = champion
        self.horizon_days = horizon_days
        self.btyd = btyd
        self.penalizer = penalizer
        self.gamma_gamma_penalizer = gamma_gamma_penalizer
        self.discount_rate_annual = discount_rate_annual
        self.label_window_days = label_window_days
        self.time_unit = time_unit
        self.windows_days = windows_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.num_threads = num_threads
        self.random_state = random_state
        self.sample_customers = sample_customers
        self.holdout_fraction = holdout_fraction

    def __setstate__(self, state: dict) -> None:
        # Models pickled before gamma_gamma_penalizer existed fitted Gamma-Gamma with `penalizer`:
        # keep their recipe (the train flow refits a champion's settings on the new split).
        state.setdefault("gamma_gamma_penalizer", state.get("penalizer", 0.0))
        self.__dict__.update(state)

    # ----------------------------------------------------------------- fitting

    def check_settings(self) -> None:
        """Raise a clear error for settings out of range."""
        if self.horizon_days is None or int(self.horizon_days) < 1:
            raise ValueError(f"horizon_days must be a positive number of days, got {self.horizon_days}")
        if self.time_unit not in DAYS_PER_UNIT:
            raise ValueError(f"time_unit must be one of {sorted(DAYS_PER_UNIT)}, got {self.time_unit!r}")
        if not 0.05 <= self.holdout_fraction <= 0.5:
            raise ValueError(f"holdout_fraction must be in [0.05, 0.5], got {self.holdout_fraction}")
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ValueError(f"blend_weight must be in [0, 1], got {self.blend_weight}")
        if self.champion is not None and self.champion not in CANDIDATES:
            raise ValueError(f"champion must be None or one of {CANDIDATES}, got {self.champion!r}")
        for name in ("penalizer", "gamma_gamma_penalizer"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.discount_rate_annual < 0:
            raise ValueError(f"discount_rate_annual must be >= 0, got {self.discount_rate_annual}")
        if not 1 <= self.num_threads <= 64:
            raise ValueError(f"num_threads must be between 1 and 64, got {self.num_threads}")
        if self.sample_customers is not None and self.sample_customers < 100:
            raise ValueError(f"sample_customers must be None or at least 100, got {self.sample_customers}")

    def booster_params(self, objective: str) -> dict:
        """LightGBM parameters: deterministic, seeded, thread-limited."""
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": 0.9,
            "lambda_l2": 1.0,
            "num_threads": self.num_threads,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def fit(self, transactions: ir.Table, cutoff: dt.date) -> CustomerValueModel:
        """Fit every part on transactions on or before ``cutoff`` (later rows are ignored)."""
        self.check_settings()
        horizon = int(self.horizon_days)
        first_order = transactions.order_ts.min().execute()
        history_days = (cutoff - pd.Timestamp(first_order).date()).days
        if history_days < 0:
            raise InsufficientDataError(
                f"no transactions on or before the cutoff {cutoff}: the first order is on "
                f"{pd.Timestamp(first_order).date()}; choose a later cutoff"
            )
        window = label_window_days(horizon, history_days, self.label_window_days)
        train_cutoff = cutoff - dt.timedelta(days=window)

        # Sorted: the BG/NBD warm start fits a seeded sample of rows, so the engine's row order would
        # otherwise move the parameters (~1e-8) and, through the boosters' bins, the scores.
        # The features at C give the BTYD summary here and the percentile grid in fit_level (one build).
        at_cutoff = (
            customer_features_frame(transactions, cutoff, time_unit=self.time_unit, windows_days=self.windows_days)
            .set_index("customer_id")
            .sort_index()
        )
        summary = at_cutoff[list(BTYD_COLUMNS)]
        try:
            refuse_unfittable(summary)
        except InsufficientDataError as error:
            # "all 1296 customers are one-time buyers" of a file of 2,000: the backtest's cutoff counts fewer.
            raise InsufficientDataError(f"as of {cutoff}: {error}") from None
        train_features = (
            customer_features_frame(transactions, train_cutoff, time_unit=self.time_unit, windows_days=self.windows_days)
            .set_index("customer_id")
            .sort_index()
        )
        # Drawn in customer-id order (the features are sorted by id): another spelling or sort order of the
        # ids is another split, as another random_state is (docs/models.md, "Seeds").
        rng = np.random.default_rng(self.random_state)
        rows = np.arange(len(train_features))
        if self.sample_customers is not None and len(rows) > self.sample_customers:
            rows = np.sort(rng.choice(len(rows), self.sample_customers, replace=False))
        is_holdout = rng.random(len(rows)) < self.holdout_fraction
        # Before any fit: a shop too small for the boosters heard about a Gamma-Gamma setting first.
        if is_holdout.sum() < 100 or (~is_holdout).sum() < 100:
            smaller_part = min(self.holdout_fraction, 1 - self.holdout_fraction)
            raise InsufficientDataError(
                f"{len(rows)} training customers (buyers up to {train_cutoff}) are too few to train and hold out: "
                f"the {self.holdout_fraction:.0%} holdout drew {int(is_holdout.sum())} and the fit "
                f"{int((~is_holdout).sum())}, and each needs 100 (about {int(np.ceil(100 / smaller_part)):,} customers "
                "or more): use a later cutoff, a shorter horizon or more history"
                + (f", or a shorter model.label_window_days (now {window}: the training customers are those who bought "
                   "before the window)" if self.label_window_days is not None else "")
                + "; a shop of fewer customers than that is too small for the LightGBM candidates"
            )
        with fitted_as_of(f"as of {cutoff}"):
            self.purchase_model_ = PurchaseModel(self.btyd, self.penalizer).fit(summary)
            self.spend_model_ = SpendModel(self.gamma_gamma_penalizer).fit(summary)

        labels = horizon_labels(transactions, train_cutoff, window).to_pandas().set_index("customer_id")
        labels = labels.reindex(train_features.index)
        labels = labels.fillna({"horizon_spend": 0.0, "horizon_orders": 0.0, "churned": True})
        # "only 20 customer(s) with a repeat purchase" of a shop with 760 at the cutoff: these fits are at C - L.
        with fitted_as_of(f"as of {train_cutoff}, the start of the {window}-day label window the boosters learn from",
                          f"; or a shorter model.label_window_days (now {window}) moves that start later"):
            early_purchase = PurchaseModel(self.btyd, self.penalizer).fit(train_features)
            early_spend = SpendModel(self.gamma_gamma_penalizer).fit(train_features)
        train_btyd = self.btyd_features(train_features, early_purchase, early_spend, window)
        train = train_features.join(train_btyd).iloc[rows]
        self.feature_names_ = [*model_feature_columns(self.windows_days), *BTYD_FEATURES]
        x = train[self.feature_names_].astype("float64")
        y_spend = labels.loc[train.index, "horizon_spend"].to_numpy(dtype="float64")
        y_churn = labels.loc[train.index, "churned"].to_numpy(dtype="float64")
        fit_rows, holdout_rows = ~is_holdout, is_holdout
        if y_churn[fit_rows].min() == y_churn[fit_rows].max():
            outcome = ("stopped buying (no order in the window)" if y_churn[fit_rows][0] == 1
                       else "bought again (nobody churned: a subscription-like shop?)")
            raise OneChurnOutcome(
                f"every one of the {int(fit_rows.sum()):,} training customers {outcome} in the {window}-day label window "
                f"after {train_cutoff}: the churn model needs customers of both outcomes (model.label_window_days: in a "
                "longer window more customers come back, in a shorter one more stop)")
        spend_base, churn_base = spend_margin(x), churn_margin(x)
        train_grid = quantile_grid(x)
        # Refunds can make a window's net spend negative; the log-link objective needs spend >= 0.
        self.regressor_ = lightgbm.train(
            self.booster_params(self.spend_objective),
            lightgbm.Dataset(to_percentiles(x[fit_rows], train_grid, self.num_threads), np.maximum(y_spend[fit_rows], 0.0), init_score=spend_base[fit_rows]),
            num_boost_round=self.n_estimators,
        )
        self.classifier_ = lightgbm.train(
            self.booster_params("binary"),
            lightgbm.Dataset(x[fit_rows], y_churn[fit_rows], init_score=churn_base[fit_rows]),
            num_boost_round=self.n_estimators,
        )
        self.label_window_days_ = window
        self.boosted_customers_ = int(fit_rows.sum())
        self.train_cutoff_ = train_cutoff
        self.cutoff_ = cutoff
        # The last purchase day it saw: a cutoff a few days past the data saw no later orders.
        self.data_end_ = cutoff - dt.timedelta(days=int(at_cutoff["days_since_last_order"].min()))
        self.fit_level(at_cutoff)
        self.model_format_ = MODEL_FORMAT
        self.select_blend(x[holdout_rows], y_spend[holdout_rows], y_churn[holdout_rows], train_btyd.loc[x.index[holdout_rows]], train_grid)
        return self

    def fit_level(self, frame: pd.DataFrame) -> None:
        """Percentile grid of the customers at the cutoff (``quantiles_``) and the shrunk booster level.

        ``frame`` holds the features of every customer at C (indexed by customer_id); like the BTYD
        models fitted at C it uses only transactions on or before the cutoff. ``booster_level_`` is
        the booster's total H spend over the BTYD total on these customers; the ``lightgbm``
        candidate keeps the booster's spread across customers and moves its total halfway (in logs)
        back toward BTYD's (``LEVEL_SHRINKAGE``).
        """
        self.level_shift_ = 0.0
        x, _ = self.booster_inputs(frame)
        self.quantiles_ = quantile_grid(x)
        horizon = self.btyd_features(frame, self.purchase_model_, self.spend_model_, self.horizon_days)
        btyd_total = horizon["btyd_expected_spend"].sum()
        booster_total = self.boosted_spend(x, horizon).sum()
        if not (btyd_total > 0 and np.isfinite(booster_total) and booster_total > 0):
            raise InsufficientDataError("no positive expected spend at the cutoff: cannot set the booster's level")
        self.booster_level_ = float(booster_total / btyd_total)
        self.level_shift_ = -LEVEL_SHRINKAGE * float(np.log(self.booster_level_))

    def select_blend(self, x: pd.DataFrame, spend: np.ndarray, churned: np.ndarray, btyd: pd.DataFrame, grid: np.ndarray) -> None:
        """Blend weight, total scaling, churn calibration and champion from the training-window holdout.

        ``grid`` is the percentile grid of the training rows (the holdout's own cutoff, C - L).
        """
        lightgbm_spend = self.boosted_spend(x, x, grid)
        btyd_spend = btyd["btyd_expected_spend"].to_numpy()
        raw_churn = self.boosted_churn(x)
        half = np.random.default_rng(self.random_state + 1).random(len(x)) < 0.5
        self.uncalibrated_note_ = None
        if np.unique(churned[half]).size == 2:
            self.churn_calibrator_ = LogisticRegression(C=1e6).fit(log_odds(raw_churn[half])[:, None], churned[half])
        else:  # a shop where nearly everyone buys again (or nobody does): scikit-learn refused with its own words
            stopped = bool(churned[half].size and churned[half][0] == 1)
            outcome, advice = (("stopped buying", "a longer one lets more of them come back") if stopped
                               else ("bought again", "a shorter one counts more customers as stopped"))
            self.churn_calibrator_ = UncalibratedChurn()
            self.uncalibrated_note_ = (
                f"churn is not calibrated: all {int(half.sum()):,} holdout customers it is calibrated on {outcome} in the "
                f"{self.label_window_days_}-day label window (churn rate {churned.mean():.1%} over the holdout), so churn_probability "
                f"is the booster's own (model.label_window_days: {advice})"
            )
        self.churn_reliability_ = reliability_table(self.calibrated_churn(raw_churn[~half]), churned[~half])
        self.select_churn_source(self.calibrated_churn(raw_churn[~half]), 1.0 - btyd["btyd_p_order"].to_numpy()[~half], churned[~half])

        blended = self.blend_weight * lightgbm_spend + (1.0 - self.blend_weight) * btyd_spend
        if blended.sum() <= 0 or spend.sum() <= 0:
            raise InsufficientDataError(
                "no positive spend in the training window's holdout: cannot scale the blend (refunds outweigh "
                "purchases there, or nobody bought in the window): set a longer model.label_window_days"
            )
        self.spend_scale_ = float(spend.sum() / blended.sum())
        # Judged with the scale learnt on the holdout's other half (cross-fitted): scaled on the customers it is
        # judged on, the blend's total error was 0 by construction (2.2e-16), a free pass on one of the rule's tests.
        cross_fitted = self.spend_scale_ * blended
        for judged in (half, ~half):
            learnt_on = ~judged
            if spend[learnt_on].sum() > 0 and blended[learnt_on].sum() > 0:
                cross_fitted[judged] = spend[learnt_on].sum() / blended[learnt_on].sum() * blended[judged]
        candidates = {"bgnbd_gg": btyd_spend, "lightgbm": lightgbm_spend, "blend": cross_fitted}
        self.selection_ = {
            name: {
                "normalized_gini": normalized_gini(values, spend),
                "decile_mape": decile_mape(values, spend),
                "total_error": total_error(values, spend),
            }
            for name, values in candidates.items()
        }
        if self.champion is None:
            self.champion_ = champion_rule(self.selection_)
            self.champion_reason_ = "champion_rule on the training window's holdout (selection_)"
        else:
            self.champion_ = self.champion
            self.champion_reason_ = "fixed by the champion setting (e.g. from a backtest)"

    def select_churn_source(self, booster_churn: np.ndarray, btyd_churn: np.ndarray, churned: np.ndarray) -> None:
        """The blend's churn score: the calibrated booster's, or BG/NBD's P(no order) when that ranks
        the holdout half better (``churn_selection_``: churn AUC of each). The spend champion is chosen
        on spend alone, and the blend used to ship the booster's churn even where BG/NBD's ranked
        churners better (synthetic data: AUC 0.798 vs 0.823)."""
        if churned.min() == churned.max():  # one outcome only: no AUC, keep the booster's
            self.churn_selection_, self.churn_source_ = {}, "booster"
            return
        self.churn_selection_ = {"booster": churn_auc(booster_churn, churned), "bgnbd_gg": churn_auc(btyd_churn, churned)}
        self.churn_source_ = "bgnbd_gg" if self.churn_selection_["bgnbd_gg"] > self.churn_selection_["booster"] else "booster"

    # --------------------------------------------------------------- scoring

    def btyd_features(self, features: pd.DataFrame, purchase_model: PurchaseModel, spend_model: SpendModel, days: float) -> pd.DataFrame:
        """BTYD outputs over ``days`` as LightGBM features: expected orders, P(alive), expected AOV and spend."""
        unit_days = DAYS_PER_UNIT[self.time_unit]
        orders = purchase_model.predict(features, days / unit_days)
        aov = spend_model.predict(features)["expected_aov"]
        summary = customer_frame(features, ("frequency", "T"))
        p_order = probability_of_order(purchase_model, summary, orders["p_alive"].to_numpy(), days, unit_days)
        return pd.DataFrame(
            {
                "btyd_expected_orders": orders["expected_orders"],
                "btyd_p_alive": orders["p_alive"],
                "btyd_p_order": p_order,
                "btyd_expected_aov": aov,
                "btyd_expected_spend": orders["expected_orders"] * aov,
            },
            index=orders.index,
        )

    def check_fitted(self) -> None:
        """Raise NotFittedError before ``fit``."""
        if not hasattr(self, "champion_"):
            raise NotFittedError("CustomerValueModel is not fitted yet: call fit(transactions, cutoff) first")

    def feature_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """A ``customer_features`` table indexed by customer_id, checked for the columns the model needs."""
        self.check_fitted()
        if not isinstance(features, pd.DataFrame):
            raise TypeError(f"features must be a pandas DataFrame (customer_features(...).to_pandas()), got {type(features).__name__}")
        frame = features.set_index("customer_id") if "customer_id" in features.columns else features
        frame.index = frame.index.rename("customer_id")
        missing = [name for name in self.booster_columns() if name not in frame.columns]
        if missing:
            raise ValueError(f"feature table lacks column(s) {missing}; build it with features.build.customer_features")
        self.check_time_unit(frame)
        return frame

    def fit_warnings(self) -> list[str]:
        """What the fit could not do as designed: churn left uncalibrated (``uncalibrated_note_``), then
        ``booster_warnings``."""
        return [note for note in (getattr(self, "uncalibrated_note_", None),) if note] + self.booster_warnings()

    def booster_warnings(self) -> list[str]:
        """A warning when a booster found no split (every tree one leaf, e.g. fewer customers than
        two leaves' min_child_samples): its candidates then only rescale the BTYD forecast."""
        self.check_fitted()
        flat = [name for name, booster in (("spend", self.regressor_), ("churn", self.classifier_))
                if all(tree["num_leaves"] <= 1 for tree in booster.dump_model()["tree_info"])]
        if not flat:
            return []
        customers = getattr(self, "boosted_customers_", None)
        among = f" among {customers:,} training customers" if customers is not None else ""
        return [
            f"LightGBM's {' and '.join(flat)} booster found no split{among} (at least {self.min_child_samples} a leaf): "
            "the lightgbm and blend candidates only rescale the BTYD forecast; use more customers or a smaller "
            "model.lightgbm.min_child_samples"
        ]

    def check_time_unit(self, frame: pd.DataFrame) -> None:
        """A ValueError when the table's recency and T are not in the model's time unit.

        Nothing else in a feature table says its unit, and a table built in weeks fed to a model of
        days scored 5.6 times the spend, silently (MLflow pyfunc users build the table themselves).
        T - recency is the time since the last purchase day, which days_since_last_order gives in days.
        """
        if not {"T", "recency", "days_since_last_order"} <= set(frame.columns):
            return
        days = frame["days_since_last_order"].to_numpy(dtype="float64")
        gap = (frame["T"].to_numpy(dtype="float64") - frame["recency"].to_numpy(dtype="float64")) * days_per_unit(self.time_unit)
        comparable = np.isfinite(days) & np.isfinite(gap) & (days > 0)
        if comparable.any() and np.mean(np.abs(gap[comparable] - days[comparable]) <= 1e-6 * days[comparable]) < 0.5:
            ratio = float(np.median(days[comparable] / np.where(gap[comparable] == 0, np.nan, gap[comparable]) * days_per_unit(self.time_unit)))
            raise ValueError(
                f"the feature table's recency and T are not in this model's time unit ({self.time_unit}; about {ratio:g} "
                f"days a unit in the table): build it with time_unit='{self.time_unit}' (config key features.time_unit)"
            )

    def booster_columns(self) -> list[str]:
        """The feature-table columns the boosters read (the BTYD outputs are computed, not read)."""
        return [name for name in self.feature_names_ if name not in BTYD_FEATURES]

    def model_inputs(self, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(LightGBM matrix over L, BTYD outputs over L, BTYD outputs over H) for a feature table."""
        frame = self.feature_frame(features)
        horizon = self.btyd_features(frame, self.purchase_model_, self.spend_model_, self.horizon_days)
        return (*self.booster_inputs(frame), horizon)

    def booster_inputs(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(LightGBM matrix over L, BTYD outputs over L) for an indexed feature table (raw feature values)."""
        window = self.btyd_features(frame, self.purchase_model_, self.spend_model_, self.label_window_days_)
        x = frame[self.booster_columns()].astype("float64").join(window)[self.feature_names_]
        return x, window

    def boosted_spend(self, x: pd.DataFrame, base: pd.DataFrame, grid: np.ndarray | None = None) -> np.ndarray:
        """LightGBM spend: the BTYD spend in ``base`` times the boosted multiplicative correction learnt on x.

        The booster reads x as percentiles on ``grid`` (default ``quantiles_``, the customers at the
        cutoff); ``level_shift_`` shrinks its aggregate level toward BTYD's (see ``fit_level``).
        """
        percentiles = to_percentiles(x, self.quantiles_ if grid is None else grid, self.num_threads)
        correction = booster_output(self.regressor_, percentiles, raw_score=True, num_threads=self.num_threads)
        return np.exp(correction + self.level_shift_ + spend_margin(base))

    def boosted_churn(self, x: pd.DataFrame) -> np.ndarray:
        """Uncalibrated P(no order in the label window): the BTYD log-odds plus the boosted correction."""
        correction = booster_output(self.classifier_, x, raw_score=True, num_threads=self.num_threads)
        return 1.0 / (1.0 + np.exp(-(correction + churn_margin(x))))

    def calibrated_churn(self, raw_churn: np.ndarray) -> np.ndarray:
        """Calibrated P(no order in the label window) from the booster's uncalibrated probability."""
        if not len(raw_churn):  # scikit-learn refuses zero samples
            return np.empty(0)
        return self.churn_calibrator_.predict_proba(log_odds(raw_churn)[:, None])[:, 1]

    def candidate_predictions(self, features: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """``{candidate: DataFrame(predicted_spend, churn_probability)}`` for every candidate."""
        return self.candidates_from_inputs(*self.model_inputs(features))

    def candidates_from_inputs(self, x: pd.DataFrame, window: pd.DataFrame, horizon: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """``candidate_predictions`` from ``model_inputs`` already computed."""
        btyd_spend = horizon["btyd_expected_spend"].to_numpy()
        lightgbm_spend = self.boosted_spend(x, horizon)
        blended = self.spend_scale_ * (self.blend_weight * lightgbm_spend + (1.0 - self.blend_weight) * btyd_spend)
        window_churn = self.calibrated_churn(self.boosted_churn(x))
        order_window = window["btyd_p_order"].to_numpy()
        order_horizon = horizon["btyd_p_order"].to_numpy()
        safe = order_window > 1e-12
        order_ratio = np.where(safe, order_horizon / np.where(safe, order_window, 1.0), 1.0)
        churn = np.clip(1.0 - (1.0 - window_churn) * order_ratio, 0.0, 1.0)
        index = x.index
        textbook = btyd_candidate(horizon)
        # Models fitted before the churn source was chosen shipped the booster's.
        blend_churn = textbook["churn_probability"].to_numpy() if getattr(self, "churn_source_", "booster") == "bgnbd_gg" else churn
        return {
            "bgnbd_gg": textbook,
            "lightgbm": pd.DataFrame({"predicted_spend": lightgbm_spend, "churn_probability": churn}, index=index),
            "blend": pd.DataFrame({"predicted_spend": blended, "churn_probability": blend_churn}, index=index),
        }

    def discount_factor(self, features: pd.DataFrame) -> np.ndarray:
        """Per-customer present value of one unit of horizon spend spread along the BTYD order curve.

        The curve (cumulative expected orders at 30-day steps and at H) is evaluated once per
        distinct (frequency, T): its shape does not depend on recency (``order_curve_shape``).
        """
        rate = self.discount_rate_annual
        steps = np.unique(np.append(np.arange(30, self.horizon_days, 30), self.horizon_days)).astype(float)
        unit_days = DAYS_PER_UNIT[self.time_unit]
        cumulative = self.purchase_model_.order_curve_shape(features, steps / unit_days)
        increments = np.diff(cumulative, axis=1, prepend=0.0)
        midpoints = (steps - np.diff(np.append(0.0, steps)) / 2.0) / DAYS_PER_YEAR
        weights = (1.0 + rate) ** (-midpoints)
        total = cumulative[:, -1]
        # Customers with no expected orders get spend spread evenly over the horizon.
        even = np.sum(np.diff(np.append(0.0, steps)) / self.horizon_days * weights)
        safe = total > 1e-12
        return np.where(safe, (increments @ weights) / np.where(safe, total, 1.0), even)

    def year_share(self, features: pd.DataFrame) -> np.ndarray:
        """Per customer, expected orders in the next 365 days over those in the horizon H.

        Ratios of the BTYD order curve (``order_curve_shape``: exact, recency cancels). 1 for
        H = 365; 365 / H (a constant rate) for a customer with no expected orders.
        """
        if self.horizon_days == DAYS_PER_YEAR:
            return np.ones(len(features))
        unit_days = DAYS_PER_UNIT[self.time_unit]
        curve = self.purchase_model_.order_curve_shape(features, np.array([DAYS_PER_YEAR, self.horizon_days]) / unit_days)
        safe = curve[:, 1] > 1e-12
        return np.where(safe, curve[:, 0] / np.where(safe, curve[:, 1], 1.0), DAYS_PER_YEAR / self.horizon_days)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Scores per customer from a ``customer_features`` table at the scoring date.

        Returns a DataFrame indexed by customer_id with ``predicted_orders`` (BTYD expected orders
        over H), ``predicted_spend`` (undiscounted, from the champion), ``predicted_spend_12m`` (the
        champion's spend moved along the BTYD order curve to the next 365 days: the figure 12-month
        tier thresholds compare with; equal to ``predicted_spend`` when H is 365 days),
        ``predicted_ltv`` (discounted), ``p_alive`` and ``churn_probability`` (no order in H; from
        the champion).
        """
        frame = self.feature_frame(features)
        horizon = self.btyd_features(frame, self.purchase_model_, self.spend_model_, self.horizon_days)
        if self.champion_ == "bgnbd_gg":  # the boosters are not needed: skip them (a third of the time)
            champion = btyd_candidate(horizon)
        else:
            x, window = self.booster_inputs(frame)
            champion = self.candidates_from_inputs(x, window, horizon)[self.champion_]
        return pd.DataFrame(
            {
                "predicted_orders": horizon["btyd_expected_orders"],
                "predicted_spend": champion["predicted_spend"],
                "predicted_spend_12m": champion["predicted_spend"] * self.year_share(frame),
                "predicted_ltv": champion["predicted_spend"] * self.discount_factor(frame),
                "p_alive": horizon["btyd_p_alive"],
                "churn_probability": champion["churn_probability"],
            },
            index=frame.index,
        )

    def explain(self, features: pd.DataFrame) -> pd.DataFrame:
        """SHAP contributions (LightGBM ``pred_contrib``) of each feature to the spend correction, per customer.

        The spend booster multiplies the BTYD forecast by ``exp(correction)``; the columns are the
        exact SHAP values of that log correction per feature, plus ``expected_value`` (the booster's
        mean plus ``level_shift_``), so each row sums to log(LightGBM spend / BTYD spend). Positive
        values raise the customer's predicted spend above the BTYD forecast, negative ones lower it.
        The booster reads percentiles (``to_percentiles``), so a value is the effect of where the
        customer stands among the customers at the cutoff. When the textbook model is the champion
        (its forecast uses no booster), its own factors instead (``btyd_explanation``).
        """
        x, _, _ = self.model_inputs(features)
        if self.champion_ == "bgnbd_gg" and set(BTYD_FACTORS.values()) <= set(self.feature_names_):
            return self.btyd_explanation(x)
        percentiles = to_percentiles(x, self.quantiles_, self.num_threads)
        contributions = booster_output(self.regressor_, percentiles, pred_contrib=True, num_threads=self.num_threads)
        contributions[:, -1] += self.level_shift_
        return pd.DataFrame(contributions, index=x.index, columns=[*self.feature_names_, "expected_value"])

    def btyd_explanation(self, x: pd.DataFrame) -> pd.DataFrame:
        """`explain` for the textbook champion, whose forecast uses no booster (SHAP of the spend
        booster would explain a model that did not score): its two factors, BG/NBD expected orders
        and Gamma-Gamma expected order value over the label window, as log ratios to the median
        customer's at the cutoff (``quantiles_``). The columns are named after the feature each
        factor reads the customer's standing from (``BTYD_FACTORS``: repeat days, average repeat
        order), so the reasons quote the customer's own values; ``expected_value`` is the median
        customer's log expected spend."""
        middle = self.quantiles_[len(self.quantiles_) // 2]
        median = dict(zip(self.feature_names_, middle))
        columns, reference = {}, 0.0
        for column, factor in BTYD_FACTORS.items():
            level = np.log(max(float(median[factor]), SMALLEST_SPEND))
            columns[column] = np.log(np.maximum(x[factor].to_numpy(dtype="float64"), SMALLEST_SPEND)) - level
            reference += level
        columns["expected_value"] = np.full(len(x), reference)
        return pd.DataFrame(columns, index=x.index)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature of the spend regressor, largest first."""
        self.check_fitted()
        gains = self.regressor_.feature_importance(importance_type="gain")
        return pd.Series(gains, index=self.feature_names_, name="gain").sort_values(ascending=False)


class UncalibratedChurn:
    """Stands in for the Platt calibrator when the holdout half it is fitted on holds one churn outcome
    (scikit-learn cannot fit it): the booster's probability as it is, in ``predict_proba``'s shape."""

    def predict_proba(self, log_odds_column: np.ndarray) -> np.ndarray:
        probability = 1.0 / (1.0 + np.exp(-log_odds_column[:, 0]))
        return np.column_stack([1.0 - probability, probability])


def booster_output(booster: lightgbm.Booster, x: pd.DataFrame, **options) -> np.ndarray:
    """``booster.predict(x, **options)``, also for zero rows (no rising star this week), which LightGBM refuses.

    The empty result has the shape LightGBM gives one row: (0,) for scores, (0, features + 1) for
    ``pred_contrib``.
    """
    if len(x):
        return booster.predict(x, **options)
    width = x.shape[1] + 1 if options.get("pred_contrib") else None
    return np.empty((0, width) if width else (0,))


def snapped(x: pd.DataFrame) -> np.ndarray:
    """The values rounded to float32 precision (~7 digits), as float64.

    The engine sums amounts in no fixed order, so equal spends can differ in the last bits from run
    to run; unrounded, such ties would split around a grid point, move some percentiles by one grid
    step and, through LightGBM's bins, the fitted trees (seen: totals moving by ~0.3% between two
    fits of the same data).
    """
    return x.to_numpy(dtype="float64").astype("float32").astype("float64")


def quantile_grid(x: pd.DataFrame, points: int = QUANTILE_POINTS) -> np.ndarray:
    """Per column, ``points`` evenly spaced quantiles (0 to 1) of the non-missing values: shape (points, columns)."""
    values = snapped(x)
    grid = np.full((points, values.shape[1]), np.nan)
    present = ~np.isnan(values).all(axis=0)
    if present.any():
        grid[:, present] = np.nanquantile(values[:, present], np.linspace(0.0, 1.0, points), axis=0)
    return grid


def to_percentiles(x: pd.DataFrame, grid: np.ndarray, threads: int = 1) -> pd.DataFrame:
    """Each value as its mid-rank percentile (0 to 1) on the column's quantile ``grid``; missing stays missing.

    The percentile is the share of grid points below the value plus half the share equal to it, so
    tied values share one percentile and the map is monotone: a tree on percentiles splits the same
    customers as one on raw values of the same population, but reads a later population by its
    standing rather than by raw amounts that grow with the history. Columns are mapped on up to
    `threads` threads (NumPy's binary search releases the GIL; 1M customers x 24 columns: ~2.4 s on
    one thread, ~1.2 s on two); the result does not depend on it.
    """
    values = snapped(x)
    if grid.shape[1] != values.shape[1]:
        raise ValueError(f"quantile grid has {grid.shape[1]} column(s), the feature matrix {values.shape[1]}")
    out = np.full(values.shape, np.nan, order="F")  # column by column: contiguous writes

    def fill(column: int) -> None:
        points = grid[:, column]
        out[:, column] = mid_rank_positions(points, values[:, column]) / (2.0 * len(points))

    mapped = [column for column in range(values.shape[1]) if not np.isnan(grid[:, column]).any()]
    if threads > 1 and len(values) >= PARALLEL_PERCENTILE_ROWS:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(fill, mapped))
    else:
        for column in mapped:
            fill(column)
    out[np.isnan(values)] = np.nan
    return pd.DataFrame(out, index=x.index, columns=x.columns)


def mid_rank_positions(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each value, (grid points below it) + (grid points not above it), on a sorted grid.

    One binary search per value (the grid's own ties give the count of points equal to it):
    half the cost of searching both sides, for a million customers and ~25 features per score.
    """
    below = np.searchsorted(points, values, side="left")
    at = np.minimum(below, len(points) - 1)
    equal_run = np.searchsorted(points, points, side="right") - np.arange(len(points))
    return 2 * below + np.where(points[at] == values, equal_run[at], 0)


def btyd_candidate(horizon: pd.DataFrame) -> pd.DataFrame:
    """The textbook candidate's scores from the BTYD outputs over H: spend, and the chance of no
    order in H as churn (what the churn label and the boosters' churn are).

    Not 1 - P(alive): BG/NBD holds every customer without a repeat purchase alive (P(alive) = 1),
    so the one-time buyers, most of those who do not come back, ranked as the least likely to
    churn (CDNOW 1997-09-30/273: churn AUC 0.32 with 1 - P(alive)).
    """
    return pd.DataFrame(
        {"predicted_spend": horizon["btyd_expected_spend"].to_numpy(), "churn_probability": 1.0 - horizon["btyd_p_order"].to_numpy()},
        index=horizon.index,
    )


def spend_margin(btyd: pd.DataFrame) -> np.ndarray:
    """Log of the BTYD expected spend: the starting point the spend booster corrects."""
    return np.log(np.maximum(btyd["btyd_expected_spend"].to_numpy(), SMALLEST_SPEND))


def churn_margin(btyd: pd.DataFrame) -> np.ndarray:
    """Log-odds of no order per the BTYD model: the starting point the churn booster corrects."""
    return log_odds(1.0 - btyd["btyd_p_order"].to_numpy())


def log_odds(probability: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    clipped = np.clip(probability, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return np.log(clipped / (1.0 - clipped))


def reliability_table(probability: np.ndarray, outcome: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability vs observed rate in equal-count bins (a reliability diagram's data)."""
    order = np.argsort(probability, kind="stable")
    group = np.empty(len(probability), dtype=int)
    group[order] = np.arange(len(probability)) * bins // len(probability)
    frame = pd.DataFrame({"bin": group, "predicted": probability, "observed": outcome})
    return frame.groupby("bin").agg(predicted=("predicted", "mean"), observed=("observed", "mean"), customers=("observed", "size"))
