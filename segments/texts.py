"""Text for many rows at once: the amounts and dates in the event details.

Each distinct value is formatted once and the texts are gathered by position, instead of calling a
formatting function per row through pandas: amounts repeat (thresholds) and dates repeat a lot
(grace ends).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def money_text(value: float) -> str:
    """'$1,234' (whole dollars); an amount under $100 that is not whole keeps its cents ('$0.01',
    '$99.50'): rounded to whole dollars, a customer one cent short of a tier read "$0 to Silver"."""
    if abs(value) < 100 and round(value, 2) != round(value):
        return f"${value:,.2f}"
    return f"${value:,.0f}"


def money_texts(amounts: pd.Series | np.ndarray) -> np.ndarray:
    """`money_text` of each amount, '' for NaN; an object array."""
    values = np.ascontiguousarray(amounts, dtype=float)
    # Factorize the bit patterns, not the floats: -0.0 ("$-0") and 0.0 ("$0") must stay apart.
    codes, uniques = pd.factorize(values.view(np.int64))
    texts = ["" if math.isnan(value) else money_text(value) for value in uniques.view(np.float64).tolist()]
    return np.array(texts, dtype=object)[codes] if len(codes) else np.array([], dtype=object)


def day_texts(days: pd.Series) -> np.ndarray:
    """'YYYY-MM-DD' for each date, '' for NaT; an object array."""
    codes, uniques = pd.factorize(days)
    texts = np.array([*uniques.strftime("%Y-%m-%d"), ""], dtype=object)
    return texts[codes]
