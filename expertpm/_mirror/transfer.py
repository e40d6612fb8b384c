"""`expertpm export --lock experts.lock OUT.tar` and `expertpm import OUT.tar`: one file to carry.

The tar holds one mirror per index the lock uses (`mirrors/<index name>/…`, each exactly what
`mirror create --lock` writes) and the lock itself (`experts.lock`). It is deterministic (sorted
members, zero times and owners) and written atomically.

Import extracts it (regular files and directories only, nothing outside `mirrors/`), verifies
each mirror from scratch against a fingerprint this machine trusts — one of an index it already
follows, or one given with `--fingerprint` — keeps it under `<home>/mirrors/<fingerprint>/`,
follows it under the index's name when no followed index has that fingerprint, and copies the
verified artifacts into the download cache, where `sync` (also `--offline`) finds them.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from .._errors import PackageError, UserError
from .._home import Home
from .layout import MIRROR_FILE, read_manifest, staging_dir, switch_into_place
from .verify import require_ok, verify_mirror

MIRRORS = "mirrors"


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    indexes: tuple[str, ...]
    artifacts: int
    bytes: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "indexes": list(self.indexes), "artifacts": self.artifacts,
                "bytes": self.bytes}


def export_lock(home: Home, lock: Path | str, out: Path | str, *, offline: bool = False, progress=None,
                warn: Callable[[str], None] = lambda message: None) -> ExportResult:
    from .._installer.fetch import IndexCatalog
    from .._lockfile import read_lock
    from .create import create_mirror

    lock = Path(lock)
    locked = read_lock(lock)
    if locked is None:
        raise UserError(f"{lock} does not exist", hint="run `expertpm lock` first")
    by_fp = IndexCatalog(home).fingerprints()
    fingerprints = sorted({p.source.removeprefix("index+") for p in locked.packages if p.source.startswith("index+")})
    missing = [fp for fp in fingerprints if fp not in by_fp]
    if missing:
        raise UserError(f"the lock uses an index this machine does not follow (fingerprint {missing[0][:16]}…)",
                        hint=f"add it: expertpm index add NAME URL --fingerprint {missing[0]}")
    out = Path(out).absolute()
    scratch = staging_dir(out.with_name(out.name + ".d"))
    try:
        names, count, size = [], 0, 0
        for fp in fingerprints:
            name = by_fp[fp]
            result = create_mirror(home, scratch / MIRRORS / name, lock=lock, index=name, offline=offline,
                                   progress=progress, warn=warn)
            names.append(name)
            count += len(result.report.manifest.artifacts)
            size += result.report.manifest.total_bytes
        shutil.copyfile(lock if lock.is_file() else lock / "experts.lock", scratch / "experts.lock")
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        try:
            _write_tar(scratch, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportResult(out, tuple(names), count, size)


def _write_tar(root: Path, out: Path) -> None:
    paths = sorted(p for p in root.rglob("*"))
    with open(out, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            rel = path.relative_to(root).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as data:
                    tar.addfile(info, data)


@dataclass(frozen=True, slots=True)
class ImportedIndex:
    name: str
    fingerprint: str
    path: Path
    added: bool  # followed now (no followed index had this fingerprint)
    artifacts: int

    def to_dict(self) -> dict:
        return {"name": self.name, "fingerprint": self.fingerprint, "path": str(self.path), "added": self.added,
                "artifacts": self.artifacts}


def import_archive(home: Home, archive: Path | str, *, fingerprints: tuple[str, ...] = (),
                   allow_expired: bool = False, warn: Callable[[str], None] = lambda message: None
                   ) -> list[ImportedIndex]:
    from .._index import add_index
    from .._installer.fetch import IndexCatalog

    archive = Path(archive)
    trusted = {fp.strip().lower().removeprefix("sha256:") for fp in fingerprints}
    following = IndexCatalog(home).fingerprints()
    root = home.root / MIRRORS
    scratch = staging_dir(root / ".import")
    try:
        _extract(archive, scratch)
        found = sorted(p.parent for p in (scratch / MIRRORS).glob(f"*/{MIRROR_FILE}"))
        if not found:
            raise UserError(f"{archive} holds no mirror",
                            hint="make one with `expertpm export --lock experts.lock OUT.tar`")
        results = []
        for directory in found:
            manifest = read_manifest(directory)
            fp = manifest.fingerprint
            if fp not in trusted and fp not in following:
                raise UserError(f"the archive holds a mirror of index {manifest.index!r} with fingerprint {fp[:16]}…, "
                                "which this machine does not follow", where=str(archive),
                                hint=f"check the fingerprint with the index's maintainer, then pass --fingerprint {fp}")
            require_ok(verify_mirror(directory, fingerprint=fp, allow_expired=True))
            target = root / fp
            switch_into_place(directory, target)
            cached = _cache_artifacts(home, target)
            added = fp not in following
            name = following.get(fp) or _free_name(home, manifest.index)
            if added:
                add_index(home, name, str(target), fingerprint=fp, allow_expired=allow_expired, warn=warn)
                following[fp] = name
            results.append(ImportedIndex(name, fp, target, added, cached))
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _free_name(home: Home, wanted: str) -> str:
    from .._index import configured_indexes

    taken = set(configured_indexes(home))
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def _extract(archive: Path, dest: Path) -> None:
    try:
        tar = tarfile.open(archive, mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise PackageError(f"cannot read the archive: {exc}", where=str(archive),
                           hint="is it a file written by `expertpm export`?") from exc
    with tar:
        for member in tar:
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or (path.parts[:1] not in ((MIRRORS,), ("experts.lock",))):
                raise PackageError(f"refusing the archive member {member.name!r}", where=str(archive),
                                   hint="an export holds only mirrors/ and experts.lock")
            if member.isdir():
                (dest / member.name).mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                target = dest / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                raise PackageError(f"refusing the archive member {member.name!r} (not a regular file)",
                                   where=str(archive), hint="links and special files are never part of an export")


def _cache_artifacts(home: Home, mirror: Path) -> int:
    from .create import copy_checked

    manifest = read_manifest(mirror)
    cache = home.cache_dir / "artifacts"
    cache.mkdir(parents=True, exist_ok=True)
    count = 0
    for rel, art in manifest.artifacts.items():
        target = cache / f"{art.sha256}.expert"
        if target.is_file() and target.stat().st_size == art.size:
            continue
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        copy_checked(mirror / rel, tmp, art.size, art.sha256, art.id)
        os.replace(tmp, target)
        count += 1
    return count


__all__ = ["ExportResult", "ImportedIndex", "export_lock", "import_archive"]
