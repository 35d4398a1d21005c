"""segments.inputs helpers not covered through nominate."""

from __future__ import annotations

import pandas as pd

from segments.inputs import state_digest


def test_state_digest_is_the_same_for_the_same_state_however_it_was_stored():
    """Stored states come back with other dtypes (timestamps, plain text tiers) and row order."""
    current = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "tier": pd.Categorical(["Gold", "Silver", "Base", "Platinum"]),
        "grace_until": pd.to_datetime([None, "2026-03-01", None, None]),
        "is_rising_star": [False, True, False, False],
        "is_at_risk": [False, False, True, False],
    })
    stored = current.astype({"tier": str}).assign(grace_until=lambda t: t.grace_until.astype("datetime64[us]"))
    assert state_digest(stored.iloc[::-1].reset_index(drop=True)) == state_digest(current)
    assert state_digest(None) is None and state_digest(current.iloc[:0]) is None
    for column, value in [("tier", "Silver"), ("grace_until", pd.Timestamp("2026-03-02")), ("is_at_risk", True),
                          ("is_rising_star", True), ("customer_id", "e")]:
        changed = current.copy()
        changed.loc[0, column] = value
        assert state_digest(changed) != state_digest(current), column
    assert state_digest(current.iloc[1:]) != state_digest(current)
