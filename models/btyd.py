"""Buy-till-you-die models: purchase counts (BG/NBD, Pareto/NBD, MBG/NBD) and spend per order (Gamma-Gamma).

Both classes take a per-customer BTYD summary (``frequency``, ``recency``, ``T`` and, for
Gamma-Gamma, ``monetary_value``; lifetimes' definitions) as a pandas DataFrame indexed by
``customer_id`` (or with a ``customer_id`` column). They fit on weighted unique rows, keep only
their parameters, and predict with lifetimes' own formulas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

MIN_REPEAT_CUSTOMERS = 30
"""Fewest customers with a repeat purchase (frequency > 0) a BTYD model is fitted on.

Below this the population parameters of the repeat-purchase and drop-out processes are not
identified well enough to rank anyone; the models refuse rather than return noise."""

PURCHASE_MODELS = {
    "bgnbd": (BetaGeoFitter, ("r", "alpha", "a", "b")),
    "pareto": (ParetoNBDFitter, ("r", "alpha", "s", "beta")),
    "mbgnbd": (ModifiedBetaGeoFitter, ("r", "alpha", "a", "b")),
}


class NotFittedError(RuntimeError):
    """A model was asked to predict before ``fit`` was called."""


class InsufficientDataError(ValueError):
    """The data cannot identify the model (too few repeat customers, all one-time buyers)."""


class ModelFitError(ValueError):
    """The optimizer did not reach usable parameters (no convergence, NaN or infinite values)."""


def customer_frame(summary: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The ``columns`` of a per-customer table, indexed by customer_id, as float64; clear errors otherwise."""
    if not isinstance(summary, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of per-customer values, got {type(summary).__name__}")
    frame = summary.set_index("customer_id") if "customer_id" in summary.columns else summary
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"per-customer table lacks column(s) {missing}; it has {list(frame.columns)}")
    frame = frame.loc[:, list(columns)].astype("float64")
    bad = frame.isna().any(axis=1) | ~np.isfinite(frame.to_numpy()).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} customer(s) have missing or infinite {list(columns)}, "
            f"e.g. {frame[bad].head(3).to_dict('index')}"
        )
    frame.index = frame.index.rename("customer_id")
    return frame


def check_summary(frame: pd.DataFrame) -> None:
    """Refuse summaries that break lifetimes' definitions (negative values, recency > T, fractional frequency)."""
    problems = {
        "negative frequency, recency or T": (frame[["frequency", "recency", "T"]] < 0).any(axis=1),
        "recency greater than T": frame["recency"] > frame["T"] + 1e-9,
        "recency > 0 with frequency 0": (frame["frequency"] == 0) & (frame["recency"] != 0),
        "non-integer frequency": frame["frequency"] != np.round(frame["frequency"]),
    }
    for what, rows in problems.items():
        if rows.any():
            raise ValueError(f"BTYD summary has {what} for {int(rows.sum())} customer(s), e.g. {frame[rows].head(3).to_dict('index')}")


def unique_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Distinct value combinations of ``columns`` with a ``weight`` column counting the customers on each."""
    return frame.groupby(columns, sort=True).size().rename("weight").reset_index()


def bgnbd_negative_log_likelihood(
    log_params: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    penalizer: float,
) -> tuple[float, np.ndarray]:
    """Weighted mean BG/NBD negative log-likelihood and its analytic gradient in log-parameters.

    The same objective as lifetimes' ``BetaGeoFitter._negative_log_likelihood`` (Fader, Hardie
    and Lee 2005, section 7), written with numpy and digamma so that large weighted tables fit
    without automatic differentiation.
    """
    r, alpha, a, b = np.exp(log_params)
    x = frequency
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    log_alpha_t = np.log(alpha + T)
    log_alpha_rec = np.log(alpha + recency)
    b_shift = b + np.maximum(x, 1) - 1
    a3 = -(r + x) * log_alpha_t
    a4 = np.log(a) - np.log(b_shift) - (r + x) * log_alpha_rec
    top = np.where(repeat, np.maximum(a3, a4), a3)
    e3 = np.exp(a3 - top)
    e4 = np.where(repeat, np.exp(a4 - top), 0.0)
    total = e3 + e4
    log_likelihood = a1 + a2 + np.log(total) + top
    share3, share4 = e3 / total, e4 / total
    total_weight = weights.sum()

    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - share3 * log_alpha_t - share4 * log_alpha_rec
    d_alpha = r / alpha - share3 * (r + x) / (alpha + T) - share4 * (r + x) / (alpha + recency)
    digamma_ab, digamma_abx = digamma(a + b), digamma(a + b + x)
    d_a = digamma_ab - digamma_abx + share4 / a
    d_b = digamma_ab + digamma(b + x) - digamma(b) - digamma_abx - share4 / b_shift
    params = np.array([r, alpha, a, b])
    gradient = np.array([weights @ d for d in (d_r, d_alpha, d_a, d_b)])
    value = -(weights @ log_likelihood) / total_weight + penalizer * np.sum(params**2)
    gradient = -gradient * params / total_weight + 2.0 * penalizer * params**2
    return float(value), gradient


def fit_bgnbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    penalizer: float = 0.0,
    tol: float = 1e-7,
) -> pd.Series:
    """BG/NBD maximum likelihood exactly as lifetimes sets it up (time scaled so max T = 1,
    log-parameters starting at 0.1, scipy BFGS, ``tol``), with the analytic gradient above."""
    scale = 1.0 / T.max()
    result = minimize(
        bgnbd_negative_log_likelihood,
        x0=np.full(4, 0.1),
        jac=True,
        tol=tol,
        args=(frequency, recency * scale, T * scale, weights, penalizer),
    )
    gradient_norm = float(np.max(np.abs(result.jac))) if result.jac is not None else np.inf
    # BFGS reports "precision loss" at optima flat to machine precision; accept those when the gradient is ~0.
    if not (result.success or gradient_norm < 1e-5):
        raise ModelFitError(
            f"BG/NBD did not converge ({result.message}); try a small penalizer (e.g. penalizer=0.001) "
            "or a coarser time_unit ('weeks')"
        )
    r, alpha, a, b = np.exp(result.x)
    return pd.Series({"r": r, "alpha": alpha / scale, "a": a, "b": b})


class PurchaseModel:
    """Repeat purchases and P(alive) per customer from a buy-till-you-die model.

    ``model="bgnbd"`` is the BG/NBD model of Fader, Hardie and Lee (2005), "Counting Your Customers
    the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284;
    ``"pareto"`` the Pareto/NBD of Schmittlein, Morrison and Colombo (1987), Management Science
    33(1), 1-24; ``"mbgnbd"`` the MBG/NBD of Batislam, Denizel and Filiztekin (2007), IJRM 24(3).
    The likelihood is evaluated on unique (frequency, recency, T) rows weighted by their customer
    counts. BG/NBD is maximised with a vectorised analytic gradient that reproduces lifetimes'
    ``BetaGeoFitter`` parameters; the others use lifetimes' fitters. Predictions use lifetimes'
    formulas.

    Parameters
    ----------
    model : {"bgnbd", "pareto", "mbgnbd"}
        Which purchase-count model.
    penalizer : float
        L2 penalty on the parameters (lifetimes' ``penalizer_coef``); 0 reproduces the papers.

    Attributes
    ----------
    params_ : pandas.Series
        Fitted parameters (r, alpha, a, b) or (r, alpha, s, beta); alpha, beta in the summary's time unit.
    n_customers_ : int
        Customers the model was fitted on.

    Raises
    ------
    InsufficientDataError
        Fewer than ``MIN_REPEAT_CUSTOMERS`` customers with a repeat purchase.
    ModelFitError
        The optimizer did not converge or produced non-finite parameters.
    """

    def __init__(self, model: str = "bgnbd", penalizer: float = 0.0):
        self.model = model
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame) -> PurchaseModel:
        """Fit on a BTYD summary (frequency, recency, T per customer)."""
        if self.model not in PURCHASE_MODELS:
            raise ValueError(f"unknown BTYD model {self.model!r}; choose one of {sorted(PURCHASE_MODELS)}")
        if self.penalizer < 0:
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer}")
        frame = customer_frame(summary, ("frequency", "recency", "T"))
        check_summary(frame)
        repeaters = int((frame["frequency"] > 0).sum())
        if repeaters == 0:
            raise InsufficientDataError(
                f"all {len(frame)} customers are one-time buyers (frequency 0): a BTYD model cannot be fitted; "
                "use a longer history or an earlier cutoff"
            )
        if repeaters < MIN_REPEAT_CUSTOMERS:
            raise InsufficientDataError(
                f"only {repeaters} customer(s) with a repeat purchase; BTYD models need at least "
                f"{MIN_REPEAT_CUSTOMERS}: use more customers or a longer history"
            )
        if (frame["T"] <= 0).all():
            raise InsufficientDataError("every customer has T = 0 (all first purchases on the cutoff day)")
        rows = unique_rows(frame, ["frequency", "recency", "T"])
        args = (rows["frequency"].to_numpy(), rows["recency"].to_numpy(), rows["T"].to_numpy(), rows["weight"].to_numpy())
        if self.model == "bgnbd":
            params = fit_bgnbd(*args, penalizer=self.penalizer)
        else:
            fitter_class, _ = PURCHASE_MODELS[self.model]
            options = {"initial_params": np.ones(4)} if self.model == "pareto" else {}
            try:
                fitter = fitter_class(penalizer_coef=self.penalizer).fit(*args[:3], weights=args[3], **options)
            except ConvergenceError as error:
                raise ModelFitError(
                    f"{self.model} did not converge; try a small penalizer (e.g. penalizer=0.001) or time_unit='weeks'"
                ) from error
            params = fitter.params_.astype(float)
        if not np.all(np.isfinite(params.to_numpy())) or np.any(params.to_numpy() <= 0):
            raise ModelFitError(
                f"{self.model} produced unusable parameters {params.round(6).to_dict()}; "
                "try a small penalizer (e.g. penalizer=0.001)"
            )
        self.params_ = params.rename(None)
        self.n_customers_ = len(frame)
        return self

    def fitter(self):
        """A lifetimes fitter carrying this model's parameters, for its prediction formulas."""
        if not hasattr(self, "params_"):
            raise NotFittedError("PurchaseModel is not fitted yet: call fit(summary) first")
        fitter_class, names = PURCHASE_MODELS[self.model]
        fitter = fitter_class(penalizer_coef=self.penalizer)
        fitter.params_ = self.params_[list(names)]
        return fitter

    def predict(self, summary: pd.DataFrame, horizon: float) -> pd.DataFrame:
        """Expected repeat orders over ``horizon`` (summary's time unit) and P(alive) per customer.

        Returns a DataFrame indexed by customer_id with ``expected_orders`` and ``p_alive``.
        Evaluated once per unique (frequency, recency, T) row, then mapped back to customers.
        """
        fitter = self.fitter()
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon}")
        frame = customer_frame(summary, ("frequency", "recency", "T"))
        check_summary(frame)
        keys = ["frequency", "recency", "T"]
        rows = frame.drop_duplicates(keys).reset_index(drop=True)
        f, r, t = (rows[k].to_numpy() for k in keys)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rows["expected_orders"] = fitter.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t)
            rows["p_alive"] = fitter.conditional_probability_alive(f, r, t)
        if not np.isfinite(rows[["expected_orders", "p_alive"]].to_numpy()).all():
            raise ModelFitError(
                f"{self.model} predictions are not finite for some customers (parameters {self.params_.round(4).to_dict()}); "
                "refit with a small penalizer (e.g. penalizer=0.001)"
            )
        result = frame.reset_index().merge(rows, on=keys, how="left").set_index("customer_id")
        return result[["expected_orders", "p_alive"]]


class SpendModel:
    """Expected average order value per customer from the Gamma-Gamma model.

    Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
    Journal of Marketing Research 42(4), 415-430; the conditional expectation is equation (5) of
    Fader and Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
    (http://www.brucehardie.com/notes/025/). Fitted with lifetimes' ``GammaGammaFitter`` on the
    unique (frequency, monetary_value) rows of customers with frequency > 0 and
    monetary_value > 0, weighted by their counts.

    Every customer gets a prediction: the conditional expectation
    ``(1 - w) * population_mean + w * monetary_value`` with ``w = p x / (p x + q - 1)``. Customers
    without repeat purchases, or whose average repeat order value is zero or negative (refunds),
    carry no usable spend evidence and get the frequency-0 case of that formula: the population
    mean ``p v / (q - 1)``.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (lifetimes' ``penalizer_coef``).

    Attributes
    ----------
    params_ : pandas.Series
        Fitted (p, q, v).
    population_mean_ : float
        ``p v / (q - 1)``, the expected order value of a customer with no evidence.

    Raises
    ------
    InsufficientDataError
        Fewer than ``MIN_REPEAT_CUSTOMERS`` customers with a repeat purchase of positive value.
    ModelFitError
        No convergence, non-finite parameters, or q <= 1 (no finite population mean).
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame) -> SpendModel:
        """Fit on a BTYD summary with ``frequency`` and ``monetary_value`` per customer."""
        frame = customer_frame(summary, ("frequency", "monetary_value"))
        usable = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
        if len(usable) < MIN_REPEAT_CUSTOMERS:
            raise InsufficientDataError(
                f"only {len(usable)} customer(s) with a repeat purchase of positive value; Gamma-Gamma needs at "
                f"least {MIN_REPEAT_CUSTOMERS}: use more customers or a longer history"
            )
        rows = unique_rows(usable, ["frequency", "monetary_value"])
        try:
            fitter = GammaGammaFitter(penalizer_coef=self.penalizer).fit(
                rows["frequency"], rows["monetary_value"], weights=rows["weight"].to_numpy()
            )
        except ConvergenceError as error:
            raise ModelFitError("Gamma-Gamma did not converge; try a small penalizer (e.g. penalizer=0.001)") from error
        params = fitter.params_.astype(float).rename(None)
        p, q, v = params
        if not np.all(np.isfinite(params.to_numpy())) or q <= 1:
            raise ModelFitError(
                f"Gamma-Gamma parameters {params.round(4).to_dict()} give no finite mean order value (needs q > 1); "
                "try a penalizer (e.g. penalizer=0.001) or check for outlier order values"
            )
        self.params_ = params
        self.population_mean_ = float(p * v / (q - 1))
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Expected average order value per customer (``expected_aov``), indexed by customer_id."""
        if not hasattr(self, "params_"):
            raise NotFittedError("SpendModel is not fitted yet: call fit(summary) first")
        frame = customer_frame(summary, ("frequency", "monetary_value"))
        evidence = (frame["frequency"] > 0) & (frame["monetary_value"] > 0)
        fitter = GammaGammaFitter(penalizer_coef=self.penalizer)
        fitter.params_ = self.params_
        expected = fitter.conditional_expected_average_profit(
            frame["frequency"].where(evidence, 0.0), frame["monetary_value"].where(evidence, 0.0)
        )
        return pd.DataFrame({"expected_aov": expected.astype("float64")}, index=frame.index)
