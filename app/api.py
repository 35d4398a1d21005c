"""The JSON/CSV API over the outputs store: /api/v1/lists/{list}, /api/v1/runs, /api/v1/customers/{id}."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator
from starlette.convertors import Convertor, register_url_convertor

from flows.listformats import iso_date, list_csv, list_json
from flows.store import OutputsStore, RunInfo, run_dataset, unscored_note
from segments.settings import TIERS

def refuse_unknown_parameters(request: Request) -> None:
    """400 for a query parameter the endpoint does not read (a guessed `limit` or `offset` returned the
    whole list as if it had been applied) or one given twice."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {parameter.alias for parameter in dependant.query_params}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s) {', '.join(unknown)}; this endpoint reads {', '.join(sorted(known)) or 'none'}")
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # `tier=gold&tier=silver` answered Silver alone, as if the first had not been asked
        raise HTTPException(400, f"query parameter(s) {', '.join(repeated)} given more than once; give each once")


router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(refuse_unknown_parameters)])


class ListName(StrEnum):
    """The lists marketing pulls."""

    rising_stars = "rising-stars"
    at_risk = "at-risk"
    tiers = "tiers"
    events = "events"
    economics = "economics"


class RunOut(BaseModel):
    """Which scoring run an answer comes from."""

    run_id: str
    as_of: date
    created_at: datetime
    model_name: str
    model_version: str
    horizon_days: int
    n_customers: int
    data_digest: str
    config_digest: str
    source: str | None = None
    #: The dataset's name as data= takes it and the pages show it (the source's file stem, table or built-in name).
    dataset: str | None = None
    lists: dict[str, int]


class RunsOut(BaseModel):
    runs: list[RunOut]


class ListOut(BaseModel):
    """A list of one run, best first; ``rows`` hold the list's own columns."""

    list: ListName
    run: RunOut
    tier: str | None
    top: int | None
    count: int
    rows: list[dict[str, Any]]


class CustomerOut(BaseModel):
    """One customer in one run: scores, tier and progress, list memberships, and history across runs."""

    customer_id: str
    run: RunOut
    scores: dict[str, Any] | None
    tier: dict[str, Any] | None
    rising_star: dict[str, Any] | None
    at_risk: dict[str, Any] | None
    events: list[dict[str, Any]]
    history: list[dict[str, Any]]


TopQuery = Annotated[int | None, Query(ge=1, le=10_000_000, description="Keep the first N rows (best first).")]
TierQuery = Annotated[str | None, Query(max_length=40, description=f"Current tier: one of {', '.join(TIERS)}.")]
def as_of_param(value: Any) -> date | None:
    """The as_of parameter read as the command line reads --as-of (YYYY-MM-DD only)."""
    return None if value is None or isinstance(value, date) else iso_date(value)


AsOfQuery = Annotated[date | None, BeforeValidator(as_of_param), Query(description="As-of date YYYY-MM-DD: the latest run of that date.")]
#: Ids as long as the data have them: a 300-character id ranked first on a list had no page (404).
CUSTOMER_ID_MAX_LENGTH = 4096


class AnyText(Convertor):
    """A path parameter of any text, line breaks included (Starlette's `path` stops at one: an id holding
    a line feed was listed and linked, and its page was a 404)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyText())
RunIdQuery = Annotated[str | None, Query(max_length=200, description="A run id from /api/v1/runs.")]
DataQuery = Annotated[str | None, Query(
    max_length=500, description="A dataset (its name, e.g. orders, or its source as in /api/v1/runs): its runs only "
    "(several shops scored into one store); with as_of, that dataset's run of the date.")]


def store_of(request: Request) -> OutputsStore:
    return request.app.state.store


def run_out(run: RunInfo) -> dict[str, Any]:
    """The run's fields as JSON-ready values (what RunOut documents)."""
    fields = run.to_dict()
    # The data the run scored (pick a dataset's runs in a shared workspace) and the served lists' sizes.
    fields["source"] = fields.pop("reconciliation").get("source")
    fields["dataset"] = run_dataset(run)
    served = {name.value.replace("-", "_"): name.value for name in ListName}
    fields["lists"] = {served[name]: rows for name, rows in fields["lists"].items() if name in served}
    return RunOut(**fields).model_dump(mode="json")


def canonical_tier(tier: str | None) -> str | None:
    """The tier name as segments spells it; 400 for an unknown tier."""
    if tier is None or not tier.strip():
        return None
    for name in TIERS:
        if name.lower() == tier.strip().lower():
            return name
    raise HTTPException(400, f"unknown tier {tier!r}: choose one of {', '.join(TIERS)}")


def jsonable(value: Any) -> Any:
    """A value json.dumps takes: numpy scalars unwrapped, NaN/NaT as null, dates as ISO text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def record(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {key: jsonable(value) for key, value in row.items()}


def frame_to_json(frame: pd.DataFrame) -> str:
    """Rows as a JSON array of objects, as `vipcast lists --format json` writes them."""
    return list_json(frame)


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """Rows as CSV, byte for byte as `vipcast lists` and the export files write them."""
    return list_csv(frame).encode()


def csv_filename(name: str, run: RunInfo, tier: str | None) -> str:
    """`at-risk_shop_eu_2026-11-16_gold.csv`: two shops' lists of one date had the same name."""
    dataset = run_dataset(run)
    return f"{name}_{dataset + '_' if dataset else ''}{run.as_of.isoformat()}{'_' + tier.lower() if tier else ''}.csv"


@router.get("/runs", response_model=RunsOut, summary="Every scoring run, latest first")
def list_runs(request: Request) -> dict[str, Any]:
    return {"runs": [run_out(run) for run in store_of(request).runs()]}


@router.get(
    "/lists/{list_name}",
    response_model=ListOut,
    summary="A marketing list of one scoring run",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "JSON (format=json) or CSV (format=csv) rows, best first."}},
)
def get_list(
    request: Request,
    list_name: Annotated[ListName, Path(description="Which list.")],
    top: TopQuery = None,
    tier: TierQuery = None,
    as_of: AsOfQuery = None,
    run_id: RunIdQuery = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv.")] = "json",
    data: DataQuery = None,
) -> Response:
    store = store_of(request)
    tier = canonical_tier(tier)
    with store.session():
        run = store.find_run(run_id, as_of, dataset=data)
        frame = store.read_list(list_name.value, run_id=run.run_id, top=top, tier=tier)
    headers = {"X-Vipcast-Run-Id": run.run_id, "X-Vipcast-As-Of": run.as_of.isoformat(),
               "X-Vipcast-Model-Version": run.model_version, "X-Vipcast-Dataset": run_dataset(run) or ""}
    if format == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{csv_filename(list_name.value, run, tier)}"'
        return Response(frame_to_csv(frame), media_type="text/csv; charset=utf-8", headers=headers)
    envelope = json.dumps({"list": list_name.value, "run": run_out(run), "tier": tier, "top": top,
                           "count": len(frame)})
    return Response(envelope[:-1] + ', "rows": ' + frame_to_json(frame) + "}", media_type="application/json",
                    headers=headers)


@router.get("/customers", response_model=CustomerOut,
            summary="One customer by the customer_id parameter (for ids no path carries, such as '.' and '..')")
def get_customer_by_parameter(
    request: Request,
    customer_id: Annotated[str, Query(min_length=1, max_length=CUSTOMER_ID_MAX_LENGTH,
                                      description="The customer's id as in the data.")],
    as_of: AsOfQuery = None,
    run_id: RunIdQuery = None,
    data: DataQuery = None,
) -> dict[str, Any]:
    # Clients drop a path segment "." (`/api/v1/customers/.` arrived as /api/v1/customers/, a 404). Blanks at the
    # ends are trimmed, as the pages' find form does (ingest trims ids, so no stored id has them).
    return get_customer(request, customer_id.strip() or customer_id, as_of, run_id, data)


@router.get("/customers/{customer_id:anytext}", response_model=CustomerOut,
            summary="One customer: scores, tier, lists, history")
def get_customer(
    request: Request,
    customer_id: Annotated[str, Path(max_length=CUSTOMER_ID_MAX_LENGTH, description="The customer's id as in the data.")],
    as_of: AsOfQuery = None,
    run_id: RunIdQuery = None,
    data: DataQuery = None,
) -> dict[str, Any]:
    store = store_of(request)
    with store.session():
        run = store.find_run(run_id, as_of, dataset=data)
        rows = store.customer_rows(customer_id, run.run_id)
        if not rows:
            scored = run_dataset(run)
            raise HTTPException(
                404, f"unknown customer {customer_id!r} in the scoring run {run.run_id} as of {run.as_of}"
                + (f" (of dataset {scored}; pass data= or run_id= for another dataset's run)" if scored else "")
                + (f".{note}" if (note := unscored_note(run, customer_id)) else "")
            )
        customer_events = []
        if "events" in rows:
            events = store.read_list("events", run_id=run.run_id, customer_id=customer_id)
            customer_events = [record(row) for row in events.to_dict("records")]
        history = store.customer_history(customer_id, of_run=run)
    return {
        "customer_id": customer_id,
        "run": run_out(run),
        "scores": record(rows.get("scores")),
        "tier": record(rows.get("tiers")),
        "rising_star": record(rows.get("rising_stars")),
        "at_risk": record(rows.get("at_risk")),
        "events": customer_events,
        "history": [record(row) for row in history.to_dict("records")],
    }
