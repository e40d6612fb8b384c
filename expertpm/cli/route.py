"""`expertpm route "PROMPT" [--explain] [--json]`: which experts the router picks, and why.

Reads manifests only: no model is loaded (the sentence encoder is, unless --keywords-only).
"""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json
from .run import add_base_options, add_router_options, router_config

ORDER = 62


def register(sub, common) -> None:
    p = add_command(sub, common, "route", "show which installed experts the router picks for PROMPT", run)
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--explain", action="store_true", help="show every expert's score and the reason")
    p.add_argument("--json", action="store_true", help="machine-readable decision")
    add_base_options(p)
    add_router_options(p)


def route(args):
    """The router's decision for the parsed options (plain function behind the command)."""
    from expertpm_runtime.catalog import Catalog
    from expertpm_runtime.encoder import EmbeddingCache
    from expertpm_runtime.router import Router

    catalog = Catalog.from_store(home_of(args), args.base, expert_dirs=args.expert_dir, max_chain=args.max_chain)
    router = Router(catalog.compatible(), router_config(args), cache=EmbeddingCache(home_of(args).cache_dir / "router"))
    return router.route(args.prompt)


def run(args) -> int:
    decision = route(args)
    if args.json:
        print_json(decision.to_dict())
        return 0
    out(" + ".join(decision.experts) if decision.experts else "base (no expert)")
    if args.explain:
        out(f"method: {decision.method}; {decision.reason}; {decision.seconds * 1000:.2f} ms")
        for s in decision.scores:
            sim = "-" if s.similarity is None else f"{s.similarity:.3f}"
            mark = "*" if s.selected else " "
            out(f"{mark} {s.name:<24} score {s.score:6.3f}  similarity {sim:>6}  priority {s.priority:.2f}  "
                f"{s.reason}")
    return 0
