"""The expertpm registry server: a read-only web UI, JSON API and HTTP index over a signed Git
index (see docs/registry.md). `create_app(INDEX_DIR)` returns the Litestar application;
`serve(INDEX_DIR, host=..., port=...)` runs it with uvicorn."""

from .app import create_app
from .serve import serve

__all__ = ["create_app", "serve"]
