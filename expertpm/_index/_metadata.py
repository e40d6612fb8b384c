"""Index metadata: root keys, publisher delegations, the snapshot and its bins, and config.json.

Trust flows one way: the client pins the fingerprint of root version 1 (sha256 of its signed
part); each later root version is signed by a threshold of the previous root's keys *and* of its
own keys; the current root names the timestamp key that signs snapshots and, with a threshold of
its keys, signs every publisher delegation; a snapshot lists the digest of every bin and each
bin the digest of every file, so one signature covers the whole tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from .._canonical import canonical_json, parse_canonical, sha256_bytes
from .._errors import FormatError, IndexError_, SignatureError
from .._keys import SigningKey, key_id_of
from .._names import validate_name
from .._schema import validate
from ._layout import FORMAT_VERSION, bin_of, format_time, parse_time, utc_now
from ._signed import Envelope, open_envelope, require_threshold, seal

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class FileRef:
    sha256: str
    size: int

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "size": self.size}

    @classmethod
    def of(cls, data: bytes) -> "FileRef":
        return cls(sha256_bytes(data), len(data))


# -- root -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Root:
    version: int
    index: str
    keys: Mapping[str, str]  # key id -> public key hex
    threshold: int
    timestamp_keys: Mapping[str, str]
    timestamp_threshold: int
    envelope: Envelope = field(compare=False, repr=False)

    @property
    def fingerprint(self) -> str:
        """Only meaningful for version 1: the identity of the index."""
        return sha256_bytes(self.envelope.signed_bytes)


def root_signed(*, version: int, index: str, keys: Mapping[str, str], threshold: int,
                timestamp_keys: Mapping[str, str], fingerprint: str | None) -> dict:
    if not 1 <= threshold <= len(keys):
        raise IndexError_(f"threshold {threshold} is impossible with {len(keys)} root key(s)",
                          hint="use --threshold between 1 and the number of --root-key options")
    doc = {"type": "root", "format_version": FORMAT_VERSION, "index": index, "version": version,
           "keys": dict(sorted(keys.items())), "threshold": threshold,
           "timestamp_keys": dict(sorted(timestamp_keys.items())), "timestamp_threshold": 1,
           "created": format_time(utc_now())}
    if fingerprint is not None:
        doc["fingerprint"] = fingerprint
    return doc


def load_root(data: bytes, *, where: str) -> Root:
    env = open_envelope(data, where=where, expect_type="root")
    validate(env.doc, "index-keys", where=where)
    s = env.signed
    for group in (s["keys"], s["timestamp_keys"]):
        for key_id, public in group.items():
            if key_id_of(bytes.fromhex(public)) != key_id:
                raise IndexError_(f"root key id {key_id[:16]} does not match its public key", where=where)
    if s["threshold"] > len(s["keys"]) or s["timestamp_threshold"] > len(s["timestamp_keys"]):
        raise IndexError_("root threshold is larger than its number of keys", where=where)
    return Root(s["version"], s["index"], dict(s["keys"]), s["threshold"], dict(s["timestamp_keys"]),
                s["timestamp_threshold"], env)


def verify_first_root(data: bytes, fingerprint: str, *, where: str) -> Root:
    root = load_root(data, where=where)
    if root.version != 1:
        raise IndexError_(f"first root metadata has version {root.version}, expected 1", where=where)
    if root.fingerprint != fingerprint:
        raise IndexError_(f"index fingerprint is {root.fingerprint}, expected {fingerprint}", where=where,
                          hint="this is not the index you trusted (or the fingerprint was mistyped)")
    require_threshold(root.envelope, root.keys, root.threshold, role="root version 1", where=where)
    return root


def verify_next_root(trusted: Root, data: bytes, fingerprint: str, *, where: str) -> Root:
    """Accept root version N+1 only if both the old and the new threshold signed it."""
    new = load_root(data, where=where)
    if new.version != trusted.version + 1:
        raise IndexError_(f"root version {new.version} does not follow version {trusted.version}", where=where)
    if new.envelope.signed.get("fingerprint") != fingerprint:
        raise IndexError_(f"root version {new.version} belongs to another index", where=where)
    try:
        require_threshold(new.envelope, trusted.keys, trusted.threshold,
                          role=f"root version {new.version} (by the keys of root version {trusted.version})",
                          where=where)
    except SignatureError as exc:
        raise SignatureError(f"root rotation not signed by the old threshold: {exc.message}", where=where,
                             hint="a new root must be signed by the previous root keys") from exc
    require_threshold(new.envelope, new.keys, new.threshold, role=f"root version {new.version}", where=where)
    return new


# -- publisher delegations -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Delegation:
    key_id: str
    public_key: str
    label: str
    names: tuple[str, ...]
    version: int
    revoked: bool
    kept_lines: frozenset[str]
    withdrawn_lines: frozenset[str]

    def covers(self, name: str) -> bool:
        return any(pattern_covers(p, name) for p in self.names)


def check_pattern(pattern: str) -> str:
    if pattern == "*":
        return pattern
    stem = pattern[:-2] if pattern.endswith("-*") else pattern
    validate_name(stem, where="--names")
    return pattern


def pattern_covers(pattern: str, name: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("-*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def delegation_signed(*, fingerprint: str, key_id: str, public_key: str, label: str, names, version: int,
                      revoked: bool = False, kept_lines=(), withdrawn_lines=()) -> dict:
    doc = {"type": "delegation", "format_version": FORMAT_VERSION, "fingerprint": fingerprint,
           "key_id": key_id, "public_key": public_key, "label": label,
           "names": sorted({check_pattern(p) for p in names}), "version": version, "revoked": revoked,
           "created": format_time(utc_now())}
    if revoked:
        doc["kept_lines"] = sorted(kept_lines)
        doc["withdrawn_lines"] = sorted(withdrawn_lines)
    return doc


def load_delegation(data: bytes, root: Root, fingerprint: str, *, where: str) -> Delegation:
    env = open_envelope(data, where=where, expect_type="delegation")
    validate(env.doc, "index-keys", where=where)
    s = env.signed
    if s["fingerprint"] != fingerprint:
        raise IndexError_("delegation belongs to another index", where=where)
    if key_id_of(bytes.fromhex(s["public_key"])) != s["key_id"]:
        raise IndexError_("delegated key id does not match its public key", where=where)
    require_threshold(env, root.keys, root.threshold, role=f"delegation of key {s['key_id'][:16]}", where=where)
    return Delegation(s["key_id"], s["public_key"], s["label"], tuple(s["names"]), s["version"], s["revoked"],
                      frozenset(s.get("kept_lines", ())), frozenset(s.get("withdrawn_lines", ())))


# -- snapshot and bins ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    root_version: int
    fingerprint: str
    created: datetime
    expires: datetime
    bins: Mapping[str, FileRef]
    envelope: Envelope = field(compare=False, repr=False)


def snapshot_signed(*, fingerprint: str, version: int, root_version: int, expires: datetime,
                    bins: Mapping[str, FileRef]) -> dict:
    return {"type": "snapshot", "format_version": FORMAT_VERSION, "fingerprint": fingerprint,
            "version": version, "root_version": root_version, "created": format_time(utc_now()),
            "expires": format_time(expires), "bins": {b: ref.to_dict() for b, ref in sorted(bins.items())}}


def seal_snapshot(signed: dict, timestamp_key: SigningKey) -> bytes:
    return seal(signed, [timestamp_key])


_SNAPSHOT_FIELDS = {"type", "format_version", "fingerprint", "version", "root_version", "created", "expires", "bins"}
_BIN_ID = re.compile(r"^[0-9a-f]{2}$")


def read_snapshot(data: bytes, *, where: str) -> Snapshot:
    """Parse a snapshot without checking its signature (a transport uses this to plan reads).

    The structure is checked by hand, field for field as in schemas/index-snapshot.schema.json:
    a snapshot is read on every update and publish, and jsonschema would dominate that time."""
    env = open_envelope(data, where=where, expect_type="snapshot")
    s = env.signed
    if set(s) != _SNAPSHOT_FIELDS or s["format_version"] != FORMAT_VERSION or not isinstance(s["bins"], dict):
        validate(env.doc, "index-snapshot", where=where)  # names the exact problem
        raise IndexError_("malformed snapshot", where=where)
    for field_name in ("version", "root_version"):
        if type(s[field_name]) is not int or s[field_name] < 1:
            raise IndexError_(f"snapshot {field_name} must be a positive integer", where=where)
    if not isinstance(s["fingerprint"], str) or not _HEX64.match(s["fingerprint"]):
        raise IndexError_("snapshot fingerprint is malformed", where=where)
    bins = {}
    for bin_id, ref in s["bins"].items():
        if (not _BIN_ID.match(bin_id) or not isinstance(ref, dict) or set(ref) != {"sha256", "size"}
                or not isinstance(ref["sha256"], str) or not _HEX64.match(ref["sha256"])
                or type(ref["size"]) is not int or ref["size"] < 0):
            raise IndexError_(f"malformed snapshot bin {bin_id!r}", where=where)
        bins[bin_id] = FileRef(ref["sha256"], ref["size"])
    return Snapshot(s["version"], s["root_version"], s["fingerprint"], parse_time(s["created"], where=where),
                    parse_time(s["expires"], where=where), bins, env)


def load_snapshot(data: bytes, root: Root, fingerprint: str, *, where: str) -> Snapshot:
    snap = read_snapshot(data, where=where)
    if snap.fingerprint != fingerprint:
        raise IndexError_("snapshot belongs to another index", where=where)
    if snap.root_version != root.version:
        raise IndexError_(f"snapshot names root version {snap.root_version}, but the current root is "
                          f"version {root.version}", where=where)
    require_threshold(snap.envelope, root.timestamp_keys, root.timestamp_threshold, role="snapshot", where=where)
    return snap


def encode_bin(listing: Mapping[str, FileRef]) -> bytes:
    return canonical_json({p: ref.to_dict() for p, ref in sorted(listing.items())})


def decode_bin(data: bytes, bin_id: str, *, where: str) -> dict[str, FileRef]:
    """Parse a bin whose bytes were already checked against the snapshot."""
    try:
        doc = parse_canonical(data, where=where)
    except FormatError as exc:
        raise IndexError_(exc.message, where=where) from exc
    if not isinstance(doc, dict):
        raise IndexError_("a snapshot bin must be a JSON object", where=where)
    listing = {}
    for path, ref in doc.items():
        if (not isinstance(ref, dict) or set(ref) != {"sha256", "size"} or not isinstance(ref["sha256"], str)
                or not _HEX64.match(ref["sha256"]) or type(ref["size"]) is not int or ref["size"] < 0):
            raise IndexError_(f"malformed file reference for {path!r}", where=where)
        if bin_of(path) != bin_id:
            raise IndexError_(f"{path!r} does not belong in bin {bin_id}", where=where)
        listing[path] = FileRef(ref["sha256"], ref["size"])
    return listing


# -- config.json ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class IndexConfig:
    name: str
    fingerprint: str
    artifact_url: str
    root_version: int
    root_keys: tuple[str, ...]
    threshold: int

    def to_bytes(self) -> bytes:
        return canonical_json({"format_version": FORMAT_VERSION, "name": self.name,
                               "fingerprint": self.fingerprint, "artifact_url": self.artifact_url,
                               "root_version": self.root_version, "root_keys": sorted(self.root_keys),
                               "threshold": self.threshold})


def load_config(data: bytes, *, where: str) -> IndexConfig:
    try:
        doc = parse_canonical(data, where=where)
    except FormatError as exc:
        raise IndexError_(exc.message, where=where) from exc
    validate(doc, "index-config", where=where)
    return IndexConfig(doc["name"], doc["fingerprint"], doc["artifact_url"], doc["root_version"],
                       tuple(doc["root_keys"]), doc["threshold"])


def check_config_matches(config: IndexConfig, root: Root, fingerprint: str, *, where: str) -> None:
    if config.fingerprint != fingerprint:
        raise IndexError_("config.json names another index's fingerprint", where=where)
    if (config.root_version, set(config.root_keys), config.threshold) != (root.version, set(root.keys),
                                                                          root.threshold):
        raise IndexError_("config.json does not match the current root metadata", where=where)
