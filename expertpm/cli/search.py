"""`expertpm search QUERY [--json] [--limit N] [--keywords-only]`: find experts in every index."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 29


def register(sub, common) -> None:
    p = add_command(sub, common, "search", "search every configured index by name, keywords and meaning", run)
    p.add_argument("query", nargs="+", metavar="QUERY", help="words, e.g. text to sql")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N results (default 20)")
    p.add_argument("--keywords-only", action="store_true",
                   help="match words only; do not load the embedding model (faster start)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._search import search

    hits = search(home_of(args), " ".join(args.query), limit=args.limit,
                  semantic=False if args.keywords_only else None)
    if args.json:
        print_json([h.to_dict() for h in hits])
        return 0
    if not hits:
        out("no matches (try other words, or `expertpm index update` for the newest packages)")
        return 0
    for h in hits:
        score = (f"{h.eval['metric']} {h.eval['expert_score']:.3g} (base {h.eval['base_score']:.3g})"
                 if h.eval else "no eval")
        base = f"on {h.base}" if h.base else "base model"
        who = h.publisher_label or h.publisher[:16]
        out(f"{h.name} {h.version}  [{h.index}]  {base}  {score}  by {who}")
        if h.description:
            out(f"    {h.description}")
    return 0
