"""The container of a `.expert` package: a deterministic tar, compressed with zstd.

Writing: members go in the order given, as regular files with mode 0644, uid/gid 0, mtime 0 and
empty owner names (USTAR; a PAX header only for names over 100 bytes or sizes over 8 GiB), then two
zero blocks; compressed as one zstd frame at level 3, single-threaded, with the content size and a
checksum, optionally preceded by a small stored frame holding head members that are written last
(a package's manifest and signature, which depend on the hashes of everything else). Same members
in, same bytes out.

Reading never trusts the archive: `ArchiveReader` streams it once and yields one member at a time
through a bounded reader, refusing (UnsafeArchiveError) anything that could escape a directory,
alias another member or exhaust memory or disk, and reporting truncation or corruption as
IntegrityError. It follows the zstd frame structure of the raw bytes itself, because the zstd
stream reader silently stops at a truncated frame.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping

import zstandard

from ._errors import IntegrityError, InternalError, PackageError, UnsafeArchiveError
from ._tar import BLOCK, END, MemberNames, TarHeader, parse_header, parse_pax, tar_entry
from ._zstd import RawSource, ZstdFraming

__all__ = ["ArchiveLimits", "ArchiveMember", "ArchiveReader", "ArchiveWritten", "iter_archive", "write_archive",
           "write_archive_head_last", "ZSTD_LEVEL"]

ZSTD_LEVEL = 3
CHUNK = 1 << 20
_READ_AHEAD_FROM = 4 << 20
_MAX_BLOCK = 128 << 10
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CORRUPT = "archive is truncated or corrupt"
_ONLY_FILES = "a package holds only regular files with plain relative paths"
_AGAIN = "download or copy the package again"


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What a reader accepts. The ratio cap applies once the output passes `ratio_grace` bytes."""

    max_members: int = 10_000
    max_member_size: int = 1 << 36
    max_total_size: int = 1 << 37
    max_ratio: int = 200
    ratio_grace: int = 1 << 26
    max_window_size: int = 1 << 25
    max_name_length: int = 1024
    max_extended_header: int = 1 << 16


@dataclass(frozen=True, slots=True)
class ArchiveWritten:
    size: int
    member_sha256: dict[str, str]


def write_archive(out_path: Path | str, members: list[tuple[str, Path | bytes]], *,
                  expected_sha256: Mapping[str, str] | None = None) -> ArchiveWritten:
    """Write members (name, file path or bytes) as a deterministic `.tar.zst` in one zstd frame.

    `expected_sha256` (name -> hex) is checked against the bytes actually written, before the
    archive is renamed into place, so a file edited meanwhile never yields an archive.
    """
    return write_archive_head_last(out_path, [], members, lambda digests: [], expected_sha256=expected_sha256)


def write_archive_head_last(out_path: Path | str, head: list[tuple[str, int]], body: list[tuple[str, Path | bytes]],
                            make_head: Callable[[dict[str, tuple[str, int]]], list[tuple[str, bytes]]], *,
                            expected_sha256: Mapping[str, str] | None = None) -> ArchiveWritten:
    """Write an archive whose first members (`head`: names and exact sizes) are only known once
    the rest (`body`) has been read: `make_head({name: (sha256, size)} of the body members as
    written)` returns their bytes.

    The body is one compressed zstd frame; the head goes in front of it as a *stored* zstd frame
    (raw blocks, no compression), whose size is known in advance. So the body is streamed to its
    final offset in a single pass over the files (hashing them as they are compressed) and the
    head is written last, in front. Atomic: a temporary file renamed into place, so a failure
    never leaves a partial archive. (No fsync: an archive is a reproducible build output, like
    `tar`'s; the store syncs what it installs.) Returns the archive's size and the sha256 of every
    body member as written.
    """
    out_path = Path(out_path)
    head_tar = sum(len(tar_entry(name, size)) + size + (-size % BLOCK) for name, size in head)
    offset = len(_stored_frame(bytes(head_tar))) if head else 0
    sizes = [len(source) if isinstance(source, bytes) else os.stat(source).st_size for _, source in body]
    headers = [tar_entry(name, size) for (name, _), size in zip(body, sizes)]
    total = sum(len(h) + size + (-size % BLOCK) for h, size in zip(headers, sizes)) + len(END)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w+b") as raw:
            raw.seek(offset)
            sink = _BackgroundWriter(raw)
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True,
                                                  threads=0)
            member_sha256 = {}
            try:
                # not a `with` block: on error the frame must not be finished (zstd would complain
                # about the pledged size and hide the real error)
                z = compressor.stream_writer(sink, size=total, closefd=False, write_size=CHUNK)
                for (name, source), header, size in zip(body, headers, sizes):
                    z.write(header)
                    member_sha256[name] = _write_payload(z, name, source, size)
                    z.write(bytes(-size % BLOCK))
                z.write(END)
                z.close()
            except BaseException:
                sink.close(raise_error=False)
                raise
            sink.close()
            for name, digest in (expected_sha256 or {}).items():
                if member_sha256.get(name) != digest:
                    raise PackageError(f"{name} changed while being packed", where=str(out_path), hint="pack again")
            if head:
                members = make_head({name: (member_sha256[name], size) for (name, _), size in zip(body, sizes)})
                if [(name, len(data)) for name, data in members] != head:
                    raise InternalError("archive head members differ from their announced sizes")
                raw.seek(0)
                raw.write(_stored_frame(b"".join(tar_entry(name, len(data)) + data + bytes(-len(data) % BLOCK)
                                                 for name, data in members)))
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, out_path)
    except zstandard.ZstdError as exc:
        _unlink(tmp)
        raise PackageError(f"cannot compress the archive: {exc}", where=str(out_path),
                           hint="a source file probably changed while packing; try again") from exc
    except BaseException:
        _unlink(tmp)
        raise
    return ArchiveWritten(offset + sink.size, member_sha256)


def _stored_frame(data: bytes) -> bytes:
    """A zstd frame holding `data` in raw blocks: single segment, content size, no checksum."""
    out = bytearray(ZSTD_MAGIC + bytes([0xA0]) + len(data).to_bytes(4, "little"))
    for start in range(0, max(len(data), 1), _MAX_BLOCK):
        chunk = data[start:start + _MAX_BLOCK]
        last = start + _MAX_BLOCK >= len(data)
        out += ((len(chunk) << 3) | last).to_bytes(3, "little") + chunk
    return bytes(out)


def _write_payload(z, name: str, source: Path | bytes, size: int) -> str:
    h = hashlib.sha256()
    if isinstance(source, bytes):
        h.update(source)
        z.write(source)
        return h.hexdigest()
    written = 0
    chunks = _read_ahead(source, size, h) if size > _READ_AHEAD_FROM else _read_inline(source, size, h)
    try:
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                break
            z.write(chunk)
    finally:
        chunks.close()
    if written != size:
        raise PackageError(f"{name} changed size while being packed", where=str(source), hint="pack again")
    return h.hexdigest()


def _read_inline(path: Path, size: int, digest) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(min(CHUNK, size + 1)):
            digest.update(chunk)
            yield chunk


def _read_ahead(path: Path, size: int, digest) -> Iterator[bytes]:
    """Read and hash a file in a background thread while the caller compresses the previous chunk
    (hashlib, file reads and zstd all release the GIL). Reads one byte past `size` to notice growth."""
    handoff: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def run() -> None:
        try:
            for chunk in _read_inline(path, size, digest):
                if stop.is_set():
                    return
                handoff.put(chunk)
            handoff.put(None)
        except BaseException as exc:  # handed to the caller's thread
            handoff.put(exc)

    thread = threading.Thread(target=run, name="expertpm-pack-read", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pending put
            try:
                handoff.get(timeout=0.05)
            except queue.Empty:
                pass


class _BackgroundWriter:
    """Writes the compressed output in a background thread, so compression never waits on the
    disk. The first write error is re-raised in the caller on its next write or on `close`."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size = raw, 0
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="expertpm-pack-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.raw.write(data)
                except BaseException as exc:
                    self._error = exc

    def write(self, data) -> int:
        if self._error is not None:
            raise self._error
        data = bytes(data)
        self.size += len(data)
        self._queue.put(data)
        return len(data)

    def flush(self) -> None:
        pass  # the real flush happens after `close`

    def close(self, *, raise_error: bool = True) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if raise_error and self._error is not None:
            raise self._error


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class ArchiveMember:
    """One regular file of the archive; its bytes can be read once, in order, in bounded chunks."""

    __slots__ = ("name", "size", "_reader", "_left")

    def __init__(self, name: str, size: int, reader: "ArchiveReader") -> None:
        self.name, self.size, self._reader, self._left = name, size, reader, size

    def read_chunks(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        while self._left:
            data = self._reader._read(min(chunk_size, self._left))
            self._left -= len(data)
            yield data

    def read_all(self, limit: int) -> bytes:
        """The whole member, for small members only (manifest, signature)."""
        if self.size > limit:
            raise UnsafeArchiveError(f"member {self.name!r} is {self.size} bytes, over the limit of {limit} bytes",
                                     where=self._reader.where)
        return b"".join(self.read_chunks())

    def _skip(self) -> None:
        for _ in self.read_chunks():
            pass
        self._reader._read(-self.size % BLOCK)


class ArchiveReader:
    """Streams a `.tar.zst` once. Iterate for members; after the iteration ends, `sha256` and
    `size` describe the raw archive bytes (every check has passed by then)."""

    def __init__(self, stream: BinaryIO, limits: ArchiveLimits | None = None, *, where: str | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        self.where = where
        self._raw = RawSource(stream, ZstdFraming(self.limits.max_window_size, where))
        decompressor = zstandard.ZstdDecompressor(max_window_size=self.limits.max_window_size)
        self._z = decompressor.stream_reader(self._raw, read_size=1 << 17, read_across_frames=True, closefd=False)
        self._out = 0
        self.sha256: str | None = None
        self.size: int | None = None

    def __iter__(self) -> Iterator[ArchiveMember]:
        names = MemberNames(self.limits, self.where)
        pax: dict[str, str] = {}
        longname: bytes | None = None
        while True:
            header = self._checked(parse_header, self._read(BLOCK))
            if header is None:
                break
            if header.type in (b"x", b"L"):
                data = self._extended(header)
                if header.type == b"x":
                    pax.update(self._checked(parse_pax, data))
                else:
                    longname = data.rstrip(b"\0")
                continue
            raw_name = pax["path"].encode() if "path" in pax else longname if longname is not None else header.name
            size = int(pax["size"]) if "size" in pax else header.size
            pax, longname = {}, None
            name = names.admit(raw_name, header.type, size)
            member = ArchiveMember(name, size, self)
            yield member
            member._skip()
        self._finish()

    def _checked(self, parse, data: bytes):
        try:
            return parse(data)
        except IntegrityError as exc:
            raise IntegrityError(CORRUPT, where=self.where, hint=_AGAIN) from exc

    def _extended(self, header: TarHeader) -> bytes:
        if header.size > self.limits.max_extended_header:
            raise UnsafeArchiveError(f"an extended tar header of {header.size} bytes exceeds the limit of "
                                     f"{self.limits.max_extended_header} bytes", where=self.where, hint=_ONLY_FILES)
        data = self._read(header.size)
        self._read(-header.size % BLOCK)
        return data

    def _read(self, n: int) -> bytes:
        """Exactly n decompressed bytes (n may be 0)."""
        parts, left = [], n
        while left:
            try:
                data = self._z.read(left)
            except zstandard.ZstdError as exc:
                raise self._zstd_error(exc) from exc
            if not data:
                raise IntegrityError(CORRUPT, where=self.where, hint=_AGAIN)
            self._count(len(data))
            parts.append(data)
            left -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _count(self, n: int) -> None:
        self._out += n
        lim = self.limits
        if self._out > lim.max_total_size:
            raise UnsafeArchiveError(f"archive expands to more than {lim.max_total_size} bytes", where=self.where)
        if self._out > lim.ratio_grace and self._out > lim.max_ratio * max(self._raw.size, 1):
            raise UnsafeArchiveError(f"archive expands more than {lim.max_ratio}x its compressed size "
                                     "(a zstd bomb)", where=self.where)

    def _zstd_error(self, exc: zstandard.ZstdError) -> Exception:
        if "too much memory" in str(exc):
            return UnsafeArchiveError(f"zstd frame window exceeds the limit of {self.limits.max_window_size} bytes",
                                      where=self.where)
        return IntegrityError(CORRUPT, where=self.where, hint=_AGAIN)

    def _finish(self) -> None:
        """After the end-of-archive block: only zero padding may follow, then the frame must end."""
        while True:
            try:
                data = self._z.read(CHUNK)
            except zstandard.ZstdError as exc:
                raise self._zstd_error(exc) from exc
            if not data:
                break
            self._count(len(data))
            if data.count(0) != len(data):
                raise IntegrityError("archive has data after the end of its tar stream", where=self.where)
        self._raw.drain()
        if not self._raw.framing.complete:
            raise IntegrityError(CORRUPT, where=self.where, hint=_AGAIN)
        self.sha256, self.size = self._raw.hash.hexdigest(), self._raw.size


def iter_archive(stream: BinaryIO, limits: ArchiveLimits | None = None, *, where: str | None = None
                 ) -> Iterator[ArchiveMember]:
    """Yield the members of a `.tar.zst` stream one at a time (see ArchiveReader)."""
    return iter(ArchiveReader(stream, limits, where=where))
