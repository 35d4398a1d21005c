"""A synthetic transactions table with known ground truth, for demos, tests and benchmarks.

Every customer follows a buy-till-you-die story (Fader, Hardie & Lee 2005, "Counting your
customers the easy way: an alternative to the Pareto/NBD model"; Fader, Hardie & Lee 2005,
"RFM and CLV: using iso-value curves for customer base analysis" for the spend model):

- acquisition: the first order falls uniformly in the first two thirds of the history (about two
  years of a three-year history), so customers are acquired over time;
- purchasing: repeat orders are a Poisson process whose base rate is gamma-distributed across
  customers (orders per year);
- dropout: after each repeat order the customer leaves for good with a probability that is
  beta-distributed across customers (BG/NBD);
- spend: each order's value is gamma-distributed around the customer's own mean, and that mean is
  itself heterogeneous across customers (Gamma-Gamma).

Two planted segments sit on top of the steady majority and are recorded in the ground truth:

- risers: from a growth start their purchase rate, order value and category breadth grow
  exponentially, and they rarely drop out, so many cross a VIP tier in the final year;
- faders: from a fade start their purchase rate and order value decay, and they leave for good at
  an exponentially distributed time after the fade starts.

On top: refunds (negative rows of the same customer after one of their orders, at most that
order's value, with their own order id) and a few free ($0) orders. Same-day repeat orders happen
naturally. Everything is vectorised numpy (no loop over customers or orders) and deterministic for
a given seed. Nothing is written anywhere: the caller decides where the tables go.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import AMOUNT, CATEGORY, CUSTOMER_ID, ORDER_ID, ORDER_TS, QUANTITY

STEADY = "steady"
RISER = "riser"
FADER = "fader"
SEGMENTS = (STEADY, RISER, FADER)

DAYS_PER_YEAR = 365.25
SECONDS_PER_DAY = 86_400
MIN_HISTORY_DAYS = 365
ACQUISITION_SHARE_OF_HISTORY = 2 / 3

# Category name -> (popularity weight, typical unit price). Popularity orders each customer's
# favourites; the unit price turns an order's value into a plausible quantity.
CATEGORIES: dict[str, tuple[float, float]] = {
    "apparel": (0.22, 35.0),
    "footwear": (0.12, 70.0),
    "accessories": (0.10, 25.0),
    "beauty": (0.11, 20.0),
    "home": (0.10, 45.0),
    "electronics": (0.08, 120.0),
    "sports": (0.08, 50.0),
    "books": (0.07, 15.0),
    "toys": (0.06, 25.0),
    "grocery": (0.06, 8.0),
}

TRUTH_COLUMNS = (
    CUSTOMER_ID,
    "segment",
    "acquisition_date",
    "purchase_rate",
    "dropout_probability",
    "dropout_date",
    "mean_spend",
    "growth_start",
    "frequency_growth",
    "spend_growth",
    "category_breadth",
    "category_breadth_growth",
    "n_orders",
)


@dataclass(frozen=True)
class Behaviour:
    """Distribution parameters of the simulated customers (the defaults are the tuned demo).

    Rates are per year; growth factors are multiplicative per year (2.0 doubles each year,
    0.5 halves); each customer's log factor is log(median) times a log-normal(0, growth_spread)
    draw, so risers always grow and faders always decay.
    """

    purchase_rate_shape: float = 1.2
    """Gamma shape of the base repeat-order rate across customers (smaller: more unequal)."""
    purchase_rate_mean: float = 11.0
    """Mean base repeat-order rate, orders per year."""
    dropout_a: float = 1.0
    """Beta a of the probability of leaving after a repeat order."""
    dropout_b: float = 14.0
    """Beta b of the probability of leaving after a repeat order (mean a / (a + b))."""
    order_value_shape: float = 6.0
    """Gamma-Gamma p: shape of one order's value around the customer's mean."""
    mean_spend_shape: float = 4.0
    """Gamma-Gamma q: shape of the rate behind each customer's mean order value (> 1)."""
    order_value_mean: float = 180.0
    """Population mean of the customers' mean order values (sets the Gamma-Gamma scale)."""
    riser_frequency_growth: float = 1.9
    """Median yearly factor on a riser's purchase rate after the growth start."""
    riser_spend_growth: float = 1.6
    """Median yearly factor on a riser's order value after the growth start."""
    riser_breadth_growth: float = 2.0
    """Mean number of categories a riser adds per year after the growth start."""
    riser_dropout_factor: float = 0.1
    """Multiplier on a riser's per-order dropout probability (risers are committed)."""
    fader_frequency_growth: float = 0.3
    """Median yearly factor on a fader's purchase rate after the fade start."""
    fader_spend_growth: float = 0.85
    """Median yearly factor on a fader's order value after the fade start."""
    fader_lifetime_days: float = 240.0
    """Mean of the exponential time from the fade start until a fader leaves for good."""
    growth_spread: float = 0.25
    """Log-scale spread of the log growth factors across customers."""
    category_breadth_mean: float = 0.8
    """Mean number of categories beyond the first that a customer buys from."""
    refund_lag_days: float = 14.0
    """Mean days between an order and its refund (plus one day: a refund is never same-day)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"Behaviour.{field.name} must be a finite number, got {value!r}")
            if field.name != "category_breadth_mean" and value <= 0:
                raise ValueError(f"Behaviour.{field.name} must be > 0, got {value!r}")
        if self.category_breadth_mean < 0:
            raise ValueError(f"Behaviour.category_breadth_mean must be >= 0, got {self.category_breadth_mean!r}")
        if self.mean_spend_shape <= 1:
            raise ValueError(
                f"Behaviour.mean_spend_shape must be > 1 (a finite mean order value), got {self.mean_spend_shape!r}"
            )
        if self.riser_dropout_factor > 1:
            raise ValueError(f"Behaviour.riser_dropout_factor must be <= 1, got {self.riser_dropout_factor!r}")
        if self.riser_frequency_growth <= 1 or self.riser_spend_growth <= 1:
            raise ValueError("Behaviour.riser_frequency_growth and riser_spend_growth must be > 1 (risers grow)")
        if self.fader_frequency_growth >= 1 or self.fader_spend_growth > 1:
            raise ValueError("Behaviour.fader_frequency_growth must be < 1 and fader_spend_growth <= 1 (faders decay)")


def generate_transactions(
    n_customers: int,
    seed: int,
    *,
    start: date = date(2023, 1, 1),
    end: date = date(2025, 12, 31),
    riser_share: float = 0.065,
    fader_share: float = 0.10,
    refund_share: float = 0.015,
    zero_amount_share: float = 0.002,
    behaviour: Behaviour | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate `n_customers` customers buying between `start` and `end` (both inclusive).

    Returns `(transactions, truth)`. transactions has one row per order or refund, sorted by
    order_ts: customer_id (str "C0000001"), order_ts (datetime64, with a time of day), amount
    (float64, cents; refunds negative), order_id (unique str), category (str), quantity (int64,
    negative on refunds).

    truth has one row per customer, in customer_id order (dates are midnight timestamps):
    segment (steady/riser/fader), acquisition_date (first order), purchase_rate (base repeat
    orders per year), dropout_probability (per repeat order), dropout_date (the day they left
    for good; NaT if still active at the end), mean_spend (base expected order value),
    growth_start (risers: start of growth; faders: start of the fade; NaT for steady),
    frequency_growth and spend_growth (yearly factors after growth_start; 1 for steady),
    category_breadth (categories bought from at first) and category_breadth_growth
    (categories added per year), n_orders (orders generated, refunds excluded).
    """
    _check_arguments(n_customers, seed, start, end, riser_share, fader_share, refund_share, zero_amount_share)
    behaviour = Behaviour() if behaviour is None else behaviour
    if not isinstance(behaviour, Behaviour):
        raise TypeError(f"behaviour must be a Behaviour, got {type(behaviour).__name__}")
    rng = np.random.default_rng(seed)
    history_days = float((end - start).days + 1)

    customers = _draw_customers(n_customers, history_days, riser_share, fader_share, behaviour, rng)
    orders, dropout = _draw_orders(customers, history_days, rng)
    orders["category"] = _order_categories(customers, orders, rng)
    orders["amount"], orders["quantity"] = _order_values(
        customers, orders, behaviour.order_value_shape, zero_amount_share, rng
    )
    refunds = _draw_refunds(orders, history_days, refund_share, behaviour, rng)

    transactions = _transactions_frame(orders, refunds, start, n_customers)
    truth = _truth_frame(customers, dropout, orders, start)
    return transactions, truth


def _check_arguments(
    n_customers: object,
    seed: object,
    start: object,
    end: object,
    riser_share: float,
    fader_share: float,
    refund_share: float,
    zero_amount_share: float,
) -> None:
    """Raise a clear error naming the first bad argument."""
    if isinstance(n_customers, bool) or not isinstance(n_customers, numbers.Integral):
        raise TypeError(f"n_customers must be an integer, got {n_customers!r}")
    if n_customers < 1:
        raise ValueError(f"n_customers must be >= 1, got {n_customers}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"{name} must be a datetime.date (no time of day), got {value!r}")
    if not start < end:
        raise ValueError(f"start must be before end, got start={start} end={end}")
    if (end - start).days + 1 < MIN_HISTORY_DAYS:
        raise ValueError(
            f"end - start must span at least {MIN_HISTORY_DAYS} days, got {(end - start).days + 1} "
            f"(start={start}, end={end})"
        )
    for name, value in (
        ("riser_share", riser_share),
        ("fader_share", fader_share),
        ("refund_share", refund_share),
        ("zero_amount_share", zero_amount_share),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if riser_share + fader_share >= 1:
        raise ValueError(f"riser_share + fader_share must be < 1, got {riser_share} + {fader_share}")


def _growth_factor(median: float, spread: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Yearly growth factors around `median`, all on the same side of 1 as the median.

    The log of the factor is log(median) times a log-normal(0, spread) draw, so a riser never
    shrinks and a fader never grows.
    """
    return np.exp(math.log(median) * np.exp(rng.normal(0.0, spread, size)))


def _draw_customers(
    n_customers: int,
    history_days: float,
    riser_share: float,
    fader_share: float,
    behaviour: Behaviour,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per-customer latent parameters; times are days since `start` (fractional)."""
    n = n_customers
    segment = rng.choice(3, size=n, p=[1 - riser_share - fader_share, riser_share, fader_share]).astype(np.int8)
    is_riser = segment == 1
    is_fader = segment == 2

    acquisition = rng.uniform(0.0, history_days * ACQUISITION_SHARE_OF_HISTORY, n)
    rate_per_year = rng.gamma(
        behaviour.purchase_rate_shape, behaviour.purchase_rate_mean / behaviour.purchase_rate_shape, n
    )
    dropout_probability = rng.beta(behaviour.dropout_a, behaviour.dropout_b, n)
    dropout_probability = np.where(is_riser, dropout_probability * behaviour.riser_dropout_factor, dropout_probability)
    # Gamma-Gamma: nu ~ Gamma(q, 1/gamma), order value ~ Gamma(p, 1/nu), so the mean is p / nu.
    spend_scale = behaviour.order_value_mean * (behaviour.mean_spend_shape - 1) / behaviour.order_value_shape
    nu = rng.gamma(behaviour.mean_spend_shape, 1.0 / spend_scale, n)
    mean_spend = behaviour.order_value_shape / nu

    # Risers start growing between two years and one year before the end (or at acquisition, if
    # later), so the growth is visible a year before the end and carries on through the last year.
    riser_from = np.maximum(acquisition, history_days - 2 * 365)
    riser_to = np.maximum(riser_from, history_days - 365)
    riser_start = rng.uniform(riser_from, riser_to)
    fader_start = rng.uniform(acquisition, np.maximum(acquisition, history_days - 90))
    growth_start = np.where(is_riser, riser_start, np.where(is_fader, fader_start, np.nan))

    frequency_growth = np.ones(n)
    spend_growth = np.ones(n)
    n_risers, n_faders = int(is_riser.sum()), int(is_fader.sum())
    spread = behaviour.growth_spread
    frequency_growth[is_riser] = _growth_factor(behaviour.riser_frequency_growth, spread, n_risers, rng)
    spend_growth[is_riser] = _growth_factor(behaviour.riser_spend_growth, spread, n_risers, rng)
    frequency_growth[is_fader] = _growth_factor(behaviour.fader_frequency_growth, spread, n_faders, rng)
    spend_growth[is_fader] = _growth_factor(behaviour.fader_spend_growth, spread, n_faders, rng)
    death = np.full(n, np.inf)
    death[is_fader] = fader_start[is_fader] + rng.exponential(behaviour.fader_lifetime_days, n_faders)

    breadth = np.minimum(1.0 + rng.poisson(behaviour.category_breadth_mean, n), len(CATEGORIES))
    breadth_growth = np.zeros(n)
    breadth_growth[is_riser] = rng.exponential(behaviour.riser_breadth_growth, n_risers)

    return {
        "segment": segment,
        "acquisition": acquisition,
        "rate_per_day": rate_per_year / DAYS_PER_YEAR,
        "dropout_probability": dropout_probability,
        "mean_spend": mean_spend,
        "nu": nu,
        "growth_start": growth_start,
        "frequency_log_growth": np.log(frequency_growth) / DAYS_PER_YEAR,
        "spend_log_growth": np.log(spend_growth) / DAYS_PER_YEAR,
        "death": death,
        "breadth": breadth,
        "breadth_growth": breadth_growth,
    }


def _integrated_rate(rate: np.ndarray, acquisition: np.ndarray, pivot: np.ndarray, log_growth: np.ndarray,
                     t: np.ndarray) -> np.ndarray:
    """Expected repeat orders in (acquisition, t]: a flat rate until `pivot`, then exponential growth."""
    flat = rate * (np.minimum(t, pivot) - acquisition)
    after = np.maximum(t - pivot, 0.0)
    safe = np.where(log_growth == 0, 1.0, log_growth)
    grown = np.where(log_growth == 0, after, np.expm1(log_growth * after) / safe)
    return flat + rate * grown


def _inverse_integrated_rate(rate: np.ndarray, acquisition: np.ndarray, pivot: np.ndarray,
                             log_growth: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The time t at which `_integrated_rate` reaches `expected` (the inverse of the function above)."""
    flat_total = rate * (pivot - acquisition)
    beyond = np.maximum(expected - flat_total, 0.0) / rate
    safe = np.where(log_growth == 0, 1.0, log_growth)
    # For decay (negative growth) the argument stays > 0 because `expected` never exceeds the total.
    grown = np.where(log_growth == 0, beyond, np.log1p(np.maximum(log_growth * beyond, -1 + 1e-12)) / safe)
    return np.where(expected <= flat_total, acquisition + expected / rate, pivot + grown)


def _draw_orders(
    customers: dict[str, np.ndarray], history_days: float, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The first order of every customer plus their repeat orders until dropout or the end, and
    each customer's dropout time (NaN while still active at the end).

    The repeat orders in (acquisition, end] are a Poisson process; the customer stops after the
    K-th, K ~ Geometric(dropout probability). The first min(N, K) of N Poisson points are the
    first order statistics of N uniforms on the integrated-rate scale, drawn without making all N:
    U_(j) = G_j / (G_m + Gamma(N - m + 1)), G_j a running sum of unit exponentials.
    """
    n = len(customers["acquisition"])
    acquisition = customers["acquisition"]
    rate = customers["rate_per_day"]
    pivot = np.where(np.isnan(customers["growth_start"]), acquisition, customers["growth_start"])
    log_growth = customers["frequency_log_growth"]

    total_expected = _integrated_rate(rate, acquisition, pivot, log_growth, np.full(n, history_days))
    n_possible = rng.poisson(total_expected)
    orders_until_dropout = rng.geometric(np.clip(customers["dropout_probability"], 1e-9, 1.0))
    n_repeat = np.minimum(n_possible, orders_until_dropout)

    owner = np.repeat(np.arange(n, dtype=np.int32), n_repeat)
    running = np.cumsum(rng.standard_exponential(len(owner)))
    group_end = np.cumsum(n_repeat)
    before_group = np.concatenate(([0.0], running))[group_end - n_repeat]
    running -= before_group[owner]
    last_in_group = np.zeros(n)
    has_repeat = n_repeat > 0
    last_in_group[has_repeat] = running[group_end[has_repeat] - 1]
    remainder = rng.standard_gamma((n_possible - n_repeat + 1).astype(float))
    expected_at_order = total_expected[owner] * running / (last_in_group + remainder)[owner]
    del running
    repeat_time = acquisition[owner] + expected_at_order / rate[owner]
    growing = np.flatnonzero(log_growth[owner] != 0)
    growing_owner = owner[growing]
    repeat_time[growing] = _inverse_integrated_rate(
        rate[growing_owner], acquisition[growing_owner], pivot[growing_owner], log_growth[growing_owner],
        expected_at_order[growing],
    )
    repeat_time = np.minimum(repeat_time, np.nextafter(history_days, 0.0))

    # Dropout: right after the K-th repeat order if it came before the end, or a fader's death.
    dropped_by_count = orders_until_dropout <= n_possible
    last_repeat_time = np.full(n, np.inf)
    last_repeat_time[has_repeat] = repeat_time[group_end[has_repeat] - 1]
    dropout = np.minimum(np.where(dropped_by_count, last_repeat_time, np.inf), customers["death"])
    dropout = np.where(dropout < history_days, dropout, np.nan)

    alive = repeat_time <= customers["death"][owner]
    owner = np.concatenate((np.arange(n, dtype=np.int32), owner[alive]))
    time = np.concatenate((acquisition, repeat_time[alive]))
    return {"owner": owner, "time": time}, dropout


def _order_categories(customers: dict[str, np.ndarray], orders: dict[str, np.ndarray],
                      rng: np.random.Generator) -> np.ndarray:
    """Category code per order: uniform over the customer's current top-`breadth` favourites."""
    n = len(customers["acquisition"])
    popularity = np.array([weight for weight, _ in CATEGORIES.values()])
    # Gumbel top-k: sorting log-weight + Gumbel noise gives a popularity-weighted random ranking.
    keys = np.log(popularity).astype(np.float32) + rng.gumbel(size=(n, len(CATEGORIES))).astype(np.float32)
    favourites = np.argsort(-keys, axis=1).astype(np.int8)
    del keys

    owner = orders["owner"]
    breadth = customers["breadth"][owner]
    growing = np.flatnonzero(customers["breadth_growth"][owner] > 0)
    days_grown = np.maximum(orders["time"][growing] - customers["growth_start"][owner[growing]], 0.0)
    breadth[growing] = np.minimum(
        breadth[growing] + customers["breadth_growth"][owner[growing]] * days_grown / DAYS_PER_YEAR,
        len(CATEGORIES),
    )
    rank = np.minimum((rng.random(len(owner)) * breadth).astype(np.int64), len(CATEGORIES) - 1)
    return favourites[owner, rank]


def _order_values(customers: dict[str, np.ndarray], orders: dict[str, np.ndarray], order_value_shape: float,
                  zero_amount_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Amount (cents) and quantity per order: Gamma-Gamma value times the customer's growth factor."""
    owner = orders["owner"]
    value = rng.standard_gamma(order_value_shape, len(owner)) / customers["nu"][owner]
    growing = np.flatnonzero(customers["spend_log_growth"][owner] != 0)
    growing_owner = owner[growing]
    days_grown = np.maximum(orders["time"][growing] - customers["growth_start"][growing_owner], 0.0)
    value[growing] *= np.exp(customers["spend_log_growth"][growing_owner] * days_grown)
    amount = np.round(value, 2)
    amount[rng.random(len(owner)) < zero_amount_share] = 0.0

    unit_price = np.array([price for _, price in CATEGORIES.values()])[orders["category"]]
    noisy_unit_price = unit_price * rng.lognormal(0.0, 0.3, len(owner))
    quantity = np.maximum(np.rint(amount / noisy_unit_price), 1).astype(np.int64)
    return amount, quantity


def _draw_refunds(orders: dict[str, np.ndarray], history_days: float, refund_share: float, behaviour: Behaviour,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Refund rows: a share of paid orders, refunded in full or in part 1+ days later, before the end."""
    n_orders = len(orders["owner"])
    refunded = np.flatnonzero((rng.random(n_orders) < refund_share) & (orders["amount"] >= 0.01))
    time = orders["time"][refunded] + 1.0 + rng.exponential(behaviour.refund_lag_days, len(refunded))
    fraction = np.where(rng.random(len(refunded)) < 0.6, 1.0, rng.uniform(0.2, 1.0, len(refunded)))
    keep = time < history_days
    refunded, time, fraction = refunded[keep], time[keep], fraction[keep]
    # Round the refund down to whole cents so it never exceeds the order it refunds.
    cents = np.maximum(np.floor(np.round(orders["amount"][refunded] * 100) * fraction + 1e-9), 1)
    quantity = np.maximum(np.rint(orders["quantity"][refunded] * fraction), 1).astype(np.int64)
    return {
        "owner": orders["owner"][refunded],
        "time": time,
        "amount": -cents / 100,
        "category": orders["category"][refunded],
        "quantity": -quantity,
    }


def _sequential_ids(prefix: str, count: int, width: int) -> np.ndarray:
    """Fixed-width byte strings prefix + zero-padded 1..count, e.g. b"C0000001" (no Python loop).

    The numbers are consecutive, so the last four digits repeat a block of 10,000 and only the
    leading digits need arithmetic: one small table, then broadcasting.
    """
    low_digits = min(width, 4)
    block = 10**low_digits
    n_blocks = (count + 1 + block - 1) // block
    chars = np.empty((n_blocks, block, len(prefix) + width), dtype=np.uint8)
    chars[:, :, : len(prefix)] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    chars[:, :, len(prefix) + width - low_digits :] = _digit_table(np.arange(block), low_digits)[None, :, :]
    if width > low_digits:
        chars[:, :, len(prefix) : len(prefix) + width - low_digits] = _digit_table(
            np.arange(n_blocks), width - low_digits
        )[:, None, :]
    flat = chars.reshape(n_blocks * block, len(prefix) + width)[1 : count + 1]
    return np.ascontiguousarray(flat).view(f"S{len(prefix) + width}").reshape(count)


def _digit_table(numbers_: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of each number, zero-padded to `width` (one row per number)."""
    digits = (numbers_[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 10
    return (digits + ord("0")).astype(np.uint8)


def _customer_ids(n_customers: int) -> np.ndarray:
    """The ids of customers 0..n-1 as fixed-width bytes: b"C0000001" onwards (wider past 9,999,999)."""
    return _sequential_ids("C", n_customers, max(7, len(str(n_customers))))


def _arrow_strings(fixed_width: np.ndarray) -> pa.Array:
    """A fixed-width bytes array as an Arrow large_string array, sharing its buffer."""
    width = fixed_width.dtype.itemsize
    offsets = np.arange(len(fixed_width) + 1, dtype=np.int64) * width
    return pa.LargeStringArray.from_buffers(
        len(fixed_width), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(fixed_width))
    )


def _to_pandas_strings(columns: dict[str, pa.Array]) -> dict[str, pd.Series]:
    """Arrow string arrays as pandas `str` columns."""
    table = pa.table(columns).to_pandas()
    return {name: table[name] for name in columns}


def _time_order(seconds: np.ndarray) -> np.ndarray:
    """Row positions sorted by time, ties in row order (a stable argsort).

    Packing (seconds, row) into one unique int64 and sorting the values is several times faster
    than a stable argsort of 10M+ rows.
    """
    row_bits = max(int(len(seconds)).bit_length(), 1)
    if int(seconds.max(initial=0)).bit_length() + row_bits > 62:
        return np.argsort(seconds, kind="stable")
    packed = np.sort((seconds << row_bits) | np.arange(len(seconds), dtype=np.int64))
    return packed & ((1 << row_bits) - 1)


def _transactions_frame(orders: dict[str, np.ndarray], refunds: dict[str, np.ndarray], start: date,
                        n_customers: int) -> pd.DataFrame:
    """Orders and refunds in one table sorted by time, with order ids in time order."""
    seconds = np.concatenate((orders["time"], refunds["time"])) * SECONDS_PER_DAY
    seconds = np.rint(seconds).astype(np.int64)
    order = _time_order(seconds)
    seconds = seconds[order]
    owner = np.concatenate((orders["owner"], refunds["owner"]))[order]
    amount = np.concatenate((orders["amount"], refunds["amount"]))[order]
    category = np.concatenate((orders["category"], refunds["category"]))[order]
    quantity = np.concatenate((orders["quantity"], refunds["quantity"]))[order]
    del order
    n_rows = len(seconds)

    names = pa.array(list(CATEGORIES), type=pa.large_string())
    strings = _to_pandas_strings({
        CUSTOMER_ID: _arrow_strings(_customer_ids(n_customers)[owner]),
        ORDER_ID: _arrow_strings(_sequential_ids("O", n_rows, max(9, len(str(n_rows))))),
        CATEGORY: pa.DictionaryArray.from_arrays(pa.array(category.astype(np.int32)), names).cast(pa.large_string()),
    })
    order_ts = np.datetime64(start, "us") + (seconds * 1_000_000).astype("timedelta64[us]")
    return pd.DataFrame({
        CUSTOMER_ID: strings[CUSTOMER_ID],
        ORDER_TS: pd.Series(order_ts, dtype="datetime64[us]", copy=False),
        AMOUNT: pd.Series(amount, dtype="float64", copy=False),
        ORDER_ID: strings[ORDER_ID],
        CATEGORY: strings[CATEGORY],
        QUANTITY: pd.Series(quantity, dtype="int64", copy=False),
    }, copy=False)


def _day_stamps(start: date, days: np.ndarray) -> pd.Series:
    """Midnight timestamps `floor(days)` after `start`; NaN days become NaT."""
    whole = np.floor(np.nan_to_num(days, nan=0.0)).astype(np.int64)
    stamps = np.datetime64(start, "us") + (whole * SECONDS_PER_DAY * 1_000_000).astype("timedelta64[us]")
    stamps[np.isnan(days)] = np.datetime64("NaT")
    return pd.Series(stamps, dtype="datetime64[us]")


def _truth_frame(customers: dict[str, np.ndarray], dropout: np.ndarray, orders: dict[str, np.ndarray],
                 start: date) -> pd.DataFrame:
    """One row per customer with the parameters that generated them."""
    n = len(customers["acquisition"])
    ids = _to_pandas_strings({CUSTOMER_ID: _arrow_strings(_customer_ids(n))})[CUSTOMER_ID]
    return pd.DataFrame({
        CUSTOMER_ID: ids,
        "segment": pd.Series(np.array(SEGMENTS)[customers["segment"]], dtype="str"),
        "acquisition_date": _day_stamps(start, customers["acquisition"]),
        "purchase_rate": customers["rate_per_day"] * DAYS_PER_YEAR,
        "dropout_probability": customers["dropout_probability"],
        "dropout_date": _day_stamps(start, dropout),
        "mean_spend": customers["mean_spend"],
        "growth_start": _day_stamps(start, customers["growth_start"]),
        "frequency_growth": np.exp(customers["frequency_log_growth"] * DAYS_PER_YEAR),
        "spend_growth": np.exp(customers["spend_log_growth"] * DAYS_PER_YEAR),
        "category_breadth": customers["breadth"].astype(np.int64),
        "category_breadth_growth": customers["breadth_growth"],
        "n_orders": np.bincount(orders["owner"], minlength=n).astype(np.int64),
    })
