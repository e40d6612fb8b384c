"""Maintainer actions: create an index, delegate and revoke publishers, rotate root keys, refresh."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

from .._errors import IndexError_
from .._home import Home
from .._keys import Keyring, SigningKey
from .._names import validate_name
from . import _gitdb as git
from ._entries import split_records
from ._host import HOST_SETTINGS, CommitResult, IndexHost, local_index_path
from ._layout import (
    ARTIFACTS_DIR, CONFIG_FILE, DEFAULT_ARTIFACT_URL, DEFAULT_EXPIRES_DAYS, DEFAULT_LIMITS, HOST_DIR,
    expiry_after, publisher_path, root_path,
)
from ._metadata import (
    Delegation, IndexConfig, check_pattern, delegation_signed, load_root, root_signed,
)
from ._signed import seal


@dataclass(frozen=True, slots=True)
class PublisherKey:
    """The public half of a key to delegate."""

    key_id: str
    public_key: str
    label: str


def init_index(location: str | os.PathLike, root_keys: Sequence[SigningKey], *, threshold: int = 1,
               name: str | None = None, artifact_url: str = DEFAULT_ARTIFACT_URL,
               expires_days: float = DEFAULT_EXPIRES_DAYS) -> str:
    """Create an index at `location` (a new bare Git repository); returns its root fingerprint."""
    path = local_index_path(location)
    if path.exists() and any(path.iterdir()):
        raise IndexError_("directory is not empty", where=str(path), hint="choose a new directory for the index")
    if not root_keys:
        raise IndexError_("an index needs at least one root key", hint="pass --root-key NAME")
    name = name or path.name.removesuffix(".git")
    if "{name}" not in artifact_url and "{sha256}" not in artifact_url:
        raise IndexError_(f"artifact URL template {artifact_url!r} names no package",
                          hint="use placeholders {name}, {version} and {sha256}")
    if "://" not in artifact_url and (not artifact_url.startswith(f"{ARTIFACTS_DIR}/") or ".." in artifact_url):
        raise IndexError_(f"relative artifact URL template {artifact_url!r} must stay under {ARTIFACTS_DIR}/",
                          hint="use e.g. artifacts/{name}/{name}-{version}.expert, or an absolute https:// URL")
    if expires_days <= 0:
        raise IndexError_("--expires must be a positive number of days")
    keys = {k.key_id: k.public_key for k in root_keys}
    if not 1 <= threshold <= len(keys):
        raise IndexError_(f"threshold {threshold} is impossible with {len(keys)} root key(s)",
                          hint="use --threshold between 1 and the number of distinct --root-key keys")
    existed = path.exists()
    try:
        return _create(path, name, root_keys, keys, threshold, artifact_url, expires_days)
    except BaseException:
        if existed:
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _create(path: Path, name: str, root_keys, keys: dict, threshold: int, artifact_url: str,
            expires_days: float) -> str:
    git.init_bare(path)
    (path / ARTIFACTS_DIR).mkdir()
    host_dir = path / HOST_DIR
    host_dir.mkdir(mode=0o700)
    Keyring(Home(host_dir)).generate("timestamp-1")
    timestamp = Keyring(Home(host_dir)).load("timestamp-1")
    signed = root_signed(version=1, index=name, keys=keys, threshold=threshold,
                         timestamp_keys={timestamp.key_id: timestamp.public_key}, fingerprint=None)
    root_bytes = seal(signed, root_keys)
    fingerprint = load_root(root_bytes, where=root_path(1)).fingerprint
    settings = {"format_version": 1, "fingerprint": fingerprint, "timestamp_key": "timestamp-1",
                "expires_days": expires_days}
    (host_dir / HOST_SETTINGS).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    config = IndexConfig(name, fingerprint, artifact_url, 1, tuple(keys), threshold)
    host = IndexHost(path)
    with host.lock():
        host.commit_changes({CONFIG_FILE: config.to_bytes(), root_path(1): root_bytes},
                            f"Create index {name}", root_version=1)
    return fingerprint


def _require_root_threshold(root, signers: Sequence[SigningKey], what: str) -> list[SigningKey]:
    usable = [k for k in signers if k.key_id in root.keys]
    if len({k.key_id for k in usable}) < root.threshold:
        raise IndexError_(f"{what} needs {root.threshold} root key(s) of this index; {len(usable)} available",
                          hint="pass --root-key NAME for keys in your keyring that are root keys of the index")
    return usable


def delegate(location, publisher: PublisherKey, names: Sequence[str], signers: Sequence[SigningKey]) -> Delegation:
    """Allow `publisher` to publish `names` (exact names or `prefix-*`); adds to earlier patterns."""
    if not names:
        raise IndexError_("no names to delegate", hint="pass --names NAME or --names 'prefix-*'")
    patterns = [check_pattern(p) for p in names]
    host = IndexHost(location)
    with host.lock():
        root = host.root()
        usable = _require_root_threshold(root, signers, "a delegation")
        current = host.delegations().get(publisher.key_id)
        if current is not None and current.revoked:
            raise IndexError_(f"key {publisher.key_id[:16]} was revoked and cannot be delegated again",
                              hint="the publisher must create a new key")
        old_names = current.names if current else ()
        label = publisher.label or (current.label if current else "")
        signed = delegation_signed(fingerprint=host.settings["fingerprint"], key_id=publisher.key_id,
                                   public_key=publisher.public_key, label=label,
                                   names=[*old_names, *patterns], version=(current.version + 1) if current else 1)
        data = seal(signed, usable)
        host.commit_changes({publisher_path(publisher.key_id): data},
                            f"Delegate {', '.join(patterns)} to {label or publisher.key_id[:16]}")
    return host.delegations()[publisher.key_id]


def revoke(location, key_id: str, signers: Sequence[SigningKey], *, withdraw_published: bool = False) -> Delegation:
    """Revoke a publisher key. Lines it already signed stay valid unless `withdraw_published`."""
    host = IndexHost(location)
    with host.lock():
        root = host.root()
        usable = _require_root_threshold(root, signers, "a revocation")
        current = host.delegations().get(key_id)
        if current is None:
            raise IndexError_(f"key {key_id[:16]} is not a delegated publisher of this index",
                              hint="see the delegations in keys/publishers/ of the index")
        if current.revoked:
            raise IndexError_(f"key {key_id[:16]} is already revoked")
        lines = []
        for _name, path, oid in host.package_files():
            data = git.read_blob(host.repo, oid, max_size=DEFAULT_LIMITS.max_package_file_bytes, where=path)
            lines += [r.line_sha256 for r in split_records(data, where=path) if r.doc.get("publisher") == key_id]
        signed = delegation_signed(fingerprint=host.settings["fingerprint"], key_id=key_id,
                                   public_key=current.public_key, label=current.label, names=current.names,
                                   version=current.version + 1, revoked=True,
                                   kept_lines=() if withdraw_published else lines,
                                   withdrawn_lines=lines if withdraw_published else ())
        host.commit_changes({publisher_path(key_id): seal(signed, usable)},
                            f"Revoke key {current.label or key_id[:16]}")
    return host.delegations()[key_id]


def rotate_root(location, new_keys: Sequence[SigningKey], old_signers: Sequence[SigningKey], *,
                threshold: int | None = None, new_timestamp_key: bool = False) -> int:
    """Write root version N+1 (signed by the old threshold and the new keys); returns N+1.

    Every delegation is re-signed by the new keys in the same commit, so clients only ever need
    the current root to check them."""
    if not new_keys:
        raise IndexError_("a root rotation needs the new root keys", hint="pass --new-root-key NAME")
    host = IndexHost(location)
    with host.lock():
        old = host.root()
        old_usable = _require_root_threshold(old, old_signers, "a root rotation")
        threshold = threshold or min(old.threshold, len({k.key_id for k in new_keys}))
        timestamp = host.timestamp_key()
        if new_timestamp_key:
            timestamp = host.new_timestamp_key(f"timestamp-{old.version + 1}")
        version = old.version + 1
        fingerprint = host.settings["fingerprint"]
        signed = root_signed(version=version, index=old.index, keys={k.key_id: k.public_key for k in new_keys},
                             threshold=threshold, timestamp_keys={timestamp.key_id: timestamp.public_key},
                             fingerprint=fingerprint)
        root_bytes = seal(signed, [*old_usable, *new_keys])
        changes = {root_path(version): root_bytes}
        for delegation in host.delegations().values():
            redone = delegation_signed(
                fingerprint=fingerprint, key_id=delegation.key_id, public_key=delegation.public_key,
                label=delegation.label, names=delegation.names, version=delegation.version + 1,
                revoked=delegation.revoked, kept_lines=delegation.kept_lines,
                withdrawn_lines=delegation.withdrawn_lines)
            changes[publisher_path(delegation.key_id)] = seal(redone, new_keys)
        config = host.config()
        changes[CONFIG_FILE] = IndexConfig(config.name, fingerprint, config.artifact_url, version,
                                           tuple(k.key_id for k in new_keys), threshold).to_bytes()
        host.commit_changes(changes, f"Rotate root keys to version {version}", root_version=version)
        if new_timestamp_key:
            host.save_settings()
    return version


def refresh(location, *, expires_days: float | None = None, expires: datetime | None = None) -> CommitResult:
    """A new snapshot (version + 1) with a fresh expiry and no other change."""
    host = IndexHost(location)
    if expires is None and expires_days is not None:
        if expires_days <= 0:
            raise IndexError_("--expires must be a positive number of days")
        expires = expiry_after(expires_days)
    with host.lock():
        return host.commit_changes({}, "Refresh snapshot", expires=expires)


def publisher_key_from(home: Home, text: str, label: str | None = None) -> PublisherKey:
    """A key to delegate: a keyring name, a keyring key id, or a file from `keys export-public`."""
    ring = Keyring(home)
    candidate = Path(text)
    if candidate.is_file():
        doc = json.loads(candidate.read_text())
        return PublisherKey(doc["key_id"], doc["public_key"], label or doc.get("name", ""))
    for public in ring.list():
        if text in (public.name, public.key_id):
            return PublisherKey(public.key_id, public.public_key, label or public.name)
    raise IndexError_(f"no key {text!r} in your keyring and no such public-key file",
                      hint="pass a keyring key name or id, or the JSON printed by `expertpm keys export-public`")


def check_index_name(name: str) -> str:
    return validate_name(name, where="index name")
