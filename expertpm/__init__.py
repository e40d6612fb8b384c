"""expertpm: a Git-native package manager for small language-model experts.

The public API is what `__all__` lists; everything else lives in private modules. Errors and
`Home` load eagerly (they are tiny); the rest loads on first use, so `import expertpm` (and
`expertpm --help`) stays fast. This package never imports torch or transformers.
"""

from ._errors import (
    ExpertpmError,
    FormatError,
    IndexError_,
    IntegrityError,
    InternalError,
    KeyringError,
    NameError_,
    NetworkError,
    PackageError,
    ResolutionError,
    RuntimeUserError,
    SignatureError,
    StoreError,
    UnsafeArchiveError,
    UserError,
    VersionError,
)
from ._home import Home
from ._lazy import lazy_exports

_LAZY = {
    "Keyring": "._keys", "SigningKey": "._keys", "Signature": "._keys", "verify_signature": "._keys",
    "Manifest": "._manifest",
    "Version": "._versions", "VersionRange": "._versions",
    "pack": "._pack",
    "VerifiedPackage": "._package", "verify_package": "._package", "extract_verified": "._package",
    "read_manifest": "._package",
    "Store": "._store", "InstalledPackage": "._store",
    "open_index": "._index", "configured_indexes": "._index", "publish": "._index",
    "IndexEntry": "._index", "VerifiedIndex": "._index",
    "resolve_project": "._provider",
    "load_project": "._project", "read_lock": "._lockfile", "write_lock": "._lockfile",
    "search": "._search",
}

__all__ = sorted([
    "ExpertpmError", "FormatError", "Home", "IndexError_", "IntegrityError", "InternalError", "KeyringError",
    "NameError_", "NetworkError", "PackageError", "ResolutionError", "RuntimeUserError", "SignatureError",
    "StoreError", "UnsafeArchiveError", "UserError", "VersionError", *_LAZY,
])


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
