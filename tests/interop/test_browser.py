"""A real browser renders the real pages: Debian's headless Chromium driven by chromedriver.

The home page, a lab page and the query page are loaded from ``labgraph serve`` over the real
data; an example query is submitted through the form and its results table is read back, once
with JavaScript on and once with it off (the pages must not need it). The browser's own network
log shows that nothing is fetched from anywhere but the server (no CDN). Screenshots are written
to a temporary folder and their paths printed, for a person to look at.

Chromium and chromedriver come from Debian (``.ci/interop-deps``, run by ``make interop``); a
missing one fails the test and says so, since skipping would let CI pass without a browser.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.interop

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1400",
)


def _require_browser() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.fail(
                f"{path} is missing: run `make interop` (its `.ci/interop-deps`, as root, "
                "installs Debian's chromium and chromium-driver)",
                pytrace=False,
            )


def _driver(profile: Path, *, javascript: bool) -> WebDriver:
    _require_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(
            "selenium is not installed: run `make interop` (it installs the test "
            "dependencies of pyproject.toml)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots in {path}")
    return path


@pytest.fixture(params=[True, False], ids=["javascript", "no-javascript"])
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WebDriver, bool]]:
    driver = _driver(tmp_path / "profile", javascript=request.param)
    try:
        yield driver, request.param
    finally:
        driver.quit()


def _screenshot(driver: WebDriver, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
    driver.set_window_size(1280, max(800, int(height)))
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path


def _requested(driver: WebDriver) -> list[str]:
    """Every URL the browser asked for since the last call (from its network log).

    Chromium's own pages (chrome://) show up too; only http(s) and websocket requests matter.
    """
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_pages_render_and_an_example_query_runs(
    server: str, browser: tuple[WebDriver, bool], shots: Path
) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    d, javascript = browser
    suffix = "" if javascript else "-nojs"

    d.get(server + "/")
    assert d.find_element(By.TAG_NAME, "h1").text.startswith(
        "Les laboratoires d'innovation publique"
    )
    labs = d.find_element(By.CSS_SELECTOR, "#count-lab data")
    assert int(labs.get_attribute("value")) >= 18
    main = d.find_element(By.TAG_NAME, "main")
    assert main.size["width"] > 600 and main.size["height"] > 800  # laid out, not blank
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the first Tab reaches the skip link, visibly
    focused = d.switch_to.active_element
    assert focused.get_attribute("class") == "skip"
    assert focused.location["y"] >= 0 and focused.is_displayed()
    _screenshot(d, shots, f"home{suffix}")

    d.get(server + "/doc/lab/ti-lab.html")
    assert d.find_element(By.TAG_NAME, "h1").text == "Ti Lab"
    host = d.find_element(By.LINK_TEXT, "Région Bretagne")
    assert host.get_attribute("href").endswith("/doc/institution/region-bretagne.html")
    data = json.loads(
        d.find_element(By.CSS_SELECTOR, 'script[type="application/ld+json"]').get_attribute(
            "textContent"
        )
    )
    assert data["name"] == "Ti Lab"
    _screenshot(d, shots, f"lab{suffix}")

    d.get(server + "/sparql")
    load = d.find_element(By.CSS_SELECTOR, "#exemple-labs-state-and-local-authority .actions a")
    load.send_keys(Keys.ENTER)  # by keyboard: fills the editor with the example, not running it
    # While a page is replaced, Chromium may report its old nodes in several ways: wait on the
    # address and on what the new page shows, ignoring those transient errors.
    wait = WebDriverWait(d, 20, ignored_exceptions=(WebDriverException,))
    wait.until(
        lambda driver: (
            "example=" in driver.current_url
            and "org:unitOf" in (driver.find_element(By.ID, "query").get_attribute("value") or "")
        )
    )
    editor = d.find_element(By.ID, "query")
    assert not d.find_elements(By.CSS_SELECTOR, "table.results")
    if javascript:  # editor.js: Ctrl+Enter in the editor runs the query
        editor.send_keys(Keys.CONTROL, Keys.ENTER)
    else:  # the plain form: the Run button, by keyboard
        d.find_element(By.CSS_SELECTOR, "form#editeur button:not([name])").send_keys(Keys.ENTER)
    wait.until(lambda driver: "query=" in driver.current_url)
    table = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.results")))
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers == ["lab", "name", "state", "localAuthority"]
    names = [td.text for td in table.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2)")]
    assert "Ti Lab" in names
    assert "org:unitOf" in d.find_element(By.ID, "query").get_attribute("value")
    _screenshot(d, shots, f"query{suffix}")

    outside = [
        u
        for u in _requested(d)
        if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith(server)
    ]
    assert outside == [], f"the pages fetched from elsewhere: {outside}"
