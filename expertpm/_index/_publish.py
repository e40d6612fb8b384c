"""Publishing to an index: verify the package, check the rules, append a signed line, commit.

Rules (documented in docs/index-format.md):
  * the signing key must be delegated for the name (and not revoked), and it must be the key
    that signed the package itself (clients install with the line's publisher as the only
    trusted key);
  * a new name must not be confusable with an existing different name (`_names.skeleton`);
  * a version is published once: the same version (semver precedence) is refused, whatever
    its content;
  * within one major series versions only go up: a version lower than the highest published
    version with the same major number is refused (a new major, or a backport to an older
    major series above that series' highest version, is fine);
  * a package never changes kind (expert <-> base).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .._canonical import sha256_bytes, sha256_file
from .._errors import IndexError_, NameError_
from .._keys import SigningKey
from .._names import skeleton, validate_name
from .._versions import Version
from ._entries import IndexEntry, entry_doc, sign_record, split_records, yank_doc
from . import _gitdb as git
from ._host import IndexHost
from ._layout import (
    ARTIFACTS_DIR, fill_template, format_time, package_path, utc_now,
)

@dataclass(frozen=True, slots=True)
class Published:
    entry: IndexEntry
    commit: str
    snapshot_version: int
    artifact: Path


def publish(location, package: Path | str, key: SigningKey, *, embedding=None) -> Published:
    """Publish a `.expert` file to the index at `location` (a DIR or file:// URL).

    `embedding`: the search embedding to store in the line, or a function of the manifest that
    returns it (called only once every publishing rule has passed: issue 4's search hook)."""
    from .._package import verify_package

    host = IndexHost(location)
    package = Path(package)
    verified = verify_package(package)
    manifest = verified.manifest
    manifest_bytes = manifest.canonical_bytes()  # a package's manifest.json is canonical JSON
    name, version = manifest.name, manifest.version
    if verified.signature.key_id != key.key_id:
        raise IndexError_(f"the package is signed by key {verified.signature.key_id[:16]}, but you publish with "
                          f"key {key.key_id[:16]} ({key.name})", where=str(package),
                          hint="pack it with the key you publish with (or pass --key NAME)")
    with host.lock():
        _require_delegated(host, key, name)
        path = package_path(name)
        existing = host.read(path) or b""
        if existing:
            _check_new_version(existing, path, name, version, manifest.kind)
        else:
            _check_not_confusable(host, name)
        if callable(embedding):  # search hook: computed only for a publish that will happen
            embedding = embedding(manifest)
        doc = entry_doc(manifest, sha256=verified.digest, size=verified.size,
                        manifest_sha256=sha256_bytes(manifest_bytes), publisher=key.key_id,
                        published=format_time(utc_now()), embedding=embedding)
        line = sign_record(doc, key, where=f"{name}@{version}")
        artifact = host_artifact_path(host, IndexEntry.from_doc(doc | {"signature": "0" * 128}))
        _copy_artifact(package, artifact, verified.digest)
        result = host.commit_changes({path: existing + line + b"\n"}, f"Publish {name}@{version}")
    from .._canonical import parse_json

    return Published(IndexEntry.from_doc(parse_json(line)), result.commit, result.snapshot_version, artifact)


def set_yanked(location, name: str, version: str, key: SigningKey, *, yank: bool = True) -> Published:
    """Append a signed yank (or unyank) record for name@version."""
    validate_name(name)
    wanted = Version.parse(version)
    host = IndexHost(location)
    with host.lock():
        _require_delegated(host, key, name)
        path = package_path(name)
        existing = host.read(path)
        if not existing:
            raise IndexError_(f"{name} is not published in this index", where=str(host.path))
        state: dict[str, bool] = {}
        for rec in split_records(existing, where=path):
            state[rec.doc["version"]] = bool(rec.doc["yank"]) if rec.is_yank else False
        published = next((v for v in state if Version.parse(v) == wanted), None)
        if published is None:
            raise IndexError_(f"{name}@{version} is not published", where=str(host.path),
                              hint=f"published versions: {', '.join(state) or 'none'}")
        if state[published] == yank:
            raise IndexError_(f"{name}@{published} is {'already' if yank else 'not'} yanked")
        doc = yank_doc(name, published, yank=yank, publisher=key.key_id, after=sha256_bytes(existing),
                       published=format_time(utc_now()))
        line = sign_record(doc, key, where=f"{name}@{published}")
        result = host.commit_changes({path: existing + line + b"\n"},
                                     f"{'Yank' if yank else 'Unyank'} {name}@{published}")
    from ._entries import read_package_file

    entries = read_package_file(existing + line + b"\n", name, host.delegations(), where=path)
    entry = next(e for e in entries if e.version == published)
    return Published(entry, result.commit, result.snapshot_version, host_artifact_path(host, entry))


def host_artifact_path(host: IndexHost, entry: IndexEntry) -> Path:
    """Where the host keeps an artifact: the relative artifact URL, else artifacts/<name>/…"""
    template = host.config().artifact_url
    if "://" in template:
        template = f"{ARTIFACTS_DIR}/{{name}}/{{name}}-{{version}}.expert"
    return host.path / fill_template(template, entry)


def _require_delegated(host: IndexHost, key: SigningKey, name: str) -> None:
    delegation = host.delegation(key.key_id)
    if delegation is None or delegation.revoked or not delegation.covers(name):
        state = "revoked" if delegation is not None and delegation.revoked else "not delegated"
        raise IndexError_(f"key {key.key_id[:16]} ({key.name}) is {state} to publish {name!r} in this index",
                          hint="ask the index maintainer: expertpm index delegate KEY --names NAME")


def _check_new_version(existing: bytes, path: str, name: str, version: Version, kind: str) -> None:
    published = [r for r in split_records(existing, where=path) if not r.is_yank]
    for rec in published:
        if rec.doc.get("kind") != kind:
            raise IndexError_(f"{name} is published as kind {rec.doc.get('kind')!r}; this package is {kind!r}",
                              hint="a package never changes kind; publish it under another name")
        other = Version.parse(rec.doc["version"])
        if other == version:
            raise IndexError_(f"{name}@{rec.doc['version']} is already published", where=path,
                              hint="published versions are immutable; bump the version and publish again")
    same_major = [Version.parse(r.doc["version"]) for r in published
                  if Version.parse(r.doc["version"]).major == version.major]
    if same_major and version < max(same_major):
        raise IndexError_(f"{name}@{version} is lower than the published {name}@{max(same_major)}",
                          where=path, hint="within one major series versions only go up; publish a higher version")


def _check_not_confusable(host: IndexHost, name: str) -> None:
    mine = skeleton(name)
    for other in git.package_names(host.repo, host.tree()):
        if other != name and skeleton(other) == mine:
            raise NameError_(f"{name!r} is confusable with the existing package {other!r}",
                             hint="choose a name that does not look like an existing one")


def _copy_artifact(package: Path, target: Path, digest: str) -> None:
    if target.is_file() and sha256_file(target)[0] == digest:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(package, tmp)
    os.replace(tmp, target)
