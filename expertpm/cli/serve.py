"""`expertpm serve --host 127.0.0.1 --port N`: the OpenAI-compatible HTTP API over installed experts."""

from __future__ import annotations

from ._common import add_command, err
from .run import add_engine_options, open_runtime

ORDER = 64


def register(sub, common) -> None:
    p = add_command(sub, common, "serve", "serve installed experts over an OpenAI-compatible HTTP API", run)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    add_engine_options(p)


def run(args) -> int:
    from expertpm_runtime.server import serve

    runtime = open_runtime(args)
    try:
        runtime.warm()
        names = ", ".join(e.name for e in runtime.catalog.compatible()) or "none"
        err(f"serving base {runtime.catalog.base.name} with experts: {names}")
        err(f"listening on http://{args.host}:{args.port}/v1 (models: expert names, a+b, auto)")
        serve(runtime, args.host, args.port, log_level=args.log_level)
    finally:
        runtime.close()
    return 0
