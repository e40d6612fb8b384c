"""`expertpm add NAME[@RANGE]... [--index NAME] [--git URL --tag TAG [--subdir DIR]] [--offline]`."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 21


def register(sub, common) -> None:
    p = add_command(sub, common, "add", "add experts to experts.toml and lock them", run)
    p.add_argument("requirements", nargs="+", metavar="NAME[@RANGE]", help="e.g. sql, sql@^1.2, 'sql@>=1, <2'")
    p.add_argument("--index", metavar="NAME", help="take these experts from this index only")
    p.add_argument("--git", metavar="URL", help="take the expert from a Git repository instead of an index")
    p.add_argument("--tag", help="the tag (or branch) of --git")
    p.add_argument("--subdir", help="the expert's directory inside the --git repository")
    p.add_argument("--offline", action="store_true", help="use the last verified index states; no network")
    p.add_argument("--project", default=".", metavar="DIR", help="the project directory (default: here)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from .._actions import do_add

    result = do_add(args.project, home_of(args), args.requirements, index=args.index, git=args.git, tag=args.tag,
                    subdir=args.subdir, offline=args.offline)
    if args.json:
        print_json(result.to_dict())
        return 0
    for spec in result.specs:
        out(f"added {spec.name} = {spec.toml_value()}")
    for change in result.locked.changes:
        out(f"  {change.describe()}")
    return 0
