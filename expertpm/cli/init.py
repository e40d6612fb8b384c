"""`expertpm init [DIR] [--name NAME] [--base NAME@RANGE] [--index NAME]...`: create experts.toml."""

from __future__ import annotations

from ._common import add_command, out

ORDER = 20


def register(sub, common) -> None:
    p = add_command(sub, common, "init", "create experts.toml for a project that uses experts", run)
    p.add_argument("dir", nargs="?", default=".", help="the project directory (default: here)")
    p.add_argument("--name", help="the project's name (default: the directory's name)")
    p.add_argument("--base", metavar="NAME[@RANGE]", help="the base model requirement, e.g. tiny-qwen3@^1")
    p.add_argument("--index", action="append", default=[], metavar="NAME",
                   help="resolve only from these indexes, in this order (default: every index you follow)")


def run(args) -> int:
    from .._actions import do_init

    result = do_init(args.dir, name=args.name, base=args.base, indexes=tuple(args.index))
    out(f"created {result.path} (project {result.name!r}); add experts with: expertpm add NAME")
    return 0
