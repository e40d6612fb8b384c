"""The JSON API: search, package details (versions, yanks, dependents, snippets, manifest),
publishers, index status, and the OpenAPI schema the app serves."""

from __future__ import annotations

import hashlib

import httpx
import pytest


def api(registry, path: str, **params) -> httpx.Response:
    return httpx.get(f"{registry.url}/api{path}", params=params)


def test_search_ranks_name_matches_first_and_reports_what_a_user_needs(registry):
    body = api(registry, "/search", q="sql").json()
    assert [r["name"] for r in body["results"]] == ["sql", "sql-explain"]
    sql = body["results"][0]
    assert sql["latest"] == "1.1.0"  # 1.2.0 is yanked
    assert sql["description"] == "Turns questions into SQL queries"
    assert sql["base"] == "tiny ^1.0"
    assert sql["eval"] == {"metric": "exact_match", "expert_score": 0.82, "base_score": 0.31, "n": 200}
    assert sql["publisher"]["label"] == "Test Lab" and len(sql["publisher"]["key_id"]) == 64
    assert [r["name"] for r in api(registry, "/search", q="review").json()["results"]] == ["sentiment"]
    assert [r["name"] for r in api(registry, "/search", q="query plan").json()["results"]] == ["sql-explain"]
    assert api(registry, "/search", q="zebra").json() == {"query": "zebra", "total": 0, "results": []}


def test_an_empty_search_lists_everything_and_kind_filters(registry):
    names = [r["name"] for r in api(registry, "/search").json()["results"]]
    assert names == ["sentiment", "sql", "sql-explain", "tiny"]
    assert [r["name"] for r in api(registry, "/search", kind="base").json()["results"]] == ["tiny"]
    assert len(api(registry, "/search", limit=2).json()["results"]) == 2


def test_package_details(registry, registry_world):
    detail = api(registry, "/packages/sql").json()
    assert [(v["version"], v["yanked"]) for v in detail["versions"]] == [
        ("1.2.0", True), ("1.1.0", False), ("1.0.0", False)]
    selected = detail["selected"]
    assert selected["version"] == "1.1.0"
    assert selected["download"] == registry.index_url + "artifacts/sql/sql-1.1.0.expert"
    artifact = httpx.get(selected["download"]).content
    assert hashlib.sha256(artifact).hexdigest() == selected["sha256"] and len(artifact) == selected["size"]
    assert "embedding" not in selected["entry"] and selected["entry"]["signature"]
    assert detail["dependents"] == [{"name": "sql-explain", "version": "1.0.0", "range": "^1.0", "how": "requires"}]
    assert detail["manifest"]["name"] == "sql" and detail["manifest"]["version"] == "1.1.0"
    assert detail["manifest"]["adapter"]["type"] == "lora"
    snippets = detail["snippets"]
    assert snippets["install"] == "expertpm install sql@1.1.0 --index test-index"
    assert snippets["index_add"] == (f"expertpm index add test-index {registry.index_url} "
                                     f"--fingerprint {registry_world.fingerprint}")
    assert snippets["experts_toml"] == '[experts]\nsql = "^1.1.0"'
    older = api(registry, "/packages/sql", version="1.0.0").json()
    assert older["selected"]["version"] == "1.0.0" and older["manifest"]["version"] == "1.0.0"
    assert api(registry, "/packages/sql", version="9.9.9").status_code == 404


def test_a_base_lists_the_experts_built_on_it(registry):
    tiny = api(registry, "/packages/tiny").json()
    assert tiny["summary"]["kind"] == "base" and tiny["summary"]["base"] is None
    assert {d["name"] for d in tiny["dependents"] if d["how"] == "base"} == {"sentiment", "sql", "sql-explain"}
    assert tiny["snippets"]["experts_toml"] == '[base]\nname = "tiny"\nversion = "^1.0.0"'
    assert tiny["selected"]["entry"]["model"]["architecture"] == "qwen3"


def test_publisher_and_status(registry, registry_world):
    key_id = registry_world.world.publisher.key_id
    publisher = api(registry, f"/publishers/{key_id}").json()
    assert publisher["label"] == "Test Lab" and publisher["revoked"] is False
    assert "*" in publisher["names"]
    assert [p["name"] for p in publisher["packages"]] == ["sentiment", "sql", "sql-explain", "tiny"]
    assert api(registry, "/publishers/" + "0" * 64).status_code == 404
    assert api(registry, "/publishers/not-a-key").status_code == 400
    status = api(registry, "/status").json()
    assert status["fingerprint"] == registry_world.fingerprint
    assert status["name"] == "test-index" and status["packages"] == 4 and status["publishers"] == 1
    assert status["expired"] is False and status["expires"].endswith("Z")
    snapshot = httpx.get(registry.index_url + "snapshot.json").json()["signed"]
    assert status["snapshot_version"] == snapshot["version"] and status["expires"] == snapshot["expires"]
    assert status["problems"] == {}


def test_public_url_is_used_in_snippets(registry_world, serve_registry):
    server = serve_registry(registry_world.dir, public_url="https://registry.example/")
    detail = httpx.get(f"{server.url}/api/packages/sql").json()
    assert "https://registry.example/index/" in detail["snippets"]["index_add"]
    assert detail["selected"]["download"] == "https://registry.example/index/artifacts/sql/sql-1.1.0.expert"


def test_the_app_serves_its_openapi_schema(registry):
    schema = httpx.get(registry.url + "/schema/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/search", "/api/packages/{name}", "/api/publishers/{key_id}", "/api/status", "/index/{path}"):
        assert path in schema["paths"], path
    params = {p["name"]: p for p in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert params["q"]["schema"]["maxLength"] == 200


def test_the_bundled_index_is_served_and_followed_over_http(serve_registry, tmp_path):
    from expertpm._home import Home
    from expertpm._index import add_index, open_index
    from expertpm_testing.core import REPO

    bundled = REPO / "index"
    if not (bundled / "snapshot.json").is_file():
        pytest.skip("the bundled index is not built (bash scripts/build-bundled.sh)")
    server = serve_registry(bundled)
    names = [r["name"] for r in httpx.get(server.url + "/api/search").json()["results"]]
    assert {"tiny-qwen3", "sql", "tool-call", "cypher", "sentiment", "ner"} <= set(names)
    home = Home(tmp_path / "home")
    fingerprint = (bundled / "FINGERPRINT").read_text().strip()
    add_index(home, "default", server.index_url, fingerprint=fingerprint)
    assert open_index(home, "default").entries("sql")
    # another machine locks and installs the bundled experts over HTTP, every file verified
    from expertpm._actions import do_add, do_init, do_sync
    from expertpm._store import Store

    project = tmp_path / "project"
    project.mkdir()
    do_init(project, base="tiny-qwen3")
    do_add(project, home, ["sql", "ner"])
    lock = (project / "experts.lock").read_text()
    assert fingerprint in lock and 'name = "sql"' in lock
    do_sync(project, home, mode="locked")
    assert {p.name for p in Store(home).list()} == {"tiny-qwen3", "sql", "ner"}


def test_the_registry_package_exports_only_its_entry_points():
    import expertpm_registry

    assert expertpm_registry.__all__ == ["create_app", "serve"]
    assert callable(expertpm_registry.create_app) and callable(expertpm_registry.serve)
