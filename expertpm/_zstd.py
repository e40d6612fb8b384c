"""Following zstd frames over the raw bytes of an archive as they stream past.

The zstd stream reader returns what it could decode and then end-of-file when a frame is cut
short, without an error; so the archive reader feeds every compressed byte through
`ZstdFraming`, which walks frame headers, block headers and checksums and knows whether the input
ended exactly at the end of a frame. It also refuses a frame whose window exceeds the cap before a
byte of it is decompressed.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

import zstandard

from ._errors import IntegrityError, PackageError, UnsafeArchiveError

__all__ = ["RawSource", "ZstdFraming"]

CHUNK = 1 << 20
CORRUPT = "archive is truncated or corrupt"
_AGAIN = "download or copy the package again"


class RawSource:
    """The compressed bytes as the decompressor pulls them: hashed, counted, frame-checked."""

    def __init__(self, stream: BinaryIO, framing: "ZstdFraming") -> None:
        self.stream, self.framing, self.hash, self.size = stream, framing, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.stream.read(n if n and n > 0 else CHUNK)
        except OSError as exc:
            raise PackageError(f"cannot read the archive: {exc.strerror or exc}", where=self.framing.where) from exc
        self.hash.update(data)
        self.size += len(data)
        self.framing.feed(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class ZstdFraming:
    """Follows zstd frames (header, blocks, checksum) over raw bytes fed in any chunking, so a
    frame cut short is noticed, and checks each frame's window before it is decompressed."""

    _MAGIC = b"\x28\xb5\x2f\xfd"

    def __init__(self, max_window: int, where: str | None) -> None:
        self.max_window, self.where = max_window, where
        self._buf = bytearray()
        self._need, self._skip, self._state = 5, 0, "magic"
        self._checksum = False
        self.frames = 0

    @property
    def complete(self) -> bool:
        return self.frames > 0 and self._state == "magic" and not self._buf and not self._skip

    def feed(self, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            if self._skip:
                take = min(self._skip, len(view) - pos)
                self._skip -= take
                pos += take
                continue
            take = min(self._need - len(self._buf), len(view) - pos)
            self._buf += view[pos:pos + take]
            pos += take
            if len(self._buf) == self._need:
                self._step()

    def _step(self) -> None:
        buf = bytes(self._buf)
        if self._state == "magic":
            if buf[:4] != self._MAGIC:
                raise IntegrityError(CORRUPT, where=self.where, hint="this is not a zstd-compressed .expert file")
            fhd = buf[4]
            single = bool(fhd & 0x20)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            self._need, self._state = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs, "header"
            return
        self._buf.clear()
        if self._state == "header":
            try:
                params = zstandard.get_frame_parameters(buf)
            except zstandard.ZstdError as exc:
                raise IntegrityError(CORRUPT, where=self.where, hint=_AGAIN) from exc
            if params.window_size > self.max_window:
                raise UnsafeArchiveError(f"zstd frame window exceeds the limit of {self.max_window} bytes",
                                         where=self.where)
            self._checksum = params.has_checksum
            self._need, self._state = 3, "block"
            return
        value = int.from_bytes(buf, "little")
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            raise IntegrityError(CORRUPT, where=self.where, hint=_AGAIN)
        self._skip = 1 if kind == 1 else size
        if last:
            self._skip += 4 if self._checksum else 0
            self._need, self._state = 5, "magic"
            self.frames += 1
