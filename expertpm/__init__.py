"""expertpm: a Git-native package manager for small language-model experts.

The public API is what `__all__` lists; everything else lives in private modules. Errors and
`Home` load eagerly (they are tiny); the rest loads on first use, so `import expertpm` (and
`expertpm --help`) stays fast. This package never imports torch or transformers.
"""

from importlib import import_module

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


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'expertpm' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
