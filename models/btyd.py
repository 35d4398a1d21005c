"""Buy-till-you-die models: purchase counts (BG/NBD, Pareto/NBD, MBG/NBD) and spend per order (Gamma-Gamma).

Both classes take a per-customer BTYD summary (``frequency``, ``recency``, ``T`` and, for
Gamma-Gamma, ``monetary_value``; lifetimes' definitions) as a pandas DataFrame indexed by
``customer_id`` (or with a ``customer_id`` column). They fit on weighted unique rows, keep only
their parameters, and predict with lifetimes' own formulas (BG/NBD's expected orders with
``bgnbd_expected_orders``, which keeps that formula finite for every parameter).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

MIN_REPEAT_CUSTOMERS = 30
"""Fewest customers with a repeat purchase (frequency > 0) a BTYD model is fitted on.

Below this the population parameters of the repeat-purchase and drop-out processes are not
identified well enough to rank anyone; the models refuse rather than return noise."""

class StableParetoNBDFitter(ParetoNBDFitter):
    """lifetimes' Pareto/NBD fitter with the A_0 term of the likelihood as a stable log-difference.

    Fader & Hardie's note (pareto_nbd_derivations, eqs. 18-20) writes the likelihood with
    A_0 = F(t_x) - F(T), F(u) = 2F1(r+s+x, b; r+s+x+1; |alpha-beta| / (max(alpha, beta) + u)) /
    (max(alpha, beta) + u)^(r+s+x). lifetimes forms log A_0 with a signed logsumexp that returns NaN
    when the two terms are equal and large (t_x = T, a frequent buyer who bought on the last day:
    CDNOW has one with x = 170, and every Pareto/NBD score of the run failed on it). Here
    log A_0 = log F(t_x) + log(-expm1(log F(T) - log F(t_x))): -inf (A_0 = 0) when t_x = T, exact
    otherwise. lifetimes' prediction formulas read the likelihood through these overrides.
    """

    @staticmethod
    def _log_A_0(params, freq, recency, age):  # noqa: N802 (lifetimes' name)
        from scipy.special import hyp2f1

        r, alpha, s, beta = params
        freq, recency, age = (np.asarray(v, dtype="float64") for v in (freq, recency, age))
        upper = max(alpha, beta)
        second = (r + freq) if alpha < beta else np.full_like(freq, s + 1.0)
        first = r + s + freq

        def log_f(u):
            return np.log(hyp2f1(first, second, first + 1.0, abs(alpha - beta) / (upper + u))) - first * np.log(upper + u)

        # inf - inf (2F1 overflowing) gives NaN, which the likelihood turns into a rejected step.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            at_last, at_end = log_f(recency), log_f(age)
            return at_last + np.log(-np.expm1(np.minimum(at_end - at_last, 0.0)))

    @staticmethod
    def _conditional_log_likelihood(params, freq, rec, T):  # noqa: N803 (lifetimes' names)
        r, alpha, s, beta = params
        x = np.asarray(freq, dtype="float64")
        T = np.asarray(T, dtype="float64")  # noqa: N806
        log_a_1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive_at_end = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        died_before = np.log(s) - np.log(r + s + x) + StableParetoNBDFitter._log_A_0(params, x, rec, T)
        with np.errstate(invalid="ignore"):
            return log_a_1 + np.logaddexp(alive_at_end, died_before)

    @staticmethod
    def _negative_log_likelihood(params, freq, rec, T, weights, penalizer_coef):  # noqa: N803
        if np.any(np.asarray(params) <= 0.0):
            return np.inf
        log_likelihood = StableParetoNBDFitter._conditional_log_likelihood(params, freq, rec, T)
        penalty = penalizer_coef * np.sum(np.asarray(params) ** 2)
        value = -(weights * log_likelihood).sum() / weights.mean() + penalty
        # Where the likelihood cannot be evaluated (2F1 overflowing for very large s or beta) the
        # simplex is sent back, as for non-positive parameters, instead of wandering on NaN.
        return value if np.isfinite(value) else np.inf


PURCHASE_MODELS = {
    "bgnbd": (BetaGeoFitter, ("r", "alpha", "a", "b")),
    "pareto": (StableParetoNBDFitter, ("r", "alpha", "s", "beta")),
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


def distinct_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct value combinations of ``columns`` (sorted) and, per row of ``frame``, the position of its combination.

    One sorted ``pandas.factorize`` per column and one ``numpy.unique`` of the combined codes: a
    million customers take a fraction of a second rather than a multi-column groupby's seconds.
    """
    key = np.zeros(len(frame), dtype="int64")
    for column in columns:
        code, values = pd.factorize(frame[column].to_numpy(), sort=True)
        if key.max(initial=0) >= np.iinfo("int64").max // (len(values) + 1):
            key = np.unique(key, return_inverse=True)[1]
        key = key * len(values) + code
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return frame.iloc[first][columns].reset_index(drop=True), inverse


def unique_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Distinct value combinations of ``columns``, sorted, with a ``weight`` column counting the customers on each."""
    rows, inverse = distinct_rows(frame, columns)
    rows["weight"] = np.bincount(inverse, minlength=len(rows))
    return rows


class BGNBDLikelihood:
    """The BG/NBD log-likelihood of weighted (frequency, recency, T) rows, arranged to be cheap to evaluate.

    The likelihood of Fader, Hardie and Lee (2005, section 7) per customer is
    ``A(x) - (r + x) log(alpha + T) + [x > 0] softplus(d)`` with
    ``d = log a - log(b + x - 1) - (r + x) (log(alpha + t_x) - log(alpha + T))``, where ``A(x)``
    collects the gamma-function terms. ``A`` depends on the frequency only (a few hundred distinct
    values), the second term on T only once summed, so both are evaluated per distinct value; only
    ``softplus(d)`` needs one pass over the repeat buyers' rows, with logarithms looked up per
    distinct recency and T. The same objective as lifetimes'
    ``BetaGeoFitter._negative_log_likelihood``, with its analytic gradient.
    """

    def __init__(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray):
        frequency, recency, T = (np.asarray(v, dtype="float64") for v in (frequency, recency, T))
        weights = np.asarray(weights, dtype="float64")
        self.total_weight = weights.sum()
        frequency_code, self.frequencies = pd.factorize(frequency)
        self.frequency_weight = np.bincount(frequency_code, weights, len(self.frequencies))
        age_code, self.ages = pd.factorize(T)
        self.age_weight = np.bincount(age_code, weights, len(self.ages))
        self.age_frequency_weight = np.bincount(age_code, weights * frequency, len(self.ages))
        # The repeat buyers' rows, merged where (frequency, recency, T) repeat: the one pass over rows.
        repeat = frequency > 0
        recency_code, self.recencies = pd.factorize(recency[repeat])
        row_key = (frequency_code[repeat] * len(self.recencies) + recency_code) * len(self.ages) + age_code[repeat]
        row_code, distinct_keys = pd.factorize(row_key)
        first = pd.Series(row_code).drop_duplicates().index.to_numpy()
        self.repeat_frequency_code = frequency_code[repeat][first]
        self.repeat_age_code = age_code[repeat][first]
        self.repeat_recency_code = recency_code[first]
        self.repeat_frequency = frequency[repeat][first]
        self.repeat_weight = np.bincount(row_code, weights[repeat], len(distinct_keys))

    def __call__(self, log_params: np.ndarray, penalizer: float = 0.0) -> tuple[float, np.ndarray]:
        """Weighted mean negative log-likelihood (plus lifetimes' L2 penalty) and its gradient in log-parameters."""
        r, alpha, a, b = params = np.exp(log_params)
        x, w_x = self.frequencies, self.frequency_weight
        gamma_terms = (
            gammaln(r + x) - gammaln(r) + r * np.log(alpha)
            + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        )
        log_age = np.log(alpha + self.ages)
        age_terms = -(r * self.age_weight + self.age_frequency_weight) @ log_age
        log_shifted_b = np.log(b + np.maximum(x, 1.0) - 1.0)

        shape = r + self.repeat_frequency
        log_age_row = log_age[self.repeat_age_code]
        log_recency_row = np.log(alpha + self.recencies)[self.repeat_recency_code]
        log_ratio = log_recency_row - log_age_row
        d = (np.log(a) - log_shifted_b)[self.repeat_frequency_code] - shape * log_ratio
        # softplus(d) = max(d, 0) + log(1 + e) and sigmoid(d) from e = exp(-|d|): one exp and one log per row.
        # log(1 + e) rather than log1p: its absolute error (~1e-16) is what a sum of log-likelihoods sees.
        one_plus_tail = 1.0 + np.exp(-np.abs(d))
        softplus = np.maximum(d, 0.0) + np.log(one_plus_tail)
        low_share = 1.0 / one_plus_tail
        weighted_share = self.repeat_weight * np.where(d >= 0, low_share, 1.0 - low_share)
        log_likelihood = w_x @ gamma_terms + age_terms + self.repeat_weight @ softplus

        digamma_ab, digamma_abx = digamma(a + b), digamma(a + b + x)
        inverse_recency_gap = (1.0 / (alpha + self.recencies))[self.repeat_recency_code] - (1.0 / (alpha + self.ages))[self.repeat_age_code]
        share_total = weighted_share.sum()
        share_by_frequency = np.bincount(self.repeat_frequency_code, weighted_share, len(x))
        gradient = np.array(
            [
                w_x @ (digamma(r + x) - digamma(r) + np.log(alpha)) - self.age_weight @ log_age - weighted_share @ log_ratio,
                w_x.sum() * r / alpha
                - (r * self.age_weight + self.age_frequency_weight) @ (1.0 / (alpha + self.ages))
                - (weighted_share * shape) @ inverse_recency_gap,
                w_x @ (digamma_ab - digamma_abx) + share_total / a,
                w_x @ (digamma_ab + digamma(b + x) - digamma(b) - digamma_abx) - share_by_frequency @ (1.0 / np.exp(log_shifted_b)),
            ]
        )
        value = -log_likelihood / self.total_weight + penalizer * np.sum(params**2)
        gradient = -gradient * params / self.total_weight + 2.0 * penalizer * params**2
        return float(value), gradient


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
    and Lee 2005, section 7); see ``BGNBDLikelihood`` for how it is evaluated.
    """
    return BGNBDLikelihood(frequency, recency, T, weights)(log_params, penalizer)


WARM_START_ROWS = 20_000
"""Above this many rows the BG/NBD fit starts from a fit on a seeded sample of this size."""


def minimize_bgnbd(likelihood: BGNBDLikelihood, start: np.ndarray, penalizer: float, tol: float, hess_inv0=None):
    """scipy BFGS on ``likelihood`` from ``start`` (log-parameters), optionally with an initial inverse Hessian."""
    options = {} if hess_inv0 is None else {"hess_inv0": hess_inv0}
    return minimize(likelihood, x0=start, jac=True, tol=tol, args=(penalizer,), method="BFGS", options=options)


def warm_start(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray, penalizer: float, tol: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-parameters and inverse Hessian of the BG/NBD fit on a seeded sample of ``WARM_START_ROWS`` rows.

    The sample's optimum lies within sampling error of the full one and its curvature is the
    full objective's (the objective is a weighted mean), so BFGS on all rows needs a few steps
    instead of the few dozen from lifetimes' fixed start. None for the Hessian if it is not
    positive definite (BFGS then starts from the identity).
    """
    chosen = np.sort(np.random.default_rng(0).choice(len(frequency), WARM_START_ROWS, replace=False))
    sample = BGNBDLikelihood(frequency[chosen], recency[chosen], T[chosen], weights[chosen])
    result = minimize_bgnbd(sample, np.full(4, 0.1), penalizer, tol)
    step = 1e-5
    hessian = np.column_stack(
        [(sample(result.x + step * e, penalizer)[1] - sample(result.x - step * e, penalizer)[1]) / (2 * step) for e in np.eye(4)]
    )
    hessian = (hessian + hessian.T) / 2
    if not np.all(np.isfinite(hessian)) or np.linalg.eigvalsh(hessian).min() <= 0:
        return result.x, None
    inverse = np.linalg.inv(hessian)
    return result.x, (inverse + inverse.T) / 2


def fit_bgnbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    penalizer: float = 0.0,
    tol: float = 1e-7,
) -> pd.Series:
    """BG/NBD maximum likelihood as lifetimes sets it up (time scaled so max T = 1, scipy BFGS,
    gradient tolerance ``tol``), with the analytic gradient of ``BGNBDLikelihood``.

    Up to ``WARM_START_ROWS`` rows BFGS starts where lifetimes does (log-parameters 0.1); above,
    from the fit on a seeded sample with its inverse Hessian (``warm_start``). Both stop at the same
    gradient tolerance on all rows, so they reach the same optimum (to ~1e-6 relative).
    """
    frequency, recency, T, weights = (np.asarray(v, dtype="float64") for v in (frequency, recency, T, weights))
    scale = 1.0 / T.max()
    recency, T = recency * scale, T * scale
    likelihood = BGNBDLikelihood(frequency, recency, T, weights)
    start, hess_inv0 = np.full(4, 0.1), None
    if len(frequency) > WARM_START_ROWS:
        start, hess_inv0 = warm_start(frequency, recency, T, weights, penalizer, tol)
    result = minimize_bgnbd(likelihood, start, penalizer, tol, hess_inv0)
    gradient_norm = float(np.max(np.abs(result.jac))) if result.jac is not None else np.inf
    # BFGS reports "precision loss" at optima flat to machine precision; accept those when the gradient is ~0.
    if not (result.success or gradient_norm < 1e-5):
        raise ModelFitError(
            # Not a coarser time unit: the fit rescales time (max T = 1), so weeks give the same fit.
            f"BG/NBD did not converge ({result.message}); {penalizer_advice(penalizer)}"
        )
    r, alpha, a, b = np.exp(result.x)
    return pd.Series({"r": r, "alpha": alpha / scale, "a": a, "b": b})


def penalizer_advice(penalizer: float) -> str:
    """What to try when a purchase model does not converge: a small penalizer, or ten times the one set
    (the advice repeated "penalizer=0.001" to a user who had set it)."""
    if penalizer <= 0:
        return "try a small penalizer (penalizer=0.001; config key model.penalizer)"
    return f"try a larger penalizer (penalizer={penalizer * 10:g}, ten times the {penalizer:g} set; config key model.penalizer)"


def decayed_hypergeometric(shape: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray, log_decay: np.ndarray) -> np.ndarray:
    """``exp(log_decay) * 2F1(shape, b; c; z)`` for c > 0, as lifetimes evaluates it in BG/NBD's expectation.

    The 2F1 is taken in logs, and where it overflows, through Euler's transformation
    ``2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z)``. For c > 0 every term of the
    series is positive, so the logarithm is defined.
    """
    log_term = np.log(hyp2f1(shape, b, c, z))
    log_term_euler = np.log(hyp2f1(c - shape, c - b, c, z)) + (c - shape - b) * np.log(1 - z)
    log_term = np.where(np.isinf(log_term), log_term_euler, log_term)
    return np.exp(log_term + log_decay)


def bgnbd_expected_orders(params: pd.Series, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
    """BG/NBD expected repeat purchases in (T, T + t] given (frequency x, recency t_x, T), for every BG/NBD parameter.

    Fader, Hardie and Lee (2005, eq. 10):
    ``E = P(alive) * c / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; c; z)]``
    with ``c = a + b + x - 1`` and ``z = t / (alpha + T + t)``; P(alive) is lifetimes'
    ``conditional_probability_alive``. lifetimes (``BetaGeoFitter``) takes the logarithm of the 2F1,
    which is negative when c < 0: customers without a repeat purchase (x = 0) when the fitted
    a + b < 1 (the synthetic data at 2023-07-03 fits a = 0.09, b = 0.80), and every one of them got
    NaN. Here for c >= 1 the formula is lifetimes', to the last bit. For c < 1 (so -1 < c < 1, near
    the pole of 2F1 at c = 0) the product ``c 2F1(c)`` comes from the 2F1s at c + 1 and c + 2, whose
    series are positive, by Gauss's contiguous relation (DLMF 15.5.18):
    ``c 2F1(c) = [(c + 1)(c - (2c + 1 - A - B) z) 2F1(c + 1) + (c + 1 - A)(c + 1 - B) z 2F1(c + 2)]
    / ((c + 1)(1 - z))`` with A = r + x, B = b + x (so c + 1 - B = a). Both branches agree with a
    numerical integral of the definition over the Beta-distributed drop-out probability to ~1e-12
    (measured; the tests ask 1e-9).
    """
    r, alpha, a, b = (float(params[name]) for name in ("r", "alpha", "a", "b"))
    x, t_x, age = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype="float64")) for v in (frequency, recency, T)))
    shape, b_x, c = r + x, b + x, a + b + x - 1.0
    z = t / (alpha + age + t)
    log_decay = shape * np.log((alpha + age) / (alpha + t + age))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        alive_orders = c / (a - 1.0) * (1.0 - decayed_hypergeometric(shape, b_x, c, z, log_decay))
        near_pole = c < 1.0
        if near_pole.any():
            shape, b_x, c, z, log_decay = (v[near_pole] for v in (shape, b_x, c, z, log_decay))
            above = decayed_hypergeometric(shape, b_x, c + 1.0, z, log_decay)
            two_above = decayed_hypergeometric(shape, b_x, c + 2.0, z, log_decay)
            c_times_term = ((c + 1.0) * (c - (2.0 * c + 1.0 - shape - b_x) * z) * above + (a + b - r) * a * z * two_above) / (
                (c + 1.0) * (1.0 - z)
            )
            alive_orders[near_pole] = (c - c_times_term) / (a - 1.0)
        # 1 / P(alive); an overflowing power gives inf and so 0 expected orders, its limit.
        odds_dead = np.where(x > 0, (a / (b + x - 1.0)) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0)
        return alive_orders / (1.0 + odds_dead)


def refuse_unfittable(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's (frequency, recency, T) rows, checked; InsufficientDataError when no purchase model
    can be fitted on them whatever the shop's size (no customer who bought, no repeat buyer, every first
    purchase on the cutoff day). `CustomerValueModel` asks this before it counts customers for its
    holdout, so such data are named for what they hold, not for being few."""
    frame = customer_frame(summary, ("frequency", "recency", "T"))
    check_summary(frame)
    if frame.empty:
        raise InsufficientDataError(
            "no customer has a purchase day to fit on (only refunds, or no rows, before the cutoff): "
            "a BTYD model needs customers who bought, and at least "
            f"{MIN_REPEAT_CUSTOMERS} who bought on two or more days"
        )
    if not (frame["frequency"] > 0).any():
        raise InsufficientDataError(
            f"all {len(frame)} customers are one-time buyers (frequency 0): a BTYD model cannot be fitted; "
            "it needs customers who bought on two or more days (a longer history, or more customers)"
        )
    if (frame["T"] <= 0).all():
        raise InsufficientDataError("every customer has T = 0 (all first purchases on the cutoff day)")
    return frame


class PurchaseModel:
    """Repeat purchases and P(alive) per customer from a buy-till-you-die model.

    ``model="bgnbd"`` is the BG/NBD model of Fader, Hardie and Lee (2005), "Counting Your Customers
    the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284;
    ``"pareto"`` the Pareto/NBD of Schmittlein, Morrison and Colombo (1987), Management Science
    33(1), 1-24; ``"mbgnbd"`` the MBG/NBD of Batislam, Denizel and Filiztekin (2007), IJRM 24(3).
    The likelihood is evaluated on unique (frequency, recency, T) rows weighted by their customer
    counts. BG/NBD is maximised with a vectorised analytic gradient that reproduces lifetimes'
    ``BetaGeoFitter`` parameters; the others use lifetimes' fitters. Predictions use lifetimes'
    formulas; BG/NBD's expected orders ``bgnbd_expected_orders``, the same formula kept finite
    where lifetimes' gives NaN (fitted a + b < 1).

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
        frame = refuse_unfittable(summary)
        repeaters = int((frame["frequency"] > 0).sum())
        if repeaters < MIN_REPEAT_CUSTOMERS:
            raise InsufficientDataError(
                f"only {repeaters} customer(s) with a repeat purchase; BTYD models need at least "
                f"{MIN_REPEAT_CUSTOMERS}: use more customers or a longer history"
            )
        if self.model == "bgnbd":
            # BGNBDLikelihood merges equal rows itself (per distinct frequency, T and repeat-buyer row).
            columns = (frame[column].to_numpy() for column in ("frequency", "recency", "T"))
            params = fit_bgnbd(*columns, np.ones(len(frame)), penalizer=self.penalizer)
        else:
            rows = unique_rows(frame, ["frequency", "recency", "T"])
            args = (rows["frequency"].to_numpy(), rows["recency"].to_numpy(), rows["T"].to_numpy(), rows["weight"].to_numpy())
            fitter_class, _ = PURCHASE_MODELS[self.model]
            options = {"initial_params": np.ones(4)} if self.model == "pareto" else {}
            try:
                with quiet_lifetimes():
                    fitter = fitter_class(penalizer_coef=self.penalizer).fit(*args[:3], weights=args[3], **options)
            except ConvergenceError as error:
                raise ModelFitError(
                    # Not a coarser time unit: weeks are days / 7 and the fit rescales time, so it sees the same numbers.
                    f"{self.model} did not converge; {penalizer_advice(self.penalizer)} "
                    "or another purchase model (config key model.btyd: bgnbd)"
                ) from error
            params = fitter.params_.astype(float)
        if not np.all(np.isfinite(params.to_numpy())) or np.any(params.to_numpy() <= 0):
            raise ModelFitError(
                f"{self.model} produced unusable parameters {params.round(6).to_dict()}; "
                "try a small penalizer (penalizer=0.001; config key model.penalizer)"
            )
        self.params_ = params.rename(None)
        self.n_customers_ = len(frame)
        return self

    def check_fitted(self) -> None:
        """NotFittedError before ``fit``."""
        if not hasattr(self, "params_"):
            raise NotFittedError("PurchaseModel is not fitted yet: call fit(summary) first")

    def fitter(self):
        """A lifetimes fitter carrying this model's parameters, for its prediction formulas."""
        self.check_fitted()
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
        rows, inverse = distinct_rows(frame, ["frequency", "recency", "T"])
        f, r, t = (rows[k].to_numpy() for k in ("frequency", "recency", "T"))
        expected_orders = self.expected_orders(horizon, f, r, t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p_alive = np.asarray(fitter.conditional_probability_alive(f, r, t), dtype="float64")
        self.check_finite(expected_orders, p_alive, rows)
        return pd.DataFrame({"expected_orders": expected_orders[inverse], "p_alive": p_alive[inverse]}, index=frame.index)

    def expected_orders(self, horizon: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
        """Expected repeat orders over ``horizon`` per row: ``bgnbd_expected_orders`` for BG/NBD, lifetimes' formula otherwise."""
        self.check_fitted()
        if self.model == "bgnbd":
            return bgnbd_expected_orders(self.params_, horizon, frequency, recency, T)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(
                self.fitter().conditional_expected_number_of_purchases_up_to_time(horizon, frequency, recency, T), dtype="float64"
            )

    def check_finite(self, expected_orders: np.ndarray, p_alive: np.ndarray | None, rows: pd.DataFrame) -> None:
        """A ModelFitError naming example rows when a prediction formula gave NaN or inf."""
        finite = np.isfinite(expected_orders)
        bad = ~(finite.all(axis=1) if finite.ndim == 2 else finite)
        if p_alive is not None:
            bad |= ~np.isfinite(p_alive)
        if bad.any():
            raise ModelFitError(
                f"{self.model} predictions are not finite for {int(bad.sum())} distinct customer histories, "
                f"e.g. {rows[bad].head(3).to_dict('records')} (parameters {self.params_.round(4).to_dict()}); "
                "a small penalizer keeps the parameters moderate (penalizer=0.001; config key model.penalizer)"
                + ("" if self.model == "bgnbd" else ", or use btyd='bgnbd' (config key model.btyd), whose formula is evaluated stably")
            )

    def order_curve_shape(self, summary: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
        """Expected repeat orders by each of ``horizons`` (summary's time unit), up to a per-customer factor.

        In BG/NBD, MBG/NBD and Pareto/NBD the conditional expectation is P(alive)-like factor (constant
        in the horizon, the only place recency enters) times a curve in the horizon that depends on
        frequency and T only. So the curve is evaluated once per distinct (frequency, T), with recency
        set to T, and its ratios between horizons are exact. Returns an array (customers, horizons).
        """
        self.check_fitted()
        frame = customer_frame(summary, ("frequency", "T"))
        rows, inverse = distinct_rows(frame, ["frequency", "T"])
        f, t = rows["frequency"].to_numpy(), rows["T"].to_numpy()
        curve = np.column_stack([self.expected_orders(h, f, t, t) for h in horizons])
        self.check_finite(curve, None, rows)
        return curve[inverse]


# Gradient tolerance of the last Gamma-Gamma attempt. BFGS can stop on "precision loss" with the
# gradient already ~1e-7 at the optimum (lifetimes then reports no convergence); the last-bit
# differences of order values summed in another row order are enough to tip a fit into that.
# At this tolerance (values in units of their median, log parameters) the optimum is the same.
GAMMA_GAMMA_LOOSE_TOL = 1e-5


@contextlib.contextmanager
def quiet_lifetimes():
    """lifetimes prints scipy's whole optimizer result to stdout before raising ConvergenceError, and
    the optimizer's trial steps raise numpy's overflow and invalid-value RuntimeWarnings (176 of them,
    356 lines, before a one-line error); the ModelFitError raised from it says what failed and what to
    change, and the fitted parameters are checked for finite values."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def fit_gamma_gamma(rows: pd.DataFrame, penalizer: float, scale: float, tol: float = 1e-7) -> pd.Series:
    """lifetimes' Gamma-Gamma fit on weighted unique rows with order values divided by `scale`; v in original units."""
    with quiet_lifetimes():
        fitter = GammaGammaFitter(penalizer_coef=penalizer).fit(
            rows["frequency"], rows["monetary_value"] / scale, weights=rows["weight"].to_numpy(), tol=tol
        )
    params = fitter.params_.astype(float).rename(None).copy()
    params["v"] = params["v"] * scale
    return params


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
    without repeat purchases carry no spend evidence and get the frequency-0 case of that formula,
    the population mean ``p v / (q - 1)``. Customers whose repeat orders average zero or less ($0
    orders, or purchases refunded) get the formula with ``monetary_value`` 0, ``(1 - w) *
    population_mean``: the more such orders, the nearer 0 (they got the population mean, and a
    customer with 14 free orders was projected the shop's average spend and nominated a rising star).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (lifetimes' ``penalizer_coef``). It pulls q towards 0 and q <= 1
        has no finite mean, so keep it 0 unless the fit does not converge; it is set apart from the
        purchase model's (``CustomerValueModel(gamma_gamma_penalizer=...)``).

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
        if self.penalizer < 0:
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer}")
        frame = customer_frame(summary, ("frequency", "monetary_value"))
        usable = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
        if len(usable) < MIN_REPEAT_CUSTOMERS:
            raise InsufficientDataError(
                f"only {len(usable)} customer(s) with a repeat purchase of positive value; Gamma-Gamma needs at "
                f"least {MIN_REPEAT_CUSTOMERS}: use more customers or a longer history"
            )
        rows = unique_rows(usable, ["frequency", "monetary_value"])
        # Gamma-Gamma is scale-equivariant (values / c -> v / c, same p and q), and the optimizer
        # fails more often on large order values: refit on values in units of their median, then
        # with the looser gradient tolerance (GAMMA_GAMMA_LOOSE_TOL).
        median = float(np.median(usable["monetary_value"]))
        attempts = [(1.0, 1e-7), (median, 1e-7), (median, GAMMA_GAMMA_LOOSE_TOL)]
        for scale, tol in attempts:
            try:
                params = fit_gamma_gamma(rows, self.penalizer, scale=scale, tol=tol)
                break
            except ConvergenceError as error:
                failure = error
        else:
            advice = (
                "try a small Gamma-Gamma penalizer (gamma_gamma_penalizer=0.001; config key model.gamma_gamma_penalizer; "
                "larger values pull q below 1)"
                if self.penalizer == 0
                else "check the data for outlier order values (e.g. test or B2B orders)"
            )
            lowest, highest = float(usable["monetary_value"].min()), float(usable["monetary_value"].max())
            if highest - lowest <= 1e-6 * max(abs(highest), 1.0):  # nothing for the spread of values to fit
                advice = (f"every repeat customer's average order value is the same ({lowest:g}), and Gamma-Gamma fits "
                          f"how they differ; {advice}")
            raise ModelFitError(
                f"Gamma-Gamma did not converge (also on rescaled order values) with penalizer {self.penalizer}; {advice}"
            ) from failure
        p, q, v = params
        if not np.all(np.isfinite(params.to_numpy())) or q <= 1:
            raise ModelFitError(
                f"Gamma-Gamma parameters {params.round(4).to_dict()} give no finite mean order value (needs q > 1); "
                + self.heavy_tail_advice()
            )
        self.params_ = params
        self.population_mean_ = float(p * v / (q - 1))
        return self

    def heavy_tail_advice(self) -> str:
        """What can make q > 1: less penalty if there is one (it pulls every parameter towards 0), else the data."""
        if self.penalizer > 0:
            return (
                f"the L2 penalty ({self.penalizer}) pulls q towards 0: lower the Gamma-Gamma penalizer "
                "(gamma_gamma_penalizer; config key model.gamma_gamma_penalizer, default 0)"
            )
        return (
            "the average repeat order values are too heavy-tailed for Gamma-Gamma (a penalizer would only lower q): "
            "check the data for outlier order values (e.g. test or B2B orders) and remove or cap them"
        )

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Expected average order value per customer (``expected_aov``), indexed by customer_id."""
        if not hasattr(self, "params_"):
            raise NotFittedError("SpendModel is not fitted yet: call fit(summary) first")
        frame = customer_frame(summary, ("frequency", "monetary_value"))
        repeat = frame["frequency"] > 0
        fitter = GammaGammaFitter(penalizer_coef=self.penalizer)
        fitter.params_ = self.params_
        expected = fitter.conditional_expected_average_profit(
            frame["frequency"].where(repeat, 0.0), frame["monetary_value"].clip(lower=0.0).where(repeat, 0.0)
        )
        return pd.DataFrame({"expected_aov": expected.astype("float64")}, index=frame.index)
