"""`expertpm lock [--check] [--upgrade | --upgrade-package NAME] [--offline]`."""

from __future__ import annotations

from ._common import add_command, err, home_of, out, print_json

ORDER = 23


def register(sub, common) -> None:
    p = add_command(sub, common, "lock", "resolve experts.toml and write experts.lock", run)
    p.add_argument("--check", action="store_true",
                   help="only check that experts.lock matches experts.toml (exit 1 if not); no network")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--upgrade", action="store_true", help="ignore the locked versions: take the newest allowed")
    group.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                       help="upgrade only this package (repeatable)")
    p.add_argument("--offline", action="store_true", help="use the last verified index states; no network")
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_lock

    result = do_lock(args.project, home_of(args), check=args.check, upgrade=args.upgrade,
                     upgrade_packages=args.upgrade_package, offline=args.offline,
                     warn=lambda message: err(f"WARNING: {message}"))
    if args.json:
        print_json(result.to_dict())
        return 0
    if args.check:
        out(f"{result.path.name} is up to date")
        return 0
    for change in result.changes:
        out(change.describe())
    state = "written" if result.written else "unchanged"
    out(f"locked {len(result.lock.packages)} package(s): {result.path} {state}")
    return 0
