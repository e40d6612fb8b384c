"""`expertpm store add | list | path | remove | gc | fsck`."""

from __future__ import annotations

from ._common import add_command, add_group, home_of, out, print_json

ORDER = 40


def register(sub, common) -> None:
    group = add_group(sub, common, "store", "manage the local content-addressed store of installed packages")
    p = add_command(group, common, "add", "verify a .expert package and install it into the store", run_add)
    p.add_argument("file", help="path to a .expert package")
    p.add_argument("--trust", metavar="KEY_ID", action="append",
                   help="accept only signatures by this key id (repeatable; default: any valid signature)")
    p.add_argument("--sha256", metavar="HEX", help="refuse the package unless its archive has this sha256")
    p = add_command(group, common, "list", "list installed packages", run_list)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add_command(group, common, "path", "print the directory of an installed package", run_path)
    p.add_argument("spec", metavar="NAME[@VERSION]", help="package name, optionally @version (default: newest)")
    p = add_command(group, common, "remove", "uninstall NAME@VERSION (run `store gc` to free the bytes)", run_remove)
    p.add_argument("spec", metavar="NAME@VERSION")
    add_command(group, common, "gc", "delete packages nothing refers to and leftovers of killed installs", run_gc)
    add_command(group, common, "fsck", "check every installed file against its digest (exit 1 on problems)",
                run_fsck)


def _store(args):
    from .._store import Store

    return Store(home_of(args))


def _split(spec: str, *, need_version: bool) -> tuple[str, str | None]:
    name, sep, version = spec.partition("@")
    if need_version and not (sep and version):
        from .._errors import StoreError

        raise StoreError(f"expected NAME@VERSION, got {spec!r}", hint=f"for example: {name or 'name'}@1.0.0")
    return name, (version or None)


def run_add(args) -> int:
    pkg = _store(args).add(args.file, trusted_key_ids=args.trust, expected_sha256=args.sha256)
    out(f"installed {pkg.id} ({pkg.kind}, sha256 {pkg.digest[:16]}, signed by {pkg.signer_key_id[:16]})")
    out(str(pkg.path))
    return 0


def run_list(args) -> int:
    packages = _store(args).list()
    if args.json:
        print_json([{"name": p.name, "version": p.version, "kind": p.kind, "digest": p.digest,
                     "path": str(p.path), "signer_key_id": p.signer_key_id} for p in packages])
        return 0
    if not packages:
        out("no packages installed (install one with: expertpm store add FILE)")
    for p in packages:
        out(f"{p.name:<24} {p.version:<12} {p.kind:<7} {p.digest[:16]}")
    return 0


def run_path(args) -> int:
    name, version = _split(args.spec, need_version=False)
    out(str(_store(args).path(name, version)))
    return 0


def run_remove(args) -> int:
    name, version = _split(args.spec, need_version=True)
    _store(args).remove(name, version)
    out(f"removed {name}@{version} (run `expertpm store gc` to free its space)")
    return 0


def run_gc(args) -> int:
    report = _store(args).gc()
    out(f"removed {len(report.removed_packages)} unreferenced package(s), freed {report.freed_bytes / 1e6:.1f} MB, "
        f"cleaned {len(report.removed_tmp)} leftover(s) of interrupted installs")
    return 0


def run_fsck(args) -> int:
    problems = _store(args).fsck()
    for line in problems:
        out(line)
    if problems:
        from ._common import err

        err(f"{len(problems)} problem(s) found in the store")
        return 1
    out("store is consistent")
    return 0
