"""`store fsck` and `store gc`. Both run with the store lock held (see `Store.fsck` / `Store.gc`)."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .._canonical import sha256_file
from .._errors import ExpertpmError
from .._keys import verify_signature
from .._manifest import MANIFEST_FILE, SIGNATURE_FILE, WEIGHT_SUFFIX, Manifest
from .._names import validate_name
from .._safetensors import validate_file
from .._versions import Version
from .layout import DIGEST, Layout, clean_stale, fsync_dir, remove_tree
from .store import read_ref, read_signature


@dataclass(frozen=True, slots=True)
class GcReport:
    removed_packages: tuple[str, ...]  # digests
    freed_bytes: int
    removed_tmp: tuple[str, ...]  # entries of tmp/ left by dead processes


def collect_garbage(layout: Layout) -> GcReport:
    """Delete packages no ref points to, empty ref directories, and dead processes' staging."""
    removed_tmp = clean_stale(layout.tmp)
    referenced: set[str] = set()
    for name in sorted(os.listdir(layout.refs)):
        ref_dir = layout.refs / name
        if not ref_dir.is_dir() or ref_dir.is_symlink():
            continue
        versions = os.listdir(ref_dir)
        if not versions:
            ref_dir.rmdir()
            continue
        for version in versions:
            try:
                referenced.add(read_ref(ref_dir / version) or "")
            except ExpertpmError:
                continue  # a broken ref keeps nothing alive; fsck reports it
    removed, freed = [], 0
    for entry in sorted(os.listdir(layout.packages)):
        if entry in referenced:
            continue
        # Rename first so a half-deleted package never sits under packages/; tmp/ entries without
        # a lock file are dead by construction, so an interrupted delete is finished by the next clean.
        trash = layout.tmp / f"gc-{secrets.token_hex(8)}"
        os.rename(layout.packages / entry, trash)
        fsync_dir(layout.packages)
        freed += remove_tree(trash)
        removed.append(entry)
    return GcReport(tuple(removed), freed, tuple(removed_tmp))


def check_store(layout: Layout) -> list[str]:
    """One line per problem found; [] when the store is consistent. Cleans dead staging first."""
    clean_stale(layout.tmp)
    problems: list[str] = []
    for entry in sorted(os.listdir(layout.packages)):
        path = layout.packages / entry
        if not DIGEST.match(entry) or path.is_symlink() or not path.is_dir():
            problems.append(f"{layout.rel(path)}: stray entry (not a package directory) — run: expertpm store gc")
        else:
            problems.extend(check_package(layout, path))
    for name in sorted(os.listdir(layout.refs)):
        problems.extend(_check_refs(layout, name))
    return problems


def _check_refs(layout: Layout, name: str) -> list[str]:
    ref_dir = layout.refs / name
    if ref_dir.is_symlink() or not ref_dir.is_dir():
        return [f"{layout.rel(ref_dir)}: stray entry (not a directory of refs)"]
    problems = []
    try:
        validate_name(name)
    except ExpertpmError:
        problems.append(f"{layout.rel(ref_dir)}: not a valid package name")
    for version in sorted(os.listdir(ref_dir)):
        ref = ref_dir / version
        where = layout.rel(ref)
        try:
            Version.parse(version)
        except ExpertpmError:
            problems.append(f"{where}: not a valid version")
            continue
        if ref.is_symlink() or not ref.is_file():
            problems.append(f"{where}: not a regular file")
            continue
        try:
            digest = read_ref(ref)
        except ExpertpmError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        package = layout.package_dir(digest)
        if not package.is_dir():
            problems.append(f"{where}: refers to missing package {digest} — reinstall {name}@{version}")
            continue
        try:
            manifest = Manifest.load(package / MANIFEST_FILE)
        except ExpertpmError:
            continue  # reported with the package
        if (manifest.name, str(manifest.version)) != (name, version):
            problems.append(f"{where}: refers to a package of {manifest.id}")
    return problems


def check_package(layout: Layout, package: Path) -> list[str]:
    """Problems with one unpacked package: manifest, signature, file set, digests, modes, headers."""
    rel = layout.rel(package)
    try:
        manifest_bytes = (package / MANIFEST_FILE).read_bytes()
        manifest = Manifest.from_bytes(manifest_bytes, where=f"{rel}/{MANIFEST_FILE}")
        verify_signature(read_signature(package), manifest_bytes, where=f"{rel}/{SIGNATURE_FILE}")
    except OSError as exc:
        return [f"{rel}/{MANIFEST_FILE}: cannot read: {exc.strerror}"]
    except ExpertpmError as exc:
        return [f"{rel}: {exc}" if exc.where is None else str(exc)]
    problems = []
    on_disk = _files_under(package, problems, rel)
    expected = set(manifest.files) | {MANIFEST_FILE, SIGNATURE_FILE}
    for path in sorted(on_disk - expected):
        problems.append(f"{rel}/{path}: file not listed in the manifest")
    for path in sorted(expected - on_disk):
        problems.append(f"{rel}/{path}: file listed in the manifest is missing")
    for path in sorted(on_disk & expected):
        problems.extend(_check_file(package / path, f"{rel}/{path}", manifest.files.get(path)))
    return problems


def _check_file(path: Path, where: str, entry) -> list[str]:
    problems = []
    mode = stat.S_IMODE(path.lstat().st_mode)
    if mode & 0o222:
        problems.append(f"{where}: writable (mode {mode:04o}); installed files must be read-only")
    if entry is None:
        return problems
    digest, size = sha256_file(path)
    if size != entry.size:
        problems.append(f"{where}: size {size} differs from the manifest's {entry.size}")
    elif digest != entry.sha256:
        problems.append(f"{where}: sha256 mismatch (manifest {entry.sha256[:16]}…, file {digest[:16]}…)")
    elif where.endswith(WEIGHT_SUFFIX):
        try:
            validate_file(path)
        except ExpertpmError as exc:
            problems.append(f"{where}: {exc.message}")
    return problems


def _files_under(package: Path, problems: list[str], rel: str) -> set[str]:
    """Relative paths of the regular files under `package`; anything else is a problem."""
    files = set()
    for dirpath, dirnames, filenames in os.walk(package):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            sub = full.relative_to(package).as_posix()
            st = full.lstat()
            if stat.S_ISREG(st.st_mode):
                files.add(sub)
            elif not stat.S_ISDIR(st.st_mode):
                problems.append(f"{rel}/{sub}: not a regular file or directory")
    return files
