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
    """'$1,234', or '$1,234.56' when the amount is not whole dollars to the cent; '-$50' below zero.

    Cents are kept so that no text contradicts its figure: rounded to whole dollars, a customer one
    cent short of a tier read "$0 to Silver", and a spend of $4,999.99 "spend $5,000 below the Gold
    threshold $5,000"."""
    cents = round(abs(value), 2)
    sign = "-" if value < 0 and cents > 0 else ""
    amount = f"{cents:,.0f}" if cents == round(cents) else f"{cents:,.2f}"
    return f"{sign}${amount}"


def money_texts(amounts: pd.Series | np.ndarray) -> np.ndarray:
    """`money_text` of each amount, '' for NaN; an object array."""
    values = np.ascontiguousarray(amounts, dtype=float)
    # Factorize the bit patterns, not the floats (NaN payloads and signed zeros stay apart).
    codes, uniques = pd.factorize(values.view(np.int64))
    texts = ["" if math.isnan(value) else money_text(value) for value in uniques.view(np.float64).tolist()]
    return np.array(texts, dtype=object)[codes] if len(codes) else np.array([], dtype=object)


def precise_money_text(value: float) -> str:
    """An amount to the millionth, trailing zeros dropped, at least cents: '$1,999.996', '-$0.0042'."""
    digits = f"{abs(value):,.6f}".rstrip("0")
    digits += "0" * max(0, 2 - len(digits.split(".")[1]))
    return f"{'-' if value < 0 else ''}${digits}"


def money_texts_beside(amounts: np.ndarray, marks=()) -> np.ndarray:
    """`money_texts` of amounts beside the tier thresholds `marks` (and zero): to the millionth where the cents
    would read as one of them without being it (amounts are kept to millionths). A spend of $1,999.996 read
    "spend $2,000 below the Silver threshold $2,000", $4,999.999999 "spend $5,000 reached the Silver threshold"
    (not Gold's $5,000), -$0.004 "spend $0", and $0.004 to go "$0 to Silver"."""
    amounts = np.asarray(amounts, dtype=float)
    texts = money_texts(amounts)
    for mark in {0.0, *(float(value) for value in marks if np.isfinite(value))}:
        clash = (texts == money_text(mark)) & (amounts != mark) & ~np.isnan(amounts)
        for row in np.flatnonzero(clash):
            texts[row] = precise_money_text(float(amounts[row]))
    return texts


def day_texts(days: pd.Series) -> np.ndarray:
    """'YYYY-MM-DD' for each date, '' for NaT; an object array."""
    codes, uniques = pd.factorize(days)
    texts = np.array([*uniques.strftime("%Y-%m-%d"), ""], dtype=object)
    return texts[codes]
