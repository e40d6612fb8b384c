"""New Git objects built in memory and written as one pack file, not one loose file each.

A publish creates about ten objects (blobs, trees, a commit); written loose that is ten files,
and file creation dominates a publish on slow disks. `ObjectBatch` hashes objects exactly as Git
does, keeps the new ones, and `flush()` writes them as a standard pack (version 2, no deltas)
plus its version-2 index into `objects/pack/`, index last, so readers only ever see a complete
pack. libgit2 finds the new pack on its next lookup.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

_TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}
_NAMES = {number: name for name, number in _TYPES.items()}
_TREE_MODE = 0o040000  # Git's mode of a subtree (pygit2.GIT_FILEMODE_TREE)
_LARGE_OFFSET = 1 << 31


class ObjectBatch:
    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self._new: dict[bytes, tuple[str, bytes]] = {}

    def _add(self, kind: str, data: bytes) -> pygit2.Oid:
        import pygit2

        raw = hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).digest()
        # An object the repository already has may be written again: duplicates across packs are
        # harmless, and asking the object database would rescan the pack folder on every miss.
        self._new.setdefault(raw, (kind, data))
        return pygit2.Oid(raw=raw)

    def blob(self, data: bytes) -> pygit2.Oid:
        return self._add("blob", data)

    def tree(self, entries: dict[str, tuple[int, pygit2.Oid]]) -> pygit2.Oid:
        """A tree from {name: (filemode, id)}, in Git's order (a subtree sorts as `name/`)."""
        def key(item):
            name, (mode, _) = item
            return name.encode() + (b"/" if mode == _TREE_MODE else b"")

        body = b"".join(f"{mode:o} {name}".encode() + b"\0" + oid.raw
                        for name, (mode, oid) in sorted(entries.items(), key=key))
        return self._add("tree", body)

    def commit(self, tree: pygit2.Oid, parents: list[pygit2.Oid], message: str, *, name: str,
               email: str) -> pygit2.Oid:
        stamp = f"{name} <{email}> {int(time.time())} +0000"
        lines = [f"tree {tree}"] + [f"parent {p}" for p in parents] + [f"author {stamp}", f"committer {stamp}"]
        return self._add("commit", ("\n".join(lines) + "\n\n" + message + "\n").encode())

    def flush(self) -> Path | None:
        """Write the new objects as one pack and return its path (None if there were none)."""
        if not self._new:
            return None
        pack = bytearray(b"PACK" + struct.pack(">II", 2, len(self._new)))
        index_rows = []
        for raw, (kind, data) in self._new.items():
            chunk = _object_header(_TYPES[kind], len(data)) + zlib.compress(data, 1)
            index_rows.append((raw, zlib.crc32(chunk), len(pack)))
            pack += chunk
        checksum = hashlib.sha1(pack).digest()
        pack += checksum
        index = _pack_index(sorted(index_rows), checksum)
        folder = Path(self.repo.path) / "objects" / "pack"
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"pack-{checksum.hex()}"
        for suffix, data in ((".pack", pack), (".idx", index)):
            tmp = folder / f"tmp-{os.getpid()}-{checksum.hex()[:12]}{suffix}"
            tmp.write_bytes(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, stem.with_suffix(suffix))
        self._new.clear()
        return stem.with_suffix(".pack")


def _object_header(kind: int, size: int) -> bytes:
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _pack_index(rows: list[tuple[bytes, int, int]], pack_checksum: bytes) -> bytes:
    fanout, counts = [], [0] * 256
    for raw, _, _ in rows:
        counts[raw[0]] += 1
    total = 0
    for count in counts:
        total += count
        fanout.append(total)
    small, large = [], []
    for _, _, offset in rows:
        if offset < _LARGE_OFFSET:
            small.append(offset)
        else:
            small.append(_LARGE_OFFSET | len(large))
            large.append(offset)
    index = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    index += struct.pack(">256I", *fanout)
    index += b"".join(raw for raw, _, _ in rows)
    index += struct.pack(f">{len(rows)}I", *(crc for _, crc, _ in rows))
    index += struct.pack(f">{len(rows)}I", *small)
    if large:
        index += struct.pack(f">{len(large)}Q", *large)
    index += pack_checksum
    index += hashlib.sha1(index).digest()
    return bytes(index)


def consolidate(repo: pygit2.Repository, *, max_packs: int = 32) -> bool:
    """Once more than `max_packs` packs accumulated (each publish or fetch adds one), fold the
    small ones into one pack, geometrically: starting from the smallest, a pack joins the fold
    while it is less than twice the size of what is already folded, so big packs are rewritten
    rarely and the total work stays O(n log n). Objects are copied as they are, without a delta
    search. Returns whether it folded."""
    folder = Path(repo.path) / "objects" / "pack"
    packs = sorted(((p.stat().st_size, p) for p in folder.glob("pack-*.pack")), key=lambda x: (x[0], x[1].name))
    if len(packs) <= max_packs:
        return False
    total, count = packs[0][0], 1
    while count < len(packs) - 1 and packs[count][0] < 2 * total:
        total += packs[count][0]
        count += 1
    if count < 2:
        return False
    batch = ObjectBatch(repo)
    for _, pack in packs[:count]:
        for oid in _index_oids(pack.with_suffix(".idx")):
            kind, data = repo.odb.read(oid)
            batch._add(_NAMES[int(kind)], data)
    written = batch.flush()
    for _, pack in packs[:count]:
        if pack != written:
            for suffix in (".keep", ".rev", ".idx", ".pack"):
                pack.with_suffix(suffix).unlink(missing_ok=True)
    return True


def _index_oids(idx: Path) -> list[pygit2.Oid]:
    import pygit2

    data = idx.read_bytes()
    if data[:8] != b"\xfftOc\x00\x00\x00\x02":
        raise ValueError(f"unsupported pack index {idx}")
    count = struct.unpack(">I", data[8 + 255 * 4:8 + 256 * 4])[0]
    start = 8 + 256 * 4
    return [pygit2.Oid(raw=data[start + 20 * i:start + 20 * (i + 1)]) for i in range(count)]
