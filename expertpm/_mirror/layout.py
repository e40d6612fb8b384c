"""The shape of an offline mirror directory, and how one is switched into place atomically.

    DIR/
      mirror.json                 what this mirror holds (below); written last
      config.json, snapshot.json, snapshot/xx.json, keys/..., 1/…, 2/…, 3/…, ab/cd/…
                                  the index's complete signed tree at one snapshot (plain files,
                                  the layout `expertpm index export` writes)
      artifacts/<name>/<name>-<version>.expert   the selected artifacts (at the index's relative
                                  artifact path when it has one)

`mirror.json` (canonical JSON): {"format_version": 1, "kind": "expertpm-mirror", "index": NAME,
"fingerprint": FP, "snapshot_version": V, "selection": {"all": bool, "names": [...],
"packages": ["name@version", ...]}, "artifacts": {relative path: {"name", "version", "sha256",
"size"}}}. It is a table of contents, not a root of trust: verification pins the fingerprint
and checks every artifact against the index's own signed lines.

A mirror is built in a sibling directory and verified there; then it replaces DIR in one
`renameat2(RENAME_EXCHANGE)` where the kernel offers it (else two renames, with the old mirror
kept aside until the new one is in place).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .._canonical import canonical_json, parse_json
from .._errors import FormatError, UserError

MIRROR_FILE = "mirror.json"
FORMAT_VERSION = 1
DEFAULT_ARTIFACT_PATH = "artifacts/{name}/{name}-{version}.expert"
_RENAME_EXCHANGE = 2


@dataclass(frozen=True, slots=True)
class MirrorArtifact:
    name: str
    version: str
    sha256: str
    size: int

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True)
class Selection:
    all: bool = False
    names: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # name@version (from a lock)

    def to_dict(self) -> dict:
        return {"all": self.all, "names": sorted(self.names), "packages": sorted(self.packages)}

    @classmethod
    def from_dict(cls, doc: dict) -> "Selection":
        return cls(bool(doc.get("all")), tuple(doc.get("names", ())), tuple(doc.get("packages", ())))

    def merged(self, other: "Selection") -> "Selection":
        return Selection(self.all or other.all, tuple(sorted(set(self.names) | set(other.names))),
                         tuple(sorted(set(self.packages) | set(other.packages))))


@dataclass(frozen=True, slots=True)
class MirrorManifest:
    index: str
    fingerprint: str
    snapshot_version: int
    selection: Selection
    artifacts: dict = field(default_factory=dict)  # relative path -> MirrorArtifact

    def to_bytes(self) -> bytes:
        return canonical_json({
            "format_version": FORMAT_VERSION, "kind": "expertpm-mirror", "index": self.index,
            "fingerprint": self.fingerprint, "snapshot_version": self.snapshot_version,
            "selection": self.selection.to_dict(),
            "artifacts": {path: a.to_dict() for path, a in sorted(self.artifacts.items())}})

    @property
    def total_bytes(self) -> int:
        return sum(a.size for a in self.artifacts.values())


def read_manifest(directory: Path) -> MirrorManifest:
    path = Path(directory) / MIRROR_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"{directory} is not an expertpm mirror (it has no {MIRROR_FILE})", where=str(directory),
                        hint="create one with `expertpm mirror create DIR --lock experts.lock`") from exc
    doc = parse_json(data, where=str(path))
    try:
        if doc["format_version"] != FORMAT_VERSION or doc["kind"] != "expertpm-mirror":
            raise FormatError(f"unsupported mirror format {doc['format_version']!r}", where=str(path))
        artifacts = {p: MirrorArtifact(a["name"], a["version"], a["sha256"], int(a["size"]))
                     for p, a in doc["artifacts"].items()}
        return MirrorManifest(doc["index"], doc["fingerprint"], int(doc["snapshot_version"]),
                              Selection.from_dict(doc["selection"]), artifacts)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FormatError(f"{MIRROR_FILE} is malformed ({exc!r})", where=str(path),
                          hint="recreate the mirror with `expertpm mirror create`") from exc


def artifact_path(template: str, name: str, version: str, sha256: str) -> str:
    """Where an artifact lives in a mirror: the index's relative artifact path, else the default."""
    if "://" in template or not template.startswith("artifacts/"):
        template = DEFAULT_ARTIFACT_PATH
    path = template.replace("{name}", name).replace("{version}", version).replace("{sha256}", sha256)
    if ".." in Path(path).parts:
        raise UserError(f"refusing the artifact path {path!r}")
    return path


def staging_dir(target: Path) -> Path:
    """A fresh sibling of `target` (same file system, so the final rename is atomic)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.with_name(f".{target.name}.tmp-{secrets.token_hex(6)}")
    path.mkdir()
    return path


def switch_into_place(staged: Path, target: Path) -> None:
    """Make `staged` appear at `target` atomically, replacing a previous mirror there."""
    if not target.exists():
        os.rename(staged, target)
        _fsync_dir(target.parent)
        return
    if _rename_exchange(staged, target):
        _fsync_dir(target.parent)
        shutil.rmtree(staged)  # now the old mirror
        return
    aside = target.with_name(f".{target.name}.old-{secrets.token_hex(6)}")
    os.rename(target, aside)
    os.rename(staged, target)
    _fsync_dir(target.parent)
    shutil.rmtree(aside)


def _rename_exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if result == 0:
        return True
    if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(root: Path, rel: str, data: bytes) -> None:
    target = Path(root) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)
