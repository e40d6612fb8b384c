"""Reading installed packages for the runtime: expert checks before any tensor is touched. No torch.

An expert is refused here — from its manifest alone — when its directory is missing, when it is
not an expert, or when it was built for another base (`base.weights_sha256` differs from the
digest of the loaded base). Only then does the model runner map its safetensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expertpm._canonical import parse_json
from expertpm._errors import FormatError, RuntimeUserError
from expertpm._manifest import MANIFEST_FILE, Manifest, directory_digests

from .config import ExpertSpec

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PEFT_TYPES = {"lora": "LORA", "dora": "LORA", "ia3": "IA3", "prompt": "PROMPT_TUNING"}


@dataclass(frozen=True, slots=True)
class ExpertPackage:
    """An expert validated against the loaded base; what the adapter loader needs."""

    digest: str
    path: Path
    name: str
    version: str
    adapter_type: str  # lora | dora | ia3 | prompt
    peft_config: dict[str, Any]
    num_virtual_tokens: int

    @property
    def weights_file(self) -> Path:
        return self.path / ADAPTER_WEIGHTS

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def base_weights_digest(model_dir: Path) -> str:
    """The base's identity: from its package manifest when it is one, else hashed from disk."""
    manifest = model_dir / MANIFEST_FILE
    if manifest.is_file():
        try:
            m = Manifest.load(manifest)
        except FormatError as exc:
            raise RuntimeUserError(f"base model at {model_dir} has an invalid manifest: {exc.message}",
                                   hint="reinstall the base package") from exc
        if m.kind == "base":
            return m.weights_sha256
    return directory_digests(model_dir)[0]


def read_expert(spec: ExpertSpec, base_digest: str) -> ExpertPackage:
    """Validate one expert for the loaded base, reading only its manifest and PEFT config."""
    path = Path(spec.path)
    if not _SHA256.match(spec.digest or ""):
        raise RuntimeUserError(f"expert digest {spec.digest!r} is not a sha256 hex string",
                               hint="pass the installed package's digest")
    if not path.is_dir():
        raise RuntimeUserError(f"expert directory {path} does not exist",
                               hint="install the expert with `expertpm install NAME`")
    if not (path / MANIFEST_FILE).is_file():
        raise RuntimeUserError(f"{path} is not an installed expert package (no {MANIFEST_FILE})",
                               hint="install the expert with `expertpm install NAME`")
    try:
        manifest = Manifest.load(path / MANIFEST_FILE)
    except FormatError as exc:
        raise RuntimeUserError(f"expert at {path} has an invalid manifest: {exc.message}",
                               hint="reinstall the expert") from exc
    if manifest.kind != "expert":
        raise RuntimeUserError(f"{manifest.id} is a {manifest.kind} package, not an expert",
                               hint="name an expert package")
    if manifest.weights_sha256 != base_digest:
        base = manifest.doc["base"]
        raise RuntimeUserError(
            f"expert {manifest.id} is built for a different base model "
            f"({base['name']} {base['version']}, weights {manifest.weights_sha256[:12]}) "
            f"than the loaded one (weights {base_digest[:12]})",
            hint="install a version of the expert built for this base, or load the base it names")
    adapter = manifest.doc["adapter"]
    for needed in (ADAPTER_WEIGHTS, ADAPTER_CONFIG):
        if not (path / needed).is_file():
            raise RuntimeUserError(f"expert {manifest.id} lacks {needed}", where=str(path),
                                   hint="reinstall the expert")
    peft_config = parse_json((path / ADAPTER_CONFIG).read_bytes(), where=str(path / ADAPTER_CONFIG))
    kind = adapter["type"]
    if not isinstance(peft_config, dict) or peft_config.get("peft_type") != _PEFT_TYPES[kind] or (
            kind in ("lora", "dora") and bool(peft_config.get("use_dora")) != (kind == "dora")):
        raise RuntimeUserError(
            f"expert {manifest.id}: {ADAPTER_CONFIG} does not describe a {kind} adapter",
            where=str(path), hint="repackage the expert from its PEFT output")
    return ExpertPackage(
        digest=spec.digest, path=path, name=manifest.name, version=str(manifest.version),
        adapter_type=kind, peft_config=peft_config,
        num_virtual_tokens=int(adapter.get("num_virtual_tokens", 0)) if kind == "prompt" else 0)
