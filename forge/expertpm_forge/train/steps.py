"""The pipeline's `train` step: an adapter (SFT, DPO) or a base model (continued pre-training).

Outputs (under experts/<name>/.forge/train/):
  adapter/   adapter_config.json + adapter_model.safetensors, as PEFT writes them (SFT, DPO)
  model/     a Hugging Face model directory with its tokenizer (CPT)
  curve.json, curve.csv, curve.png, summary.json   the loss curve and the run's provenance

The base is `base.path`, the newest installed `base.package` in its range, or, for a CPT recipe
with `base.config`, a new model: a tokenizer trained on the training texts and a randomly
initialised Qwen3 of the configured shape. Checkpoints live in `.forge/cache/train/` so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

from ..pipeline import StepContext, StepError, StepInputs, register_step
from ..recipe import Recipe
from .checkpoint import CheckpointError
from .config import AdapterSpec, TrainConfig

__all__ = ["base_dir_of", "base_files", "train_config", "adapter_spec", "read_base_config"]

BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
CURVE_FILES = ("curve.json", "curve.csv", "curve.png", "summary.json")


def base_dir_of(recipe: Recipe) -> Path | None:
    """The base model directory (`base.path` or the installed `base.package`); None for `base.config`."""
    from ..data.chunk import base_model_dir

    return base_model_dir(recipe)


def _require_base(recipe: Recipe) -> Path:
    path = base_dir_of(recipe)
    if path is None or not (path / "config.json").is_file():
        if recipe.base.package is not None:
            raise StepError(f"the base package {recipe.base.package}@{recipe.base.version_range} is not installed",
                            where=recipe.where, hint=f"install it first: expertpm install {recipe.base.package}")
        raise StepError("no base model to train on", where=recipe.where,
                        hint="set base.path (a model directory), base.package (an installed base) or, for "
                             "continued pre-training of a new base, base.config")
    return path


def base_files(recipe: Recipe) -> list[Path]:
    """The files that identify the base (weights, tokenizer, config), or the `base.config` file."""
    if recipe.base.config is not None:
        return [recipe.base.config]
    path = base_dir_of(recipe)
    if path is None:
        return []
    return sorted(path.glob("*.safetensors")) + [path / n for n in BASE_FILES if (path / n).is_file()]


def train_config(recipe: Recipe) -> TrainConfig:
    t = recipe.train
    return TrainConfig(learning_rate=t.lr, epochs=t.epochs, max_steps=t.max_steps, batch_size=t.batch_size,
                       grad_accum=t.grad_accum, max_length=t.max_len, warmup_steps=t.warmup_steps,
                       weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, seed=t.seed,
                       checkpoint_every=t.checkpoint_every, dtype=t.dtype, dpo_beta=t.dpo_beta)


def adapter_spec(recipe: Recipe) -> AdapterSpec:
    t = recipe.train
    return AdapterSpec(type=t.adapter, rank=t.rank, alpha=t.alpha, dropout=t.dropout,
                       target_modules=t.target_modules, feedforward_modules=t.feedforward_modules,
                       num_virtual_tokens=t.num_virtual_tokens)


def read_base_config(recipe: Recipe):
    """`base.config`: JSON {"model": {BaseModelConfig fields}, "tokenizer": {TokenizerConfig fields}}."""
    from ..base import BaseModelConfig
    from ..tokenizer import TokenizerConfig

    path = recipe.base.config
    where = f"{recipe.where}: base.config"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepError(f"cannot read {path.name}: {exc}", where=where) from exc
    out = []
    for section, cls in (("model", BaseModelConfig), ("tokenizer", TokenizerConfig)):
        values = doc.get(section, {}) if isinstance(doc, dict) else None
        known = {f.name for f in fields(cls)}
        if not isinstance(values, dict) or set(values) - known:
            raise StepError(f"{path.name}: [{section}] must be an object with keys from: {', '.join(sorted(known))}",
                            where=where)
        try:
            out.append(cls(**values))
        except TypeError as exc:
            raise StepError(f"{path.name}: {section}: {exc}", where=where) from exc
    return tuple(out)


def _new_base(ctx: StepContext, texts_file: Path) -> Path:
    """Tokenizer trained on the training texts + a freshly initialised model (seeded)."""
    from ..base import init_base
    from ..tokenizer import train_tokenizer

    model_config, tokenizer_config = read_base_config(ctx.recipe)
    corpus = ctx.scratch / "corpus.txt"
    with corpus.open("w", encoding="utf-8") as fh:
        for line in texts_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                fh.write(json.loads(line)["text"].strip() + "\n\n")
    tokenizer_dir = train_tokenizer([corpus], ctx.scratch / "tokenizer", tokenizer_config)
    return init_base(tokenizer_dir, ctx.scratch / "init", model_config, seed=ctx.recipe.train.seed)


def _run(ctx: StepContext, fn, **kwargs):
    """Run a training method in the scratch directory, resuming a checkpoint of the same run."""
    run_dir = ctx.scratch / "run"
    with ctx.progress(None, "optimiser steps") as advance:
        def progress(step: int, total: int, loss: float) -> None:
            advance(1)

        try:
            return fn(out_dir=run_dir, progress=progress, **kwargs)
        except CheckpointError:
            ctx.log("the checkpoint in .forge/cache/train belongs to an earlier run: starting over")
            shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
            return fn(out_dir=run_dir, progress=progress, resume=False, **kwargs)


def train(ctx: StepContext) -> dict:
    """Train the adapter (SFT or DPO) or the base (continued pre-training)."""
    from .methods import continue_pretraining, train_dpo, train_sft

    recipe = ctx.recipe
    method = recipe.train.method
    data = ctx.input("split") / "train.jsonl"
    config = train_config(recipe)
    if method == "cpt":
        from .data import Records

        start = _new_base(ctx, data) if recipe.base.config is not None else _require_base(recipe)
        result = _run(ctx, continue_pretraining, model_dir=start, corpus=Records.from_jsonl(data), config=config)
        shutil.copytree(result.output, ctx.out / "model")
    else:
        base = _require_base(recipe)
        common = dict(base_dir=base, data=data, adapter=adapter_spec(recipe), config=config,
                      template="{prompt}", base_name=recipe.base.package)  # records hold the rendered prompt
        result = _run(ctx, train_sft if method == "sft" else train_dpo, **common)
        shutil.copytree(result.output, ctx.out / "adapter")
    for name in CURVE_FILES:
        if (result.out_dir / name).is_file():
            shutil.copyfile(result.out_dir / name, ctx.out / name)
    return {"method": method, "steps": result.steps, "final_loss": result.final_loss,
            "tokens_per_s": round(result.tokens_per_s, 1), "seconds": round(result.seconds, 1)}


register_step("train", train, inputs=StepInputs(
    steps=("split",), config=("train", "base", "expert.name"), files=base_files,
    code=("expertpm_forge.train.methods", "expertpm_forge.train.loop", "expertpm_forge.train.data",
          "expertpm_forge.train.models", "expertpm_forge.train.objectives", "expertpm_forge.base",
          "expertpm_forge.tokenizer")))
