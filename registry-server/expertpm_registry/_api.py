"""`/api/…`: the JSON API (search, package details, publishers, index status).

Each request reads one index state (one commit). The data is what the server itself verified
(line signatures, delegations, yanks); clients that install still verify everything themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException

try:
    from litestar.params import PathParameter, QueryParameter
except ImportError:  # litestar < 2.25 infers the source of a parameter
    from litestar.params import Parameter as PathParameter, Parameter as QueryParameter

from expertpm._index._layout import utc_now
from expertpm._names import validate_name

from ._catalog import Catalog
from ._checkout import IndexState, StaleState
from ._search import MAX_QUERY_CHARS, search
from ._views import (
    IndexStatus, PackageDetail, PublisherInfo, SearchResult, index_status, package_detail, publisher_info,
    search_result,
)

Query = Annotated[str, QueryParameter(description="words to look for in names, keywords and descriptions",
                                      max_length=MAX_QUERY_CHARS)]
Limit = Annotated[int, QueryParameter(description="at most this many results", ge=1, le=500)]
Kind = Annotated[Literal["expert", "base"] | None, QueryParameter(description="only experts or only base models")]
VersionParam = Annotated[str | None, QueryParameter(description="a published version (default: the latest)",
                                                    max_length=100)]
Name = Annotated[str, PathParameter(description="a package name")]
KeyId = Annotated[str, PathParameter(description="a publisher key id (64 hex digits)", pattern="^[0-9a-f]{64}$")]


@dataclass(frozen=True, slots=True)
class View:
    state: IndexState
    catalog: Catalog
    index_url: str


def view_of(request: Request) -> View:
    """The state every part of one response reads from, its catalog, and the public index URL."""
    app_state = request.app.state
    index_url = app_state.public_url or f"{str(request.base_url).rstrip('/')}/index/"
    state = app_state.checkout.current()
    try:
        return View(state, app_state.catalogs.get(state), index_url)
    except StaleState:  # a mirror directory is being rewritten: build from its new snapshot
        state = app_state.checkout.current(fresh=True)
        return View(state, app_state.catalogs.get(state), index_url)


def known_package(view: View, name: str):
    try:
        validate_name(name)
    except ValueError:
        raise NotFoundException(f"no package named {name[:80]!r}") from None
    package = view.catalog.packages.get(name)
    if package is None:
        raise NotFoundException(f"no package named {name!r}")
    return package


class ApiController(Controller):
    path = "/api"
    tags = ["api"]

    @get("/search", summary="Search packages")
    async def search(self, request: Request, q: Query = "", limit: Limit = 50, kind: Kind = None) -> SearchResult:
        view = view_of(request)
        return search_result(view.catalog, q, search(view.catalog, q, limit=limit, kind=kind))

    @get("/packages/{name:str}", summary="A package: its versions, dependents and snippets")
    async def package(self, request: Request, name: Name, version: VersionParam = None) -> PackageDetail:
        view = view_of(request)
        detail = package_detail(view.state, view.catalog, known_package(view, name), view.index_url, version,
                                request.app.state.manifests)
        if detail is None:
            raise NotFoundException(f"{name} has no version {version!r}")
        return detail

    @get("/publishers/{key_id:str}", summary="A publisher key and what it published")
    async def publisher(self, request: Request, key_id: KeyId) -> PublisherInfo:
        info = publisher_info(view_of(request).catalog, key_id)
        if info is None:
            raise NotFoundException(f"no publisher key {key_id[:16]}")
        return info

    @get("/status", summary="The index served: snapshot version, expiry, root fingerprint")
    async def status(self, request: Request) -> IndexStatus:
        view = view_of(request)
        return index_status(view.state, view.catalog, view.index_url, utc_now())
