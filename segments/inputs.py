"""The input tables of the segment rules, their column names and the checks that guard them.

customers: one row per scored customer, unique `customer_id`, with
- rolling_12m_spend: net spend in (as_of - 365 days, as_of] (features.rfm);
- predicted_spend: undiscounted expected spend over the model horizon (`horizon_days`);
- predicted_orders: expected orders over the horizon;
- predicted_ltv: discounted value over the horizon;
- p_alive, churn_probability: probabilities in [0, 1];
- days_since_last_order: whole days (NaN allowed for a customer with no purchase day);
- spend_expiring_90d: the part of rolling_12m_spend that drops out of the window within the next
  90 days, i.e. spend on days in (as_of - 365, as_of - 275] (features.behaviour);
- the trend features of features.behaviour named in `TREND_COLUMNS`.

previous_state: the `state` of the previous run (None or empty on the first run):
customer_id, tier, grace_until (date or NaT), is_rising_star, is_at_risk.

shap: SHAP contributions to predicted spend, one row per customer (indexed by customer_id, or with
a customer_id column), one column per model feature (models.pipeline.CustomerValueModel.explain); its non-feature columns
(`expected_value`, `btyd_component`) are ignored (segments.reasons.NON_FEATURE_COLUMNS).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from segments.keys import id_ranks, money, positions, same_values, tier_ranks
from segments.settings import TIERS

CUSTOMER_ID = "customer_id"
ROLLING_12M_SPEND = "rolling_12m_spend"
PREDICTED_SPEND = "predicted_spend"
#: Optional: the model's spend forecast for the next 365 days (when its horizon is not 365 days).
PREDICTED_SPEND_12M = "predicted_spend_12m"
PREDICTED_ORDERS = "predicted_orders"
PREDICTED_LTV = "predicted_ltv"
P_ALIVE = "p_alive"
CHURN_PROBABILITY = "churn_probability"
DAYS_SINCE_LAST_ORDER = "days_since_last_order"
SPEND_EXPIRING_90D = "spend_expiring_90d"

#: Trend features (features.behaviour) the rising-star score uses; all "higher = growing".
AOV_TREND = "aov_trend"
INTERVAL_ACCELERATION = "purchase_interval_acceleration"
CATEGORY_BREADTH_GROWTH = "category_breadth_growth"
SPEND_90D = "spend_90d"
TREND_COLUMNS = (AOV_TREND, INTERVAL_ACCELERATION, CATEGORY_BREADTH_GROWTH, SPEND_90D)
#: The spend windows (features.behaviour ``windows_days``) whose columns the segments read.
REQUIRED_WINDOWS_DAYS = (90,)

REQUIRED_CUSTOMER_COLUMNS = (
    CUSTOMER_ID,
    ROLLING_12M_SPEND,
    PREDICTED_SPEND,
    PREDICTED_ORDERS,
    PREDICTED_LTV,
    P_ALIVE,
    CHURN_PROBABILITY,
    DAYS_SINCE_LAST_ORDER,
    SPEND_EXPIRING_90D,
    *TREND_COLUMNS,
)
NUMERIC_CUSTOMER_COLUMNS = REQUIRED_CUSTOMER_COLUMNS[1:]
#: Columns that may be NaN: a customer with a single purchase day has no trend and no interval.
NULLABLE_CUSTOMER_COLUMNS = (DAYS_SINCE_LAST_ORDER, AOV_TREND, INTERVAL_ACCELERATION, CATEGORY_BREADTH_GROWTH)
#: Observed spend (sums of order amounts): rounded to segments.keys.MONEY_DECIMALS on input, so a
#: threshold reached in cents is reached in the comparison too.
OBSERVED_MONEY_COLUMNS = (ROLLING_12M_SPEND, SPEND_EXPIRING_90D, SPEND_90D)
STATE_COLUMNS = (CUSTOMER_ID, "tier", "grace_until", "is_rising_star", "is_at_risk")
#: The as-of date of the last run that scored the customer: a state row of a customer missing from a run
#: is carried forward with it (`segments.tiers.carried_state`). Optional on input (older states lack it).
LAST_SCORED = "last_scored"


def as_of_timestamp(as_of: dt.date | pd.Timestamp | str, name: str = "as_of") -> pd.Timestamp:
    """A scoring date as a midnight Timestamp; a time of day other than midnight is an error."""
    try:
        stamp = pd.Timestamp(as_of)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a date, got {as_of!r}") from error
    if stamp is pd.NaT or pd.isna(stamp):
        raise ValueError(f"{name} must be a date, got {as_of!r}")
    if stamp.tzinfo is not None or stamp != stamp.normalize():
        raise ValueError(f"{name} must be a calendar day (midnight, no time zone), got {as_of!r}")
    return stamp.as_unit("ns")


def check_customers(customers: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Validated copy of the per-customer table with a fresh RangeIndex; errors name the column.

    Also returns each customer's rank in ascending customer_id order (`segments.keys.id_ranks`),
    the tie-break of every ranked list: sorting the ids is how duplicates are found, so it is done
    here, once.
    """
    if not isinstance(customers, pd.DataFrame):
        raise TypeError(f"customers must be a pandas DataFrame, got {type(customers).__name__}")
    missing = [column for column in REQUIRED_CUSTOMER_COLUMNS if column not in customers.columns]
    if missing:
        raise ValueError(
            f"customers table is missing required column(s) {missing}; it has {list(customers.columns)}"
        )
    # Copy-on-write: the caller's frame is never modified, so no deep copy is needed.
    checked = customers.reset_index(drop=True)
    id_rank = _ranked_ids(checked[CUSTOMER_ID], "customers")
    for column in NUMERIC_CUSTOMER_COLUMNS:
        values = checked[column]
        if not _is_plain_numeric(values):
            values = pd.to_numeric(checked[column], errors="coerce")
            bad = checked[column].notna() & values.isna()
            if bad.any():
                raise ValueError(
                    f"customers column {column!r} must be numeric; offending rows: {_examples(checked, bad, column)}"
                )
        if column not in NULLABLE_CUSTOMER_COLUMNS and values.isna().any():
            raise ValueError(
                f"customers column {column!r} has missing values; offending rows: "
                f"{_examples(checked, values.isna(), column)}"
            )
        checked[column] = money(values.astype(float)) if column in OBSERVED_MONEY_COLUMNS else values.astype(float)
    for column in (P_ALIVE, CHURN_PROBABILITY):
        outside = (checked[column] < 0) | (checked[column] > 1)
        if outside.any():
            raise ValueError(
                f"customers column {column!r} must be a probability in [0, 1]; offending rows: "
                f"{_examples(checked, outside, column)}"
            )
    return checked, id_rank


def check_previous_state(
    previous_state: pd.DataFrame | None, customer_ids: pd.Series, previous_as_of: pd.Timestamp | None = None
) -> tuple[pd.DataFrame | None, np.ndarray]:
    """Validated copy of the previous run's state (None when there is none; `tier` is categorical),
    and the row in it of each of `customer_ids` (the checked, unique customer ids), -1 if absent.

    Matching the state's ids to the customers is also how duplicate ids in the state are found. Its
    `last_scored` dates are missing from states written before they were kept: those rows were scored
    by the previous run (`previous_as_of`; NaT when not given).
    """
    if previous_state is None or len(previous_state) == 0:
        return None, np.full(len(customer_ids), -1, dtype=np.intp)
    if not isinstance(previous_state, pd.DataFrame):
        raise TypeError(f"previous_state must be a pandas DataFrame or None, got {type(previous_state).__name__}")
    missing = [column for column in STATE_COLUMNS if column not in previous_state.columns]
    if missing:
        raise ValueError(
            f"previous_state is missing required column(s) {missing}; it has {list(previous_state.columns)}"
        )
    state = previous_state.loc[:, list(STATE_COLUMNS)].reset_index(drop=True)
    unknown_date = previous_as_of if previous_as_of is not None else pd.NaT
    if LAST_SCORED in previous_state.columns:
        try:
            last_scored = pd.to_datetime(previous_state[LAST_SCORED].reset_index(drop=True)).astype("datetime64[ns]")
        except (TypeError, ValueError) as error:
            raise ValueError(f"previous_state column {LAST_SCORED!r} must hold dates or NaT: {error}") from error
        state[LAST_SCORED] = last_scored.fillna(unknown_date)
    else:
        state[LAST_SCORED] = pd.Series(unknown_date, index=state.index).astype("datetime64[ns]")
    rows = _state_rows(state[CUSTOMER_ID], customer_ids)
    ranks = tier_ranks(state["tier"])
    unknown = ranks < 0
    if unknown.any():
        raise ValueError(
            f"previous_state column 'tier' must be one of {list(TIERS)}; offending rows: "
            f"{_examples(state, unknown, 'tier')}"
        )
    try:
        state["grace_until"] = pd.to_datetime(state["grace_until"]).astype("datetime64[ns]")
    except (TypeError, ValueError) as error:
        raise ValueError(f"previous_state column 'grace_until' must hold dates or NaT: {error}") from error
    for column in ("is_rising_star", "is_at_risk"):
        state[column] = state[column].fillna(False).astype(bool)
    # The tier as a categorical over TIERS: its codes are the tier ranks the rules work with.
    state["tier"] = pd.Categorical.from_codes(ranks, categories=list(TIERS))
    return state, rows


def state_digest(state: pd.DataFrame | None) -> str | None:
    """A digest of a tier state table (None for no state): equal for equal states, whatever the row
    order or the dtypes a store gives back (text or categorical tiers, date precision).

    Row hashes are summed (mod 2**64), so no sort is needed: 1M customers in ~0.3 s.
    """
    if state is None or len(state) == 0:
        return None
    plain = pd.DataFrame({
        CUSTOMER_ID: state[CUSTOMER_ID].astype(str).to_numpy(),
        "tier": tier_ranks(state["tier"]),
        "grace_until": pd.to_datetime(state["grace_until"]).to_numpy().astype("datetime64[D]").astype(np.int64),
        "is_rising_star": state["is_rising_star"].fillna(False).astype(bool).to_numpy(),
        "is_at_risk": state["is_at_risk"].fillna(False).astype(bool).to_numpy(),
    })
    rows = pd.util.hash_pandas_object(plain, index=False, categorize=False).to_numpy()
    total = np.add.reduce(rows, dtype=np.uint64)
    return hashlib.sha256(f"{len(rows)}:{int(total)}".encode()).hexdigest()[:16]


def check_shap(
    shap: pd.DataFrame, customer_ids: pd.Series, what: str = "shap"
) -> tuple[pd.DataFrame, np.ndarray]:
    """SHAP (or feature value) table indexed by customer_id, covering every id in `customer_ids`.

    Also returns the table row of each of `customer_ids` (which are unique). The common case, a
    table in the same order as the customers, is recognised without hashing a million ids.
    """
    if not isinstance(shap, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(shap).__name__}")
    table = shap.set_index(CUSTOMER_ID) if CUSTOMER_ID in shap.columns else shap
    if same_values(customer_ids, table.index):
        return table, np.arange(len(table))
    if table.index.has_duplicates:
        raise ValueError(f"{what} has duplicate customer ids: {list(table.index[table.index.duplicated()][:5])}")
    rows = positions(customer_ids, table.index)
    absent = rows < 0
    if absent.any():
        raise ValueError(f"{what} has no row for customer(s) {list(customer_ids[absent][:5])}")
    return table, rows


def _check_ids(ids: pd.Series, what: str) -> None:
    if ids.isna().any():
        raise ValueError(f"{what} column 'customer_id' has missing values in row(s) {list(ids.index[ids.isna()][:5])}")
    if ids.duplicated().any():
        raise ValueError(f"{what} column 'customer_id' has duplicates: {list(ids[ids.duplicated()].unique()[:5])}")


def _state_rows(state_ids: pd.Series, customer_ids: pd.Series) -> np.ndarray:
    """`_check_ids` for the previous state, by matching its ids to the (unique) customer ids.

    Returns the state row of each customer (-1 when absent). A state id is duplicated when two
    state rows match one customer, or among the rows that match no customer.
    """
    if state_ids.isna().any():
        _check_ids(state_ids, "previous_state")
    customer_rows = positions(state_ids, customer_ids)
    matched = customer_rows >= 0
    per_customer = np.bincount(customer_rows[matched], minlength=len(customer_ids))
    if (per_customer > 1).any() or state_ids[~matched].duplicated().any():
        _check_ids(state_ids, "previous_state")
    rows = np.full(len(customer_ids), -1, dtype=np.intp)
    rows[customer_rows[matched]] = np.flatnonzero(matched)
    return rows


def _ranked_ids(ids: pd.Series, what: str) -> np.ndarray:
    """`_check_ids` by sorting: the id ranks (`segments.keys.id_ranks`) show any duplicates."""
    if ids.isna().any():
        _check_ids(ids, what)
    ranks = id_ranks(ids)
    if len(ranks) and ranks.max() + 1 < len(ranks):
        _check_ids(ids, what)
    return ranks


def _is_plain_numeric(values: pd.Series) -> bool:
    """A NumPy int / float column: `pd.to_numeric` would return it unchanged."""
    return isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf"


def _examples(table: pd.DataFrame, rows: pd.Series | np.ndarray, column: str) -> str:
    """A few offending rows as 'customer_id=value' pairs."""
    sample = table.loc[np.asarray(rows), [CUSTOMER_ID, column]].head(5)
    return ", ".join(f"{row[CUSTOMER_ID]}={row[column]!r}" for _, row in sample.iterrows())
