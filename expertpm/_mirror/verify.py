"""`expertpm mirror verify DIR`: check a mirror from scratch, exactly as a client would trust it.

1. The index tree is fetched from DIR into a throw-away client home with the same code path as
   `expertpm index add NAME DIR --fingerprint FP` (snapshot signature, root chain from the pinned
   fingerprint, every bin and file against the snapshot), then re-verified with every line's
   signature (`index verify`).
2. Every artifact `mirror.json` lists must be the one its signed index line names: same size,
   same sha256 (read in full). Any other file under `artifacts/` is reported.

The fingerprint is the caller's (`--fingerprint`) or, failing that, the one `mirror.json` claims
— which proves only that the mirror is consistent, not whose it is; the report says which.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ExpertpmError, IntegrityError
from .._home import Home
from .layout import MIRROR_FILE, MirrorManifest, read_manifest

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class MirrorReport:
    path: Path
    manifest: MirrorManifest
    fingerprint_pinned: bool
    packages: int  # package files in the index tree
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"path": str(self.path), "index": self.manifest.index, "fingerprint": self.manifest.fingerprint,
                "fingerprint_pinned": self.fingerprint_pinned, "snapshot_version": self.manifest.snapshot_version,
                "packages": self.packages, "artifacts": len(self.manifest.artifacts),
                "bytes": self.manifest.total_bytes, "ok": self.ok, "problems": list(self.problems),
                "warnings": list(self.warnings)}


def file_digest(path: Path, limit: int) -> tuple[str, int]:
    """sha256 and size of at most `limit` + 1 bytes of `path` (more means: larger than declared)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while size <= limit and (chunk := f.read(min(CHUNK, limit + 1 - size))):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify_mirror(directory: Path | str, *, fingerprint: str | None = None, allow_expired: bool = True
                  ) -> MirrorReport:
    """Verify `directory`; raises on an untrusted or broken index tree, reports artifact problems."""
    from .._index import add_index, open_index, verify_index

    directory = Path(directory).absolute()
    manifest = read_manifest(directory)
    pinned = fingerprint is not None
    fingerprint = (fingerprint or manifest.fingerprint).strip().lower().removeprefix("sha256:")
    warnings: list[str] = []
    problems: list[str] = []
    if fingerprint != manifest.fingerprint:
        problems.append(f"{MIRROR_FILE} names fingerprint {manifest.fingerprint[:16]}…, not the pinned "
                        f"{fingerprint[:16]}…")
    with tempfile.TemporaryDirectory(prefix="expertpm-mirror-verify-") as scratch:
        home = Home(Path(scratch))
        add_index(home, "mirror", str(directory), fingerprint=fingerprint, allow_expired=allow_expired,
                  warn=warnings.append)
        verify_index(home, "mirror", warn=warnings.append)
        index = open_index(home, "mirror")
        names = index.package_names()
        if index.snapshot_version != manifest.snapshot_version:
            problems.append(f"{MIRROR_FILE} says snapshot {manifest.snapshot_version}, the tree is at "
                            f"{index.snapshot_version}")
        problems += _check_artifacts(directory, manifest, index)
    return MirrorReport(directory, manifest, pinned, len(names), tuple(problems), tuple(warnings))


def _check_artifacts(directory: Path, manifest: MirrorManifest, index) -> list[str]:
    problems = []
    for rel, art in sorted(manifest.artifacts.items()):
        try:
            entry = next((e for e in index.entries(art.name) if e.version == art.version), None)
        except ExpertpmError as exc:
            problems.append(f"{art.id}: {exc}")
            continue
        if entry is None:
            problems.append(f"{rel}: {art.id} is not in the mirrored index")
            continue
        if (entry.sha256, entry.size) != (art.sha256, art.size):
            problems.append(f"{rel}: {MIRROR_FILE} disagrees with the signed line of {art.id}")
            continue
        path = directory / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        digest, size = file_digest(path, entry.size)
        if size != entry.size:
            problems.append(f"{rel}: {size if size <= entry.size else 'more than ' + str(entry.size)} bytes, "
                            f"the signed line of {art.id} says {entry.size}")
        elif digest != entry.sha256:
            problems.append(f"{rel}: sha256 {digest[:16]}… does not match the signed line of {art.id} "
                            f"({entry.sha256[:16]}…)")
    listed = set(manifest.artifacts)
    artifacts_dir = directory / "artifacts"
    if artifacts_dir.is_dir():
        for path in sorted(artifacts_dir.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if path.is_symlink() or (path.is_file() and rel not in listed):
                problems.append(f"{rel}: not listed in {MIRROR_FILE}")
    return problems


def require_ok(report: MirrorReport) -> MirrorReport:
    if report.problems:
        more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise IntegrityError(f"the mirror does not verify: {report.problems[0]}{more}", where=str(report.path),
                             hint="run `expertpm mirror verify DIR` for every problem; recreate the mirror")
    return report
