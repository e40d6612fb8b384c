"""Build a `.expert` package from a source directory (re-exported by `_package`).

A source directory holds `manifest.json` (everything but `files`) and the payload. `pack` lists
every other regular file (hidden files and directories, `*.expert` files and a stray
`signature.json` are skipped; links and special files are refused), refuses pickle-based weights,
validates every safetensors header, fills or checks a base's own weight and tokenizer digests,
optionally binds an expert to the real base it was trained on, validates the full manifest, signs
its canonical bytes and writes the archive atomically, reading every file once.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ._archive import write_archive_head_last
from ._canonical import canonical_json, parse_json
from ._errors import PackageError
from ._keys import SigningKey
from ._manifest import (FORBIDDEN_WEIGHT_SUFFIXES, MANIFEST_FILE, SIGNATURE_FILE, WEIGHT_SUFFIX, Manifest,
                        directory_digests, tokenizer_digest, weights_digest)
from ._names import validate_name
from ._versions import Version, VersionRange

__all__ = ["Packed", "build", "pack", "source_files", "bind_base", "package_filename", "PLACEHOLDER_DIGEST"]

PLACEHOLDER_DIGEST = "0" * 64
PACKAGE_SUFFIX = ".expert"
_SAFETENSORS_HINT = "save weights with safetensors (save_pretrained(..., safe_serialization=True) or " \
                    "safetensors.torch.save_file)"
_WEIGHT_NAME = re.compile(r"(model|weight|adapter|checkpoint|ckpt|pytorch|optimizer|state_dict)", re.I)


def package_filename(name: str, version: str) -> str:
    return f"{name}-{version}{PACKAGE_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Packed:
    """What `build` made: the package path, its size and its manifest."""

    path: Path
    size: int
    manifest: Manifest


def pack(src_dir: Path | str, out: Path | str | None, key: SigningKey, *, base_dir: Path | str | None = None) -> Path:
    """Pack `src_dir` into `<name>-<version>.expert` inside `out` (a directory) or at `out` (a file
    path); return the package path. Nothing is left behind on error."""
    return build(src_dir, out, key, base_dir=base_dir).path


def build(src_dir: Path | str, out: Path | str | None, key: SigningKey, *, base_dir: Path | str | None = None
          ) -> Packed:
    """`pack`, returning the package's size and manifest too.

    Every check that does not need the file hashes runs first (with placeholder digests, which
    have the same length as real ones, so the manifest's final size is known); then the files are
    read once, hashed while they are compressed, and the signed manifest is put in front.
    """
    src = Path(src_dir)
    doc = _source_manifest(src)
    files = source_files(src)
    for rel, path in files.items():
        _refuse_pickle(rel, path, src)
        if rel.endswith(WEIGHT_SUFFIX):
            from ._safetensors import validate_file

            validate_file(path)
    sizes = {rel: path.stat().st_size for rel, path in files.items()}
    doc["files"] = {rel: {"sha256": PLACEHOLDER_DIGEST, "size": n} for rel, n in sizes.items()}
    own_digests = doc.get("kind") == "base" and isinstance(doc.get("model"), dict)
    if own_digests:
        for field in ("weights_sha256", "tokenizer_sha256"):
            doc["model"].setdefault(field, PLACEHOLDER_DIGEST)
    if base_dir is not None:
        bind_base(doc, Path(base_dir))
    where = str(src / MANIFEST_FILE)
    manifest = Manifest.from_dict(doc, where=where)
    target = _target(out, manifest)
    signature_size = len(canonical_json(key.sign(b"").to_dict()))
    head = [(MANIFEST_FILE, len(canonical_json(doc))), (SIGNATURE_FILE, signature_size)]

    def signed_head(written: dict[str, tuple[str, int]]) -> list[tuple[str, bytes]]:
        nonlocal manifest
        for rel, (_, size) in written.items():
            if size != sizes[rel]:
                raise PackageError(f"{rel} changed size while being packed", where=str(src), hint="pack again")
        hashes = {rel: digest for rel, (digest, _) in written.items()}
        doc["files"] = {rel: {"sha256": hashes[rel], "size": n} for rel, n in sizes.items()}
        if own_digests:
            _fill(doc["model"], "model", {"weights_sha256": weights_digest(hashes),
                                          "tokenizer_sha256": tokenizer_digest(hashes)}, "the source's files give")
        manifest = Manifest.from_dict(doc, where=where)
        manifest_bytes = canonical_json(doc)
        return [(MANIFEST_FILE, manifest_bytes), (SIGNATURE_FILE, canonical_json(key.sign(manifest_bytes).to_dict()))]

    try:
        written = write_archive_head_last(target, head, list(files.items()), signed_head)
    except OSError as exc:
        raise PackageError(f"cannot write package: {exc.strerror}", where=str(target)) from exc
    return Packed(target, written.size, manifest)


def _source_manifest(src: Path) -> dict:
    path = src / MANIFEST_FILE
    if not src.is_dir():
        raise PackageError("source directory does not exist", where=str(src),
                           hint="create one with: expertpm new NAME")
    if not path.is_file():
        raise PackageError(f"no {MANIFEST_FILE} in the source directory", where=str(src),
                           hint="create a source directory with: expertpm new NAME")
    doc = parse_json(path.read_bytes(), where=str(path))
    if not isinstance(doc, dict):
        raise PackageError("the manifest must be a JSON object", where=str(path))
    doc.pop("files", None)  # always recomputed from what is really there
    return doc


def source_files(src: Path) -> dict[str, Path]:
    """Every payload file of a source directory: {relative posix path: path}, sorted."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        for d in list(dirnames):
            if d.startswith("."):
                dirnames.remove(d)
            elif (here / d).is_symlink():
                raise _not_regular(here / d, src, "is a symbolic link")
        dirnames.sort()
        for f in sorted(filenames):
            path = here / f
            rel = path.relative_to(src).as_posix()
            if f.startswith(".") or f.endswith(PACKAGE_SUFFIX) or rel in (MANIFEST_FILE, SIGNATURE_FILE):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise _not_regular(path, src, "is a symbolic link")
            if not stat.S_ISREG(mode):
                raise _not_regular(path, src, "is not a regular file")
            if f.lower().endswith(FORBIDDEN_WEIGHT_SUFFIXES):
                raise PackageError(f"{rel}: pickle-based weights are refused", where=str(src), hint=_SAFETENSORS_HINT)
            found[rel] = path
    if not found:
        raise PackageError("the source directory holds no files besides the manifest", where=str(src),
                           hint="add the weights (e.g. adapter_model.safetensors)")
    return dict(sorted(found.items()))


def _not_regular(path: Path, src: Path, what: str) -> PackageError:
    return PackageError(f"{path.relative_to(src).as_posix()} {what}", where=str(src),
                        hint="packages hold only regular files; replace it with a copy of the file")


def _refuse_pickle(rel: str, path: Path, src: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise PackageError(f"{rel} is a pickle file; pickle-based weights are refused", where=str(src),
                           hint=_SAFETENSORS_HINT)
    if head == b"PK\x03\x04" and (rel.endswith(WEIGHT_SUFFIX) or _WEIGHT_NAME.search(rel)):
        raise PackageError(f"{rel} is a torch.save archive (pickle inside); pickle-based weights are refused",
                           where=str(src), hint=_SAFETENSORS_HINT)


def bind_base(doc: dict, base_dir: Path) -> None:
    """Fill (or check) `base.weights_sha256`, `tokenizer_sha256` and `vocab_size` of an expert's
    manifest from the real base model in `base_dir` (a Hugging Face model directory or an unpacked
    base package); fields that are absent or placeholders (all zeros) are filled."""
    if doc.get("kind") != "expert":
        raise PackageError("--base applies to experts only (this manifest's kind is "
                           f"{doc.get('kind')!r})", where=MANIFEST_FILE)
    if not base_dir.is_dir() or not any(base_dir.glob(f"*{WEIGHT_SUFFIX}")):
        raise PackageError(f"no *{WEIGHT_SUFFIX} weights in the base directory", where=str(base_dir),
                           hint="point --base at a Hugging Face model directory or an unpacked base package")
    base = doc.setdefault("base", {})
    if not isinstance(base, dict):
        return  # the manifest validation reports it
    weights, tokenizer = directory_digests(base_dir)
    identity = _base_identity(base_dir)
    if identity is not None:
        name, version = identity
        base.setdefault("name", name)
        base.setdefault("version", f"^{version}")
        if isinstance(base["version"], str) and not VersionRange.parse(base["version"]).contains(version):
            raise PackageError(f"base.version {base['version']!r} does not include the base's version {version}",
                               where=MANIFEST_FILE, hint="widen base.version or use the matching base")
    found = {"weights_sha256": weights, "tokenizer_sha256": tokenizer, "vocab_size": _vocab_size(base_dir)}
    _fill(base, "base", found, f"the base in {base_dir} has")


def _fill(section: dict, prefix: str, found: dict, source_has: str) -> None:
    """Set fields that are absent or placeholders; refuse values that disagree with what was found."""
    for field, value in found.items():
        current = section.get(field)
        if current is None or current == PLACEHOLDER_DIGEST:
            section[field] = value
        elif current != value:
            raise PackageError(f"{prefix}.{field} is {current} but {source_has} {value}", where=MANIFEST_FILE,
                               hint=f"fix {prefix}.{field}, or set it to zeros to have pack fill it in")


def _base_identity(base_dir: Path) -> tuple[str, Version] | None:
    """(name, version) when `base_dir` is a base package, unpacked or still a source directory."""
    path = base_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    doc = parse_json(path.read_bytes(), where=str(path))
    if not isinstance(doc, dict) or doc.get("kind") != "base" or not isinstance(doc.get("name"), str):
        raise PackageError("the manifest in the base directory is not a base model's", where=str(path))
    return validate_name(doc["name"], where=str(path)), Version.parse(str(doc.get("version")), where=str(path))


def _vocab_size(base_dir: Path) -> int:
    config = base_dir / "config.json"
    if not config.is_file():
        raise PackageError("no config.json in the base directory", where=str(base_dir),
                           hint="point --base at a Hugging Face model directory or an unpacked base package")
    doc = parse_json(config.read_bytes(), where=str(config))
    vocab = doc.get("vocab_size") if isinstance(doc, dict) else None
    if vocab is None and isinstance(doc, dict) and isinstance(doc.get("text_config"), dict):
        vocab = doc["text_config"].get("vocab_size")
    if not isinstance(vocab, int) or vocab < 1:
        raise PackageError("the base has no vocab_size in config.json", where=str(config),
                           hint="point --base at a Hugging Face model directory")
    return vocab


def _target(out: Path | str | None, manifest: Manifest) -> Path:
    """`-o` names a file when it ends in `.expert`, else a directory (created if missing)."""
    filename = package_filename(manifest.name, str(manifest.version))
    if out is None:
        return Path.cwd() / filename
    out = Path(out)
    if out.suffix != ".expert" or out.is_dir():
        if out.exists() and not out.is_dir():
            raise PackageError("output path exists and is not a directory", where=str(out),
                               hint="name a directory, or a file ending in .expert")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PackageError(f"cannot create output directory: {exc.strerror}", where=str(out)) from exc
        return out / filename
    if not out.parent.is_dir():
        raise PackageError("output directory does not exist", where=str(out.parent), hint="create it first")
    return out
