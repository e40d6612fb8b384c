"""`/index/…`: the index files (the same bytes at the same relative paths as in the Git tree) and
the artifacts, for clients and mirrors.

Index files carry a strong ETag (the sha256 of their bytes, so a client can compute the tag of a
file it already verified) and answer `If-None-Match` with 304. Everything but the root metadata
may change with the next commit, so those responses say `max-age=0, must-revalidate` (a CDN
revalidates each time, which costs a 304); `keys/root/N.json` and artifacts never change once
written and are `immutable`. Artifacts support single `Range` requests (206; 416 when unsatisfiable).

A client may send `X-Expertpm-Snapshot: <sha256 of the snapshot.json it read>`: the file is then
served from that snapshot's commit if the index still knows it (`IndexCheckout.pinned`), so its
reads stay within one snapshot while the index is published to. Every index-file response names
the snapshot it belongs to in the same header, and says `Vary: X-Expertpm-Snapshot` so caches keep
the answers to different pins apart.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Annotated
from dataclasses import dataclass
from pathlib import Path

import anyio
from litestar import HttpMethod, Request, Response, route
from litestar.exceptions import NotFoundException
from litestar.openapi.spec import Example
from litestar.response import Stream

from expertpm._index._layout import ROOT_DIR

from ._api import PathParameter
from ._checkout import IndexCheckout, StaleState

FilePath = Annotated[str, PathParameter(
    description="a path relative to the index, e.g. snapshot.json or 3/s/sql",
    examples=[Example(summary="the signed snapshot", value="snapshot.json"),
              Example(summary="the index configuration", value="config.json"),
              Example(summary="the first root metadata", value="keys/root/1.json")])]
SNAPSHOT_HEADER = "X-Expertpm-Snapshot"  # the sha256 of the snapshot.json a response belongs to
MUTABLE = "public, max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"
CHUNK = 256 << 10


def etag_matches(header: str | None, etag: str) -> bool:
    """`If-None-Match` uses the weak comparison: W/"x" matches "x"; `*` matches anything."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def media_type_of(path: str) -> str:
    if path.endswith(".json"):
        return "application/json"
    if path.endswith(".expert"):
        return "application/octet-stream"
    return "text/plain"  # (litestar adds the charset) a package file: one canonical-JSON line per record


@route("/index/{path:path}", http_method=[HttpMethod.GET, HttpMethod.HEAD], name="index-file",
       summary="An index file or artifact",
       description="The index files at the same relative paths as in the Git tree (config.json, "
                   "snapshot.json, snapshot/<xx>.json, keys/…, one file per package) with a strong ETag "
                   "(sha256) and 304 on If-None-Match; `artifacts/…` serves packages with Range support.")
async def index_file(request: Request, path: FilePath) -> Response:
    checkout: IndexCheckout = request.app.state.checkout
    relative = path.lstrip("/")
    if relative.startswith("artifacts/"):
        return await _artifact(request, checkout, relative.removeprefix("artifacts/"))
    pin = request.headers.get(SNAPSHOT_HEADER)
    try:
        state = (checkout.pinned(pin) if pin else None) or checkout.current()
        blob = state.file(relative)
    except StaleState:  # a mirror directory is being rewritten: read from its new snapshot
        state = checkout.current(fresh=True)
        blob = state.file(relative)
    if blob is None:
        raise NotFoundException(f"no index file {relative!r}")
    headers = {"ETag": blob.etag, "Cache-Control": IMMUTABLE if relative.startswith(ROOT_DIR + "/") else MUTABLE,
               SNAPSHOT_HEADER: state.snapshot_sha256 or "", "Vary": SNAPSHOT_HEADER}
    if etag_matches(request.headers.get("if-none-match"), blob.etag):
        return Response(b"", status_code=304, headers=headers)
    if request.method == HttpMethod.HEAD:
        return Response(b"", headers=headers | {"Content-Length": str(len(blob.data))},
                        media_type=media_type_of(relative))
    return Response(blob.data, headers=headers, media_type=media_type_of(relative))


# -- artifacts ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Digest:
    size: int
    mtime_ns: int
    etag: str


class ArtifactDigests:
    """sha256 of artifact files, computed once per (path, size, mtime)."""

    def __init__(self, max_items: int = 4096) -> None:
        self._items: dict[Path, _Digest] = {}
        self._lock = threading.Lock()
        self.max_items = max_items

    async def etag(self, path: Path, st: os.stat_result) -> str:
        known = self._items.get(path)
        if known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return known.etag
        etag = await anyio.to_thread.run_sync(_hash_file, path)
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[path] = _Digest(st.st_size, st.st_mtime_ns, etag)
        return etag


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f'"{h.hexdigest()}"'


def artifact_path(checkout: IndexCheckout, relative: str) -> Path | None:
    """The file under `artifacts/` that `relative` names, or None: no `..`, no hidden names, no
    links leading outside, regular files only."""
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    base = checkout.artifacts_dir
    try:
        resolved = base.joinpath(*parts).resolve(strict=True)
        if not resolved.is_relative_to(base.resolve(strict=True)) or not resolved.is_file():
            return None
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive) of a single `bytes=` range; None to serve everything (absent, several
    ranges or a syntax we ignore, as RFC 9110 allows); False when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) \
            or (last and not last.isdigit()):
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


async def _file_chunks(path: Path, start: int, length: int):
    async with await anyio.open_file(path, "rb") as f:
        await f.seek(start)
        while length > 0:
            chunk = await f.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk


async def _artifact(request: Request, checkout: IndexCheckout, relative: str) -> Response:
    path = artifact_path(checkout, relative)
    if path is None:
        raise NotFoundException(f"no artifact {relative!r}")
    st = path.stat()
    size = st.st_size
    etag = await request.app.state.artifact_digests.etag(path, st)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes",
               "Content-Disposition": f'attachment; filename="{path.name}"'}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted and (if_range is None or if_range.strip() == etag):
        span = parse_range(wanted, size)
        if span is False:
            return Response(b"", status_code=416, headers=headers | {"Content-Range": f"bytes */{size}"})
        if span is not None:
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == HttpMethod.HEAD:
        return Response(b"", status_code=status, headers=headers, media_type="application/octet-stream")
    return Stream(_file_chunks(path, start, length), status_code=status, headers=headers,
                  media_type="application/octet-stream")
