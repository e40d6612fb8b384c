"""The web UI without a browser: every page renders what the issue lists, works with plain GET
forms and links (no JavaScript needed), and has the basic accessibility structure."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest

HTML = {"Accept": "text/html"}


class Page(HTMLParser):
    """What the checks need from a page: ids, labels, headings, links, forms, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids, self.label_for, self.inputs, self.headings, self.links = set(), set(), [], [], []
        self.forms, self.lang, self.text, self._heading = [], None, [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "label":
            self.label_for.add(a.get("for"))
        elif tag == "input" and a.get("type") != "hidden":
            self.inputs.append(a)
        elif tag in ("h1", "h2", "h3"):
            self._heading = [tag, ""]
        elif tag == "a":
            self.links.append(a.get("href"))
        elif tag == "form":
            self.forms.append(a)

    def handle_endtag(self, tag):
        if self._heading and tag == self._heading[0]:
            self.headings.append((tag, " ".join(self._heading[1].split())))
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            self._heading[1] += data

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def page(registry, path: str, **params) -> Page:
    response = httpx.get(registry.url + path, params=params, headers=HTML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def check_accessible(p: Page) -> None:
    assert p.lang == "en"
    assert [h for h in p.headings if h[0] == "h1"], "a page needs one h1"
    for field in p.inputs:
        assert field.get("id") in p.label_for, f"input without a label: {field}"


def test_search_page_lists_results_with_what_matters(registry):
    p = page(registry, "/", q="sql")
    check_accessible(p)
    assert p.forms == [{"class": "search", "role": "search", "method": "get", "action": "/"}]
    assert ("h2", "2 results for “sql”") in p.headings
    text = p.plain
    for expected in ("sql", "Turns questions into SQL queries", "1.1.0", "tiny ^1.0", "0.820", "exact_match",
                     "Test Lab", "sql-explain"):
        assert expected in text
    assert "/packages/sql" in p.links and "/packages/sql-explain" in p.links
    everything = page(registry, "/")
    assert ("h2", "All packages (4)") in everything.headings
    nothing = page(registry, "/", q="zebra")
    assert "Nothing matches “zebra”" in nothing.plain


def test_package_page_shows_versions_manifest_routing_eval_deps_key_snippets(registry, registry_world):
    p = page(registry, "/packages/sql")
    check_accessible(p)
    headings = [h[1] for h in p.headings]
    for expected in ("Install", "About this version", "Routing keywords", "Evaluation", "Dependencies", "Used by",
                     "Versions", "Manifest"):
        assert expected in headings
    text = p.plain
    assert "1.2.0 " in text and "yanked" in text  # the yanked version is listed, and marked
    assert "database" in text and "select" in text  # routing keywords
    assert "exact_match 0.820 0.310 +0.510 200" in text  # the evaluation table row
    assert "tiny ^1.0 base model" in text and "sql-explain 1.0.0" in text  # deps and reverse deps
    assert registry_world.world.publisher.key_id in text
    assert "expertpm install sql@1.1.0 --index test-index" in text
    assert f"--fingerprint {registry_world.fingerprint}" in text
    assert 'sql = "^1.1.0"' in text
    assert '"adapter"' in text  # the manifest from the artifact
    assert {"snippet-install", "snippet-add", "snippet-toml"} <= p.ids
    download = registry.index_url + "artifacts/sql/sql-1.1.0.expert"
    assert download in p.links
    assert httpx.get(download).status_code == 200
    assert f"/publishers/{registry_world.world.publisher.key_id}" in p.links
    older = page(registry, "/packages/sql", version="1.0.0")
    assert "You are looking at version 1.0.0" in older.plain


def test_yanked_and_dependency_pages(registry):
    yanked = page(registry, "/packages/sql", version="1.2.0")
    assert ("h1", "sql 1.2.0 yanked") in yanked.headings
    explain = page(registry, "/packages/sql-explain")
    assert "sql ^1.0 requires" in explain.plain
    base = page(registry, "/packages/tiny")
    assert "qwen3" in base.plain and "[base]" in base.plain


def test_publisher_and_status_pages(registry, registry_world):
    key_id = registry_world.world.publisher.key_id
    publisher = page(registry, f"/publishers/{key_id}")
    check_accessible(publisher)
    assert ("h1", "Test Lab") in publisher.headings and "/packages/sentiment" in publisher.links
    status = page(registry, "/status")
    check_accessible(status)
    text = status.plain
    snapshot = httpx.get(registry.index_url + "snapshot.json").json()["signed"]
    assert f"Snapshot version {snapshot['version']}" in text
    assert f"Snapshot expires {snapshot['expires']}" in text
    assert f"Root fingerprint {registry_world.fingerprint}" in text


@pytest.mark.parametrize("path", ["/packages/Not_A_Name", "/packages/missing", "/publishers/" + "a" * 64])
def test_missing_things_are_html_404_pages(registry, path):
    response = httpx.get(registry.url + path, headers=HTML)
    assert response.status_code == 404
    p = Page(response.text)
    check_accessible(p)
    assert ("h1", "Not found") in p.headings


def test_bad_input_gets_an_html_400_page(registry):
    response = httpx.get(registry.url + "/", params={"q": "x" * 1000}, headers=HTML)
    assert response.status_code == 400
    assert ("h1", "Bad request") in Page(response.text).headings


def test_no_script_is_needed(registry):
    html = httpx.get(registry.url + "/packages/sql", headers=HTML).text
    assert html.count("<script") == 1  # the optional Copy buttons only
    assert 'class="copy" data-copy="snippet-install" hidden' in html  # shown only when the script runs
    assert httpx.get(registry.url + "/static/style.css").status_code == 200
