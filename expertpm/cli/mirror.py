"""`expertpm mirror create | update | verify`: offline, self-verifying copies of an index."""

from __future__ import annotations

from ._common import add_command, add_group, err, home_of, out, print_json

ORDER = 36


def register(sub, common) -> None:
    group = add_group(sub, common, "mirror", "offline mirrors: an index's signed tree plus selected artifacts")
    p = add_command(group, common, "create", "write a self-verifying mirror directory (atomically)", run_create)
    p.add_argument("dir", metavar="DIR")
    p.add_argument("names", nargs="*", metavar="NAME", help="mirror every version of these (and what they need)")
    p.add_argument("--lock", metavar="FILE", help="mirror exactly the packages of this experts.lock")
    p.add_argument("--all", action="store_true", help="mirror every package of the index")
    p.add_argument("--index", metavar="NAME", help="the index to mirror (default: the lock's, or the only one)")
    _common(p)

    p = add_command(group, common, "update", "bring a mirror up to date with its index (same selection)",
                    run_update)
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--lock", metavar="FILE", help="also mirror the packages of this experts.lock")
    _common(p)

    p = add_command(group, common, "verify", "check a mirror's signatures and artifacts (exit 1 on problems)",
                    run_verify)
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--fingerprint", metavar="ROOT_FP",
                   help="the index's root fingerprint (default: the one mirror.json claims)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _common(p) -> None:
    p.add_argument("--offline", action="store_true", help="use the last verified index state and cached artifacts")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _warn(message: str) -> None:
    err(f"WARNING: {message}")


def _print(result, args, verb: str) -> int:
    if args.json:
        print_json(result.to_dict())
        return 0
    m = result.report.manifest
    out(f"{verb} {result.report.path}: index {m.index!r} at snapshot {m.snapshot_version}, "
        f"{len(m.artifacts)} artifact(s), {m.total_bytes} bytes ({len(result.added)} new, {result.reused} reused)")
    out(f"on the offline machine: expertpm index add {m.index} {result.report.path} --fingerprint {m.fingerprint}")
    return 0


def run_create(args) -> int:
    from .._installer.progress import progress_for_terminal
    from .._mirror import create_mirror

    progress = progress_for_terminal(False if args.json else None)
    try:
        result = create_mirror(home_of(args), args.dir, lock=args.lock, all=args.all, names=tuple(args.names),
                               index=args.index, offline=args.offline, progress=progress, warn=_warn)
    finally:
        progress.close()
    return _print(result, args, "created")


def run_update(args) -> int:
    from .._installer.progress import progress_for_terminal
    from .._mirror import update_mirror

    progress = progress_for_terminal(False if args.json else None)
    try:
        result = update_mirror(home_of(args), args.dir, lock=args.lock, offline=args.offline, progress=progress,
                               warn=_warn)
    finally:
        progress.close()
    return _print(result, args, "updated")


def run_verify(args) -> int:
    from .._mirror import verify_mirror

    report = verify_mirror(args.dir, fingerprint=args.fingerprint)
    if args.json:
        print_json(report.to_dict())
        return 0 if report.ok else 1
    for warning in report.warnings:
        _warn(warning)
    m = report.manifest
    if not report.fingerprint_pinned:
        _warn(f"checked against the fingerprint the mirror itself names ({m.fingerprint}); pass --fingerprint "
              "to check whose index it is")
    for problem in report.problems:
        err(f"problem: {problem}")
    if not report.ok:
        err(f"error: {report.path}: the mirror does not verify ({len(report.problems)} problem(s))")
        return 1
    out(f"ok: index {m.index!r} ({m.fingerprint[:16]}…) at snapshot {m.snapshot_version}: {report.packages} "
        f"package file(s) and {len(m.artifacts)} artifact(s) verified")
    return 0
