import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

from features.btyd import btyd_summary
from models.btyd import (
    MIN_REPEAT_CUSTOMERS,
    WARM_START_ROWS,
    InsufficientDataError,
    ModelFitError,
    NotFittedError,
    PurchaseModel,
    SpendModel,
    StableParetoNBDFitter,
    bgnbd_expected_orders,
    bgnbd_negative_log_likelihood,
)

PUBLISHED = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "pareto": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return load_cdnow_summary(index_col=[0])


def assert_close(params: pd.Series, published: dict, rel: float, half_unit: float = 5e-4) -> None:
    """Within ``rel`` relative, or within half a unit of the last printed decimal (``half_unit``).

    The papers print three decimals: r = 0.243 is the rounding of 0.2426 (1.7e-3 relative), so the
    rounding tolerance is the tightest test the printed value supports.
    """
    for name, value in published.items():
        assert abs(params[name] - value) <= max(rel * value, half_unit), (name, params[name], value)


@pytest.mark.parametrize("model", ["bgnbd", "pareto"])
def test_purchase_model_reproduces_published_cdnow_estimates(summary, model):
    assert_close(PurchaseModel(model).fit(summary).params_, PUBLISHED[model], rel=1e-3)


def test_stable_pareto_nbd_equals_lifetimes_and_stays_finite_where_lifetimes_gives_nan():
    params = pd.Series({"r": 0.611, "alpha": 95.3, "s": 0.3126, "beta": 43.06})  # CDNOW master in days
    theirs, ours = ParetoNBDFitter(), StableParetoNBDFitter()
    theirs.params_ = ours.params_ = params
    rng = np.random.default_rng(0)
    x = rng.integers(0, 30, 1000).astype(float)
    T = rng.uniform(10.0, 500.0, 1000)
    t_x = np.where(x > 0, rng.uniform(0.0, 1.0, 1000) * T, 0.0)
    np.testing.assert_allclose(ours.conditional_probability_alive(x, t_x, T), theirs.conditional_probability_alive(x, t_x, T), rtol=1e-10)
    np.testing.assert_allclose(
        ours.conditional_expected_number_of_purchases_up_to_time(180, x, t_x, T),
        theirs.conditional_expected_number_of_purchases_up_to_time(180, x, t_x, T),
        rtol=1e-10,
    )
    # CDNOW's most frequent buyer: 170 repeat days, the last on the cutoff. lifetimes: NaN.
    x, t_x, T = np.array([170.0, 170.0]), np.array([496.0, 495.0]), np.array([496.0, 496.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(theirs.conditional_expected_number_of_purchases_up_to_time(180, x, t_x, T)[0])
    p_alive = ours.conditional_probability_alive(x, t_x, T)
    expected = ours.conditional_expected_number_of_purchases_up_to_time(180, x, t_x, T)
    assert p_alive[0] == 1.0 and 0.99 < p_alive[1] < 1.0  # bought on the cutoff day: alive
    assert np.isfinite(expected).all() and expected[0] > expected[1] > 0


def test_stable_pareto_nbd_rejects_parameters_it_cannot_evaluate():
    """Very large s and beta overflow 2F1; the simplex must be sent back (inf), never fed NaN."""
    x, t_x, T, weights = np.array([170.0, 3.0]), np.array([400.0, 100.0]), np.array([496.0, 300.0]), np.ones(2)
    for params in ([1.6, 58.4, 69.0, 40093.8], [1.6, 58.4, 1e6, 1e9]):
        assert StableParetoNBDFitter._negative_log_likelihood(np.array(params), x, t_x, T, weights, 0.0) == np.inf
    assert np.isfinite(StableParetoNBDFitter._negative_log_likelihood(np.array([0.6, 95.3, 0.31, 43.1]), x, t_x, T, weights, 0.0))


def test_pareto_scores_every_cdnow_master_customer(cdnow_master):
    summary = btyd_summary(cdnow_master, dt.date(1998, 6, 30)).to_pandas().set_index("customer_id")
    predictions = PurchaseModel("pareto").fit(summary).predict(summary, 180)
    assert len(predictions) == 23570 and np.isfinite(predictions.to_numpy()).all()


def test_gamma_gamma_reproduces_published_cdnow_estimates():
    assert_close(SpendModel().fit(load_cdnow_summary_data_with_monetary_value()).params_, GAMMA_GAMMA, rel=1e-3, half_unit=5e-3)


def test_features_summary_of_cdnow_sample_gives_published_estimates(cdnow_sample):
    # CDNOW_sample's 39-week calibration period ends 1997-09-30; the features' summary, not lifetimes', feeds the models.
    summary = btyd_summary(cdnow_sample, dt.date(1997, 9, 30), "weeks").to_pandas()
    assert len(summary) == 2357
    assert_close(PurchaseModel("bgnbd").fit(summary).params_, PUBLISHED["bgnbd"], rel=1e-2)
    assert_close(SpendModel().fit(summary).params_, GAMMA_GAMMA, rel=1e-2, half_unit=5e-3)


def test_weighted_unique_rows_match_lifetimes_on_raw_rows(summary):
    raw = BetaGeoFitter().fit(summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy())
    ours = PurchaseModel("bgnbd").fit(summary).params_
    np.testing.assert_allclose(ours[raw.params_.index].to_numpy(), raw.params_.to_numpy(), rtol=1e-4)


def test_penalized_fit_matches_lifetimes(summary):
    raw = BetaGeoFitter(penalizer_coef=0.01).fit(summary["frequency"], summary["recency"], summary["T"])
    ours = PurchaseModel("bgnbd", penalizer=0.01).fit(summary).params_
    np.testing.assert_allclose(ours[raw.params_.index].to_numpy(), raw.params_.to_numpy(), rtol=1e-4)


def test_analytic_gradient_matches_finite_differences(summary):
    args = (summary["frequency"].to_numpy(), summary["recency"].to_numpy() / 40, summary["T"].to_numpy() / 40, np.ones(len(summary)), 0.1)
    point = np.log([0.3, 0.2, 0.9, 2.0])
    value, gradient = bgnbd_negative_log_likelihood(point, *args)
    reference = BetaGeoFitter._negative_log_likelihood(point, *args)
    assert value == pytest.approx(float(reference), rel=1e-10)
    step = 1e-6
    numeric = [
        (bgnbd_negative_log_likelihood(point + step * np.eye(4)[i], *args)[0] - bgnbd_negative_log_likelihood(point - step * np.eye(4)[i], *args)[0]) / (2 * step)
        for i in range(4)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("model", ["bgnbd", "pareto", "mbgnbd"])
def test_predictions_equal_lifetimes_formulas(summary, model):
    fitted = PurchaseModel(model).fit(summary)
    predicted = fitted.predict(summary, 39)
    fitter = fitted.fitter()
    args = summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy()
    np.testing.assert_allclose(predicted["expected_orders"], fitter.conditional_expected_number_of_purchases_up_to_time(39, *args), rtol=1e-12)
    np.testing.assert_allclose(predicted["p_alive"], fitter.conditional_probability_alive(*args), rtol=1e-12)
    assert predicted.index.name == "customer_id" and len(predicted) == len(summary)
    if model == "bgnbd":  # where lifetimes' formula is finite ours is lifetimes', to the last bit
        np.testing.assert_array_equal(predicted["expected_orders"], fitter.conditional_expected_number_of_purchases_up_to_time(39, *args))


def expected_orders_by_integration(params: dict, t: float, x: float, t_x: float, T: float) -> float:  # noqa: N803
    """BG/NBD E[X(T, T + t)] from its definition: P(alive) times E[(1 - (1 + p t / (alpha + T))^-(r + x)) / p], p ~ Beta(a, b + x)."""
    from scipy import integrate, stats

    r, alpha, a, b = (params[name] for name in ("r", "alpha", "a", "b"))
    k = t / (alpha + T)
    integrand = lambda p: -np.expm1(-(r + x) * np.log1p(k * p)) / p * stats.beta.pdf(p, a, b + x)  # noqa: E731
    alive_orders = integrate.quad(integrand, 0.0, 1.0, limit=200, epsabs=0.0, epsrel=1e-12)[0]
    odds_dead = 0.0 if x == 0 else a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return alive_orders / (1.0 + odds_dead)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 1.4796, "alpha": 51.4872, "a": 0.0923, "b": 0.7975},  # synthetic seed 1 at 2023-07-03: a + b < 1
        {"r": 0.5, "alpha": 3.0, "a": 0.3, "b": 0.7 - 1e-9},  # a + b - 1 just below 0, next to 2F1's pole
        {"r": 2.0, "alpha": 10.0, "a": 0.5, "b": 0.6},  # 0 < a + b - 1 < 1: the contiguous-relation branch
        {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258},  # CDNOW: lifetimes' branch
    ],
)
def test_bgnbd_expected_orders_match_the_definition_for_any_parameters(params):
    histories = [(0, 0, 95), (0, 0, 0), (0, 0, 300), (1, 10, 95), (5, 80, 95), (30, 90, 95)]
    x, t_x, T = (np.array(column, dtype=float) for column in zip(*histories))
    for t in (30.0, 365.0):
        ours = bgnbd_expected_orders(pd.Series(params), t, x, t_x, T)
        reference = [expected_orders_by_integration(params, t, *row) for row in histories]
        np.testing.assert_allclose(ours, reference, rtol=1e-9)
    lifetimes_fitter = BetaGeoFitter()
    lifetimes_fitter.params_ = pd.Series(params)
    with np.errstate(invalid="ignore"):
        theirs = lifetimes_fitter.conditional_expected_number_of_purchases_up_to_time(30.0, x, t_x, T)
    # lifetimes takes log(2F1), and 2F1 < 0 when a + b + x - 1 < 0: NaN for the one-time buyers.
    assert np.isnan(theirs[x == 0]).all() == (params["a"] + params["b"] < 1)


@pytest.fixture(scope="module")
def synthetic_seed_1():
    import ibis

    from features.synthetic import generate_transactions

    transactions, _ = generate_transactions(3000, 1)
    return ibis.memtable(transactions)


def test_bgnbd_scores_every_customer_when_the_fit_has_a_plus_b_below_one(synthetic_seed_1):
    """`vipcast backtest` at 2024-01-01 failed here: BG/NBD at 2023-07-03 (its training window) gave NaN orders."""
    summary = btyd_summary(synthetic_seed_1, dt.date(2023, 7, 3)).to_pandas().set_index("customer_id")
    model = PurchaseModel().fit(summary)
    assert model.params_["a"] + model.params_["b"] < 1
    predicted = model.predict(summary, 365)
    assert np.isfinite(predicted.to_numpy()).all() and (predicted["expected_orders"] > 0).all()
    shape = model.order_curve_shape(summary, np.array([30.0, 365.0]))
    assert np.isfinite(shape).all() and (shape[:, 1] > shape[:, 0]).all()


def test_non_finite_predictions_name_the_config_key(summary):
    model = PurchaseModel("mbgnbd").fit(summary)
    model.params_ = model.params_.copy()
    model.params_["r"] = np.nan
    with pytest.raises(ModelFitError, match=r"model\.penalizer.*model\.btyd"):
        model.predict(summary, 39)


def test_a_penalized_gamma_gamma_with_q_below_one_advises_less_penalty_not_more(cdnow_sample):
    summary = btyd_summary(cdnow_sample, dt.date(1997, 9, 30), "weeks").to_pandas()
    for penalizer in (0.01, 0.1):  # q = 0.97 and 0.34
        with pytest.raises(ModelFitError, match="needs q > 1") as error:
            SpendModel(penalizer).fit(summary)
        assert "lower the Gamma-Gamma penalizer" in str(error.value) and "model.gamma_gamma_penalizer" in str(error.value)
        assert "penalizer=0.001" not in str(error.value)


def test_an_unpenalized_gamma_gamma_with_q_below_one_points_at_the_order_values():
    rng = np.random.default_rng(0)
    frequency = rng.integers(1, 6, 3000)
    scale = rng.gamma(0.6, 1 / 50.0, 3000)  # Gamma-Gamma order values with q = 0.6: no finite mean
    summary = pd.DataFrame({"frequency": frequency.astype(float), "monetary_value": rng.gamma(6.0 * frequency, 1 / scale) / frequency})
    with pytest.raises(ModelFitError, match="needs q > 1") as error:
        SpendModel().fit(summary)
    assert "outlier order values" in str(error.value) and "gamma_gamma_penalizer" not in str(error.value)


def test_a_fixed_price_shop_gets_one_error_and_no_optimizer_dump(capsys):
    """Every order at the same price: Gamma-Gamma has no spread to fit; lifetimes printed scipy's
    whole result before raising, the user gets the error naming the config key only."""
    frequency = np.random.default_rng(0).integers(1, 6, 3000).astype(float)
    with pytest.raises(ModelFitError, match="model.gamma_gamma_penalizer"):
        SpendModel().fit(pd.DataFrame({"frequency": frequency, "monetary_value": 25.0}))
    assert capsys.readouterr().out == ""


def test_spend_model_without_repeats_gets_the_population_mean_and_zero_averages_shrink_to_zero():
    """Repeat orders averaging $0 or less (free orders, refunded purchases) are evidence of spending nothing:
    they got the population mean, and a customer with 14 free orders was projected the shop's average spend."""
    data = load_cdnow_summary_data_with_monetary_value()
    model = SpendModel().fit(data)
    p, q, v = model.params_
    table = pd.DataFrame({"frequency": [0, 3, 2, 4, 14, 0], "monetary_value": [0.0, -5.0, 0.0, 20.0, 0.0, 30.0]},
                         index=list("abcdef"))
    expected = model.predict(table)["expected_aov"]
    population = p * v / (q - 1)
    assert expected[["a", "f"]].tolist() == pytest.approx([population] * 2)
    assert expected[["b", "c", "e"]].tolist() == pytest.approx([population * (q - 1) / (p * x + q - 1) for x in (3, 2, 14)])
    assert expected["e"] < expected["c"] < population
    reference = GammaGammaFitter()
    reference.params_ = model.params_
    assert expected["d"] == pytest.approx(float(reference.conditional_expected_average_profit(4, 20.0)))
    assert expected["c"] == pytest.approx(float(reference.conditional_expected_average_profit(2, 0.0)))
    assert expected.notna().all()


def test_refuses_all_one_time_buyers():
    table = pd.DataFrame({"frequency": 0.0, "recency": 0.0, "T": np.arange(1.0, 101.0)})
    with pytest.raises(InsufficientDataError, match="one-time buyers"):
        PurchaseModel().fit(table)
    with pytest.raises(InsufficientDataError, match="Gamma-Gamma needs at least"):
        SpendModel().fit(table.assign(monetary_value=0.0))


def test_refuses_too_few_repeat_customers(summary):
    few = pd.concat([summary[summary["frequency"] == 0], summary[summary["frequency"] > 0].head(MIN_REPEAT_CUSTOMERS - 1)])
    with pytest.raises(InsufficientDataError, match=f"at least {MIN_REPEAT_CUSTOMERS}"):
        PurchaseModel().fit(few)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.assign(recency=s["T"] + 1), "recency greater than T"),
        (lambda s: s.assign(frequency=s["frequency"] + 0.5), "non-integer frequency"),
        (lambda s: s.drop(columns="T"), r"lacks column\(s\) \['T'\]"),
        (lambda s: s.assign(T=np.nan), "missing or infinite"),
    ],
)
def test_bad_summaries_get_clear_errors(summary, change, message):
    with pytest.raises(ValueError, match=message):
        PurchaseModel().fit(change(summary))


def test_unknown_model_and_predict_before_fit(summary):
    with pytest.raises(ValueError, match="unknown BTYD model"):
        PurchaseModel("nbd").fit(summary)
    with pytest.raises(NotFittedError):
        PurchaseModel().predict(summary, 10)
    with pytest.raises(NotFittedError):
        SpendModel().predict(summary.assign(monetary_value=1.0))


def test_models_pickle_with_parameters_only(summary):
    model = PurchaseModel().fit(summary)
    restored = pickle.loads(pickle.dumps(model))
    assert set(vars(restored)) == {"model", "penalizer", "params_", "n_customers_"}
    pd.testing.assert_frame_equal(restored.predict(summary, 10), model.predict(summary, 10))
    assert len(pickle.dumps(model)) < 2000


def test_pareto_fit_is_deterministic(summary):
    first = PurchaseModel("pareto").fit(summary).params_
    second = PurchaseModel("pareto").fit(summary).params_
    pd.testing.assert_series_equal(first, second)


@pytest.mark.slow
def test_warm_started_fit_matches_lifetimes_on_raw_rows(cdnow_master):
    # 23,570 customers in days: above WARM_START_ROWS, so the fit starts from a sample's optimum.
    summary = btyd_summary(cdnow_master, dt.date(1997, 9, 30), "days").to_pandas()
    assert len(summary) > WARM_START_ROWS
    raw = BetaGeoFitter().fit(summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy())
    ours = PurchaseModel("bgnbd").fit(summary).params_
    np.testing.assert_allclose(ours[raw.params_.index].to_numpy(), raw.params_.to_numpy(), rtol=1e-4)


def test_order_curve_shape_is_proportional_to_expected_orders(summary):
    model = PurchaseModel("bgnbd").fit(summary)
    shape = model.order_curve_shape(summary, np.array([10.0, 39.0]))
    exact = np.column_stack([model.predict(summary, h)["expected_orders"] for h in (10.0, 39.0)])
    np.testing.assert_allclose(shape[:, 0] / shape[:, 1], exact[:, 0] / exact[:, 1], rtol=1e-10)


def test_gamma_gamma_falls_back_to_rescaled_values_when_the_optimizer_fails(monkeypatch):
    from lifetimes.utils import ConvergenceError

    from models import btyd

    rng = np.random.default_rng(3)
    summary = pd.DataFrame(
        {"frequency": rng.integers(1, 6, 400).astype(float), "monetary_value": rng.gamma(6.0, 40.0, 400)},
        index=pd.Index([f"c{i}" for i in range(400)], name="customer_id"),
    )
    reference = btyd.SpendModel().fit(summary).params_
    real_fit = btyd.fit_gamma_gamma
    scales = []

    def unscaled_fails(rows, penalizer, scale, tol=1e-7):
        scales.append(scale)
        if scale == 1.0:
            raise ConvergenceError("simulated failure on raw values")
        return real_fit(rows, penalizer, scale, tol)

    monkeypatch.setattr(btyd, "fit_gamma_gamma", unscaled_fails)
    refit = btyd.SpendModel().fit(summary).params_
    assert scales[0] == 1.0 and scales[1] == pytest.approx(float(np.median(summary["monetary_value"])))
    np.testing.assert_allclose(refit.to_numpy(), reference.to_numpy(), rtol=1e-3)


def test_gamma_gamma_fallbacks_rescale_then_loosen_the_tolerance(monkeypatch):
    """A fit that stops on precision loss is retried on rescaled values, then at GAMMA_GAMMA_LOOSE_TOL; else a clear error."""
    from lifetimes.utils import ConvergenceError

    from models import btyd

    data = load_cdnow_summary_data_with_monetary_value()
    real = btyd.fit_gamma_gamma
    calls = []

    def strict_fails(rows, penalizer, scale, tol=1e-7):
        calls.append((scale, tol))
        if tol < btyd.GAMMA_GAMMA_LOOSE_TOL:
            raise ConvergenceError("precision loss")
        return real(rows, penalizer, scale, tol)

    monkeypatch.setattr(btyd, "fit_gamma_gamma", strict_fails)
    model = btyd.SpendModel().fit(data)
    median = float(np.median(data.loc[(data["frequency"] > 0) & (data["monetary_value"] > 0), "monetary_value"]))
    assert calls == [(1.0, 1e-7), (median, 1e-7), (median, btyd.GAMMA_GAMMA_LOOSE_TOL)]
    assert_close(model.params_, GAMMA_GAMMA, rel=1e-2, half_unit=5e-3)

    def always_fails(rows, penalizer, scale, tol=1e-7):
        raise ConvergenceError("precision loss")

    monkeypatch.setattr(btyd, "fit_gamma_gamma", always_fails)
    with pytest.raises(btyd.ModelFitError, match="Gamma-Gamma did not converge"):
        btyd.SpendModel().fit(data)


def test_the_penalizer_advice_does_not_repeat_the_penalizer_set():
    """A fit that failed with penalizer 0.001 was told "try a small penalizer (penalizer=0.001 ...)"."""
    from models import btyd

    assert btyd.penalizer_advice(0.0) == "try a small penalizer (penalizer=0.001; config key model.penalizer)"
    assert btyd.penalizer_advice(0.001) == ("try a larger penalizer (penalizer=0.01, ten times the 0.001 set; "
                                            "config key model.penalizer)")


def test_identical_order_values_are_named_and_the_fit_prints_no_numpy_warnings():
    """A shop where every order is $10: 176 RuntimeWarnings (356 lines) from the optimizer's trial steps, then a
    refusal that did not say why."""
    import warnings

    from models import btyd

    rng = np.random.default_rng(1)
    flat = pd.DataFrame({"customer_id": [f"c{i}" for i in range(2000)], "frequency": rng.geometric(0.3, 2000).astype(float),
                         "monetary_value": 10.0})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(btyd.ModelFitError, match=r"every repeat customer's average order value is the same \(10\), "
                                                       r"and Gamma-Gamma fits how they differ; try a small Gamma-Gamma penalizer"):
            btyd.SpendModel().fit(flat)
    assert [warning for warning in seen if issubclass(warning.category, RuntimeWarning)] == []
