"""`expertpm new NAME [--kind expert|base] [--dir PATH]`: scaffold a source directory."""

from __future__ import annotations

from ._common import add_command, out

ORDER = 20


def register(sub, common) -> None:
    p = add_command(sub, common, "new", "scaffold a source directory for a new expert or base model", run)
    p.add_argument("name", help="the package name (lowercase a-z, 0-9 and '-')")
    p.add_argument("--kind", choices=("expert", "base"), default="expert", help="what to scaffold (default: expert)")
    p.add_argument("--dir", metavar="PATH", help="where to create it (default: ./NAME)")


def run(args) -> int:
    from .._scaffold import scaffold

    dest = scaffold(args.name, args.dir or args.name, kind=args.kind)
    out(f"created {args.kind} source directory {dest}")
    out(f"next: read {dest}/README.md, edit {dest}/manifest.json, then run: expertpm pack {dest}")
    return 0
