"""expertpm: a Git-native package manager for small language-model experts.

The public API is what `__all__` lists; everything else lives in private modules.
This package never imports torch or transformers.
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

__all__ = [
    "ExpertpmError",
    "FormatError",
    "Home",
    "IndexError_",
    "IntegrityError",
    "InternalError",
    "KeyringError",
    "NameError_",
    "NetworkError",
    "PackageError",
    "ResolutionError",
    "RuntimeUserError",
    "SignatureError",
    "StoreError",
    "UnsafeArchiveError",
    "UserError",
    "VersionError",
]
