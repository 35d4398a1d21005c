"""The app in real headless Chromium (Debian's chromium + chromium-driver), over a live uvicorn."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from app_testing import API_KEY, AS_OF_NEW, LiveServer
from flows.store import OutputsStore

pytestmark = pytest.mark.browser

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


@pytest.fixture
def browser(tmp_path: Path):
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        pytest.fail("browser tests need Debian's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--no-first-run",
                     f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
    })
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height + 140, 800), 4000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def column_values(driver, name: str, attribute: str | None = None) -> list[str]:
    """The cells of one column of the page's sortable table (text, or an attribute)."""
    from selenium.webdriver.common.by import By

    headers = driver.find_elements(By.CSS_SELECTOR, "table.sortable thead th")
    index = [header.get_attribute("data-column") for header in headers].index(name)
    cells = [row.find_elements(By.TAG_NAME, "td")[index]
             for row in driver.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")]
    return [cell.get_attribute(attribute) if attribute else cell.text for cell in cells]


def test_log_in_filter_rising_stars_and_download_the_csv(browser, live_server: LiveServer,
                                                        filled_store: OutputsStore) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(live_server.url + "/")
    wait_for(lambda: "/login" in browser.current_url, what="the login form")
    assert "Scoring run" not in browser.page_source
    browser.find_element(By.NAME, "api_key").send_keys("wrong key")
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".form-error"), what="the wrong-key message")
    browser.find_element(By.NAME, "api_key").send_keys(API_KEY)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()

    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".run-banner"), what="the overview")
    banner = browser.find_element(By.CSS_SELECTOR, ".run-banner").text
    assert f"Scoring run as of {AS_OF_NEW.isoformat()}" in banner and "model blend (vipcast-demo/3)" in banner
    assert browser.find_element(By.TAG_NAME, "h1").text == "Programme overview"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    overview_png = screenshot(browser, "overview")

    browser.find_element(By.LINK_TEXT, "Rising stars").click()
    wait_for(lambda: browser.find_elements(By.ID, "tier-filter"), what="the rising-stars page")
    Select(browser.find_element(By.ID, "tier-filter")).select_by_visible_text("Silver")
    wait_for(lambda: "tier=Silver" in browser.current_url, what="the tier filter to apply")
    expected = filled_store.read_list("rising_stars", tier="Silver")
    tiers = column_values(browser, "tier")
    assert set(tiers) == {"Silver"} and len(tiers) == min(len(expected), 200)

    score_header = browser.find_element(By.CSS_SELECTOR, "th[data-column='rising_star_score']")
    score_header.click()
    shown = [float(value) for value in column_values(browser, "rising_star_score", "data-sort")]
    assert shown == sorted(shown) and score_header.get_attribute("aria-sort") == "ascending"
    list_png = screenshot(browser, "rising-stars-silver")

    browser.find_element(By.CSS_SELECTOR, "a.download").click()
    csv_path = browser.downloads / f"rising-stars_{AS_OF_NEW.isoformat()}_silver.csv"
    wait_for(lambda: csv_path.exists() and not list(browser.downloads.glob("*.crdownload")), what="the CSV download")
    downloaded = pd.read_csv(csv_path)
    assert len(downloaded) == len(expected) > 0
    assert set(downloaded["tier"]) == {"Silver"}
    assert downloaded["customer_id"].tolist() == expected["customer_id"].tolist()

    first_customer = expected["customer_id"].iloc[0]
    browser.find_element(By.LINK_TEXT, str(first_customer)).click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".customer-head"), what="the customer page")
    assert f"Customer {first_customer}" in browser.find_element(By.TAG_NAME, "h1").text
    assert AS_OF_NEW.isoformat() in browser.find_element(By.CSS_SELECTOR, ".run-banner").text
    customer_png = screenshot(browser, "customer")

    browser.find_element(By.LINK_TEXT, "At risk").click()
    wait_for(lambda: "/lists/at-risk" in browser.current_url, what="the at-risk page")
    assert browser.find_element(By.TAG_NAME, "h1").text == "At-risk members"
    assert column_values(browser, "customer_id")[:3] == [
        str(value) for value in filled_store.read_list("at_risk", top=3)["customer_id"]]
    at_risk_png = screenshot(browser, "at-risk")

    for path in (overview_png, list_png, customer_png, at_risk_png):
        assert path.stat().st_size > 10_000


def test_an_empty_store_shows_how_to_fill_it(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with LiveServer(OutputsStore(tmp_path / "none.duckdb"), None) as server:
        browser.get(server.url + "/")
        wait_for(lambda: browser.find_elements(By.TAG_NAME, "h1"), what="the page")
        assert browser.find_element(By.TAG_NAME, "h1").text == "No scoring run yet"
        assert "vipcast score" in browser.find_element(By.TAG_NAME, "main").text
        screenshot(browser, "empty-store")
