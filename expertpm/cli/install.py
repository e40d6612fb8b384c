"""`expertpm install SPEC... [--index NAME]`: each SPEC is NAME[@RANGE] or git+URL@TAG[#subdir]."""

from __future__ import annotations

from ._common import add_command, err, home_of, out

ORDER = 34


def register(sub, common) -> None:
    p = add_command(sub, common, "install", "install the newest matching version from an index, or a Git source", run)
    p.add_argument("specs", metavar="SPEC", nargs="+",
                   help="NAME, NAME@RANGE (e.g. sql@^1.2) or git+URL@TAG[#subdir]; several are installed in order")
    p.add_argument("--index", metavar="NAME", help="the index to install from (default: every index you follow)")


def run(args) -> int:
    home = home_of(args)
    for spec in args.specs:
        install_one(home, spec, args.index)
    return 0


def install_one(home, spec: str, index_name: str | None) -> None:
    if spec.startswith("git+"):
        from .._index._source import install_git_source

        result = install_git_source(home, spec, warn=lambda m: err(f"WARNING: {m}"))
        state = f"verified, signed by {result.signer[:16]}" if result.verified else "UNVERIFIED"
        out(f"installed {result.installed.id} from {result.source.url}@{result.source.tag} ({state})")
        return
    from .._index import install_from_index

    result = install_from_index(home, spec, index_name=index_name)
    out(f"installed {result.installed.id} from index {result.index!r} ({result.entry.sha256[:16]}…)")
