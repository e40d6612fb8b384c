"""The web UI in a real browser (headless Chromium via selenium): search, open an expert, copy the
install snippet; the same pages work with JavaScript off. Screenshots go to test-artifacts/registry/."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def by():
    from selenium.webdriver.common.by import By

    return By


def test_search_open_an_expert_and_copy_the_install_snippet(browser, registry):
    By = by()
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": registry.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    browser.get(registry.url + "/")
    assert browser.title == "Experts · test-index"
    box = browser.find_element(By.ID, "q")
    label = browser.find_element(By.CSS_SELECTOR, "label[for=q]")
    assert label.text == "Search experts by name, keyword or task"
    box.send_keys("sql")
    box.submit()
    _wait(lambda: browser.current_url.endswith("/?q=sql"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "th a").text for r in rows] == ["sql", "sql-explain"]
    assert "Turns questions into SQL queries" in rows[0].text and "tiny ^1.0" in rows[0].text
    screenshot_path = _shot(browser, "search-results")

    rows[0].find_element(By.LINK_TEXT, "sql").click()
    _wait(lambda: browser.current_url.endswith("/packages/sql"))
    assert browser.current_url == registry.url + "/packages/sql"
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("sql 1.1.0")
    yanked = browser.find_element(By.CSS_SELECTOR, "tr.is-yanked")
    assert "1.2.0" in yanked.text and "yanked" in yanked.text
    _shot(browser, "expert-page")

    snippet = browser.find_element(By.ID, "snippet-install").text
    assert snippet == "expertpm install sql@1.1.0 --index test-index"
    button = browser.find_element(By.CSS_SELECTOR, "button[data-copy=snippet-install]")
    assert button.is_displayed()  # the script revealed it
    button.click()
    status = browser.find_element(By.ID, "snippet-install-status")
    _wait(lambda: status.text == "Copied to the clipboard.")
    copied = browser.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('ERROR ' + e));")
    assert copied == snippet
    assert button.text == "Copied"

    browser.find_element(By.LINK_TEXT, "Index status").click()
    _wait(lambda: browser.current_url.endswith("/status"))
    assert "Root fingerprint" in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, "status-page")
    assert screenshot_path.stat().st_size > 10_000


def test_pages_work_without_javascript(browser, registry):
    By = by()
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    browser.get(registry.url + "/?q=review")
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.results tbody th a")] == ["sentiment"]
    browser.find_element(By.LINK_TEXT, "sentiment").click()
    _wait(lambda: browser.current_url.endswith("/packages/sentiment"))
    assert browser.find_element(By.ID, "snippet-install").text == "expertpm install sentiment@0.3.0 --index test-index"
    assert not browser.find_element(By.CSS_SELECTOR, "button[data-copy=snippet-install]").is_displayed()
    details = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=manifest-heading] details summary")
    details.click()  # <details> opens without any script
    assert '"name": "sentiment"' in browser.find_element(By.CSS_SELECTOR, "pre.json").text
    _shot(browser, "expert-page-no-js")


def _shot(browser, name: str):
    from expertpm_testing.registry import screenshot

    return screenshot(browser, name)


def _wait(condition, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_the_bundled_index_can_be_browsed(browser):
    """The done-when of the registry: the bundled index, served by `expertpm registry serve`."""
    from expertpm_testing.core import REPO
    from expertpm_testing.registry import registry_process

    bundled = REPO / "index"
    if not (bundled / "snapshot.json").is_file():
        pytest.skip("the bundled index is not built (bash scripts/build-bundled.sh)")
    By = by()
    with registry_process(bundled) as url:
        browser.get(url + "/?q=sql")
        _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "table.results tbody th a"))
        names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.results tbody th a")]
        assert names[0] == "sql"
        browser.find_element(By.LINK_TEXT, "sql").click()
        _wait(lambda: browser.current_url.endswith("/packages/sql"))
        assert "expertpm install sql@" in browser.find_element(By.ID, "snippet-install").text
        _shot(browser, "bundled-sql")
        browser.get(url + "/?q=named+entities")
        _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "table.results tbody th a"))
        names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.results tbody th a")]
        assert "ner" in names[:3], names
