"""`expertpm why NAME [--json]`: the chains of requirements that bring NAME into the lock."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 28


def register(sub, common) -> None:
    p = add_command(sub, common, "why", "explain why a package is in experts.lock", run)
    p.add_argument("name")
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_why

    paths = do_why(args.project, home_of(args), args.name)
    if args.json:
        print_json([p.to_dict() for p in paths])
        return 0
    for path in paths:
        out(path.describe())
    return 0
