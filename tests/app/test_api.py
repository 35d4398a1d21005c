"""The JSON/CSV API: lists, runs, customers, and a clear 4xx for every bad request."""

from __future__ import annotations

import html
import io
import logging
import shutil

import duckdb

import pandas as pd
import pytest

from app_testing import API_KEY, AS_OF_NEW, AS_OF_OLD, make_client
from flows.listformats import list_csv
from flows.store import OutputsStore, StoreBusy, StoreUnreachable

LISTS = {"rising-stars": "rising_stars", "at-risk": "at_risk", "tiers": "tiers", "events": "events"}


def rows_equal(rows: list[dict], expected: pd.DataFrame) -> None:
    assert len(rows) == len(expected) > 0
    assert list(rows[0]) == list(expected.columns)
    for column in ("customer_id", "rank"):
        if column in expected:
            assert [row[column] for row in rows] == expected[column].tolist()


@pytest.mark.parametrize("name", LISTS)
def test_each_list_as_json_matches_the_store(client, filled_store: OutputsStore, name: str) -> None:
    response = client.get(f"/api/v1/lists/{name}")
    assert response.status_code == 200
    body = response.json()
    expected = filled_store.read_list(LISTS[name])
    assert body["list"] == name and body["count"] == len(expected) > 0
    assert body["run"]["as_of"] == AS_OF_NEW.isoformat() and body["run"]["model_version"] == "vipcast-demo/3"
    rows_equal(body["rows"], expected)
    assert response.headers["x-vipcast-as-of"] == AS_OF_NEW.isoformat()


def test_top_tier_and_as_of_filter_the_list(client, filled_store: OutputsStore) -> None:
    body = client.get("/api/v1/lists/rising-stars", params={"top": 5, "tier": "silver", "as_of": "2026-11-09"}).json()
    expected = filled_store.read_list("rising_stars", as_of=AS_OF_OLD, tier="Silver", top=5)
    assert body["tier"] == "Silver" and body["top"] == 5 and body["run"]["as_of"] == "2026-11-09"
    rows_equal(body["rows"], expected)
    assert {row["tier"] for row in body["rows"]} == {"Silver"}

    run_id = filled_store.find_run(as_of=AS_OF_OLD).run_id
    assert client.get("/api/v1/lists/tiers", params={"run_id": run_id, "top": 1}).json()["run"]["run_id"] == run_id


@pytest.mark.parametrize("path", ["/api/v1/lists/economics", "/lists/economics"])
@pytest.mark.parametrize("value, message", [
    ("20250630", "'20250630' is not a date in YYYY-MM-DD form"),  # "Datetimes provided to dates should have zero time"
    ("1751241600", "'1751241600' is not a date in YYYY-MM-DD form"),  # read as Unix seconds: the 2025-06-30 run, 200
    ("0", "'0' is not a date in YYYY-MM-DD form"),
    ("2026-02-30", "'2026-02-30' is not a calendar date (day is out of range for month)"),
])
def test_as_of_is_read_as_the_command_line_reads_it(client, path, value, message) -> None:
    response = client.get(path, params={"as_of": value})
    assert response.status_code == 400 and message in html.unescape(response.text)


def test_nulls_are_json_null(client) -> None:
    rows = client.get("/api/v1/lists/tiers", params={"tier": "Platinum", "top": 1}).json()["rows"]
    assert rows[0]["next_tier"] is None and rows[0]["amount_to_next_tier"] is None


def test_csv_download_has_the_filtered_rows(client, filled_store: OutputsStore) -> None:
    response = client.get("/api/v1/lists/at-risk", params={"format": "csv", "tier": "Gold"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="at-risk_{AS_OF_NEW}_gold.csv"'
    frame = pd.read_csv(io.StringIO(response.text))
    expected = filled_store.read_list("at_risk", tier="Gold")
    assert list(frame.columns) == list(expected.columns)
    assert frame["customer_id"].tolist() == expected["customer_id"].tolist()
    assert frame["churn_probability"].tolist() == pytest.approx(expected["churn_probability"].tolist())
    # Byte for byte what `vipcast lists` and the export files write (it wrote true/false and 110 before).
    assert response.content == list_csv(expected).encode()


def test_runs_latest_first(client) -> None:
    runs = client.get("/api/v1/runs").json()["runs"]
    assert [run["as_of"] for run in runs] == [AS_OF_NEW.isoformat(), AS_OF_OLD.isoformat()]
    assert runs[0]["lists"]["tiers"] == 2000 and "reconciliation" not in runs[0]
    # Only the lists the API serves, by the names it serves them under (state is internal).
    assert set(runs[0]["lists"]) == {"rising-stars", "at-risk", "tiers", "events", "economics"}
    assert "source" in runs[0]


def test_the_programme_economics_are_served_like_the_lists(client, filled_store: OutputsStore) -> None:
    """They were in the exports and the database table only."""
    body = client.get("/api/v1/lists/economics").json()
    assert [row["tier"] for row in body["rows"]] == list(filled_store.read_list("economics")["tier"])
    assert client.get("/api/v1/lists/economics", params={"format": "csv"}).text == list_csv(filled_store.read_list("economics"))
    assert "Programme economics" in client.get("/lists/economics").text


def test_customer_has_scores_tier_lists_and_history(client, filled_store: OutputsStore) -> None:
    star = filled_store.read_list("rising_stars", top=1).iloc[0]
    body = client.get(f"/api/v1/customers/{star['customer_id']}").json()
    assert body["customer_id"] == str(star["customer_id"])
    assert body["rising_star"]["target_tier"] == star["target_tier"]
    assert body["scores"]["tier"] == star["tier"] == body["tier"]["tier"]
    assert [run["as_of"] for run in body["history"]] == [AS_OF_OLD.isoformat(), AS_OF_NEW.isoformat()]
    assert any(event["event"] == "new_rising_star" for event in body["events"])

    older = client.get(f"/api/v1/customers/{star['customer_id']}", params={"as_of": "2026-11-09"}).json()
    assert older["run"]["as_of"] == "2026-11-09"


def test_a_customer_with_a_text_id_is_found_by_that_text_only(text_id_client, text_id_store: OutputsStore) -> None:
    star = text_id_store.read_list("rising_stars", top=1).iloc[0]
    customer = star["customer_id"]
    response = text_id_client.get(f"/api/v1/customers/{customer}")
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == body["scores"]["customer_id"] == customer
    assert body["rising_star"]["target_tier"] == star["target_tier"]
    assert [run["as_of"] for run in body["history"]] == [AS_OF_OLD.isoformat(), AS_OF_NEW.isoformat()]
    assert any(event["event"] == "new_rising_star" for event in body["events"])
    # "C0001005" and "01005" are not customer 1005.
    number = customer.lstrip("C0")
    assert text_id_client.get(f"/api/v1/customers/{number}").json()["detail"].startswith(f"unknown customer '{number}'")


BAD_REQUESTS = [
    ("/api/v1/lists/vip-party", 404, "'rising-stars', 'at-risk', 'tiers', 'events' or 'economics'"),
    ("/api/v1/lists/tiers?top=-3", 400, "'top': Input should be greater than or equal to 1"),
    ("/api/v1/lists/tiers?top=0", 400, "'top'"),
    ("/api/v1/lists/tiers?top=ten", 400, "'top': Input should be a valid integer"),
    ("/api/v1/lists/tiers?top=1.5", 400, "'top'"),
    ("/api/v1/lists/tiers?tier=Diamond", 400, "unknown tier 'Diamond': choose one of Base, Silver, Gold, Platinum"),
    ("/api/v1/lists/tiers?as_of=16-11-2026", 400, "'as_of'"),
    ("/api/v1/lists/tiers?as_of=2026-02-30", 400, "'as_of'"),
    ("/api/v1/lists/tiers?as_of=2025-01-06", 404, "no scoring run as of 2025-01-06"),
    ("/api/v1/lists/tiers?run_id=nope", 404, "no scoring run with run_id 'nope'"),
    ("/api/v1/lists/tiers?format=xlsx", 400, "'format'"),
    ("/api/v1/customers/424242", 404, "unknown customer '424242'"),
    ("/api/v1/customers/abc", 404, "unknown customer 'abc'"),
    ("/api/v1/customers/1005?as_of=2024-01-01", 404, "no scoring run as of 2024-01-01"),
    ("/api/v1/nothing", 404, "no page or endpoint"),
]


@pytest.mark.parametrize(("path", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_clear_json_message(client, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["detail"]
    assert "Traceback" not in response.text


def test_an_empty_store_answers_clearly(empty_client) -> None:
    assert empty_client.get("/api/v1/runs").json() == {"runs": []}
    for path in ("/api/v1/lists/rising-stars", "/api/v1/lists/tiers?format=csv", "/api/v1/customers/1"):
        response = empty_client.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "no scoring run yet: run `vipcast score`"}


def test_a_busy_store_is_503_with_retry_after(filled_store: OutputsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(filled_store, API_KEY, headers={"X-API-Key": API_KEY})
    store = client.app.state.store

    def busy(*args, **kwargs):
        raise StoreBusy("the outputs store is locked by another process (a scoring run writing?); try again")

    monkeypatch.setattr(store, "runs", busy)
    response = client.get("/api/v1/runs")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "try again" in response.json()["detail"]


def test_an_unreachable_store_database_is_503_without_its_address(filled_store: OutputsStore, caplog,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(filled_store, API_KEY, headers={"X-API-Key": API_KEY})
    store = client.app.state.store

    def down(*args, **kwargs):
        raise StoreUnreachable("cannot connect to the outputs store postgresql://u:***@10.1.2.3/shop: connection refused")

    monkeypatch.setattr(store, "runs", down)
    response = client.get("/api/v1/runs")
    assert response.status_code == 503
    assert response.json() == {"detail": "the outputs store cannot be reached right now; try again later"}
    assert "10.1.2.3" in caplog.text


def test_a_damaged_store_file_is_said_to_be_damaged_and_refused_at_start(tmp_path, caplog) -> None:
    """A store cut short started the app, then every page and API call answered 'internal error'."""
    from app.server import run
    from app_testing import N_CUSTOMERS, free_port
    from fake_outputs import fake_lists, fake_run_info
    from flows.store import StoreDamaged

    path = tmp_path / "outputs.duckdb"
    OutputsStore(path).write_run(fake_run_info(AS_OF_NEW, N_CUSTOMERS), fake_lists(N_CUSTOMERS, seed=1))
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    store = OutputsStore(path, read_only=True)
    client = make_client(store, API_KEY, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False)
    for route in ("/api/v1/runs", "/api/v1/lists/tiers", "/"):
        response = client.get(route)
        assert response.status_code == 500, route
        assert "the outputs store is damaged: restore it from a backup" in response.text, route
    assert str(path) in caplog.text
    with pytest.raises(StoreDamaged, match="is damaged"):
        run("127.0.0.1", free_port(), store, API_KEY)


def test_a_damaged_write_ahead_log_is_answered_with_its_own_way_out(tmp_path, monkeypatch) -> None:
    """The app said "restore it from a backup" where the CLI said to move the .wal aside (which loses less)."""
    from flows.store import _DuckDBBackend

    path = tmp_path / "outputs.duckdb"

    def unreplayable(self, *, write):
        raise duckdb.IOException(f'IO Error: Failure while replaying WAL file "{self.path}.wal": Corrupt WAL file')

    monkeypatch.setattr(_DuckDBBackend, "_open", unreplayable)
    path.write_bytes(b"")
    client = make_client(OutputsStore(path, read_only=True), API_KEY, headers={"X-API-Key": API_KEY},
                         raise_server_exceptions=False)
    response = client.get("/api/v1/runs")
    assert response.status_code == 500
    assert response.json()["detail"].startswith("the outputs store's write-ahead log is damaged: move the .wal file aside")


def test_an_unexpected_error_is_a_plain_500_with_nothing_leaked(filled_store: OutputsStore, caplog,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(filled_store, API_KEY, headers={"X-API-Key": API_KEY}, raise_server_exceptions=False)

    def broken(*args, **kwargs):
        raise KeyError("customer 31337 secret")

    monkeypatch.setattr(client.app.state.store, "read_list", broken)
    with caplog.at_level(logging.INFO):
        response = client.get("/api/v1/lists/tiers")
        page = client.get("/lists/tiers")
    assert response.status_code == 500 and page.status_code == 500
    assert response.json() == {"detail": "internal error: the server log names the failing route"}
    for text in (response.text, page.text, caplog.text):
        assert "31337" not in text and "Traceback" not in text
    assert "unhandled KeyError on /api/v1/lists/{list_name}" in caplog.text
    # A damaged store file: the log names the database's own reason (it said only "unhandled IOException on /").
    import duckdb

    def damaged(*args, **kwargs):
        raise duckdb.IOException("IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2")

    monkeypatch.setattr(client.app.state.store, "read_list", damaged)
    with caplog.at_level(logging.INFO):
        response = client.get("/api/v1/lists/tiers")
    assert response.status_code == 500 and "the outputs store is damaged" in response.json()["detail"]
    assert "is damaged (IO Error: Corrupt database file" in caplog.text


def test_the_app_never_holds_the_store_open(tmp_path, filled_store_path) -> None:
    path = tmp_path / "outputs.duckdb"
    shutil.copy(filled_store_path, path)
    client = make_client(OutputsStore(path), API_KEY, headers={"X-API-Key": API_KEY})
    for route in ("/", "/api/v1/lists/tiers?top=3", "/customers/1005", "/api/v1/customers/1005"):
        assert client.get(route).status_code == 200
        # Opening the file read-write fails while any read-only connection of this process is open.
        duckdb.connect(str(path)).close()


def test_openapi_documents_the_api(client) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/api/v1/runs", "/api/v1/lists/{list_name}", "/api/v1/customers/{customer_id}", "/api/v1/customers"}
    parameters = {item["name"] for item in schema["paths"]["/api/v1/lists/{list_name}"]["get"]["parameters"]}
    assert parameters == {"list_name", "top", "tier", "as_of", "run_id", "format", "data"}
    assert "text/csv" in schema["paths"]["/api/v1/lists/{list_name}"]["get"]["responses"]["200"]["content"]

    # The errors it really answers: 400/401/404/503 with {"detail": string}, no FastAPI 422 list.
    for path in schema["paths"].values():
        responses = path["get"]["responses"]
        assert {"400", "401", "404", "503"} <= set(responses) and "422" not in responses
        assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    bad = client.get("/api/v1/lists/tiers?top=0")
    assert bad.status_code == 400 and isinstance(bad.json()["detail"], str)


def test_data_picks_one_shop_of_a_shared_store_and_history_keeps_to_it(tmp_path) -> None:
    """Two shops scored the same date: as_of answered with either, and a customer's history mixed both."""
    import dataclasses
    import json

    from fake_outputs import fake_lists, fake_run_info

    store = OutputsStore(tmp_path / "outputs.duckdb")
    for source, run_id, seed in (("/data/eu/shop_eu.parquet", "eu-run", 1), ("/data/us/shop_us.parquet", "us-run", 2)):
        run = dataclasses.replace(fake_run_info(AS_OF_NEW, 50, run_id=run_id), reconciliation=json.dumps({"source": source}))
        store.write_run(run, fake_lists(50, seed=seed))
    client = make_client(store, API_KEY, headers={"X-API-Key": API_KEY})
    for data, run_id in (("shop_eu", "eu-run"), ("/data/us/shop_us.parquet", "us-run")):
        body = client.get("/api/v1/lists/tiers", params={"data": data, "as_of": AS_OF_NEW.isoformat(), "top": 1}).json()
        assert body["run"]["run_id"] == run_id
    customer = store.read_list("tiers", run_id="eu-run", top=1)["customer_id"].iloc[0]
    body = client.get(f"/api/v1/customers/{customer}", params={"data": "shop_eu"}).json()
    assert [run["run_id"] for run in body["history"]] == ["eu-run"]
    missing = client.get("/api/v1/lists/tiers", params={"data": "shop_jp"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no scoring run of dataset 'shop_jp'; the store holds runs of shop_eu, shop_us"
    wrong_date = client.get("/api/v1/lists/tiers", params={"data": "shop_eu", "as_of": "2026-01-05"})
    assert wrong_date.status_code == 404 and wrong_date.json()["detail"].endswith("(dataset 'shop_eu')")
    unknown = client.get("/api/v1/customers/nobody", params={"data": "shop_us"}).json()["detail"]
    assert unknown == ("unknown customer 'nobody' in the scoring run us-run as of 2026-11-16 "
                       "(of dataset shop_us; pass data= or run_id= for another dataset's run)")
    # The run names its dataset as data= takes it, beside the source it read (one spelling for both).
    run = client.get("/api/v1/runs").json()["runs"]
    assert {(r["run_id"], r["dataset"], r["source"]) for r in run} >= {("us-run", "shop_us", "/data/us/shop_us.parquet")}


def test_a_query_parameter_the_endpoint_does_not_read_is_refused(client) -> None:
    """?limit=2 or ?offset=1 answered 200 with the whole list, as if applied."""
    for query in ({"limit": 2}, {"offset": 1, "top": 2}, {"page": 2, "per_page": 2}):
        response = client.get("/api/v1/lists/tiers", params=query)
        assert response.status_code == 400
        assert response.json()["detail"].startswith("unknown query parameter(s) ")
        assert "this endpoint reads as_of, data, format, run_id, tier, top" in response.json()["detail"]
    assert client.get("/api/v1/runs", params={"x": 1}).json()["detail"] == "unknown query parameter(s) x; this endpoint reads none"
    assert client.get("/api/v1/lists/tiers", params={"top": 2}).status_code == 200


def test_a_customer_the_run_read_but_could_not_score_is_explained(tmp_path) -> None:
    """A refund-only customer's page and API answer said "unknown customer" of a customer the run had read."""
    import dataclasses
    import json

    from fake_outputs import fake_lists, fake_run_info

    store = OutputsStore(tmp_path / "outputs.duckdb")
    report = {"source": "/data/shop.parquet", "customers_without_purchase_day": 3,
              "customers_without_purchase_day_examples": ["R1", "R2", "R3"], "customers_only_in_quarantine": 2}
    store.write_run(dataclasses.replace(fake_run_info(AS_OF_NEW, 50, run_id="r"), reconciliation=json.dumps(report)),
                    fake_lists(50, seed=1))
    client = make_client(store, None)
    detail = client.get("/api/v1/customers/R2").json()["detail"]
    assert detail.endswith(f"(of dataset shop; pass data= or run_id= for another dataset's run). 'R2' has only refunds (no "
                           f"purchase day) up to {AS_OF_NEW}: no features, scores or tier (customers_without_purchase_day "
                           "in the run's reconciliation report)")
    detail = client.get("/api/v1/customers/nobody").json()["detail"]
    assert detail.endswith("run). The run's data held 3 customer(s) with only refunds and 2 with only rows set aside "
                           "(quarantine), which have no scores: if this customer is one of them, the run's reconciliation "
                           "report counts them (and names the first refund-only ones).")
    page = client.get("/customers/R2")
    assert page.status_code == 404 and "has only refunds (no purchase day)" in html.unescape(page.text)


def test_a_customer_is_found_by_parameter_too(text_id_client, text_id_store: OutputsStore) -> None:
    """`/api/v1/customers/.` arrives as /api/v1/customers/ (clients drop a '.' segment): the parameter form carries any id."""
    customer = text_id_store.read_list("rising_stars", top=1).iloc[0]["customer_id"]
    by_path = text_id_client.get(f"/api/v1/customers/{customer}").json()
    assert text_id_client.get("/api/v1/customers", params={"customer_id": customer}).json() == by_path
    assert text_id_client.get("/api/v1/customers", params={"customer_id": f" {customer} "}).json() == by_path
    for odd in (".", ".."):
        missing = text_id_client.get("/api/v1/customers", params={"customer_id": odd})
        assert missing.status_code == 404 and missing.json()["detail"].startswith(f"unknown customer '{odd}'")
    assert text_id_client.get("/api/v1/customers").status_code == 400
