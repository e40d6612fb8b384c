"""`expertpm remove NAME`: drop an expert from experts.toml and re-lock."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 22


def register(sub, common) -> None:
    p = add_command(sub, common, "remove", "remove an expert from experts.toml and re-lock", run)
    p.add_argument("name")
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_remove

    result = do_remove(args.project, home_of(args), args.name)
    if args.json:
        print_json(result.to_dict())
        return 0
    out(f"removed {args.name} from experts.toml")
    for change in result.locked.changes if result.locked else ():
        out(f"  {change.describe()}")
    return 0
