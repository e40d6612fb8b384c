"""Installing straight from a Git repository: `git+URL@TAG[#subdir]`.

The tag is fetched with pygit2 (only that ref, bounded in size), its tree (or the subdirectory)
is written to a scratch directory, and then:
  * if the tree carries a signed `.expert` whose name, version and every file digest match the
    source next to it, that package is verified and installed (`verified=True`);
  * otherwise the source is packed with a throw-away key and installed, and the caller is warned
    loudly that nothing vouches for it (`verified=False`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .._canonical import parse_json, sha256_file
from .._errors import IntegrityError, PackageError
from .._home import Home
from .._keys import SigningKey
from .._manifest import MANIFEST_FILE
from . import _gitdb as git
from ._layout import DEFAULT_LIMITS

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

LOG = logging.getLogger("expertpm.index")


@dataclass(frozen=True, slots=True)
class GitSource:
    url: str
    tag: str
    subdir: str


@dataclass(frozen=True, slots=True)
class SourceInstall:
    installed: object  # expertpm._store.InstalledPackage
    verified: bool
    signer: str
    commit: str
    source: GitSource


def is_git_source(spec: str) -> bool:
    return spec.startswith("git+")


def parse_git_source(spec: str) -> GitSource:
    if not is_git_source(spec):
        raise PackageError(f"{spec!r} is not a Git source", hint="use git+URL@TAG[#subdir]")
    rest, _, subdir = spec[4:].partition("#")
    url, at, tag = rest.rpartition("@")
    if not at or not tag or "/" in tag or not url or url.endswith(":"):
        raise PackageError(f"{spec!r} names no tag", hint="use git+URL@TAG[#subdir], e.g. git+https://host/sql.git@v1.0.0")
    subdir = subdir.strip("/")
    if any(part in ("", ".", "..") for part in subdir.split("/")) and subdir:
        raise PackageError(f"invalid subdirectory {subdir!r}", where=spec)
    return GitSource(url, tag, subdir)


def install_git_source(home: Home, spec: str, *, trusted_key_ids: set[str] | None = None,
                       warn: Callable[[str], None] = LOG.warning) -> SourceInstall:
    from .._package import pack, verify_package
    from .._store import Store

    source = parse_git_source(spec)
    with tempfile.TemporaryDirectory(prefix="expertpm-git-") as scratch:
        scratch_dir = Path(scratch)
        commit = _fetch_tag(scratch_dir / "repo.git", source)
        src = scratch_dir / "src"
        _export(commit.tree, source, src)
        if not (src / MANIFEST_FILE).is_file():
            raise PackageError(f"no {MANIFEST_FILE} at {source.subdir or 'the top'} of {source.url}@{source.tag}",
                               hint="point #subdir at the expert's source directory")
        signed = _matching_package(src, trusted_key_ids)
        if signed is not None:
            verified = verify_package(signed, trusted_key_ids=trusted_key_ids)
            installed = Store(home).add(signed, trusted_key_ids=trusted_key_ids, expected_sha256=verified.digest)
            return SourceInstall(installed, True, verified.signature.key_id, str(commit.id), source)
        throwaway = SigningKey.generate("unverified-git-source")
        package = pack(src, scratch_dir / "dist.expert", throwaway)
        installed = Store(home).add(package)
        warn(f"installed {installed.name}@{installed.version} from the unindexed Git source {source.url}@{source.tag}: "
             "it is NOT verified — no index line or publisher signature vouches for it. "
             "Only use sources you trust.")
        return SourceInstall(installed, False, throwaway.key_id, str(commit.id), source)


def _fetch_tag(path: Path, source: GitSource) -> pygit2.Commit:
    import pygit2

    repo = pygit2.init_repository(str(path), bare=True)
    for ref in (f"refs/tags/{source.tag}", f"refs/heads/{source.tag}"):
        git.fetch(repo, source.url, f"+{ref}:{ref}", max_bytes=DEFAULT_LIMITS.max_fetch_bytes)
        oid = git.ref_target(repo, ref)
        if oid is not None:
            return repo[oid].peel(pygit2.Commit)
    raise PackageError(f"no tag {source.tag!r} in {source.url}", hint="list the tags with: git ls-remote --tags URL")


def _export(tree: pygit2.Tree, source: GitSource, dest: Path) -> None:
    import pygit2

    if source.subdir:
        try:
            tree = tree[source.subdir]
        except KeyError:
            raise PackageError(f"no directory {source.subdir!r} at {source.url}@{source.tag}") from None
        if not isinstance(tree, pygit2.Tree):
            raise PackageError(f"{source.subdir!r} is not a directory at {source.url}@{source.tag}")
    _write_tree(tree, dest)


def _write_tree(tree: pygit2.Tree, dest: Path) -> None:
    import pygit2

    dest.mkdir(parents=True, exist_ok=True)
    for entry in tree:
        if entry.name in (".", "..", ".git") or "/" in entry.name or "\\" in entry.name:
            raise PackageError(f"refusing the tree entry {entry.name!r}")
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            _write_tree(entry, dest / entry.name)  # type: ignore[arg-type]
        elif entry.filemode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
            (dest / entry.name).write_bytes(entry.data)  # type: ignore[attr-defined]
        elif entry.filemode == pygit2.GIT_FILEMODE_LINK:
            raise PackageError(f"the source holds a symbolic link {entry.name!r}", hint="links are refused")
        # submodules are skipped: they are not part of the source


def _matching_package(src: Path, trusted_key_ids: set[str] | None) -> Path | None:
    """A signed `.expert` shipped with the source whose contents match it, if there is one."""
    from .._package import read_manifest

    candidates = sorted(src.glob("*.expert"))
    if not candidates:
        return None
    wanted = parse_json((src / MANIFEST_FILE).read_bytes(), where=str(src / MANIFEST_FILE))
    for candidate in candidates:
        manifest, _sig, _bytes = read_manifest(candidate)
        if manifest.name != wanted.get("name") or str(manifest.version) != wanted.get("version"):
            continue
        for rel, entry in manifest.files.items():
            path = src / rel
            if not path.is_file() or sha256_file(path)[0] != entry.sha256:
                raise IntegrityError(f"the signed package {candidate.name} does not match the source next to it "
                                     f"({rel} differs)", where=str(candidate),
                                     hint="the tag's source was changed after the package was signed")
        return candidate
    return None
