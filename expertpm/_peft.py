"""PEFT interop: a PEFT adapter directory to an expert package and back, bytes unchanged.

A PEFT adapter directory holds `adapter_config.json` and `adapter_model.safetensors` as
`save_pretrained` writes them. Both travel byte-for-byte; the manifest's `adapter` section is
derived from the config (and, where the config gives a pattern rather than names, from the tensor
names). LoRA, DoRA (`use_dora`), IA³ and prompt tuning are supported; pickled
`adapter_model.bin` is refused. No torch or peft import here.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from ._canonical import canonical_json, parse_json
from ._errors import PackageError
from ._keys import SigningKey
from ._manifest import MANIFEST_FILE
from ._names import normalize_name
from ._pack import Packed, bind_base, build
from ._safetensors import validate_file

__all__ = ["PEFT_CONFIG", "PEFT_WEIGHTS", "adapter_section", "peft_source", "pack_peft", "build_peft", "export_peft"]

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
_MODULE_OF = {
    "lora": re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)\.(?:lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.|$)"),
    "ia3": re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)\.ia3_l(?:\.|$)"),
}
_SUPPORTED = "expertpm packages LoRA, DoRA, IA3 and prompt-tuning adapters"


def adapter_section(config: dict, tensors: dict[str, str], *, where: str = PEFT_CONFIG) -> dict:
    """The manifest's `adapter` section for a PEFT config and its tensors ({name: safetensors dtype})."""
    peft_type = config.get("peft_type")
    section: dict = {}
    if peft_type == "LORA":
        section["type"] = "dora" if config.get("use_dora") else "lora"
        section["rank"], section["alpha"] = config.get("r"), config.get("lora_alpha")
        section["target_modules"] = _modules(config.get("target_modules"), tensors, "lora", where)
    elif peft_type == "IA3":
        section["type"] = "ia3"
        section["target_modules"] = _modules(config.get("target_modules"), tensors, "ia3", where)
        feedforward = config.get("feedforward_modules") or []
        section["feedforward_modules"] = sorted(feedforward) if isinstance(feedforward, list) else \
            [m for m in section["target_modules"] if re.fullmatch(feedforward, m)]
    elif peft_type == "PROMPT_TUNING":
        section["type"] = "prompt"
        section["num_virtual_tokens"] = config.get("num_virtual_tokens")
    else:
        raise PackageError(f"PEFT type {peft_type!r} is not supported", where=where, hint=_SUPPORTED)
    section["dtype"] = _dtype(tensors, where)
    return section


def _modules(value: object, tensors: dict[str, str], kind: str, where: str) -> list[str]:
    if isinstance(value, list) and value:
        return sorted(set(value))
    found = sorted({m.group(1) for name in tensors if (m := _MODULE_OF[kind].search(name))})
    if not found:
        raise PackageError(f"cannot tell which modules the adapter targets (target_modules is {value!r})",
                           where=where, hint="list the module names in target_modules")
    return found


def _dtype(tensors: dict[str, str], where: str) -> str:
    counts = Counter(tensors.values())
    if not counts:
        raise PackageError(f"{PEFT_WEIGHTS} holds no tensors", where=where)
    dtype = counts.most_common(1)[0][0]
    if dtype not in _DTYPES:
        raise PackageError(f"adapter tensors are {dtype}; expertpm supports float32, bfloat16 and float16",
                           where=where)
    return _DTYPES[dtype]


def peft_source(peft_dir: Path | str, src_dir: Path | str, *, name: str, version: str, base_dir: Path | str,
                base_name: str | None = None, base_version: str | None = None, description: str = "",
                license: str = "UNLICENSED", authors: list[str] | None = None, extra: dict | None = None) -> Path:
    """Write an expert source directory for a PEFT adapter: its two files, verbatim, and a manifest
    bound to the base model in `base_dir`. `extra` adds manifest sections (routing, eval, ...)."""
    peft_dir, src, base_dir = Path(peft_dir), Path(src_dir), Path(base_dir)
    config_path, weights_path = peft_dir / PEFT_CONFIG, peft_dir / PEFT_WEIGHTS
    if (peft_dir / "adapter_model.bin").exists() and not weights_path.exists():
        raise PackageError("adapter_model.bin is a pickle file; pickle-based weights are refused", where=str(peft_dir),
                           hint="save the adapter with save_pretrained(..., safe_serialization=True)")
    for path in (config_path, weights_path):
        if not path.is_file():
            raise PackageError(f"no {path.name} in the PEFT adapter directory", where=str(peft_dir),
                               hint="point --from-peft at the directory PeftModel.save_pretrained wrote")
    config = parse_json(config_path.read_bytes(), where=str(config_path))
    if not isinstance(config, dict):
        raise PackageError("adapter_config.json must be a JSON object", where=str(config_path))
    tensors = {t.name: t.dtype for t in validate_file(weights_path).tensors}
    default_base = Path(str(config.get("base_model_name_or_path") or base_dir.name)).name
    doc = {"format_version": 1, "name": name, "version": version, "kind": "expert", "description": description,
           "license": license, "authors": authors or ["unknown"],
           "base": {"name": base_name or normalize_name(default_base)},
           "adapter": adapter_section(config, tensors, where=str(config_path))}
    if base_version:
        doc["base"]["version"] = base_version
    if not (base_dir / MANIFEST_FILE).is_file():
        doc["base"].setdefault("version", "*")
    doc.update(extra or {})
    bind_base(doc, base_dir)
    src.mkdir(parents=True, exist_ok=True)
    if any(src.iterdir()):
        raise PackageError("the source directory to create is not empty", where=str(src))
    shutil.copyfile(config_path, src / PEFT_CONFIG)
    shutil.copyfile(weights_path, src / PEFT_WEIGHTS)
    (src / MANIFEST_FILE).write_bytes(canonical_json(doc))
    return src


def pack_peft(peft_dir: Path | str, out: Path | str | None, key: SigningKey, *, base_dir: Path | str,
              **manifest) -> Path:
    """Pack a PEFT adapter directory straight into a signed `.expert` (see `peft_source`)."""
    return build_peft(peft_dir, out, key, base_dir=base_dir, **manifest).path


def build_peft(peft_dir: Path | str, out: Path | str | None, key: SigningKey, *, base_dir: Path | str,
               **manifest) -> Packed:
    """`pack_peft`, returning the package's size and manifest too."""
    with tempfile.TemporaryDirectory(prefix="expertpm-peft-") as tmp:
        src = peft_source(peft_dir, Path(tmp) / "src", base_dir=base_dir, **manifest)
        return build(src, out, key)


def export_peft(package: Path | str, out_dir: Path | str, *, trusted_key_ids: set[str] | None = None) -> Path:
    """Verify an expert package and write its PEFT adapter directory (config and weights, verbatim)."""
    from ._package import extract_verified

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PackageError("the export directory exists and is not empty", where=str(out),
                           hint="choose a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".expertpm-export-", dir=out.parent) as tmp:
        verified = extract_verified(package, Path(tmp), trusted_key_ids=trusted_key_ids)
        if verified.manifest.kind != "expert":
            raise PackageError(f"{verified.manifest.id} is a base model, not an expert", where=str(package))
        missing = [f for f in (PEFT_CONFIG, PEFT_WEIGHTS) if f not in verified.manifest.files]
        if missing:
            raise PackageError(f"{verified.manifest.id} has no {' or '.join(missing)}", where=str(package),
                               hint="only packages with a PEFT adapter can be exported")
        staging = Path(tempfile.mkdtemp(dir=tmp))
        for name in (PEFT_CONFIG, PEFT_WEIGHTS):
            os.replace(Path(tmp) / name, staging / name)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    return out
