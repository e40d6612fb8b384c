"""The one exception root of expertpm.

    ExpertpmError                    every error we raise; `.hint` says what to do, `.where` names the file/field
    ├── UserError (ValueError)       the user can fix it: bad input, refused operation, missing thing
    │   ├── FormatError              a file (manifest, project, lockfile, index entry) does not match its schema
    │   ├── NameError_               an expert name is invalid or confusable
    │   ├── VersionError             an invalid semver version or range
    │   ├── KeyringError             a signing key is missing, unreadable or locked
    │   ├── SignatureError           a signature is missing, malformed, by the wrong key or does not verify
    │   ├── PackageError             a .expert package cannot be built or read
    │   │   ├── UnsafeArchiveError   an archive member is dangerous (traversal, link, device, bomb, duplicate)
    │   │   └── IntegrityError       bytes do not match their declared digest or size
    │   ├── StoreError               the local store refuses an operation or misses an entry
    │   ├── IndexError_              an index is malformed, untrusted, rolled back, expired or refuses a publish
    │   ├── ResolutionError          requirements cannot be satisfied (`.causes` holds the chain)
    │   ├── NetworkError             a transport could not reach a source
    │   └── RuntimeUserError         the runtime refuses a request (unknown expert, base mismatch, too long)
    └── InternalError                a bug or an environment failure we did not anticipate

Errors from pygit2, httpx, nacl, zstd, json and the OS are re-raised as one of these at the
boundary with ``raise ... from exc``. The CLI turns any of them into one line and an exit code.
"""

from __future__ import annotations


class ExpertpmError(Exception):
    """Root of all expertpm errors."""

    exit_code = 70

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} — {self.hint}"
        return text


class UserError(ExpertpmError, ValueError):
    """Something the user can fix; exit code 1."""

    exit_code = 1


class FormatError(UserError):
    """A document does not match its schema. `.problems` lists (field_path, message) pairs."""

    def __init__(self, message: str, *, problems: list[tuple[str, str]] | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.problems = problems or []


class NameError_(UserError):
    """An invalid or confusable expert name."""


class VersionError(UserError):
    """An invalid semver version or version range."""


class KeyringError(UserError):
    """A signing key is missing, unreadable, or cannot be decrypted."""


class SignatureError(UserError):
    """A signature is missing, malformed, made by an unexpected key, or does not verify."""


class PackageError(UserError):
    """A .expert package cannot be built or read."""


class UnsafeArchiveError(PackageError):
    """An archive member would escape, link, or exhaust resources."""


class IntegrityError(PackageError):
    """Bytes do not match their declared digest or size."""


class StoreError(UserError):
    """The local store refuses an operation or lacks an entry."""


class IndexError_(UserError):
    """An index is malformed, untrusted, rolled back, expired, or refuses a publish."""


class ResolutionError(UserError):
    """Requirements cannot be satisfied. `.causes` holds the structured chain."""

    def __init__(self, message: str, *, causes: list | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.causes = causes or []


class NetworkError(UserError):
    """A transport could not reach its source."""


class RuntimeUserError(UserError):
    """The runtime refuses a request: unknown expert, base mismatch, too long, too many experts."""


class InternalError(ExpertpmError):
    """A bug or an environment failure; exit code 70."""
