"""Installing packages as one batch: verify and unpack them side by side (in parallel, if the
caller likes) in one staging directory, then commit them into the store together.

    with store.batch() as batch:
        staged = [batch.stage(path, expected_sha256=...) for path in paths]   # any threads
        installed = batch.commit(staged)

Each archive is read once: its sha256 (the locked digest), the signature, every file's size and
sha256 (the manifest's) and the safetensors headers are checked while it streams into
`tmp/<id>/<n>`; nothing under packages/ or refs/ changes until `commit`. Leaving the block
deletes the staging directory with whatever was not committed, so a failed batch leaves nothing.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Sequence

from .._manifest import WEIGHT_SUFFIX
from .._package import VerifiedPackage, extract_verified
from .layout import Staging, clean_stale, durable, flush, rename_scratch, seal_tree, write_scratch

if TYPE_CHECKING:
    from .store import InstalledPackage, Store


@dataclass(frozen=True, slots=True)
class StagedPackage:
    """A verified package unpacked in its batch's staging directory, not yet in the store.
    `written`: its files and directories, in the order `flush` wants them."""

    verified: VerifiedPackage
    unpacked: Path
    written: tuple[Path, ...]

    @property
    def ref_scratch(self) -> Path:
        return self.unpacked.with_name(f"{self.unpacked.name}.ref")


class StoreBatch:
    """See the module docstring; made by `Store.batch()`."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._staging: Staging | None = None
        self._numbers = itertools.count()
        self._numbers_lock = threading.Lock()

    def __enter__(self) -> "StoreBatch":
        with self.store.locked():
            clean_stale(self.store.layout.tmp)
            self._staging = Staging(self.store.layout.tmp)
        return self

    def __exit__(self, *exc) -> None:
        if self._staging is not None:
            self._staging.close()
            self._staging = None

    def stage(self, package: Path | str | BinaryIO, *, trusted_key_ids=None,
              expected_sha256: str | None = None) -> StagedPackage:
        """Verify and unpack one `.expert` archive (a path or a binary stream) in one streaming
        pass. `trusted_key_ids`: accept only signatures by these keys (None: any valid signature).
        `expected_sha256`: the archive digest it must have (from a lockfile or index)."""
        from .store import validate_weights

        if self._staging is None:
            raise RuntimeError("StoreBatch.stage outside its `with` block")
        with self._numbers_lock:
            unpacked = self._staging.path / str(next(self._numbers))
        unpacked.mkdir()
        trusted = None if trusted_key_ids is None else set(trusted_key_ids)
        verified = extract_verified(package, unpacked, trusted_key_ids=trusted, expected_sha256=expected_sha256)
        where = str(getattr(package, "name", package))
        for rel in verified.manifest.files:
            if rel.endswith(WEIGHT_SUFFIX):
                validate_weights(unpacked / rel, f"{where}:{rel}")
        return StagedPackage(verified, unpacked, tuple(seal_tree(unpacked, start_writeback=durable())))

    def commit(self, staged: Sequence[StagedPackage]) -> list["InstalledPackage"]:
        """Move staged packages into the store and point their refs at them, holding the store
        lock once for all of them. Refused as a whole, before anything moves, if a name@version
        already points to different content (StoreError). Unless `EXPERTPM_FSYNC=0`, three
        flushes order it for power loss: the staged files before their directories are renamed
        into packages/; those renames and the new refs' contents before the refs are renamed into
        place; then the refs."""
        from .store import InstalledPackage, crash_point

        store, sync = self.store, durable()
        if sync:
            flush(path for one in staged for path in one.written)
        crash_point("before-commit")
        with store.locked():
            refs = [store.check_ref(one.verified) for one in staged]
            moved = [store.move_in(one.unpacked, one.verified) for one in staged]
            writes = [(ref, f"{one.verified.digest}\n".encode(), one.ref_scratch)
                      for one, ref in zip(staged, refs) if ref is not None]
            try:
                changed = write_scratch(writes)
                if sync and (writes or any(moved)):
                    flush([scratch for _, _, scratch in writes] + [store.layout.packages])
                crash_point("after-rename")
                rename_scratch(writes)
                if sync:
                    flush(changed)
            except BaseException:
                for ref, _, _ in writes:  # none of them existed before: all or nothing
                    ref.unlink(missing_ok=True)
                raise
        return [InstalledPackage(v.manifest.name, str(v.manifest.version), v.manifest.kind, v.digest,
                                 store.layout.package_dir(v.digest), v.manifest, v.signature.key_id)
                for v in (one.verified for one in staged)]
