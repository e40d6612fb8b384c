"""The registry application: `create_app(INDEX_DIR)` returns a Litestar app serving

    /index/…      the index files and artifacts (what `expertpm index add NAME URL/index/` reads)
    /api/…        the JSON API
    /, /packages/…, /publishers/…, /status    the web UI
    /schema/openapi.json                       the OpenAPI schema

The app keeps no state of its own beyond caches keyed by content: any number of instances may
serve the same index behind a load balancer. Errors are JSON, or an HTML page when the client
asks for HTML (`Accept: text/html`, as browsers do).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from expertpm._errors import ExpertpmError

try:
    from litestar.plugins.jinja import JinjaTemplateEngine
except ImportError:  # litestar < 2.22
    from litestar.contrib.jinja import JinjaTemplateEngine

from ._api import ApiController
from ._catalog import CatalogCache
from ._checkout import IndexCheckout, StaleState
from ._files import ArtifactDigests, index_file
from ._pages import PagesController
from ._views import ManifestCache

HERE = Path(__file__).parent
LOG = logging.getLogger("expertpm.registry")
INDEX_DIR_ENV = "EXPERTPM_REGISTRY_INDEX"
PUBLIC_URL_ENV = "EXPERTPM_REGISTRY_PUBLIC_URL"
CHECK_INTERVAL_ENV = "EXPERTPM_REGISTRY_CHECK_INTERVAL"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("expertpm")
    except PackageNotFoundError:
        return "0"


def wants_html(request: Request) -> bool:
    return request.accept.best_match(["application/json", "text/html"], default="application/json") == "text/html"


def _error(request: Request, status: int, detail: str, extra=None) -> Response:
    if wants_html(request):
        try:
            name = request.app.state.checkout.current().config.name
        except Exception:  # the error page must render even when the index cannot be read
            name = "expertpm registry"
        return Template(template_name="error.html", status_code=status, media_type="text/html",
                        context={"status": status, "detail": detail, "title": f"Error {status}",
                                 "index_name": name})
    body = {"status_code": status, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status, media_type="application/json")


def _http_error(request: Request, exc: HTTPException) -> Response:
    extra = exc.extra if isinstance(exc, ValidationException) else None
    response = _error(request, exc.status_code, exc.detail, extra)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _index_error(request: Request, exc: ExpertpmError) -> Response:
    LOG.error("cannot read the index: %s", exc)
    return _error(request, 503, f"the index cannot be read: {exc}")


def _stale(request: Request, exc: StaleState) -> Response:
    response = _error(request, 503, "the index mirror is being updated; try again in a moment")
    response.headers["Retry-After"] = "1"
    return response


def _unexpected(request: Request, exc: Exception) -> Response:
    LOG.exception("unexpected error serving %s", request.url.path)
    return _error(request, 500, "internal server error")


def create_app(index_dir: str | os.PathLike, *, public_url: str | None = None, check_interval: float = 0.0,
               debug: bool = False) -> Litestar:
    """The registry app serving the index at `index_dir` (a bare index directory or a clone).

    `public_url` is the base URL clients should use in snippets (default: the request's own);
    `check_interval` bounds how often the index's HEAD is looked at (0: on every request)."""
    checkout = IndexCheckout(index_dir, check_interval=check_interval)
    state = State({"checkout": checkout, "catalogs": CatalogCache(), "manifests": ManifestCache(),
                   "artifact_digests": ArtifactDigests(),
                   "public_url": (public_url.rstrip("/") + "/index/") if public_url else None})
    return Litestar(
        route_handlers=[index_file, ApiController, PagesController,
                        create_static_files_router(path="/static", directories=[HERE / "static"],
                                                   include_in_schema=False)],
        state=state,
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        exception_handlers={HTTPException: _http_error, ExpertpmError: _index_error, StaleState: _stale,
                            Exception: _unexpected},
        openapi_config=OpenAPIConfig(title="expertpm registry", version=_version(), path="/schema",
                                     render_plugins=[JsonRenderPlugin()]),
        debug=debug,
    )


def app_from_env() -> Litestar:
    """For `uvicorn --factory expertpm_registry.app:app_from_env` (several worker processes)."""
    index_dir = os.environ.get(INDEX_DIR_ENV)
    if not index_dir:
        raise RuntimeError(f"set {INDEX_DIR_ENV} to the index directory to serve")
    return create_app(index_dir, public_url=os.environ.get(PUBLIC_URL_ENV) or None,
                      check_interval=float(os.environ.get(CHECK_INTERVAL_ENV, "0")))
