"""The content-addressed local store: `Store(home).add/list/get/path/remove/gc/fsck`.

See `layout` for the directory shape and docs/store.md for the crash-safety argument.
"""

from .maintenance import GcReport
from .store import InstalledPackage, Store

__all__ = ["Store", "InstalledPackage", "GcReport"]
