"""`expertpm tree [--json]`: the locked dependency tree."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 26


def register(sub, common) -> None:
    p = add_command(sub, common, "tree", "show the locked dependency tree ((*): shown above)", run)
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_tree, render_tree

    nodes = do_tree(args.project, home_of(args))
    if args.json:
        print_json([n.to_dict() for n in nodes])
        return 0
    for line in render_tree(nodes):
        out(line)
    return 0
