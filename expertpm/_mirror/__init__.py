"""Offline mirrors and one-file transfers (see docs/mirrors.md).

    create_mirror(home, DIR, lock=... | all=True | names=(...))   a self-verifying directory
    update_mirror(home, DIR)                                       add what is new, same selection
    verify_mirror(DIR, fingerprint=...) -> MirrorReport            check it as a client would
    export_lock(home, experts.lock, OUT.tar) / import_archive(home, OUT.tar, fingerprints=...)
"""

from .create import MirrorResult, create_mirror, update_mirror
from .layout import MIRROR_FILE, MirrorArtifact, MirrorManifest, Selection, read_manifest
from .transfer import ExportResult, ImportedIndex, export_lock, import_archive
from .verify import MirrorReport, require_ok, verify_mirror

__all__ = [
    "MIRROR_FILE", "ExportResult", "ImportedIndex", "MirrorArtifact", "MirrorManifest", "MirrorReport",
    "MirrorResult", "Selection", "create_mirror", "export_lock", "import_archive", "read_manifest", "require_ok",
    "update_mirror", "verify_mirror",
]
