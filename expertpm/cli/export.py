"""`expertpm export --lock experts.lock OUT.tar`: one file holding what a lock needs, offline."""

from __future__ import annotations

from ._common import add_command, err, home_of, out, print_json

ORDER = 37


def register(sub, common) -> None:
    p = add_command(sub, common, "export", "write one tar file with a verified mirror of a lock's packages", run)
    p.add_argument("out", metavar="OUT.tar")
    p.add_argument("--lock", default="experts.lock", metavar="FILE", help="the lock to export (default: experts.lock)")
    p.add_argument("--offline", action="store_true", help="use the last verified index state and cached artifacts")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._mirror import export_lock

    result = export_lock(home_of(args), args.lock, args.out, offline=args.offline,
                         warn=lambda message: err(f"WARNING: {message}"))
    if args.json:
        print_json(result.to_dict())
        return 0
    out(f"wrote {result.path}: {result.artifacts} artifact(s), {result.bytes} bytes, from index(es) "
        f"{', '.join(result.indexes)}")
    out(f"on the other machine: expertpm import {result.path.name} (with --fingerprint FP for an index it does "
        "not follow yet)")
    return 0
