"""Server-rendered pages: overview, lists, customer, runs, and the login form."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import OrderedDict
from datetime import date, datetime
from pathlib import Path as FilePath
from threading import Lock
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.api import (
    CUSTOMER_ID_MAX_LENGTH,
    AsOfQuery,
    DataQuery,
    ListName,
    RunIdQuery,
    TierQuery,
    canonical_tier,
    refuse_unknown_parameters,
    store_of,
)
from app.auth import SESSION_COOKIE, SESSION_SECONDS, keys_match, new_session_cookie
from app.charts import bar_chart, compact_money
from flows.store import NoRunsYet, OutputsStore, RunInfo, dataset_names, run_dataset, runs_of_dataset, unscored_note
from segments.settings import TIERS, VIP_TIERS
from segments.texts import money_text, money_texts_beside

# Pages refuse what they do not read, as the API does: `?data=odd` showed another dataset's list as if
# it had been applied.
router = APIRouter(include_in_schema=False, dependencies=[Depends(refuse_unknown_parameters)])
templates = Jinja2Templates(directory=str(FilePath(__file__).parent / "templates"))

LIST_TITLES = {
    ListName.rising_stars: "Rising stars",
    ListName.at_risk: "At-risk members",
    ListName.tiers: "Tiers",
    ListName.events: "Events",
    ListName.economics: "Programme economics",
}
LIST_HELP = {
    ListName.rising_stars: "Customers the model expects to climb to a higher tier, best prospects first, with the "
                           "reasons behind each forecast.",
    ListName.at_risk: "VIP members likely to leave or to lose their tier, most to lose first.",
    ListName.tiers: "Every customer's tier, rolling 12-month spend (the 365 days up to the as-of date) and distance to the next tier.",
    ListName.events: "What changed since the previous scoring run: upgrades, downgrades, grace periods, "
                     "new rising stars and at-risk members.",
    ListName.economics: "Per tier over the horizon: members, predicted revenue and orders, the benefits' costs "
                        "and the margins left (settings: segments.economics in the config).",
}
PAGE_SIZES = (50, 200, 1000, 5000)
TIERS_HIGH_FIRST = tuple(reversed(TIERS))
MONEY_WORDS = ("spend", "ltv", "amount", "revenue", "cost", "margin", "threshold", "value", "shortfall")
SHARE_COLUMNS = {"p_alive", "churn_probability", "mean_p_alive", "mean_churn_probability", "progress_to_next_tier"}
REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")


# Formatting

def is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def money(value: Any) -> str:
    return "—" if is_missing(value) else money_text(float(value))


def number(value: Any, digits: int = 0) -> str:
    return "—" if is_missing(value) else f"{float(value):,.{digits}f}"


def percent(value: Any, digits: int = 0) -> str:
    return "—" if is_missing(value) else f"{float(value) * 100:.{digits}f}%"


# Characters that change how the text around them reads without showing themselves: Unicode's format
# characters (bidirectional overrides and isolates, direction marks, zero-width spaces and joiners,
# soft hyphens, tags) and control characters. An id holding U+202E could make one customer's page
# headline read like another's id.
HIDDEN_CATEGORIES = ("Cf", "Cc", "Zl", "Zp", "Zs")
# Unicode's default-ignorable code points outside those categories (they draw nothing: a combining
# grapheme joiner, variation selectors, Hangul fillers, Khmer inherent vowels), and the blank braille
# pattern: "C1" and "C1" + U+034F looked alike.
HIDDEN_RANGES = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2800, 0x2800),
                 (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
                 (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def shown(text: Any) -> str:
    """A customer id as a page shows it: characters that would reorder or hide text are written as
    escapes (``\\u202e``, ``\\U000e0041``), and a backslash as two, so what a reader sees is every
    character the id holds (an id holding the six characters ``\\u202e`` reads ``\\\\u202e``)."""
    value = str(text)
    if value.isascii() and value.isprintable() and "\\" not in value:
        return value
    return "".join(_escaped(character) for character in value)


def _escaped(character: str) -> str:
    if character == "\\":
        return "\\\\"
    code = ord(character)
    if character == " " or not (unicodedata.category(character) in HIDDEN_CATEGORIES
                                or any(low <= code <= high for low, high in HIDDEN_RANGES)):
        return character
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


ESCAPE = re.compile(r"\\(\\|u[0-9a-f]{4}|U[0-9a-f]{8})")


def unshown(text: str) -> str:
    """The id a page's escaped text stands for (``shown``'s inverse): what a reader copies from a page."""
    return ESCAPE.sub(lambda match: "\\" if match.group(1) == "\\" else chr(int(match.group(1)[1:], 16)), text)


def column_title(column: str) -> str:
    special = {"p_alive": "P(alive)", "predicted_ltv": "Predicted LTV", "rolling_12m_spend": "12-month spend",
               "customer_id": "Customer", "days_since_last_order": "Days since last order",
               "projected_12m_spend": "Projected 12-month spend"}
    return special.get(column, column.replace("_", " ").capitalize())


def cell(column: str, value: Any) -> dict[str, Any]:
    """Display text, sort key and CSS class of one table cell."""
    if is_missing(value):
        return {"text": "—", "sort": "", "kind": "missing"}
    if isinstance(value, (bool, np.bool_)):
        return {"text": "yes" if value else "no", "sort": int(value), "kind": "text"}
    if isinstance(value, (int, float, np.integer, np.floating)) and column != "customer_id":
        numeric = float(value)
        if column in SHARE_COLUMNS:
            text = percent(numeric, 1)
        elif any(word in column for word in MONEY_WORDS):
            text = money(numeric)
        elif numeric.is_integer():
            text = f"{int(numeric):,}"
        else:
            text = f"{numeric:,.3f}"
        return {"text": text, "sort": numeric, "kind": "number"}
    if isinstance(value, (pd.Timestamp, datetime)):
        stamp = pd.Timestamp(value)
        text = stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat(sep=" ", timespec="minutes")
        return {"text": text, "sort": text, "kind": "text"}
    if isinstance(value, date):
        return {"text": value.isoformat(), "sort": value.isoformat(), "kind": "text"}
    return {"text": str(value), "sort": str(value).lower(), "kind": "tier" if column.endswith("tier") else "text"}


def table_of(frame: pd.DataFrame) -> dict[str, Any]:
    """Columns and formatted rows of a list; reason_1..3 become one Reasons column."""
    columns = [column for column in frame.columns if column not in REASON_COLUMNS]
    reasons = [column for column in REASON_COLUMNS if column in frame.columns]
    headers = [{"name": column, "title": column_title(column)} for column in columns]
    if reasons:
        headers.append({"name": "reasons", "title": "Reasons"})
    rows = []
    for record in frame.to_dict("records"):
        row = {"customer_id": record.get("customer_id"),
               "cells": [cell(column, record[column]) for column in columns]}
        if reasons:
            row["reasons"] = [str(record[column]) for column in reasons if not is_missing(record[column])]
        rows.append(row)
    for position, header in enumerate(headers[:len(columns)]):
        kinds = {row["cells"][position]["kind"] for row in rows} - {"missing"}
        header["numeric"] = kinds == {"number"}
    return {"headers": headers, "rows": rows}


def tier_order(tier: Any) -> int:
    return TIERS_HIGH_FIRST.index(tier) if tier in TIERS_HIGH_FIRST else len(TIERS_HIGH_FIRST)


templates.env.filters.update(money=money, number=number, percent=percent, compact_money=compact_money, shown=shown)
templates.env.globals.update(column_title=column_title, tiers=TIERS_HIGH_FIRST, list_titles=LIST_TITLES,
                             quote=quote)


# Run selection shared by every page

def page_context(request: Request, store: OutputsStore, run_id: str | None, as_of: date | None,
                 data: str | None = None) -> dict[str, Any]:
    """The run a page shows (NoRunsYet in an empty store) and what the run banner needs.

    ``run_params`` keep the reader's choice in the navigation (a run, a dataset's latest run, or the
    latest run); ``pinned_params`` name the run shown, for what the page lists from it (downloads,
    customer pages): those must not turn into another run's, or another shop's, once a new run lands.
    """
    runs = store.runs()
    if not runs:
        raise NoRunsYet()
    run = store.find_run(run_id, as_of, dataset=data)
    dataset = run_dataset(run)
    is_latest = run.run_id == (runs_of_dataset(runs, dataset) if dataset else runs)[0].run_id
    selection = {"run_id": run.run_id} if (run_id or as_of) else {"data": data} if data else {}
    return {
        "request": request,
        "run": run,
        "runs": runs,
        "dataset": dataset,
        "several_datasets": len(dataset_names(runs)) > 1,
        "is_latest": is_latest,
        "run_params": selection,
        "pinned_params": {"run_id": run.run_id},
        "auth_enabled": request.app.state.api_key is not None,
    }


DOT_SEGMENTS = (".", "..")


def customer_path(customer_id: str) -> str:
    """The customer page's address. Ids `.` and `..` are dot segments that every client removes from a
    path, encoded or not (`/customers/..` opened the overview): their page is at /customers?customer_id=."""
    if customer_id in DOT_SEGMENTS:
        return with_params("/customers", {"customer_id": customer_id})
    return "/customers/" + quote(customer_id, safe="")


def with_params(path: str, params: dict[str, Any]) -> str:
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return path + (("&" if "?" in path else "?") + urlencode(kept) if kept else "")


templates.env.globals["with_params"] = with_params
templates.env.globals["customer_path"] = customer_path
templates.env.globals["run_dataset"] = run_dataset


# Overview

class OverviewCache:
    """Overview figures per run: a run's rows never change once committed (a rewrite gets a new created_at)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple) -> dict[str, Any] | None:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        return None

    def put(self, key: tuple, value: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def overview_figures(store: OutputsStore, run: RunInfo, previous: RunInfo | None) -> dict[str, Any]:
    summary = store.tier_summary(run.run_id)
    previous_counts = {}
    if previous is not None:
        previous_counts = dict(store.tier_summary(previous.run_id)[["tier", "customers"]].itertuples(index=False))
    total = int(summary["customers"].sum()) if len(summary) else 0
    tier_rows = []
    for row in sorted(summary.to_dict("records"), key=lambda row: tier_order(row["tier"])):
        before = previous_counts.get(row["tier"])
        tier_rows.append({
            "tier": row["tier"] if not is_missing(row["tier"]) else "(none)",
            "customers": int(row["customers"]),
            "share": row["customers"] / total if total else math.nan,
            "change": None if previous is None else int(row["customers"]) - int(before or 0),
            "predicted_ltv": row.get("predicted_ltv"),
            "predicted_spend": row.get("predicted_spend"),
            "rolling_12m_spend": row.get("rolling_12m_spend"),
            "mean_p_alive": row.get("mean_p_alive"),
            "mean_churn_probability": row.get("mean_churn_probability"),
        })
    vip_members = sum(row["customers"] for row in tier_rows if row["tier"] in VIP_TIERS)
    movement = None
    if previous is not None:
        movement = movement_matrix(store.tier_movement(run.run_id, previous.run_id))
    economics = None
    if "economics" in run.lists:
        economics = table_of(store.read_list("economics", run_id=run.run_id))
    value_bars = [(row["tier"], float(row["predicted_ltv"])) for row in tier_rows
                  if not is_missing(row.get("predicted_ltv"))]
    return {
        "tier_rows": tier_rows,
        "total_customers": total,
        "vip_members": vip_members,
        "vip_share": vip_members / total if total else math.nan,
        "predicted_value": sum(value for _, value in value_bars),
        "value_chart": bar_chart(value_bars, title="Predicted lifetime value by tier") if value_bars else None,
        "movement": movement,
        "economics": economics,
    }


def movement_matrix(movement: pd.DataFrame) -> dict[str, Any]:
    """Rows: tier in the previous run (or new); columns: tier now (or gone); upgrades and downgrades counted."""
    present = {tier for tier in pd.concat([movement["from_tier"], movement["to_tier"]]).dropna()}
    tiers = sorted(present, key=tier_order)
    counts = {(None if is_missing(row.from_tier) else row.from_tier, None if is_missing(row.to_tier) else row.to_tier):
              int(row.customers) for row in movement.itertuples()}
    upgrades = downgrades = 0
    rows = []
    for before in [*tiers, None]:
        cells = []
        for after in [*tiers, None]:
            count = counts.get((before, after), 0)
            kind = "same"
            if before is None or after is None:
                kind = "new" if before is None else "gone"
            elif tier_order(after) < tier_order(before):
                kind, upgrades = "up", upgrades + count
            elif tier_order(after) > tier_order(before):
                kind, downgrades = "down", downgrades + count
            cells.append({"count": count, "kind": kind if count else "empty"})
        if before is None and not any(item["count"] for item in cells):
            continue
        rows.append({"tier": before or "Not scored then", "cells": cells})  # new customers, and members back after a run without them
    return {"columns": [*tiers, "Not scored now"], "rows": rows, "upgrades": upgrades, "downgrades": downgrades}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, run_id: RunIdQuery = None, as_of: AsOfQuery = None, data: DataQuery = None) -> Response:
    store = store_of(request)
    with store.session():
        context = page_context(request, store, run_id, as_of, data)
        run = context["run"]
        previous = store.previous_run(run)
        key = (run.run_id, run.created_at, previous.run_id if previous else None,
               previous.created_at if previous else None)
        cache: OverviewCache = request.app.state.overview_cache
        figures = cache.get(key)
        if figures is None:
            figures = overview_figures(store, run, previous)
            cache.put(key, figures)
    return templates.TemplateResponse(request, "overview.html", {
        **context, **figures, "previous": previous, "page": "overview",
        "rising_star_count": run.lists.get("rising_stars"), "at_risk_count": run.lists.get("at_risk"),
    })


# Lists

@router.get("/lists/{list_name}", response_class=HTMLResponse)
def list_page(
    request: Request,
    list_name: Annotated[ListName, Path()],
    tier: TierQuery = None,
    top: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 200,
    run_id: RunIdQuery = None,
    as_of: AsOfQuery = None,
    data: DataQuery = None,
) -> Response:
    store = store_of(request)
    tier = canonical_tier(tier)
    with store.session():
        context = page_context(request, store, run_id, as_of, data)
        run = context["run"]
        frame = store.read_list(list_name.value, run_id=run.run_id, top=top + 1, tier=tier)
    more = len(frame) > top
    download = with_params(f"/api/v1/lists/{list_name.value}",
                           {"format": "csv", "tier": tier, **context["pinned_params"]})
    return templates.TemplateResponse(request, "list.html", {
        **context, "page": list_name.value, "list_name": list_name, "title": LIST_TITLES[list_name],
        "help": LIST_HELP[list_name], "table": table_of(frame.head(top)), "tier": tier, "top": top,
        "page_sizes": PAGE_SIZES, "more": more, "download": download,
        "extra_params": {"tier": tier, "top": top} if tier else {"top": top},
        "total": run.lists.get(list_name.value.replace("-", "_"), 0),
    })


# Customers

@router.get("/customers", response_class=HTMLResponse)
def find_customer(request: Request, customer_id: Annotated[str, Query(min_length=1, max_length=CUSTOMER_ID_MAX_LENGTH)],
                  run_id: RunIdQuery = None, data: DataQuery = None) -> Response:
    customer_id = customer_id.strip()
    wanted = unshown(customer_id)
    if wanted != customer_id:  # copied from a page that wrote characters out (or a backslash as two)
        store = store_of(request)
        with store.session():
            run = page_context(request, store, run_id, None, data)["run"]
            if not store.customer_rows(customer_id, run.run_id) and store.customer_rows(wanted, run.run_id):
                customer_id = wanted
    if customer_id in DOT_SEGMENTS:  # no path can carry them: the page is answered here
        return customer_page(request, customer_id, run_id=run_id, data=data)
    target = with_params(customer_path(customer_id), {"run_id": run_id, "data": data})
    return RedirectResponse(target, status_code=303)


@router.get("/customers/{customer_id:anytext}", response_class=HTMLResponse)
def customer_page(
    request: Request,
    customer_id: Annotated[str, Path(max_length=CUSTOMER_ID_MAX_LENGTH)],
    run_id: RunIdQuery = None,
    as_of: AsOfQuery = None,
    data: DataQuery = None,
) -> Response:
    store = store_of(request)
    with store.session():
        context = page_context(request, store, run_id, as_of, data)
        run = context["run"]
        rows = store.customer_rows(customer_id, run.run_id)
        if not rows:
            of = f" of {context['dataset']}" if context["dataset"] else ""
            other = " (another dataset's run: pick it under Show run)" if context["several_datasets"] else ""
            raise HTTPException(404, f"Customer {shown(customer_id)} is not in the scoring run{of} as of {run.as_of}.{other}"
                                + unscored_note(run, customer_id, shown(customer_id)))
        events = None
        if "events" in rows:
            events = table_of(store.read_list("events", run_id=run.run_id, customer_id=customer_id))
        history = store.customer_history(customer_id, of_run=run)
    history_columns = [column for column in ("as_of", "model_version", "tier", "rolling_12m_spend", "predicted_spend",
                                             "predicted_ltv", "p_alive", "churn_probability") if column in history]
    scores = rows.get("scores", {})
    tier_row = rows.get("tiers", {})
    score_items = [(column_title(column), cell(column, scores[column])["text"])
                   for column in ("predicted_orders", "predicted_spend", "predicted_ltv", "p_alive",
                                  "churn_probability", "rising_star_score") if column in scores]
    return templates.TemplateResponse(request, "customer.html", {
        **context, "page": "customer", "customer_id": customer_id,
        "tier": tier_row.get("tier", scores.get("tier")),
        "tier_row": tier_row, "scores": scores, "score_items": score_items,
        "grace_until": cell("grace_until", tier_row["grace_until"])["text"] if tier_row.get("grace_until") is not None else None,
        "rising_star": rows.get("rising_stars"), "at_risk": rows.get("at_risk"), "events": events,
        "history": table_of(history.loc[:, history_columns]) if len(history) else None,
        "progress": progress_of(tier_row or scores), "keep": keep_of(tier_row, rows.get("at_risk")),
        "spend_text": spend_text(tier_row or scores),
        # The run picker submits to this page's path; for '.' and '..' that is /customers, which needs the id.
        "extra_params": {"customer_id": customer_id} if customer_id in DOT_SEGMENTS else None,
    })


def keep_of(row: dict[str, Any], at_risk: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """For a member in grace below the held tier's threshold: the threshold and the amount that keeps the
    tier, the at-risk list's spend_to_keep_tier (it counts the spend leaving the 12-month window before
    the grace ends; today's shortfall alone promised a tier the member then lost)."""
    threshold, spend = row.get("tier_threshold"), row.get("rolling_12m_spend")
    if not row.get("in_grace") or is_missing(threshold) or is_missing(spend) or spend >= threshold:
        return None
    amount = None if at_risk is None else at_risk.get("spend_to_keep_tier")
    amount = threshold - spend if is_missing(amount) else amount
    return {"threshold": threshold, "amount": amount, "amount_text": money_texts_beside([float(amount)])[0]}


def progress_of(row: dict[str, Any]) -> dict[str, Any] | None:
    """Share of the way to the next tier and the amount still to spend (None at the top tier)."""
    next_tier = row.get("next_tier")
    if is_missing(next_tier):
        return None
    share = row.get("progress_to_next_tier")
    amount = row.get("amount_to_next_tier")
    threshold = row.get("next_tier_threshold")
    spend = row.get("rolling_12m_spend")
    if is_missing(share) and not is_missing(amount) and not is_missing(spend) and (spend + amount) > 0:
        share = spend / (spend + amount)
    share = 0.0 if is_missing(share) else float(min(max(share, 0.0), 1.0))
    if not is_missing(amount) and amount > 0:
        share = min(share, 0.99)  # $0.004 short read "100% of the way to Gold: $0 to go"
    return {"next_tier": next_tier, "share": share, "amount": amount, "threshold": threshold,
            "amount_text": "—" if is_missing(amount) else money_texts_beside([float(amount)])[0]}


def spend_text(row: dict[str, Any]) -> str:
    """The 12-month spend beside the tier thresholds it is compared with: $4,999.996 read "$5,000" beside
    "100% of the way to Gold ($5,000)"."""
    spend = row.get("rolling_12m_spend")
    if is_missing(spend):
        return "—"
    marks = [row.get(key) for key in ("tier_threshold", "next_tier_threshold")]
    return money_texts_beside([float(spend)], [float(mark) for mark in marks if not is_missing(mark)])[0]


# Runs

@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, run_id: RunIdQuery = None, as_of: AsOfQuery = None, data: DataQuery = None) -> Response:
    store = store_of(request)
    context = page_context(request, store, run_id, as_of, data)
    return templates.TemplateResponse(request, "runs.html", {**context, "page": "runs"})


# Login

def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > NEXT_MAX_LENGTH:
        return "/"
    return target


# A customer page's address with the longest id, percent-encoded (three characters a byte at most).
NEXT_MAX_LENGTH = 3 * 4 * CUSTOMER_ID_MAX_LENGTH + 100


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if request.app.state.api_key is None:
        return RedirectResponse(safe_next(next), status_code=303)
    return templates.TemplateResponse(request, "login.html", {"request": request, "next": safe_next(next),
                                                              "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: Annotated[str, Form(max_length=1000)] = "",
          next: Annotated[str, Form()] = "/") -> Response:  # too long for a page of ours: the overview
    key = request.app.state.api_key
    if key is None:
        return RedirectResponse(safe_next(next), status_code=303)
    if not keys_match(api_key.strip(), key):
        return templates.TemplateResponse(request, "login.html", {
            "request": request, "next": safe_next(next), "error": "That key is not valid."}, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, new_session_cookie(key), max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https" or request.app.state.behind_https,
                        path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    if request.app.state.api_key is not None:
        request.app.state.logged_out.add(request.cookies.get(SESSION_COOKIE), request.app.state.api_key)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
