"""Reason codes: the features that pushed a customer's predicted spend up, in a marketer's words.

For one customer, the model features with the largest positive SHAP contributions to predicted
spend are turned into phrases with the customer's own feature values ("order value up 40% in the
last 6 months", "spent $1,240 in the last 90 days"). `PHRASES` maps a feature name to a phrase
function of its value; any other feature gets a generic phrase built from its name
("<feature name in words> is high (<value>)"). Without a value, `PLAIN_PHRASES` or the generic
"<feature name in words> raised the forecast" is used. `NON_FEATURE_COLUMNS` of the SHAP table
(LightGBM's bias term, the BTYD share of a blend) are never reasons, nor is a trend feature whose
value is a decline (`DECLINING_BELOW_ZERO`): a tree can score "order value down 65%" up, but read as a reason
for rising it argues against it (12 of 40 CDNOW rising stars carried one).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from segments.texts import money_text

Phrase = Callable[[float], str]


def _percent_change(value: float) -> str:
    return f"{abs(value):.0%}"


def _direction(value: float, up: str, down: str) -> str:
    return up if value >= 0 else down


def _count(value: float, singular: str, plural: str | None = None) -> str:
    number = int(round(value))
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def _aov_change(trend: float) -> str:
    """features.behaviour's aov_trend (r - e) / (|r| + |e|) back into a percent change r / e - 1."""
    if trend >= 1:
        return "order value up sharply in the last 6 months"
    if trend <= -1:
        return "order value down sharply in the last 6 months"
    change = 2 * trend / (1 - trend)
    if change >= 1:
        return f"order value {1 + change:.1f}x what it was in the 6 months before"
    if abs(change) < 0.005:  # would read "up 0%" / "down 0%"
        return "order value steady over the last 12 months"
    return f"order value {_direction(change, 'up', 'down')} {_percent_change(change)} in the last 6 months"


def _interval_change(acceleration: float) -> str:
    """features.behaviour's ln(earlier gap / recent gap) as 'buying N times as often'."""
    ratio = math.exp(acceleration)
    if round(ratio, 1) == 1.0 or round(1 / ratio, 1) == 1.0:  # would read "1.0x as often" / "every 1.0x as many days"
        return "buying as often as before"
    if ratio > 1:
        return f"buying {ratio:.1f}x as often as before"
    return f"buying less often than before (every {1 / ratio:.1f}x as many days)"


PHRASES: dict[str, Phrase] = {
    # features.behaviour (recent = the last 180 days)
    "aov_trend": _aov_change,
    "purchase_interval_acceleration": _interval_change,
    "category_breadth": lambda v: f"buys across {_count(v, 'category', 'categories')}",
    "category_breadth_growth": lambda v: f"bought from {_count(v, 'new category', 'new categories')} in the last 6 months",
    # spend_<N>d and orders_<N>d of any window: `window_phrase`
    # The spend of days 275-364 before the as-of date, as a fact: "... about to roll off" read as a reason
    # for a rising star argued against the rise (7 of 19 synthetic rising stars carried it).
    "spend_expiring_90d": lambda v: f"spent {money_text(v)} 9 to 12 months ago",
    "tenure_days": lambda v: f"customer for {_count(v, 'day')}",
    # features.rfm
    "days_since_last_order": lambda v: f"last order {_count(v, 'day')} ago",
    "purchase_days": lambda v: f"bought on {_count(v, 'separate day')}",
    "net_spend": lambda v: f"spent {money_text(v)} in total",
    "rolling_12m_spend": lambda v: f"spent {money_text(v)} in the last 12 months",
    "recency_score": lambda v: f"recent buyer (recency score {v:.0f} of 5)",
    "frequency_score": lambda v: f"frequent buyer (frequency score {v:.0f} of 5)",
    "monetary_score": lambda v: f"big spender (monetary score {v:.0f} of 5)",
    # features.btyd (lifetimes' definitions; recency and T are phrased in days: `IN_DAYS`)
    "frequency": lambda v: f"came back to buy on {_count(v, 'separate day')}",
    "recency": lambda v: f"still buying {_count(v, 'day')} after the first order",
    "T": lambda v: f"first order {_count(v, 'day')} ago",
    "monetary_value": lambda v: f"average repeat order of {money_text(v)}",
    # models.pipeline (BTYD outputs the LightGBM model uses as features)
    "btyd_p_alive": lambda v: f"{v:.0%} likely to still be active",
    "p_alive": lambda v: f"{v:.0%} likely to still be active",
}

#: Phrases for features whose value is not at hand (model-internal features such as the BTYD outputs).
PLAIN_PHRASES: dict[str, str] = {
    "btyd_expected_orders": "steady repeat buying",
    "btyd_p_alive": "likely to still be active",
    "btyd_p_order": "likely to order again soon",
    "btyd_expected_aov": "high typical order value",
    "btyd_expected_spend": "strong purchase history",
}

#: Features that say the same thing in other windows: a customer's reasons name one of each family
#: (the strongest), not "spent $5,501 in total; spent $3,100 in the last 6 months; spent ...".
#: (The spend_<N>d and orders_<N>d windows belong to these families by name: `family`.)
FAMILIES: dict[str, str] = {"net_spend": "spend", "rolling_12m_spend": "spend", "purchase_days": "orders", "frequency": "orders"}

#: Trend features (features.behaviour, "higher = growing") whose phrase reads as a decline below zero;
#: such a value is passed over as a reason whatever its SHAP contribution.
DECLINING_BELOW_ZERO = frozenset({"aov_trend", "purchase_interval_acceleration", "category_breadth_growth"})

#: BTYD columns counted in the configured time unit (days or weeks) whose phrases say days: their
#: values are taken from the features that count the same span in whole days, when the values
#: hold them ("first order 151 days ago" was 151 weeks in the weeks unit).
IN_DAYS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "T": lambda v: v["tenure_days"],
    "recency": lambda v: v["tenure_days"] - v["days_since_last_order"],
}
IN_DAYS_NEEDS = frozenset({"tenure_days", "days_since_last_order"})

#: SHAP columns that are not features: LightGBM's bias term and the BTYD share of a blend.
NON_FEATURE_COLUMNS = ("expected_value", "bias", "base_value", "BiasTerm", "btyd_component")


def feature_words(feature: str) -> str:
    """A feature name in words: 'avg_order_value_90d' -> 'avg order value 90d'."""
    return feature.replace("_", " ").strip()


# Window features of any configured length (features.windows_days: spend_45d, orders_400d, ...).
WINDOW_FEATURE = re.compile(r"^(spend|orders)_(\d+)d$")


def family(feature: str) -> str | None:
    """The family of a feature that says the same thing as others over another window, else None."""
    window = WINDOW_FEATURE.match(feature)
    return window.group(1) if window else FAMILIES.get(feature)


def window_phrase(feature: str) -> Phrase | None:
    """The phrase of a spend or order-count window of any length."""
    window = WINDOW_FEATURE.match(feature)
    if window is None:
        return None
    kind, days = window.group(1), int(window.group(2))
    span = "the last 12 months" if days == 365 else "the last 6 months" if days == 180 else f"the last {days} days"
    if kind == "spend":
        return lambda v: f"spent {money_text(v)} in {span}"
    return lambda v: f"{_count(v, 'order')} in {span}"


def phrase(feature: str, value: float | None) -> str:
    """The marketer's phrase for `feature` at `value`, or a generic phrase."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        return PLAIN_PHRASES.get(feature, f"{feature_words(feature)} raised the forecast")
    template = PHRASES.get(feature) or window_phrase(feature)
    if template is not None:
        return template(float(value))
    if isinstance(value, (int, float)):
        return f"{feature_words(feature)} is high ({value:,.4g})"
    return f"{feature_words(feature)} is {value}"


def top_reasons(contributions: pd.Series, values: pd.Series | None, limit: int = 3) -> list[str]:
    """Phrases for up to `limit` features with the largest positive contributions, largest first,
    one per family of the same measure over other windows (`FAMILIES`), no trend feature at a
    decline (`DECLINING_BELOW_ZERO`).

    Ties in contribution are broken by feature name so the result does not depend on column order.
    """
    frame = contributions.to_frame().T
    return reason_lists(frame, values.to_frame().T if values is not None else None, limit)[0]


def reason_lists(contributions: pd.DataFrame, values: pd.DataFrame | None, limit: int = 3) -> list[list[str]]:
    """`top_reasons` for many customers at once: row i of `contributions` with row i of `values`.

    The features are ranked for all rows together with NumPy; only the phrases, a few per row, are
    built one by one.
    """
    names, ranked, counts = _top_features(contributions, limit * (1 + len(set(FAMILIES.values()))) + len(DECLINING_BELOW_ZERO))
    declining = {}
    if values is not None:
        for j, name in enumerate(names):
            if name in DECLINING_BELOW_ZERO and name in values.columns:
                declining[j] = pd.to_numeric(values[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan) < 0
    chosen = []
    for row in range(len(ranked)):
        picked, families = [], set()
        for j in ranked[row, : counts[row]]:
            if j in declining and declining[j][row]:
                continue
            kind = family(str(names[j]))
            if kind is not None and kind in families:
                continue
            families.add(kind or str(names[j]))
            picked.append(j)
            if len(picked) == limit:
                break
        chosen.append(picked)
    columns = {}
    if values is not None:
        for feature in {names[j] for picked in chosen for j in picked}:
            if feature in IN_DAYS and IN_DAYS_NEEDS <= set(values.columns):
                columns[feature] = IN_DAYS[feature](values).to_numpy()
            elif feature in values.columns:
                columns[feature] = values[feature].to_numpy()
    reasons = []
    for row, picked in enumerate(chosen):
        phrases = []
        for j in picked:
            feature = names[j]
            column = columns.get(feature)
            phrases.append(phrase(str(feature), None if column is None else _plain_value(column[row])))
        reasons.append(phrases)
    return reasons


def _top_features(contributions: pd.DataFrame, limit: int) -> tuple[list, np.ndarray, np.ndarray]:
    """(feature names, per row the column positions by falling positive contribution, per row how
    many of them are positive, at most `limit`). Names are put in order first, so a stable sort
    breaks ties by name."""
    keep = [j for j, name in enumerate(contributions.columns) if name not in NON_FEATURE_COLUMNS]
    keep = sorted(keep, key=lambda j: str(contributions.columns[j]))
    names = [contributions.columns[j] for j in keep]
    matrix = np.empty((len(contributions), len(keep)), dtype=float)
    for position, j in enumerate(keep):
        column = pd.to_numeric(contributions.iloc[:, j], errors="coerce")
        matrix[:, position] = column.to_numpy(dtype=float, na_value=np.nan)
    positive = matrix > 0
    top = np.argsort(np.where(positive, -matrix, np.inf), axis=1, kind="stable")[:, :limit]
    return names, top, np.minimum(positive.sum(axis=1), limit)


def _plain_value(raw: object) -> object:
    """A feature value as the phrases take it: None when missing, a float when it is a number."""
    if pd.isna(raw):
        return None
    return float(raw) if _is_number(raw) else raw


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
