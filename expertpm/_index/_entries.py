"""Package files: one signed canonical-JSON line per version (an entry) or per yank record.

A file is append-only. Reading one yields the verified entries of its package with their
effective `yanked` state. Only the records at or after `verify_from` have their signature and
schema checked (the bytes before it were verified when they arrived); the revocation and
duplicate rules apply to every record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Mapping

import nacl.exceptions
import nacl.signing

from .._canonical import canonical_json, parse_canonical, sha256_bytes
from .._errors import FormatError, IndexError_, SignatureError
from .._keys import SigningKey
from .._manifest import Manifest
from .._versions import Version
from ._layout import DEFAULT_LIMITS, Limits
from ._metadata import Delegation
from ._shape import check_line

ROUTING_FIELDS = ("keywords", "exclude_keywords", "examples")
BASE_FIELDS = ("name", "version", "weights_sha256", "tokenizer_sha256", "vocab_size")
MODEL_FIELDS = ("architecture", "weights_sha256", "tokenizer_sha256", "vocab_size", "context_length")
EVAL_FIELDS = ("metric", "expert_score", "base_score", "n")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One verified version line of an index (mirrors the entry JSON; `raw` is the whole line)."""

    name: str
    version: str
    kind: str
    sha256: str
    size: int
    manifest_sha256: str
    publisher: str
    published: str
    signature: str
    description: str = ""
    license: str = ""
    base: Mapping | None = field(default=None, compare=False)
    model: Mapping | None = field(default=None, compare=False)
    requires: Mapping[str, str] = field(default_factory=dict, compare=False)
    incompatible_with: Mapping[str, str] = field(default_factory=dict, compare=False)
    routing: Mapping = field(default_factory=dict, compare=False)
    eval: Mapping | None = field(default=None, compare=False)
    embedding: tuple[float, ...] | None = field(default=None, compare=False)
    yanked: bool = False
    raw: Mapping = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)

    @classmethod
    def from_doc(cls, doc: Mapping, *, yanked: bool = False) -> "IndexEntry":
        emb = doc.get("embedding")
        return cls(name=doc["name"], version=doc["version"], kind=doc["kind"], sha256=doc["sha256"],
                   size=doc["size"], manifest_sha256=doc["manifest_sha256"], publisher=doc["publisher"],
                   published=doc["published"], signature=doc["signature"], description=doc["description"],
                   license=doc["license"], base=doc.get("base"), model=doc.get("model"),
                   requires=dict(doc["requires"]), incompatible_with=dict(doc["incompatible_with"]),
                   routing=dict(doc["routing"]), eval=doc.get("eval"),
                   embedding=tuple(emb) if emb is not None else None, yanked=yanked, raw=dict(doc))


def entry_doc(manifest: Manifest, *, sha256: str, size: int, manifest_sha256: str, publisher: str,
              published: str, embedding: list[float] | None = None) -> dict:
    """The unsigned entry of a verified package."""
    m = manifest.doc
    doc = {"name": manifest.name, "version": str(manifest.version), "kind": manifest.kind, "sha256": sha256,
           "size": size, "manifest_sha256": manifest_sha256, "description": m.get("description", ""),
           "license": m["license"], "requires": dict(m.get("requires", {})),
           "incompatible_with": dict(m.get("incompatible_with", {})),
           "routing": {f: list(m.get("routing", {}).get(f, [])) for f in ROUTING_FIELDS},
           "published": published, "publisher": publisher}
    if manifest.kind == "expert":
        doc["base"] = {f: m["base"][f] for f in BASE_FIELDS}
    else:
        doc["model"] = {f: m["model"][f] for f in MODEL_FIELDS}
    if "eval" in m:
        doc["eval"] = {f: m["eval"][f] for f in EVAL_FIELDS}
    if embedding is not None:
        doc["embedding"] = [float(x) for x in embedding]
    return doc


def yank_doc(name: str, version: str, *, yank: bool, publisher: str, after: str, published: str) -> dict:
    return {"yank": yank, "name": name, "version": version, "publisher": publisher, "after": after,
            "published": published}


def sign_record(doc: dict, key: SigningKey, *, where: str = "index record") -> bytes:
    """The signed canonical line (without its newline); checked against the entry schema."""
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    signed = unsigned | {"signature": key.sign(canonical_json(unsigned)).signature}
    check_line(signed, where=where)
    return canonical_json(signed)


@dataclass(frozen=True, slots=True)
class Record:
    doc: dict
    line: bytes
    offset: int  # where the line starts in the file
    prefix_sha256: str  # sha256 of the file bytes before the line
    lineno: int

    @property
    def is_yank(self) -> bool:
        return "yank" in self.doc

    @property
    def line_sha256(self) -> str:
        return sha256_bytes(self.line)


def split_records(data: bytes, *, where: str, limits: Limits = DEFAULT_LIMITS) -> list[Record]:
    """Parse every line of a package file (structure only, no signatures)."""
    if data and not data.endswith(b"\n"):
        raise IndexError_("package file does not end with a newline (truncated?)", where=where)
    records, running, offset = [], hashlib.sha256(), 0
    for lineno, line in enumerate(data.split(b"\n")[:-1], start=1):
        here = f"{where}:{lineno}"
        if len(line) > limits.max_line_bytes:
            raise IndexError_(f"line is {len(line)} bytes long (limit {limits.max_line_bytes})", where=here)
        try:
            doc = parse_canonical(line, where=here)
        except FormatError as exc:
            raise IndexError_(exc.message, where=here, hint="index lines must be canonical JSON") from exc
        if not isinstance(doc, dict):
            raise IndexError_("an index line must be a JSON object", where=here)
        records.append(Record(doc, line, offset, running.hexdigest(), lineno))
        running.update(line + b"\n")
        offset += len(line) + 1
    return records


class _Verifier:
    """Checks records against the delegations, caching one verify key per publisher."""

    def __init__(self, name: str, delegations: Mapping[str, Delegation], where: str) -> None:
        self.name, self.delegations, self.where = name, delegations, where
        self._keys: dict[str, nacl.signing.VerifyKey] = {}

    def signer(self, rec: Record, here: str) -> Delegation | None:
        """The delegation that authorises `rec`, or None if the record is withdrawn."""
        key_id = rec.doc.get("publisher")
        delegation = self.delegations.get(key_id) if isinstance(key_id, str) else None
        if delegation is None:
            raise SignatureError(f"line is signed by key {str(key_id)[:16]}, which this index never delegated",
                                 where=here, hint="refusing an unsigned or foreign line")
        if delegation.revoked:
            digest = rec.line_sha256
            if digest in delegation.withdrawn_lines:
                return None
            if digest not in delegation.kept_lines:
                raise SignatureError(f"line is signed by the revoked key {key_id[:16]} ({delegation.label})",
                                     where=here, hint="the index revoked this publisher key")
        if not delegation.covers(self.name):
            raise SignatureError(f"key {key_id[:16]} ({delegation.label}) is not delegated to publish "
                                 f"{self.name!r}", where=here, hint="the root keys never allowed this name")
        return delegation

    def check_signature(self, rec: Record, delegation: Delegation, here: str) -> None:
        if not isinstance(rec.doc.get("signature"), str):
            raise SignatureError(f"line for {rec.doc.get('name')}@{rec.doc.get('version')} is not signed", where=here,
                                 hint="every index line must carry its publisher's signature")
        check_line(rec.doc, where=here)
        unsigned = {k: v for k, v in rec.doc.items() if k != "signature"}
        key = self._keys.get(delegation.key_id)
        if key is None:
            key = self._keys[delegation.key_id] = nacl.signing.VerifyKey(bytes.fromhex(delegation.public_key))
        try:
            key.verify(canonical_json(unsigned), bytes.fromhex(rec.doc["signature"]))
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise SignatureError(f"bad signature on {rec.doc.get('name')}@{rec.doc.get('version')} by key "
                                 f"{delegation.key_id[:16]}", where=here,
                                 hint="the line was modified or not signed by its publisher") from exc


def read_package_file(data: bytes, name: str, delegations: Mapping[str, Delegation], *, where: str,
                      verify_from: int = 0, limits: Limits = DEFAULT_LIMITS) -> list[IndexEntry]:
    """The entries of one package, oldest first, with their effective yanked state."""
    verifier = _Verifier(name, delegations, where)
    entries: dict[Version, IndexEntry] = {}
    for rec in split_records(data, where=where, limits=limits):
        here = f"{where}:{rec.lineno}"
        if rec.doc.get("name") != name:
            raise IndexError_(f"line names package {rec.doc.get('name')!r} inside the file of {name!r}", where=here)
        delegation = verifier.signer(rec, here)
        if rec.offset >= verify_from and delegation is not None:
            verifier.check_signature(rec, delegation, here)
        try:
            version = Version.parse(rec.doc.get("version"), where=here)
        except Exception as exc:
            raise IndexError_(f"invalid version {rec.doc.get('version')!r}", where=here) from exc
        if delegation is None:
            continue
        if rec.is_yank:
            if rec.doc.get("after") != rec.prefix_sha256:
                raise IndexError_(f"yank record for {name}@{version} was not made for this position in the file",
                                  where=here, hint="a replayed or moved yank record is refused")
            if version not in entries:
                raise IndexError_(f"yank record for {name}@{version}, which is not published", where=here)
            entries[version] = replace(entries[version], yanked=bool(rec.doc["yank"]))
            continue
        if version in entries:
            raise IndexError_(f"{name}@{version} is published twice", where=here,
                              hint="published versions are immutable; a re-published version is refused")
        entries[version] = IndexEntry.from_doc(rec.doc)
    return list(entries.values())


def versions_in(data: bytes, *, where: str, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """The versions a package file publishes (no signature checks): for a publisher's rules."""
    return [r.doc["version"] for r in split_records(data, where=where, limits=limits) if not r.is_yank]
