"""`expertpm outdated [--offline] [--json]`: locked packages with newer versions in their index."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 27


def register(sub, common) -> None:
    p = add_command(sub, common, "outdated", "list locked packages that have newer versions", run)
    p.add_argument("--offline", action="store_true", help="use the last verified index states; no network")
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_outdated

    rows = do_outdated(args.project, home_of(args), offline=args.offline)
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    if not rows:
        out("every locked package is at its newest version")
        return 0
    out(f"{'name':<24} {'locked':<12} {'wanted':<12} latest")
    for r in rows:
        out(f"{r.name:<24} {r.locked:<12} {r.wanted:<12} {r.latest}")
    return 0
