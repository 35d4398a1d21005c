"""A realistic fake scoring run (the lists' columns as segments/ writes them), for app tests and benchmarks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from flows.store import RunInfo
from segments.settings import TIERS

THRESHOLDS = {"Base": 0.0, "Silver": 2000.0, "Gold": 5000.0, "Platinum": 10000.0}
REASONS = (
    "order value up 40% in the last 6 months",
    "spent $1,240 in the last 90 days",
    "orders every 21 days lately",
    "bought from 2 new categories",
    "expected to spend $6,200 in the next 12 months",
)


def tier_of(spend: np.ndarray) -> np.ndarray:
    """Tier of each rolling 12-month spend on the default absolute thresholds."""
    return np.select(
        [spend >= 10000, spend >= 5000, spend >= 2000], ["Platinum", "Gold", "Silver"], default="Base"
    ).astype(object)


def fake_run_info(as_of: date, n_customers: int, model_version: str = "3", run_id: str | None = None) -> RunInfo:
    return RunInfo(
        run_id=run_id or f"{as_of:%Y%m%d}-v{model_version}-abc123",
        as_of=as_of,
        created_at=datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
        model_name="blend",  # as vipcast score writes them: the shipped candidate, the registry version
        model_version=f"vipcast-demo/{model_version}",
        horizon_days=365,
        n_customers=n_customers,
        data_digest="abc123",
        config_digest="cfg456",
        reconciliation='{"rows_in": 100, "rows_used": 98, "set_aside": {"null customer id": 2}}',
    )


def fake_lists(n_customers: int, seed: int = 0, n_rising_stars: int | None = None,
               id_offset: int = 1000) -> dict[str, pd.DataFrame]:
    """The six lists of one run over n_customers customers with integer ids from id_offset."""
    rng = np.random.default_rng(seed)
    customer_id = np.arange(id_offset, id_offset + n_customers, dtype=np.int64)
    spend = np.round(rng.lognormal(6.8, 1.1, n_customers), 2)
    tier = tier_of(spend)
    predicted_spend = np.round(spend * rng.lognormal(0.05, 0.45, n_customers), 2)
    predicted_orders = np.round(predicted_spend / rng.uniform(40, 120, n_customers), 3)
    predicted_ltv = np.round(predicted_spend * 0.95, 2)
    p_alive = np.round(rng.beta(5, 2, n_customers), 4)
    churn_probability = np.round(1 - p_alive * rng.uniform(0.7, 1.0, n_customers), 4)
    rising_star_score = np.round(p_alive * np.log1p(predicted_ltv), 4)
    scores = pd.DataFrame({
        "customer_id": customer_id, "tier": tier, "rolling_12m_spend": spend,
        "predicted_orders": predicted_orders, "predicted_spend": predicted_spend, "predicted_ltv": predicted_ltv,
        "p_alive": p_alive, "churn_probability": churn_probability, "rising_star_score": rising_star_score,
    })

    rank_of_tier = {name: position for position, name in enumerate(TIERS)}
    tier_rank = np.array([rank_of_tier[name] for name in tier])
    next_tier = np.array([TIERS[rank + 1] if rank + 1 < len(TIERS) else None for rank in tier_rank], dtype=object)
    next_threshold = np.array([THRESHOLDS[name] if name else np.nan for name in next_tier], dtype=float)
    threshold = np.array([THRESHOLDS[name] for name in tier])
    order = np.argsort(-spend, kind="stable")
    tiers = pd.DataFrame({
        "customer_id": customer_id, "tier": tier, "rolling_12m_spend": spend, "tier_threshold": threshold,
        "next_tier": next_tier, "next_tier_threshold": next_threshold,
        "amount_to_next_tier": np.round(np.clip(next_threshold - spend, 0, None), 2),
        "progress_to_next_tier": np.round(np.clip((spend - threshold) / (next_threshold - threshold), 0, 1), 4),
        "in_grace": (in_grace := rng.random(n_customers) < 0.02),
        "grace_until": pd.Series(np.where(in_grace, np.datetime64("2026-12-31", "ns"), np.datetime64("NaT", "ns"))),
    }).iloc[order].reset_index(drop=True)
    tiers.insert(1, "rank", np.arange(1, n_customers + 1))

    target = tier_of(predicted_spend)
    climbs = np.array([rank_of_tier[name] for name in target]) > tier_rank
    candidates = np.flatnonzero(climbs & (p_alive >= 0.3))
    candidates = candidates[np.argsort(-rising_star_score[candidates], kind="stable")]
    if n_rising_stars is not None:
        candidates = candidates[:n_rising_stars]
    reasons = rng.integers(0, len(REASONS), size=(len(candidates), 3))
    rising_stars = pd.DataFrame({
        "customer_id": customer_id[candidates], "rank": np.arange(1, len(candidates) + 1),
        "tier": tier[candidates], "target_tier": target[candidates], "rolling_12m_spend": spend[candidates],
        "projected_12m_spend": predicted_spend[candidates],
        "amount_to_target_tier": np.round(np.array([THRESHOLDS[name] for name in target[candidates]])
                                          - spend[candidates], 2).clip(0),
        "predicted_spend": predicted_spend[candidates], "predicted_ltv": predicted_ltv[candidates],
        "p_alive": p_alive[candidates], "rising_star_score": rising_star_score[candidates],
        "reason_1": [REASONS[i] for i in reasons[:, 0]], "reason_2": [REASONS[i] for i in reasons[:, 1]],
        "reason_3": [REASONS[i] if i % 2 else None for i in reasons[:, 2]],
    })

    vip = np.flatnonzero((tier_rank > 0) & (churn_probability >= 0.5))
    vip = vip[np.argsort(-(churn_probability[vip] * spend[vip]), kind="stable")]
    at_risk = pd.DataFrame({
        "customer_id": customer_id[vip], "rank": np.arange(1, len(vip) + 1), "tier": tier[vip],
        "reason": "high churn risk", "churn_probability": churn_probability[vip],
        "days_since_last_order": rng.integers(10, 300, len(vip)), "rolling_12m_spend": spend[vip],
        "tier_threshold": threshold[vip],
        "spend_to_keep_tier": np.round(rng.uniform(0, 1500, len(vip)), 2),
        "days_left": pd.array(rng.integers(0, 90, len(vip)), dtype="Int64"),
        "predicted_ltv": predicted_ltv[vip], "at_risk_score": np.round(churn_probability[vip] * spend[vip], 2),
    })

    events = pd.concat([
        pd.DataFrame({"customer_id": at_risk["customer_id"], "event": "new_at_risk", "from_tier": at_risk["tier"],
                      "to_tier": None, "details": "churn risk above 50%",
                      "rolling_12m_spend": at_risk["rolling_12m_spend"]}),
        pd.DataFrame({"customer_id": rising_stars["customer_id"], "event": "new_rising_star",
                      "from_tier": rising_stars["tier"], "to_tier": rising_stars["target_tier"],
                      "details": "projected to climb", "rolling_12m_spend": rising_stars["rolling_12m_spend"]}),
    ], ignore_index=True)
    events.insert(1, "rank", np.arange(1, len(events) + 1))

    economics = pd.DataFrame([
        {"tier": name, "rank": position + 1, "members": int((tier == name).sum()),
         "predicted_revenue": float(predicted_spend[tier == name].sum()),
         "benefit_cost": float(predicted_spend[tier == name].sum() * 0.08),
         "net_margin": float(predicted_spend[tier == name].sum() * 0.32)}
        for position, name in enumerate(reversed(TIERS))
    ])
    return {"scores": scores, "tiers": tiers, "rising_stars": rising_stars, "at_risk": at_risk,
            "events": events, "economics": economics}


def with_text_ids(lists: dict[str, pd.DataFrame], template: str) -> dict[str, pd.DataFrame]:
    """The lists with each integer customer id written as text by template (``C{:07d}``: ``C0001005``)."""
    return {name: frame.assign(customer_id=frame["customer_id"].map(template.format)) if "customer_id" in frame
            else frame for name, frame in lists.items()}
