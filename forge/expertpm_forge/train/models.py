"""Loading a base model and putting a PEFT adapter on it (LoRA, DoRA, IA³, prompt tuning)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from expertpm._errors import UserError

from .config import AdapterSpec


class ModelLoadError(UserError):
    """A base model or adapter directory cannot be loaded."""


def dtype_of(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_base(base_dir: Path, dtype: str = "float32"):
    """(model, tokenizer) of a local Hugging Face model directory, offline."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from ..tokenizer import load_tokenizer

    hf_logging.disable_progress_bar()  # per-tensor loading bars drown forge's own progress

    base_dir = Path(base_dir)
    if not (base_dir / "config.json").is_file():
        raise ModelLoadError("not a model directory (no config.json)", where=str(base_dir),
                             hint="point at a base built by forge or an installed base package")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype_of(dtype), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the model: {exc}", where=str(base_dir)) from exc
    model.config.use_cache = False
    return model, load_tokenizer(base_dir)


def context_length(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", 0) or 0)


def peft_config(spec: AdapterSpec):
    from peft import IA3Config, LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType

    if spec.type in ("lora", "dora"):
        return LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                          target_modules=list(spec.target_modules), use_dora=spec.type == "dora",
                          task_type=TaskType.CAUSAL_LM)
    if spec.type == "ia3":
        return IA3Config(target_modules=list(spec.target_modules),
                         feedforward_modules=list(spec.feedforward_modules), task_type=TaskType.CAUSAL_LM)
    # Soft prompts start as embeddings of random vocabulary tokens: on the embedding scale.
    return PromptTuningConfig(num_virtual_tokens=spec.num_virtual_tokens,
                              prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB, task_type=TaskType.CAUSAL_LM)


def attach_adapter(model, spec: AdapterSpec, seed: int):
    """A PeftModel with a freshly initialised, trainable adapter (deterministic for a seed)."""
    import torch
    from peft import get_peft_model

    _check_targets(model, spec)
    torch.manual_seed(seed)
    return get_peft_model(model, peft_config(spec))


def load_adapter(model, adapter_dir: Path, *, trainable: bool):
    """A PeftModel with an existing adapter (a PEFT `save_pretrained` directory)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelLoadError("not an adapter directory (no adapter_config.json)", where=str(adapter_dir))
    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the adapter: {exc}", where=str(adapter_dir)) from exc


def adapter_spec_of(adapter_dir: Path) -> AdapterSpec:
    """The AdapterSpec described by a PEFT adapter_config.json."""
    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    kind = cfg.get("peft_type", "").lower()
    if kind == "lora":
        return AdapterSpec(type="dora" if cfg.get("use_dora") else "lora", rank=cfg["r"], alpha=cfg["lora_alpha"],
                           target_modules=tuple(sorted(cfg["target_modules"])))
    if kind == "ia3":
        return AdapterSpec(type="ia3", target_modules=tuple(sorted(cfg["target_modules"])),
                           feedforward_modules=tuple(sorted(cfg["feedforward_modules"])))
    if kind == "prompt_tuning":
        return AdapterSpec(type="prompt", num_virtual_tokens=cfg["num_virtual_tokens"])
    raise ModelLoadError(f"unsupported adapter type {cfg.get('peft_type')!r}", where=str(adapter_dir))


def save_adapter(peft_model, out_dir: Path, *, base_name: str | None) -> Path:
    """Write exactly what PEFT's `save_pretrained` writes for the adapter, minus its model card.

    `base_model_name_or_path` is set to the base's package name (not a local path), so the same
    training run gives the same bytes on every machine.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    config = peft_model.peft_config["default"]
    config.base_model_name_or_path = base_name
    config.revision = None
    peft_model.save_pretrained(str(out_dir), save_embedding_layers=False)  # no hub lookup of the base
    card = out_dir / "README.md"
    if card.exists():
        card.unlink()  # a generated model card naming local paths; the manifest describes the expert
    return out_dir


def _check_targets(model, spec: AdapterSpec) -> None:
    if spec.type == "prompt":
        return
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in spec.target_modules if m not in names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise UserError(f"target module(s) {', '.join(missing)} not found in the base model",
                        where="adapter.target_modules", hint=f"the base's linear layers are: {', '.join(linear)}")
