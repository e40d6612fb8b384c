"""The web UI: server-rendered pages (Jinja), usable without JavaScript.

    /                       search box and results (every package when the query is empty)
    /packages/{name}        one package: versions (yanked marked), manifest, routing keywords,
                            evaluation, dependencies and dependents, signing key, snippets, download
    /publishers/{key_id}    one publisher key: label, delegated names, what it published
    /status                 the index: snapshot version, expiry, root fingerprint

The only script is an optional "Copy" button next to each snippet (progressive enhancement);
without it the snippets are plain selectable text.
"""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from expertpm._index._layout import utc_now

from ._api import KeyId, Kind, Name, Query, QueryParameter, VersionParam, known_package, view_of
from ._search import search
from ._views import index_status, package_detail, publisher_info, search_result

PAGE_SIZE = 100


def _render(name: str, request: Request, **context) -> Template:
    view = view_of(request)
    context.setdefault("index_name", view.state.config.name)
    return Template(template_name=name, context=context, media_type="text/html")


class PagesController(Controller):
    path = "/"
    tags = ["web"]

    @get("/", summary="Search page (HTML)", name="home")
    async def home(self, request: Request, q: Query = "", kind: Kind = None,
                   page: Annotated[int, QueryParameter(description="result page", ge=1, le=10_000)] = 1) -> Template:
        view = view_of(request)
        hits = search(view.catalog, q, limit=page * PAGE_SIZE + 1, kind=kind)
        result = search_result(view.catalog, q, hits[(page - 1) * PAGE_SIZE:page * PAGE_SIZE])
        return _render("search.html", request, result=result, query=q, kind=kind or "", page=page,
                       more=len(hits) > page * PAGE_SIZE, total_packages=len(view.catalog.packages),
                       title=f"Search: {q}" if q else "Experts")

    @get("/packages/{name:str}", summary="Package page (HTML)", name="package")
    async def package(self, request: Request, name: Name, version: VersionParam = None) -> Template:
        view = view_of(request)
        detail = package_detail(view.state, view.catalog, known_package(view, name), view.index_url, version,
                                request.app.state.manifests)
        if detail is None:
            raise NotFoundException(f"{name} has no version {version!r}")
        manifest = json.dumps(detail.manifest, indent=2, sort_keys=True) if detail.manifest else None
        return _render("package.html", request, d=detail, manifest_json=manifest, title=name,
                       requires=detail.selected.entry.get("requires", {}),
                       incompatible=detail.selected.entry.get("incompatible_with", {}),
                       base=detail.selected.entry.get("base"), model=detail.selected.entry.get("model"),
                       routing=detail.selected.entry.get("routing", {}), ev=detail.selected.entry.get("eval"))

    @get("/publishers/{key_id:str}", summary="Publisher page (HTML)", name="publisher")
    async def publisher(self, request: Request, key_id: KeyId) -> Template:
        info = publisher_info(view_of(request).catalog, key_id)
        if info is None:
            raise NotFoundException(f"no publisher key {key_id[:16]}")
        return _render("publisher.html", request, p=info, title=f"Publisher {info.label}")

    @get("/status", summary="Index status page (HTML)", name="status")
    async def status(self, request: Request) -> Template:
        view = view_of(request)
        return _render("status.html", request, s=index_status(view.state, view.catalog, view.index_url, utc_now()),
                       title="Index status")
