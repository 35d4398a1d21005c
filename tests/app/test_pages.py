"""Server-rendered pages: what they show, the run banner on each, and clear errors."""

from __future__ import annotations

import re
from datetime import date
from html import unescape

import pandas as pd
import pytest

from app_testing import API_KEY, AS_OF_NEW, AS_OF_OLD, N_CUSTOMERS, make_client, two_weekly_runs
from fake_outputs import fake_lists, fake_run_info
from flows.store import OutputsStore
from segments.texts import money_text

PAGES = ["/", "/lists/rising-stars", "/lists/at-risk", "/lists/tiers", "/lists/events", "/runs", "/customers/1005"]


def text_of(html: str) -> str:
    """Visible text, tags stripped and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shows_which_run_it_is(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    text = text_of(response.text)
    assert f"Scoring run as of {AS_OF_NEW.isoformat()}" in text
    assert "model blend (vipcast-demo/3)" in text and "latest" in text


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_nothing_from_other_hosts(client, path: str) -> None:
    html = client.get(path).text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_pages_forbid_framing_and_caching(client) -> None:
    headers = client.get("/").headers
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert client.get("/api/v1/runs").headers["cache-control"] == "no-store"


def test_static_assets_are_served_locally(client) -> None:
    assert "sortBy" in client.get("/static/tables.js").text
    assert "run-banner" in client.get("/static/style.css").text


def test_overview_counts_tiers_movement_and_economics(client, filled_store: OutputsStore) -> None:
    run = filled_store.latest_run()
    summary = filled_store.tier_summary(run.run_id).set_index("tier")["customers"]
    text = text_of(client.get("/").text)
    vip = int(summary.drop("Base").sum())
    assert f"VIP members {vip:,}" in text
    assert f"{vip / N_CUSTOMERS:.1%} of customers" in text
    for tier, count in summary.items():
        assert f"{tier} {count:,}" in text
    assert "Tier movement since the previous run" in text and f"on {AS_OF_OLD.isoformat()} (rows)" in text
    assert "Programme economics" in text and "Benefit cost" in text
    html = client.get("/").text
    assert html.count('class="bar bar-') == 4 and "Predicted lifetime value by tier" in html


def test_movement_counts_match_the_store(client, filled_store: OutputsStore) -> None:
    latest = filled_store.latest_run()
    movement = filled_store.tier_movement(latest.run_id, filled_store.previous_run(latest).run_id)
    upgrades = sum(row.customers for row in movement.itertuples()
                   if ["Base", "Silver", "Gold", "Platinum"].index(row.to_tier)
                   > ["Base", "Silver", "Gold", "Platinum"].index(row.from_tier))
    assert f"{upgrades:,} moved up" in text_of(client.get("/").text)


def test_the_first_run_has_no_movement_yet(tmp_path) -> None:
    store = OutputsStore(tmp_path / "one.duckdb")
    store.write_run(fake_run_info(date(2026, 1, 5), 300), fake_lists(300))
    text = text_of(make_client(store, API_KEY, headers={"X-API-Key": API_KEY}).get("/").text)
    assert "This is the first scoring run" in text


def test_rising_stars_page_filters_by_tier_and_links_the_filtered_csv(client, filled_store: OutputsStore) -> None:
    html = client.get("/lists/rising-stars", params={"tier": "gold"}).text
    expected = filled_store.read_list("rising_stars", tier="Gold")
    assert html.count("<tr>") - 1 == len(expected) > 0
    assert '<option value="Gold" selected>' in html
    # Links to what the page lists name its run: a newer run (of any dataset) must not answer them.
    run_id = filled_store.latest_run().run_id
    assert f'href="/api/v1/lists/rising-stars?format=csv&amp;tier=Gold&amp;run_id={run_id}"' in html
    first = expected.iloc[0]
    assert f'href="/customers/{first["customer_id"]}?run_id={run_id}"' in html
    assert first["reason_1"] in html
    assert 'class="data sortable"' in html


def test_list_page_shows_the_first_rows_and_says_there_are_more(client) -> None:
    text = text_of(client.get("/lists/tiers", params={"top": 50}).text)
    assert "50 rows shown (first 50; the CSV has them all)" in text


def test_an_older_run_can_be_chosen_and_links_keep_it(client, filled_store: OutputsStore) -> None:
    old = filled_store.find_run(as_of=AS_OF_OLD)
    html = client.get("/lists/at-risk", params={"run_id": old.run_id}).text
    assert f"Scoring run as of {AS_OF_OLD.isoformat()}" in text_of(html) and "not the latest run" in html
    assert f'href="/lists/tiers?run_id={old.run_id}"' in html
    assert f"run_id={old.run_id}" in re.search(r'class="button download" href="([^"]+)"', html).group(1)
    assert f"Scoring run as of {AS_OF_OLD.isoformat()}" in text_of(client.get("/", params={"as_of": "2026-11-09"}).text)


def test_customer_page_shows_tier_progress_scores_and_history(client, filled_store: OutputsStore) -> None:
    star = filled_store.read_list("rising_stars", tier="Silver", top=1).iloc[0]
    customer = star["customer_id"]
    tier_row = filled_store.read_list("tiers", customer_id=customer).iloc[0]
    text = text_of(client.get(f"/customers/{customer}").text)
    assert f"Customer {customer} Silver" in text
    assert f"{tier_row['progress_to_next_tier']:.0%} of the way to Gold" in text
    assert f"{money_text(tier_row['amount_to_next_tier'])} to go" in text  # cents kept: $0.01 short is not "$0 to go"
    assert f"Rising star: could reach {star['target_tier']}" in text and star["reason_1"] in text
    assert "History across runs" in text and AS_OF_OLD.isoformat() in text
    assert client.get("/customers", params={"customer_id": f" {customer} "}, follow_redirects=False
                      ).headers["location"] == f"/customers/{customer}"


def test_customer_page_shows_the_grace_date_as_a_date(client, filled_store: OutputsStore) -> None:
    """It read "in grace period until 2026-03-01 00:00:00"."""
    tiers = filled_store.read_list("tiers")
    customer = tiers.loc[tiers["in_grace"].astype(bool), "customer_id"].iloc[0]
    text = text_of(client.get(f"/customers/{customer}").text)
    assert "in grace period until 2026-12-31" in text and "2026-12-31 00:00" not in text
    # Below the held tier's threshold: what keeps the tier, not only the way to the tier above.
    assert "To keep" not in text  # its spend still reaches its tier


def test_a_member_in_grace_below_the_tier_is_told_what_keeps_it(tmp_path) -> None:
    """The page said only "0% of the way to Platinum ($10,000): $5,200 to go" to a Gold member $200 short of Gold."""
    lists = fake_lists(50)
    tiers = lists["tiers"]
    gold = tiers.index[tiers["tier"] == "Gold"][0]
    tiers.loc[gold, ["rolling_12m_spend", "in_grace", "grace_until"]] = [4800.0, True, pd.Timestamp("2026-03-01")]
    member = tiers.loc[gold, "customer_id"]
    at_risk = lists["at_risk"]
    lists["at_risk"] = at_risk[at_risk["customer_id"] != member]
    store = OutputsStore(tmp_path / "outputs.duckdb")
    store.write_run(fake_run_info(date(2026, 1, 5), 50), lists)
    client = make_client(store, API_KEY, headers={"X-API-Key": API_KEY})
    text = text_of(client.get(f"/customers/{member}").text)
    assert "To keep Gold ($5,000): $200 more by 2026-03-01, when the grace period ends." in text
    # The at-risk list's amount counts the spend leaving the 12-month window before the grace ends.
    row = at_risk.iloc[:1].assign(customer_id=member, tier="Gold", rolling_12m_spend=4800.0, spend_to_keep_tier=950.0)
    lists["at_risk"] = pd.concat([lists["at_risk"], row], ignore_index=True)
    store.write_run(fake_run_info(date(2026, 1, 5), 50), lists)
    text = text_of(client.get(f"/customers/{member}").text)
    assert "To keep Gold ($5,000): $950 more by 2026-03-01, when the grace period ends." in text
    silver = tiers.loc[tiers["tier"] == "Silver", "customer_id"].iloc[0]
    assert "To keep" not in text_of(client.get(f"/customers/{silver}").text)


def test_customer_page_of_a_text_id_is_linked_from_the_lists(text_id_client, text_id_store: OutputsStore) -> None:
    star = text_id_store.read_list("rising_stars", tier="Silver", top=1).iloc[0]
    customer = star["customer_id"]
    assert f'href="/customers/{customer}?run_id={text_id_store.latest_run().run_id}"' in text_id_client.get("/lists/rising-stars").text
    response = text_id_client.get(f"/customers/{customer}")
    assert response.status_code == 200
    text = text_of(response.text)
    assert f"Customer {customer} Silver" in text
    assert "History across runs" in text and AS_OF_OLD.isoformat() in text
    assert text_id_client.get(f"/customers/{customer.lstrip('C0')}").status_code == 404


def test_runs_page_lists_every_run(client, filled_store: OutputsStore) -> None:
    text = text_of(client.get("/runs").text)
    for run in filled_store.runs():
        assert run.run_id in text


@pytest.mark.parametrize("path", PAGES)
def test_an_empty_store_shows_how_to_fill_it(empty_client, path: str) -> None:
    response = empty_client.get(path)
    assert response.status_code == 200
    text = text_of(response.text)
    assert "No scoring run yet" in text and "vipcast score" in text


BAD_PAGES = [
    ("/lists/vip-party", 404, "Input should be &#39;rising-stars&#39;"),
    ("/lists/tiers?tier=Diamond", 400, "unknown tier &#39;Diamond&#39;"),
    ("/lists/tiers?top=-1", 400, "greater than or equal to 1"),
    ("/lists/tiers?top=lots", 400, "valid integer"),
    ("/lists/tiers?top=100000", 400, "less than or equal to 5000"),
    ("/?as_of=yesterday", 400, "as_of"),
    ("/?as_of=2020-01-01", 404, "no scoring run as of 2020-01-01"),
    ("/?run_id=missing", 404, "no scoring run with run_id &#39;missing&#39;"),
    ("/customers/424242", 404, "Customer 424242 is not in the scoring run as of 2026-11-16"),
    ("/customers?customer_id=", 400, "customer_id"),
    ("/no-such-page", 404, "no page or endpoint at /no-such-page"),
]


@pytest.mark.parametrize(("path", "status", "message"), BAD_PAGES)
def test_bad_page_requests_get_a_clear_page(client, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert "Traceback" not in response.text


def test_a_customer_id_with_a_slash_opens_from_the_find_box_the_page_and_the_api(tmp_path) -> None:
    store = OutputsStore(two_weekly_runs(str(tmp_path), "shop/{:05d}"), read_only=True)
    client = make_client(store, API_KEY, headers={"X-API-Key": API_KEY})
    customer = store.read_list("tiers", top=1).iloc[0]["customer_id"]
    assert "/" in customer
    assert client.get("/api/v1/customers/" + customer.replace("/", "%2F")).json()["customer_id"] == customer
    page = client.get("/customers", params={"customer_id": customer})
    assert page.status_code == 200 and customer in text_of(page.text)


def test_a_300_character_customer_id_has_a_page_and_an_api_record(tmp_path) -> None:
    """Ids over 200 characters were listed but their page and record answered 404."""
    store = OutputsStore(two_weekly_runs(str(tmp_path), "x" * 295 + "{:05d}"), read_only=True)
    client = make_client(store, API_KEY, headers={"X-API-Key": API_KEY})
    customer = store.read_list("tiers", top=1).iloc[0]["customer_id"]
    assert len(customer) == 300
    assert client.get("/api/v1/customers/" + customer).json()["customer_id"] == customer
    page = client.get("/customers", params={"customer_id": customer})
    assert page.status_code == 200 and customer in text_of(page.text)


@pytest.fixture(scope="module")
def two_shops(tmp_path_factory) -> OutputsStore:
    """shop_eu scored twice, shop_us once, on the date of shop_eu's second run; text ids, one of them '..'."""
    import dataclasses
    import json

    store = OutputsStore(tmp_path_factory.mktemp("shops") / "outputs.duckdb")
    for source, run_id, as_of, seed in (("/data/eu/shop_eu.parquet", "eu-old", AS_OF_OLD, 1),
                                        ("/data/eu/shop_eu.parquet", "eu-new", AS_OF_NEW, 2),
                                        ("/data/us/shop_us.parquet", "us-new", AS_OF_NEW, 3)):
        run = dataclasses.replace(fake_run_info(as_of, 60, run_id=run_id), reconciliation=json.dumps({"source": source}))
        lists = {name: frame.assign(customer_id=frame["customer_id"].astype(str).replace({"1000": ".."}))
                 if "customer_id" in frame else frame for name, frame in fake_lists(60, seed=seed).items()}
        store.write_run(run, lists)
    return store


def test_pages_of_a_shared_store_name_the_dataset_and_pin_what_they_list(two_shops: OutputsStore) -> None:
    """Download and customer links of the latest run answered whatever run was latest when followed
    (another shop's list under the same file name); `?data=` was ignored on pages."""
    client = make_client(two_shops, API_KEY, headers={"X-API-Key": API_KEY})
    html = client.get("/lists/tiers", params={"data": "shop_eu"}).text
    assert "dataset <strong>shop_eu</strong>" in html and "latest of shop_eu" in html
    assert 'href="/api/v1/lists/tiers?format=csv&amp;run_id=eu-new"' in html
    assert 'href="/customers/1001?run_id=eu-new"' in html
    assert '<input type="hidden" name="data" value="shop_eu">' in html  # the filters keep the dataset
    download = client.get("/api/v1/lists/tiers", params={"format": "csv", "run_id": "eu-new", "tier": "gold"})
    assert download.headers["content-disposition"] == 'attachment; filename="tiers_shop_eu_2026-11-16_gold.csv"'
    assert download.headers["x-vipcast-dataset"] == "shop_eu"
    older = client.get("/lists/tiers", params={"run_id": "eu-old"}).text
    assert "not the latest run of shop_eu" in older
    # The id '..' is a dot segment no client keeps in a path: its page is answered by the find route.
    assert 'href="/customers?customer_id=..&amp;run_id=eu-new"' in html
    page = client.get("/customers", params={"customer_id": "..", "run_id": "eu-new"})
    assert page.status_code == 200 and "Customer .." in text_of(page.text)
    # Its run picker submits to /customers, so it carries the id (picking a run gave a 400).
    assert '<input type="hidden" name="customer_id" value="..">' in page.text
    missing = client.get("/customers/nobody", params={"data": "shop_us"})
    assert missing.status_code == 404
    assert ("Customer nobody is not in the scoring run of shop_us as of 2026-11-16. (another dataset's run: pick it "
            "under Show run)") in unescape(text_of(missing.text))


@pytest.mark.parametrize("path, query, status, message", [
    ("/lists/tiers", "limit=5", 400, "unknown query parameter(s) limit"),
    ("/lists/tiers", "data=shop_jp", 404, "no scoring run of dataset 'shop_jp'"),
    ("/api/v1/lists/tiers", "tier=gold&tier=silver", 400, "query parameter(s) tier given more than once"),
    ("/api/v1/lists/tiers", "top=1&top=2", 400, "query parameter(s) top given more than once"),
    ("/api/v1/lists/tiers", "as_of=2026-11-16", 400,
     "runs of several datasets are as of 2026-11-16 (shop_eu, shop_us): name the dataset"),
    ("/lists/tiers", "as_of=2026-11-16", 400, "runs of several datasets are as of 2026-11-16"),
])
def test_requests_that_cannot_mean_one_list_are_refused(two_shops: OutputsStore, path, query, status, message) -> None:
    """Pages ignored unknown parameters; a repeated one answered with the last; an as-of date two shops
    share answered with one of them, naming neither."""
    client = make_client(two_shops, API_KEY, headers={"X-API-Key": API_KEY})
    response = client.get(f"{path}?{query}")
    assert response.status_code == status
    assert message in (response.json()["detail"] if path.startswith("/api") else unescape(text_of(response.text)))


def store_with_an_id(tmp_path, customer_id: str) -> OutputsStore:
    """A store of one run of 50 customers, the first of whom has the id `customer_id` in every list."""
    lists = fake_lists(50)
    first = str(lists["tiers"]["customer_id"].iloc[0])
    for frame in lists.values():
        if "customer_id" in frame:
            frame["customer_id"] = frame["customer_id"].astype(str).replace({first: customer_id})
    store = OutputsStore(tmp_path / "outputs.duckdb")
    store.write_run(fake_run_info(date(2026, 1, 5), 50), lists)
    return store


def test_every_listed_id_has_a_page_and_the_app_builds_no_address_from_the_host(tmp_path) -> None:
    """An id holding a line feed was listed and linked, and its page and API answer were a 404 (the route
    stopped at the line break); /api/v1/runs/ redirected to http://<the request's Host header>/..."""
    odd = "line1\nline2"
    client = make_client(store_with_an_id(tmp_path, odd), API_KEY, headers={"X-API-Key": API_KEY}, follow_redirects=False)
    assert 'href="/customers/line1%0Aline2?run_id=' in client.get("/lists/tiers").text
    page = client.get("/customers/line1%0Aline2")
    assert page.status_code == 200 and "Customer line1\\u000aline2" in unescape(page.text)
    assert client.get("/api/v1/customers/line1%0Aline2").json()["customer_id"] == odd
    slash = client.get("/api/v1/runs/", headers={"Host": "evil.example"})
    assert slash.status_code == 404 and "location" not in slash.headers and "detail" in slash.json()


def test_ids_with_characters_that_reorder_text_are_shown_with_them_written_out(tmp_path) -> None:
    """An id holding a right-to-left override (U+202E) read on its page and in the lists like another
    customer's id: "A\u202e99" is rendered as "A99" reversed. Pages now write such characters out."""
    spoof = "A\u202e99"
    client = make_client(store_with_an_id(tmp_path, spoof), API_KEY, headers={"X-API-Key": API_KEY})
    listed = unescape(client.get("/lists/tiers").text)
    assert ">A\\u202e99</a>" in listed and "\u202e" not in unescape(text_of(listed))  # the sort key keeps it
    page = unescape(client.get("/customers/A%E2%80%AE99").text)
    assert "Customer A\\u202e99" in page and "\u202e" not in page
    assert client.get("/api/v1/customers/A%E2%80%AE99").json()["customer_id"] == spoof  # data stays as it is
    missing = client.get("/customers/B%E2%80%AE99")
    assert missing.status_code == 404 and "\u202e" not in unescape(missing.text)
    # Every invisible format character (a soft hyphen, a tag, U+180E), and a backslash, which could spell an escape.
    from app.pages import shown, unshown

    assert shown("C0002\u00ad145x") == "C0002\\u00ad145x" and shown("C0000\U000e0041918") == "C0000\\U000e0041918"
    assert shown("a\u180eb") == "a\\u180eb" and shown("lit\\u202egpj") == "lit\\\\u202egpj"
    assert shown("Zoë 42") == "Zoë 42" and shown(1005) == "1005"
    for hidden in ("C1\u034f", "C1\ufe0f", "\u3164C1", "C1\U000e0100", "C1\u17b4", "C1\u00a0", "C1\u2800"):
        assert shown(hidden) != hidden and unshown(shown(hidden)) == hidden
    # What a reader copies from the page finds the customer in the search box.
    found = client.get("/customers?customer_id=A%5Cu202e99", follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"].startswith("/customers/A%E2%80%AE99")


def test_a_login_from_a_long_address_still_logs_in(filled_store: OutputsStore) -> None:
    """A `next` over 2,000 characters (a customer page of a long id) refused the right key with a 400."""
    client = make_client(filled_store, API_KEY, follow_redirects=False)
    response = client.post("/login", data={"api_key": API_KEY, "next": "/customers/" + "P" * 3000})
    assert response.status_code == 303 and response.headers["location"] == "/customers/" + "P" * 3000
    huge = client.post("/login", data={"api_key": API_KEY, "next": "/customers/" + "P" * 100_000})
    assert huge.status_code == 303 and huge.headers["location"] == "/"


@pytest.mark.parametrize("column", ["rolling_12m_spend", "tier_threshold", "next_tier_threshold", "spend_to_keep_tier",
                                    "projected_12m_spend", "projected_shortfall", "amount_to_target_tier",
                                    "amount_to_next_tier", "predicted_spend", "predicted_ltv", "predicted_revenue",
                                    "benefit_cost", "net_margin_per_member"])
def test_money_columns_show_as_money(column: str) -> None:
    """The at-risk page's projected shortfall read 538.399 between $624.96 and $86.56."""
    from app.pages import cell

    assert cell(column, 538.399)["text"] == money_text(538.399)
    assert money_text(538.399).startswith("$")


@pytest.mark.parametrize("column", ["days_since_last_order", "days_left", "predicted_orders", "members", "rank"])
def test_counts_are_not_money(column: str) -> None:
    from app.pages import cell

    assert cell(column, 12.0)["text"] == "12"


def test_the_movement_row_of_customers_absent_from_the_previous_run_says_just_that(client, filled_store: OutputsStore) -> None:
    """The row was "New customers", also for members back after a run whose data lacked them (carried tier state)."""
    latest = filled_store.latest_run()
    movement = filled_store.tier_movement(latest.run_id, filled_store.previous_run(latest).run_id)
    text = text_of(client.get("/").text)
    assert "New customers" not in text
    assert ("Not scored then" in text) == bool(movement["from_tier"].isna().any())


def test_a_customer_page_never_writes_a_spend_as_a_threshold_it_has_not_reached() -> None:
    """$4,999.996 of 12-month spend read "12-month spend: $5,000 · 100% of the way to Gold ($5,000): $0 to go", and a
    member in grace "$0 more" to keep Gold (the events beside it said "$0.004 to Gold")."""
    from app.pages import keep_of, progress_of, spend_text

    row = {"rolling_12m_spend": 4999.996, "tier_threshold": 2000.0, "next_tier": "Gold", "next_tier_threshold": 5000.0,
           "amount_to_next_tier": 0.004, "progress_to_next_tier": 0.9999987}
    assert spend_text(row) == "$4,999.996"
    progress = progress_of(row)
    assert progress["amount_text"] == "$0.004" and progress["share"] == 0.99
    grace = {"rolling_12m_spend": 4999.996, "tier_threshold": 5000.0, "in_grace": True}
    assert keep_of(grace, {"spend_to_keep_tier": 0.004})["amount_text"] == "$0.004"
    assert spend_text({"rolling_12m_spend": 2500.0, "tier_threshold": 2000.0}) == "$2,500"  # whole amounts as before
    assert progress_of({**row, "rolling_12m_spend": 4000.0, "amount_to_next_tier": 1000.0, "progress_to_next_tier": 2 / 3})[
        "amount_text"] == "$1,000"
