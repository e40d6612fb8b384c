"""Installing from an index: pick a version, fetch its artifact bounded by the signed size, check
the signed sha256, and hand it to the store with the line's publisher as the only trusted key.

`install_entry` is the reusable step (the resolver calls it once per package it chose);
`install_from_index` is the simple newest-match used by `expertpm install NAME[@RANGE]`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .._errors import IntegrityError, ResolutionError
from .._home import Home
from .._names import normalize_name, validate_name
from .._versions import VersionRange
from ._client import configured_indexes
from ._entries import IndexEntry
from ._read import VerifiedIndex, open_index
from ._transport import ArtifactSource, DefaultArtifactSource

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class IndexInstall:
    index: str
    entry: IndexEntry
    installed: object  # expertpm._store.InstalledPackage


def parse_spec(spec: str) -> tuple[str, str]:
    """`name`, `name@range` -> (name, range)."""
    name, _, rng = spec.partition("@")
    name = normalize_name(name)
    validate_name(name, where=spec)
    VersionRange.parse(rng or "*", where=spec)
    return name, rng or "*"


def select_newest(index: VerifiedIndex, name: str, range_text: str = "*") -> IndexEntry | None:
    """The newest non-yanked entry of `name` whose version is in the range, or None."""
    wanted = VersionRange.parse(range_text)
    matching = [e for e in index.entries(name) if not e.yanked and wanted.contains(e.parsed_version)]
    return max(matching, key=lambda e: e.parsed_version) if matching else None


def find_entry(home: Home, name: str, range_text: str = "*",
               index_name: str | None = None) -> tuple[VerifiedIndex, IndexEntry]:
    names = [index_name] if index_name else configured_indexes(home)
    if not names:
        raise ResolutionError("no index is configured", hint="add one with: expertpm index add NAME URL --fingerprint FP")
    best: tuple[VerifiedIndex, IndexEntry] | None = None
    seen: list[str] = []
    for each in names:
        index = open_index(home, each)
        entries = index.entries(name)
        seen += [e.version + (" (yanked)" if e.yanked else "") for e in entries]
        entry = select_newest(index, name, range_text)
        if entry is not None and (best is None or entry.parsed_version > best[1].parsed_version):
            best = (index, entry)
    if best is None:
        where = f"index {index_name!r}" if index_name else "the configured indexes"
        if not seen:
            raise ResolutionError(f"no package named {name!r} in {where}",
                                  hint="check the name, or run `expertpm index update`")
        raise ResolutionError(f"no version of {name} matches {range_text!r} in {where}",
                              hint=f"available: {', '.join(seen)}")
    return best


def fetch_artifact(location: str, dest: Path, *, size: int, sha256: str,
                   source: ArtifactSource | None = None) -> Path:
    """Copy the artifact at `location` to `dest`, reading at most `size` bytes, checking sha256."""
    source = source or DefaultArtifactSource()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    digest, received = hashlib.sha256(), 0
    try:
        with source.open(location) as stream, open(tmp, "wb") as out:
            while received <= size:
                chunk = stream.read(min(CHUNK, size + 1 - received))
                if not chunk:
                    break
                received += len(chunk)
                digest.update(chunk)
                out.write(chunk)
        if received > size:
            raise IntegrityError(f"the artifact is larger than the {size} bytes its signed index line declares",
                                 where=location, hint="refusing endless data")
        if received < size:
            raise IntegrityError(f"the artifact is {received} bytes, but its signed index line declares {size}",
                                 where=location, hint="the download was truncated or the file was replaced")
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"the artifact's sha256 {digest.hexdigest()[:16]}… does not match the signed "
                                 f"index line ({sha256[:16]}…)", where=location,
                                 hint="the artifact was tampered with or replaced; nothing was installed")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def install_entry(home: Home, index: VerifiedIndex, entry: IndexEntry, *,
                  source: ArtifactSource | None = None):
    """Fetch, check and install one verified index entry; returns the store's InstalledPackage."""
    from .._store import Store

    cached = home.cache_dir / "artifacts" / f"{entry.sha256}.expert"
    if not _cached_ok(cached, entry):
        fetch_artifact(index.artifact_location(entry), cached, size=entry.size, sha256=entry.sha256, source=source)
    return Store(home).add(cached, expected_sha256=entry.sha256, trusted_key_ids={entry.publisher})


def _cached_ok(path: Path, entry: IndexEntry) -> bool:
    if not path.is_file() or path.stat().st_size != entry.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == entry.sha256


def install_from_index(home: Home, spec: str, *, index_name: str | None = None,
                       source: ArtifactSource | None = None) -> IndexInstall:
    """`expertpm install NAME[@RANGE] [--index NAME]`: the newest matching, non-yanked version."""
    name, range_text = parse_spec(spec)
    index, entry = find_entry(home, name, range_text, index_name)
    return IndexInstall(index.name, entry, install_entry(home, index, entry, source=source))
