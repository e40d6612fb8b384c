"""`expertpm list [--json]`: the project's locked packages and whether they are installed."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 25


def register(sub, common) -> None:
    p = add_command(sub, common, "list", "list the project's locked experts and base", run)
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_list

    rows = do_list(args.project, home_of(args))
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    if not rows:
        out("no experts locked (add one with: expertpm add NAME)")
    for r in rows:
        state = "installed" if r.installed else "not installed (run: expertpm sync)"
        out(f"{r.name:<24} {r.version:<12} {r.kind:<7} {'direct' if r.direct else 'dependency':<10} "
            f"{r.source:<20} {state}")
    return 0
