"""`expertpm info NAME[@VERSION] [--index NAME] [--json]`: what the indexes say about a package."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 33


def register(sub, common) -> None:
    p = add_command(sub, common, "info", "show a package's versions (or one version) from the indexes", run)
    p.add_argument("spec", metavar="NAME[@VERSION]")
    p.add_argument("--index", metavar="NAME", help="one index (default: every index you follow)")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from .._errors import ResolutionError
    from .._index import configured_indexes, open_index
    from .._names import normalize_name, validate_name
    from .._versions import Version

    home = home_of(args)
    name, _, version = args.spec.partition("@")
    name = validate_name(normalize_name(name))
    wanted = Version.parse(version) if version else None
    found = []
    for index_name in [args.index] if args.index else configured_indexes(home):
        index = open_index(home, index_name)
        for entry in index.entries(name):
            if wanted is None or entry.parsed_version == wanted:
                found.append((index, entry))
    if not found:
        what = f"{name}@{version}" if version else name
        raise ResolutionError(f"no package {what} in {'index ' + args.index if args.index else 'your indexes'}",
                              hint="check the name, or run `expertpm index update`")
    if args.json:
        print_json([{"index": i.name, "yanked": e.yanked, "artifact": i.artifact_location(e)} | dict(e.raw)
                    for i, e in found])
        return 0
    if wanted is None:
        out(f"{name} ({found[-1][1].kind}): {found[-1][1].description}")
        for index, entry in found:
            flag = "  (yanked)" if entry.yanked else ""
            out(f"  {entry.version:<14} {entry.published}  [{index.name}]{flag}")
        return 0
    for index, entry in found:
        out(f"{entry.id}  [{index.name}]{'  YANKED' if entry.yanked else ''}")
        out(f"  kind         {entry.kind}")
        out(f"  description  {entry.description}")
        out(f"  license      {entry.license}")
        if entry.base:
            out(f"  base         {entry.base['name']} {entry.base['version']}")
        for label, deps in (("requires", entry.requires), ("incompatible", entry.incompatible_with)):
            if deps:
                out(f"  {label:<12} " + ", ".join(f"{k} {v}" for k, v in sorted(deps.items())))
        if entry.eval:
            out(f"  eval         {entry.eval['metric']}: {entry.eval['expert_score']} "
                f"(base {entry.eval['base_score']}, n={entry.eval['n']})")
        out(f"  sha256       {entry.sha256}  ({entry.size} bytes)")
        out(f"  publisher    {entry.publisher}")
        out(f"  published    {entry.published}")
        out(f"  artifact     {index.artifact_location(entry)}")
    return 0
