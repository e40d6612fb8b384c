"""`expertpm registry serve INDEX_DIR [--host 127.0.0.1 --port N]`: the read-only registry server
(web UI, JSON API and the HTTP index) over an index directory, with uvicorn."""

from __future__ import annotations

from ._common import add_command, add_group, err

ORDER = 66


def register(sub, common) -> None:
    group = add_group(sub, common, "registry", "serve an index over HTTP: web UI, JSON API and sparse index")
    p = add_command(group, common, "serve", "serve INDEX_DIR (read-only; refreshes when the index changes)", run_serve)
    p.add_argument("index_dir", metavar="INDEX_DIR", help="an index made by `expertpm index init` (or a clone of one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes (default 1; one per spare CPU core serves more requests)")
    p.add_argument("--public-url", metavar="URL",
                   help="the URL clients reach this server at, for the snippets shown (default: as requested)")
    p.add_argument("--check-interval", type=float, default=0.0, metavar="SECONDS",
                   help="look at the index's HEAD at most this often (default 0: on every request)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def run_serve(args) -> int:
    from .._errors import UserError

    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, not {args.workers}")
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {args.port}")
    try:
        from expertpm_registry import serve
        from expertpm_registry._checkout import IndexCheckout
    except ImportError as exc:
        raise UserError(f"the registry server is not installed ({exc.name} is missing)",
                        hint="pip install 'expertpm[server]'") from exc

    checkout = IndexCheckout(args.index_dir)
    state = checkout.current()
    base = args.public_url.rstrip("/") if args.public_url else f"http://{args.host}:{args.port}"
    err(f"serving index {state.config.name!r} (snapshot {state.snapshot.version}) from {checkout.path}")
    err(f"web UI:  {base}/")
    err(f"follow:  expertpm index add {state.config.name} {base}/index/ --fingerprint {state.config.fingerprint}")
    serve(checkout.path, host=args.host, port=args.port, workers=args.workers, public_url=args.public_url,
          check_interval=args.check_interval, log_level=args.log_level)
    return 0
