"""The public API of `expertpm` is deliberate: this list changes only on purpose."""

import subprocess
import sys

import expertpm

EXPECTED = [
    "ExpertpmError", "FormatError", "Home", "IndexEntry", "IndexError_", "InstalledPackage", "IntegrityError",
    "InternalError", "KeyringError", "Manifest", "NameError_", "NetworkError", "PackageError", "ResolutionError",
    "RuntimeUserError", "Signature", "SignatureError", "SigningKey", "Store", "StoreError", "UnsafeArchiveError",
    "UserError", "VerifiedIndex", "VerifiedPackage", "Version", "VersionError", "VersionRange", "configured_indexes",
    "extract_verified", "Keyring", "load_project", "open_index", "pack", "publish", "read_lock", "read_manifest",
    "resolve_project", "search", "verify_package", "verify_signature", "write_lock",
]


def test_exported_members_are_pinned():
    assert sorted(expertpm.__all__) == sorted(EXPECTED)


def test_every_export_resolves():
    for name in expertpm.__all__:
        assert getattr(expertpm, name) is not None, name


def test_user_errors_are_value_errors_and_share_the_root():
    assert issubclass(expertpm.UserError, ValueError)
    for name in expertpm.__all__:
        obj = getattr(expertpm, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, expertpm.ExpertpmError), name


def test_core_never_imports_torch():
    code = ("import sys, expertpm; [getattr(expertpm, n) for n in expertpm.__all__]; "
            "from expertpm.cli import build_parser; build_parser(); "
            "bad = [m for m in ('torch', 'transformers', 'sentence_transformers', 'numpy') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the core imported {out}"
