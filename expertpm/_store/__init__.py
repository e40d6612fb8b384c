"""The content-addressed local store: `Store(home).add/batch/list/get/path/remove/gc/fsck`.

See `layout` for the directory shape, `batch` for installing many packages at once, and
docs/store.md for the crash-safety argument and the durability policy (`EXPERTPM_FSYNC`).
"""

from .batch import StagedPackage, StoreBatch
from .maintenance import GcReport
from .store import InstalledPackage, Store

__all__ = ["Store", "StoreBatch", "StagedPackage", "InstalledPackage", "GcReport"]
