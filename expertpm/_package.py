"""`.expert` packages: read, verify and extract them in one streaming pass.

A package is the archive of `_archive` holding, in order, `manifest.json` (canonical JSON),
`signature.json` (a detached ed25519 signature over the exact manifest bytes) and every file the
manifest lists. Reading checks the signature before any payload byte is written, then each
member's size (while streaming: never more than declared) and sha256, and that nothing is missing
or extra. Building a package from a source directory lives in `_pack`.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ._archive import ArchiveLimits, ArchiveMember, ArchiveReader
from ._canonical import parse_canonical, parse_json
from ._errors import IntegrityError, PackageError, SignatureError
from ._keys import Signature, verify_signature
from ._manifest import MANIFEST_FILE, SIGNATURE_FILE, Manifest, tokenizer_digest, weights_digest
from ._pack import PLACEHOLDER_DIGEST, Packed, build, package_filename, pack, source_files

__all__ = ["VerifiedPackage", "extract_verified", "read_manifest", "verify_package", "pack", "build", "Packed",
           "source_files",
           "package_filename", "PLACEHOLDER_DIGEST", "MAX_MANIFEST_SIZE", "MAX_SIGNATURE_SIZE"]

MAX_MANIFEST_SIZE = 4 << 20
MAX_SIGNATURE_SIZE = 64 << 10
_AGAIN = "the package was modified after it was signed; get it again from its publisher"


@dataclass(frozen=True, slots=True)
class VerifiedPackage:
    """A package whose signature, files and sizes all checked out.

    `digest` is the sha256 of the `.expert` bytes (the package's identity); `size` their length.
    """

    manifest: Manifest
    signature: Signature
    digest: str
    size: int


def read_manifest(package_path: Path | str, *, check_signature: bool = True
                  ) -> tuple[Manifest, Signature, bytes]:
    """The manifest, signature and exact manifest bytes of a package, reading only its first two
    members. The signature is checked to be valid (not that its key is trusted)."""
    path = Path(package_path)
    with _open(path) as f:
        members = iter(ArchiveReader(f, where=str(path)))
        manifest_bytes, _, signature = _head(members, str(path))
        if check_signature:
            verify_signature(signature, manifest_bytes, where=f"{path}:{SIGNATURE_FILE}")
        return _manifest(manifest_bytes, str(path)), signature, manifest_bytes


def verify_package(package_path: Path | str, *, trusted_key_ids: set[str] | None = None,
                   expected_sha256: str | None = None, limits: ArchiveLimits | None = None) -> VerifiedPackage:
    """Check every digest, size and the signature of a package without writing anything."""
    path = Path(package_path)
    with _open(path) as f:
        return _stream(f, str(path), None, trusted_key_ids, expected_sha256, limits)


def extract_verified(package: Path | str | BinaryIO, dest_dir: Path, *, trusted_key_ids: set[str] | None = None,
                     expected_sha256: str | None = None, limits: ArchiveLimits | None = None,
                     fsync: bool = False) -> VerifiedPackage:
    """Stream a package once into the empty directory `dest_dir`, verifying as it goes.

    Writes `manifest.json`, `signature.json` and every listed file under `dest_dir`. On any error
    raises (PackageError and subclasses, SignatureError, FormatError) and leaves `dest_dir` as it
    is, for the caller to delete. `fsync=True` syncs every file before returning.
    """
    dest = Path(dest_dir)
    if not dest.is_dir():
        raise PackageError("extraction directory does not exist", where=str(dest))
    if any(dest.iterdir()):
        raise PackageError("extraction directory is not empty", where=str(dest))

    def open_member(name: str) -> BinaryIO:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        return _SyncedFile(fd) if fsync else os.fdopen(fd, "wb")

    if isinstance(package, (str, Path)):
        with _open(Path(package)) as f:
            return _stream(f, str(package), open_member, trusted_key_ids, expected_sha256, limits)
    return _stream(package, getattr(package, "name", None), open_member, trusted_key_ids, expected_sha256, limits)


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise PackageError(f"cannot open package: {exc.strerror}", where=str(path)) from exc


def _stream(stream: BinaryIO, where: str | None, open_member: Callable[[str], BinaryIO] | None,
            trusted: set[str] | None, expected_sha256: str | None, limits: ArchiveLimits | None) -> VerifiedPackage:
    reader = ArchiveReader(stream, limits, where=where)
    members = iter(reader)
    manifest_bytes, signature_bytes, signature = _head(members, where)
    verify_signature(signature, manifest_bytes, where=_inside(where, SIGNATURE_FILE))
    if trusted is not None and signature.key_id not in trusted:
        raise SignatureError(f"signed by key {signature.key_id[:16]}, which is not trusted", where=where,
                             hint="trust the publisher's key id explicitly, or get the package from a trusted index")
    manifest = _manifest(manifest_bytes, where)
    _check_model_digests(manifest, where)
    if open_member is not None:
        for name, data in ((MANIFEST_FILE, manifest_bytes), (SIGNATURE_FILE, signature_bytes)):
            with _writing(name, where):
                with open_member(name) as out:
                    out.write(data)
    seen: set[str] = set()
    for member in members:
        _copy_member(member, manifest, open_member, where)
        seen.add(member.name)
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise IntegrityError(f"file(s) listed in the manifest are missing from the archive: {', '.join(missing)}",
                             where=where, hint=_AGAIN)
    if expected_sha256 is not None and reader.sha256 != expected_sha256:
        raise IntegrityError(f"package sha256 is {reader.sha256}, expected {expected_sha256}", where=where,
                             hint="the download is corrupt or was replaced; fetch it again")
    return VerifiedPackage(manifest, signature, reader.sha256, reader.size)


def _head(members: Iterator[ArchiveMember], where: str | None) -> tuple[bytes, bytes, Signature]:
    found = []
    for expected, limit in ((MANIFEST_FILE, MAX_MANIFEST_SIZE), (SIGNATURE_FILE, MAX_SIGNATURE_SIZE)):
        member = next(members, None)
        if member is None or member.name != expected:
            got = "nothing" if member is None else repr(member.name)
            raise PackageError(f"not a .expert package: member {len(found) + 1} must be {expected}, found {got}",
                               where=where)
        found.append(member.read_all(limit))
    signature = Signature.from_dict(parse_json(found[1], where=_inside(where, SIGNATURE_FILE)),
                                    where=_inside(where, SIGNATURE_FILE))
    return found[0], found[1], signature


def _manifest(data: bytes, where: str | None) -> Manifest:
    inner = _inside(where, MANIFEST_FILE)
    return Manifest.from_dict(parse_canonical(data, where=inner), where=inner)


def _check_model_digests(manifest: Manifest, where: str | None) -> None:
    """A base's model digests must be those of the files it ships (the files are checked next)."""
    if manifest.kind != "base":
        return
    model = manifest.get("model")
    for field, actual in (("weights_sha256", weights_digest(manifest.files)),
                          ("tokenizer_sha256", tokenizer_digest(manifest.files))):
        if model[field] != actual:
            raise IntegrityError(f"model.{field} does not match the files the package lists", where=where,
                                 hint="the base package was built wrongly; pack it again")


def _copy_member(member: ArchiveMember, manifest: Manifest, open_member, where: str | None) -> None:
    entry = manifest.files.get(member.name)
    if entry is None:
        raise IntegrityError(f"file {member.name!r} is in the archive but not in the manifest", where=where,
                             hint=_AGAIN)
    if member.size != entry.size:
        raise IntegrityError(f"file {member.name!r} is {member.size} bytes but the manifest says {entry.size}",
                             where=where, hint=_AGAIN)
    digest = hashlib.sha256()
    with _writing(member.name, where):
        out = open_member(member.name) if open_member is not None else None
        try:
            for chunk in member.read_chunks():
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(f"file {member.name!r} does not match its sha256 in the manifest", where=where,
                             hint=_AGAIN)


@contextmanager
def _writing(name: str, where: str | None):
    try:
        yield
    except OSError as exc:
        raise PackageError(f"cannot write {name!r} while extracting: {exc.strerror or exc}", where=where) from exc


def _inside(where: str | None, name: str) -> str:
    return f"{where}:{name}" if where else name


class _SyncedFile:
    """A write-only file that fsyncs on close."""

    def __init__(self, fd: int) -> None:
        self._f = os.fdopen(fd, "wb")

    def write(self, data) -> int:
        return self._f.write(data)

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
