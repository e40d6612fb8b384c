"""The package manifest (`manifest.json`): loading, validation and digests of a base's identity.

Validation runs the JSON Schema (`schemas/manifest.schema.json`) and then the rules a schema
cannot say (names, semver, ranges, file paths); every problem is reported with its field path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._canonical import canonical_json, parse_json, sha256_file
from ._errors import ExpertpmError, FormatError
from ._names import validate_name
from ._schema import field_path, schema_problems
from ._versions import Version, VersionRange

MANIFEST_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "signature.json"
RESERVED_FILES = frozenset({MANIFEST_FILE, SIGNATURE_FILE})
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "tokenizer.model")
WEIGHT_SUFFIX = ".safetensors"
FORBIDDEN_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz")


@dataclass(frozen=True, slots=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest. `doc` is the full JSON document; typed fields mirror its core."""

    doc: Mapping[str, Any]
    name: str
    version: Version
    kind: str
    files: Mapping[str, FileEntry]

    @classmethod
    def from_dict(cls, doc: object, *, where: str = MANIFEST_FILE) -> "Manifest":
        problems = schema_problems(doc, "manifest")
        if isinstance(doc, dict):
            problems = [p for p in problems if p[0] not in ("name", "version")] + _semantic_problems(doc)
        if problems:
            detail = "; ".join(f"{p}: {m}" for p, m in problems[:8])
            more = f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""
            raise FormatError(f"{detail}{more}", where=where, problems=problems)
        files = {path: FileEntry(e["sha256"], e["size"]) for path, e in sorted(doc["files"].items())}
        return cls(doc=doc, name=doc["name"], version=Version.parse(doc["version"]), kind=doc["kind"],
                   files=files)

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = MANIFEST_FILE) -> "Manifest":
        return cls.from_dict(parse_json(data, where=where), where=where)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FormatError(f"cannot read manifest: {exc.strerror}", where=str(path)) from exc
        return cls.from_bytes(data, where=str(path))

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.doc)

    def to_dict(self) -> dict:
        return parse_json(canonical_json(self.doc))

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def get(self, key: str, default: Any = None) -> Any:
        return self.doc.get(key, default)

    @property
    def requires(self) -> dict[str, str]:
        return dict(self.doc.get("requires", {}))

    @property
    def incompatible_with(self) -> dict[str, str]:
        return dict(self.doc.get("incompatible_with", {}))

    @property
    def weights_sha256(self) -> str:
        """For a base: its own weights digest; for an expert: the digest of the base it needs."""
        section = self.doc["model"] if self.kind == "base" else self.doc["base"]
        return section["weights_sha256"]


def _semantic_problems(doc: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    def check(path: str, fn) -> None:
        try:
            fn()
        except ExpertpmError as exc:
            problems.append((path, exc.message + (f" — {exc.hint}" if exc.hint else "")))

    if isinstance(doc.get("name"), str):
        check("name", lambda: validate_name(doc["name"]))
    else:
        problems.append(("name", "is required and must be a string"))
    if isinstance(doc.get("version"), str):
        check("version", lambda: Version.parse(doc["version"]))
    else:
        problems.append(("version", "is required and must be a string"))
    base = doc.get("base")
    if isinstance(base, dict) and isinstance(base.get("version"), str):
        check("base.version", lambda: VersionRange.parse(base["version"]))
    for section in ("requires", "incompatible_with"):
        deps = doc.get(section)
        if isinstance(deps, dict):
            for dep, rng in deps.items():
                if isinstance(rng, str):
                    check(f"{section}.{dep}", lambda rng=rng: VersionRange.parse(rng))
                if dep == doc.get("name"):
                    problems.append((f"{section}.{dep}", "a package cannot refer to itself"))
    files = doc.get("files")
    if isinstance(files, dict):
        seen: dict[str, str] = {}
        for path in files:
            if path in RESERVED_FILES:
                problems.append((field_path(["files", path]), "is reserved for the package itself"))
            if path.lower().endswith(FORBIDDEN_WEIGHT_SUFFIXES):
                problems.append((field_path(["files", path]), "pickle-based weights are refused; use safetensors"))
            if path.lower() in seen:
                problems.append((field_path(["files", path]), f"differs only in case from {seen[path.lower()]!r}"))
            seen[path.lower()] = path
    return problems


def tree_digest(file_hashes: Mapping[str, str]) -> str:
    """sha256 of the canonical JSON {relative path: sha256} of a set of files."""
    from ._canonical import sha256_bytes

    return sha256_bytes(canonical_json(dict(sorted(file_hashes.items()))))


def weights_digest(files: Mapping[str, FileEntry | str]) -> str:
    """The identity of a base model's weights: the tree digest of its *.safetensors files."""
    hashes = {p: (e.sha256 if isinstance(e, FileEntry) else e) for p, e in files.items()}
    return tree_digest({p: h for p, h in hashes.items() if p.endswith(WEIGHT_SUFFIX)})


def tokenizer_digest(files: Mapping[str, FileEntry | str]) -> str:
    """The identity of a base model's tokenizer: the tree digest of its tokenizer files."""
    hashes = {p: (e.sha256 if isinstance(e, FileEntry) else e) for p, e in files.items()}
    return tree_digest({p: h for p, h in hashes.items() if p in TOKENIZER_FILES})


def directory_digests(model_dir: Path) -> tuple[str, str]:
    """(weights_sha256, tokenizer_sha256) of a Hugging Face model directory on disk."""
    model_dir = Path(model_dir)
    hashes = {}
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and (path.name.endswith(WEIGHT_SUFFIX) or path.name in TOKENIZER_FILES):
            hashes[path.name] = sha256_file(path)[0]
    return weights_digest(hashes), tokenizer_digest(hashes)
