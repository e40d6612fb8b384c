"""`expertpm run [--experts a,b:0.5 | --auto] [--base NAME|DIR] "PROMPT"`: stream one completion.

Also holds the options every runtime command shares (`chat`, `serve`, `route` import them).
"""

from __future__ import annotations

import argparse
import sys

from ._common import add_command, err, home_of

ORDER = 60


def add_base_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", metavar="NAME|DIR",
                   help="base model: an installed base (NAME or NAME@VERSION) or a model directory "
                        "(default: the only installed base)")
    p.add_argument("--expert-dir", metavar="DIR", action="append", default=[],
                   help="also offer the expert package directory DIR (not installed; repeatable)")
    p.add_argument("--max-chain", type=int, default=10, metavar="N",
                   help="most experts composed on one request (default: 10)")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    add_base_options(p)
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default: cpu)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--kv-cache-mb", type=float, default=256, metavar="MB",
                   help="KV cache memory budget in MiB (default: 256)")
    add_router_options(p)


def add_router_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=0.4,
                   help="router: similarity below which the base answers alone (default: 0.4)")
    p.add_argument("--auto-max", type=int, default=2, metavar="N",
                   help="router: most experts it picks for one prompt (default: 2)")
    p.add_argument("--keywords-only", action="store_true", help="router: keywords only, no sentence encoder")


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-tokens", type=int, help="default: the expert's manifest, else 64")
    p.add_argument("--temperature", type=float, help="0 = greedy (default: the expert's manifest, else 0)")
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append", metavar="TEXT", help="stop before TEXT (repeatable)")


def sampling_options(args) -> dict:
    return {"max_tokens": args.max_tokens, "temperature": args.temperature, "top_p": args.top_p,
            "top_k": args.top_k, "seed": args.seed, "stop": args.stop}


def catalog_from_args(args):
    """The catalog of the store (plus --expert-dir packages); no model is loaded."""
    from expertpm_runtime.catalog import Catalog

    return Catalog.from_store(home_of(args), args.base, expert_dirs=args.expert_dir, max_chain=args.max_chain)


def router_config(args):
    from expertpm_runtime.router import RouterConfig

    return RouterConfig(threshold=args.threshold, max_chain=min(args.auto_max, args.max_chain),
                        use_embeddings=not args.keywords_only)


def open_runtime(args):
    """A Runtime for the parsed options. Named experts are checked before the base model is loaded."""
    from expertpm_runtime.api import Runtime
    from expertpm_runtime.catalog import AUTO, parse_composition

    catalog = catalog_from_args(args)
    experts = experts_from_args(args)
    if experts not in (None, AUTO):
        catalog.resolve(parse_composition(experts))
    return Runtime.from_catalog(catalog, router=router_config(args), embedding_cache=home_of(args).cache_dir / "router",
                                device=args.device, dtype=args.dtype, kv_cache_bytes=int(args.kv_cache_mb * (1 << 20)))


def experts_from_args(args):
    if getattr(args, "auto", False):
        return "auto"
    return getattr(args, "experts", None) or None


def register(sub, common) -> None:
    p = add_command(sub, common, "run", "generate a completion for PROMPT, streamed to stdout", run)
    p.add_argument("prompt", metavar="PROMPT", help="the prompt ('-' reads it from stdin)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--experts", metavar="A,B[:WEIGHT]", help="compose these installed experts")
    group.add_argument("--auto", action="store_true", help="let the router pick the experts")
    p.add_argument("--show-route", action="store_true", help="print the experts used (and why) to stderr")
    add_engine_options(p)
    add_sampling_options(p)


def run(args) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    runtime = open_runtime(args)
    try:
        prepared = runtime.prepare(prompt, experts_from_args(args), **sampling_options(args))
        if args.show_route:
            err(f"experts: {' + '.join(prepared.expert_names) or 'none (base)'}"
                + (f" ({prepared.route.reason})" if prepared.route else ""))
        for piece in runtime.stream_prepared(prepared):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    finally:
        runtime.close()
    return 0
