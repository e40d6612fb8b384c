"""`expertpm import OUT.tar [--fingerprint FP]...`: verify and take in an `expertpm export` file."""

from __future__ import annotations

from ._common import add_command, err, home_of, out, print_json

ORDER = 38


def register(sub, common) -> None:
    p = add_command(sub, common, "import", "verify the mirrors in an export file, follow them, cache their artifacts",
                    run)
    p.add_argument("archive", metavar="OUT.tar")
    p.add_argument("--fingerprint", action="append", default=[], metavar="ROOT_FP",
                   help="trust a mirrored index with this root fingerprint (needed for an index not followed yet)")
    p.add_argument("--allow-expired", action="store_true", help="accept a mirror whose snapshot has expired")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._mirror import import_archive

    results = import_archive(home_of(args), args.archive, fingerprints=tuple(args.fingerprint),
                             allow_expired=args.allow_expired, warn=lambda message: err(f"WARNING: {message}"))
    if args.json:
        print_json([r.to_dict() for r in results])
        return 0
    for r in results:
        state = "now followed" if r.added else "already followed"
        out(f"imported index {r.name!r} ({r.fingerprint[:16]}…, {state}): {r.artifacts} artifact(s) cached")
    out("install with: expertpm sync --frozen --offline")
    return 0
