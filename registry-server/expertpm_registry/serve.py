"""Run the registry with uvicorn (what `expertpm registry serve` calls)."""

from __future__ import annotations

import os
from pathlib import Path

from .app import CHECK_INTERVAL_ENV, INDEX_DIR_ENV, PUBLIC_URL_ENV, create_app
from ._checkout import IndexCheckout


def serve(index_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          public_url: str | None = None, check_interval: float = 0.0, log_level: str = "warning") -> None:
    """Serve `index_dir` until interrupted. With `workers > 1` uvicorn starts that many processes,
    each building the app from the environment (the app holds no state they would need to share)."""
    import uvicorn

    index_dir = Path(index_dir).expanduser().absolute()
    IndexCheckout(index_dir)  # refuse a directory that is not an index before binding the port
    options = {"host": host, "port": port, "log_level": log_level, "access_log": log_level in ("info", "debug"),
               "server_header": False}
    if workers > 1:
        os.environ[INDEX_DIR_ENV] = str(index_dir)
        os.environ[CHECK_INTERVAL_ENV] = str(check_interval)
        if public_url:
            os.environ[PUBLIC_URL_ENV] = public_url
        uvicorn.run("expertpm_registry.app:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(index_dir, public_url=public_url, check_interval=check_interval), **options)
