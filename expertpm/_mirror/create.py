"""`expertpm mirror create DIR [--lock experts.lock | --all | NAME…]` and `mirror update DIR`.

A mirror holds one index's complete signed tree (the metadata is small, and a directory index is
read in full: every file its snapshot lists must be there) plus the selected artifacts. The
selection is a lock's exact packages, every version of some names (and, transitively, of what
they require and their bases), or everything. `update` re-reads the index, keeps the selection,
adds what is new and reuses the artifacts it already has (hard links where possible).

Everything is built in a sibling directory, verified there from scratch against the index's
fingerprint (see `verify`), and only then switched into place, so DIR is always either the old
mirror or the new one.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._errors import IntegrityError, UserError
from .._home import Home
from .layout import (
    MIRROR_FILE, MirrorArtifact, MirrorManifest, Selection, artifact_path, read_manifest, staging_dir,
    switch_into_place, write_file,
)
from .verify import MirrorReport, file_digest, require_ok, verify_mirror

COPY_WORKERS = 4


@dataclass(frozen=True, slots=True)
class MirrorResult:
    report: MirrorReport
    added: tuple[str, ...]  # name@version of artifacts new in this mirror
    reused: int

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "added": list(self.added), "reused": self.reused}


def create_mirror(home: Home, directory: Path | str, *, lock: Path | str | None = None, all: bool = False,
                  names: tuple[str, ...] = (), index: str | None = None, offline: bool = False, progress=None,
                  warn: Callable[[str], None] = lambda message: None) -> MirrorResult:
    directory = Path(directory).absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        hint = ("it is a mirror already: `expertpm mirror update DIR` adds what is new" if
                (directory / MIRROR_FILE).is_file() else "choose a new or empty directory")
        raise UserError("the mirror directory exists and is not empty", where=str(directory), hint=hint)
    if sum((lock is not None, bool(all), bool(names))) != 1:
        raise UserError("say what to mirror: --lock experts.lock, --all, or one or more NAMEs")
    selection, index_name = _selection(home, lock, all, names, index, warn)
    return _build(home, directory, index_name, selection, None, offline=offline, progress=progress, warn=warn)


def update_mirror(home: Home, directory: Path | str, *, lock: Path | str | None = None, offline: bool = False,
                  progress=None, warn: Callable[[str], None] = lambda message: None) -> MirrorResult:
    directory = Path(directory).absolute()
    old = read_manifest(directory)
    from .._installer.fetch import IndexCatalog

    index_name = IndexCatalog(home).fingerprints().get(old.fingerprint)
    if index_name is None:
        raise UserError(f"the mirror is of the index with fingerprint {old.fingerprint[:16]}…, which this machine "
                        "does not follow", where=str(directory),
                        hint=f"add it first: expertpm index add NAME URL --fingerprint {old.fingerprint}")
    selection = old.selection
    if lock is not None:
        selection = selection.merged(_selection(home, lock, False, (), index_name, warn)[0])
    return _build(home, directory, index_name, selection, old, offline=offline, progress=progress, warn=warn)


def _selection(home: Home, lock, all: bool, names, index: str | None, warn) -> tuple[Selection, str]:
    from .._index import configured_indexes
    from .._installer.fetch import IndexCatalog
    from .._lockfile import read_lock
    from .._names import normalize_name

    configured = configured_indexes(home)
    if index is not None and index not in configured:
        raise UserError(f"--index {index}: no such index is configured",
                        hint=f"configured: {', '.join(configured) or 'none'}")
    if lock is None:
        if index is None:
            if len(configured) != 1:
                raise UserError("several indexes are configured" if configured else "no index is configured",
                                hint="pass --index NAME" if configured else "add one with `expertpm index add`")
            index = configured[0]
        return Selection(all=all, names=tuple(normalize_name(n) for n in names)), index
    locked = read_lock(lock)
    if locked is None:
        raise UserError(f"{lock} does not exist", hint="run `expertpm lock` first")
    by_fp = IndexCatalog(home).fingerprints()
    used = {p.source.removeprefix("index+") for p in locked.packages if p.source.startswith("index+")}
    for p in locked.packages:
        if not p.source.startswith("index+"):
            warn(f"{p.name}@{p.version} comes from {p.source}: git sources are not mirrored")
    if index is None:
        unknown = sorted(fp for fp in used if fp not in by_fp)
        if unknown:
            raise UserError(f"the lock uses an index this machine does not follow (fingerprint {unknown[0][:16]}…)",
                            hint=f"add it: expertpm index add NAME URL --fingerprint {unknown[0]}")
        if len(used) > 1:
            raise UserError("the lock uses several indexes; a mirror holds one",
                            hint=f"run once per index with --index ({', '.join(sorted(by_fp[fp] for fp in used))})")
        if not used:
            raise UserError("the lock holds no package from an index; there is nothing to mirror")
        index = by_fp[next(iter(used))]
    from .._index._client import load_settings

    fingerprint = load_settings(home, index).fingerprint
    packages = tuple(f"{p.name}@{p.version}" for p in locked.packages if p.source == f"index+{fingerprint}")
    return Selection(packages=packages), index


def _entries(index, selection: Selection) -> list:
    """The index entries a selection stands for."""
    chosen: dict[tuple[str, str], object] = {}
    if selection.all:
        for name in index.package_names():
            for entry in index.entries(name):
                chosen[(entry.name, entry.version)] = entry
    for spec in selection.packages:
        name, _, version = spec.partition("@")
        entry = next((e for e in index.entries(name) if e.version == version), None)
        if entry is None:
            raise UserError(f"{spec} is not in index {index.name!r}", hint="update the index, or re-lock")
        chosen[(name, version)] = entry
    pending, seen = list(selection.names), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        entries = index.entries(name)
        if not entries and name in selection.names:
            raise UserError(f"no package named {name!r} in index {index.name!r}", hint="check the name")
        for entry in entries:
            chosen[(entry.name, entry.version)] = entry
            pending += list(entry.requires) + ([entry.base["name"]] if entry.base else [])
    return [chosen[k] for k in sorted(chosen)]


def _build(home: Home, directory: Path, index_name: str, selection: Selection, old: MirrorManifest | None, *,
           offline: bool, progress, warn) -> MirrorResult:
    from .._actions.sources import update_indexes
    from .._index import open_index

    if not offline:
        update_indexes(home, [index_name], warn=warn)
    index = open_index(home, index_name)
    from .._index._http import is_sparse_url

    if offline and is_sparse_url(index.url):
        raise UserError(f"--offline: index {index_name!r} is read over HTTP, file by file; its complete tree "
                        "(which a mirror holds) can only be read with the network", hint="drop --offline")
    entries = _entries(index, selection)
    staged = staging_dir(directory)
    try:
        snapshot_version = _write_tree(index, staged)
        template = index.config.artifact_url
        planned = {artifact_path(template, e.name, e.version, e.sha256): e for e in entries}
        reused = _copy_artifacts(home, index, planned, staged, directory if old else None, old, offline, progress)
        artifacts = {rel: MirrorArtifact(e.name, e.version, e.sha256, e.size) for rel, e in planned.items()}
        manifest = MirrorManifest(index.name, index.fingerprint, snapshot_version, selection, artifacts)
        write_file(staged, MIRROR_FILE, manifest.to_bytes())
        report = require_ok(verify_mirror(staged, fingerprint=index.fingerprint))
        switch_into_place(staged, directory)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    before = set(old.artifacts.values()) if old else set()
    added = tuple(sorted(a.id for a in manifest.artifacts.values() if a not in before))
    report = MirrorReport(directory, manifest, True, report.packages, report.problems, report.warnings)
    return MirrorResult(report, added, reused)


def _write_tree(index, out: Path) -> int:
    """Write the index's complete signed tree as plain files; returns its snapshot version."""
    import pygit2

    from .._index._gitdb import walk_files
    from .._index._http import is_sparse_url
    from .._index._layout import DEFAULT_LIMITS, SNAPSHOT_FILE
    from .._index._metadata import read_snapshot

    if is_sparse_url(index.url):  # a sparse client holds a subset: read the whole tree, checked below
        from .._index._transport import HttpReader, StaticTransport

        scratch = tempfile.TemporaryDirectory(prefix="expertpm-mirror-")
        repo = pygit2.init_repository(scratch.name, bare=True)
        tree = repo[StaticTransport(HttpReader(index.url), index.url).fetch(repo, None, DEFAULT_LIMITS)].tree
    else:
        scratch, repo = None, index.repo
        tree = repo[pygit2.Oid(hex=index.state.commit)].tree
    try:
        snapshot = None
        for path, oid in walk_files(tree):
            data = repo[oid].data
            write_file(out, path, data)
            if path == SNAPSHOT_FILE:
                snapshot = read_snapshot(data, where=SNAPSHOT_FILE)
    finally:
        if scratch is not None:
            scratch.cleanup()
    if snapshot is None:
        raise IntegrityError("the index has no snapshot.json", where=index.url)
    return snapshot.version


def _copy_artifacts(home: Home, index, planned: dict, staged: Path, previous_dir: Path | None,
                    old: MirrorManifest | None, offline: bool, progress) -> int:
    from .._installer.fetch import Fetcher, artifact_for

    reusable = {rel for rel, art in (old.artifacts.items() if old else ()) if rel in planned and
                (planned[rel].sha256, planned[rel].size) == (art.sha256, art.size)}
    with Fetcher(home, offline=offline, progress=progress) as fetcher:
        def one(rel: str) -> None:
            entry = planned[rel]
            target = staged / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel in reusable:
                source = previous_dir / rel
                try:
                    os.link(source, target)
                    return
                except OSError:
                    pass
            else:
                source = fetcher.local_copy(artifact_for(home, index, entry))
            copy_checked(source, target, entry.size, entry.sha256, entry.id)

        with concurrent.futures.ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
            for future in [pool.submit(one, rel) for rel in sorted(planned)]:
                future.result()
    return len(reusable)


def copy_checked(source: Path, target: Path, size: int, sha256: str, label: str) -> None:
    """Copy at most `size` bytes, then insist on exactly `size` bytes with this sha256."""
    import hashlib

    digest, copied = hashlib.sha256(), 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        while copied <= size and (chunk := src.read(min(1 << 20, size + 1 - copied))):
            digest.update(chunk)
            dst.write(chunk)
            copied += len(chunk)
    if copied != size or digest.hexdigest() != sha256:
        target.unlink(missing_ok=True)
        raise IntegrityError(f"the artifact of {label} at {source} is not the one its signed index line names",
                             hint="the artifact store holds other bytes; nothing was mirrored")


__all__ = ["MirrorResult", "create_mirror", "update_mirror", "copy_checked", "file_digest"]
