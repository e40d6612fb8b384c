"""`expertpm sync [--locked | --frozen] [--offline] [--dry-run]`: install exactly what the lock says."""

from __future__ import annotations

from ._common import add_command, err, home_of, out, print_json

ORDER = 24


def register(sub, common) -> None:
    p = add_command(sub, common, "sync", "make the store hold what experts.lock says and switch the project to it",
                    run)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--locked", action="store_true", help="fail if experts.lock is out of date (for CI)")
    group.add_argument("--frozen", action="store_true",
                       help="install experts.lock as it is, without checking it against experts.toml")
    p.add_argument("--offline", action="store_true",
                   help="never open a connection: install from the cache and local mirrors only")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="parallel installs (default 4)")
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bars on stderr (default: only on a terminal)")


def run(args) -> int:
    from .._actions.sync import do_sync
    from .._installer.progress import progress_for_terminal

    mode = "locked" if args.locked else "frozen" if args.frozen else "default"
    enabled = None if args.progress == "auto" else args.progress == "always"
    progress = progress_for_terminal(False if args.json else enabled)
    try:
        result = do_sync(args.project, home_of(args), mode=mode, offline=args.offline, dry_run=args.dry_run,
                         progress=progress, concurrency=args.jobs, warn=lambda message: err(f"WARNING: {message}"))
    finally:
        progress.close()
    if args.json:
        print_json(result.to_dict())
        return 0
    if result.relocked is not None:
        for change in result.relocked.changes:
            out(f"locked {change.describe()}")
    if result.plan is None:
        out(f"nothing to do: {len(result.state.packages)} package(s) installed as locked")
        return 0
    signs = {"install": "+", "reuse": "+", "remove": "-"}
    for step in result.plan.steps:
        if step.action in signs:
            note = f" (was {step.previous})" if step.previous else ""
            note += " (already in the store)" if step.action == "reuse" else ""
            out(f"{signs[step.action]} {step.name} {step.version}{note}")
    counts = {a: len(result.plan.of(a)) for a in ("install", "reuse", "keep", "remove")}
    verb = "would install" if result.dry_run else "installed"
    out(f"{verb} {counts['install'] + counts['reuse']}, kept {counts['keep']}, removed {counts['remove']} "
        f"in {result.seconds:.2f}s")
    return 0
