"""The pipeline's `build` step and `expertpm forge build`: a trained expert (or base) → `.expert`.

The step writes a package *source directory* (`.forge/build/package/`: `manifest.json` plus the
payload), which is deterministic and needs no key. Packing it into a signed
`<name>-<version>.expert` is `pack_built(recipe, key, out)`, what `expertpm forge build` does
after running the pipeline up to `build`.

The manifest gathers everything forge knows: the recipe's `[expert]`, `[routing]` and
`[generation]`; the adapter section derived from the PEFT config (expertpm._peft); the base's
name, range and digests bound from the real base model (expertpm._pack.bind_base); the
evaluation (`eval`: metric, expert and base score, n, forgetting probe); and the provenance of the
data and the training run (`training`). A base recipe (continued pre-training) becomes a
`kind = "base"` package holding the Hugging Face model directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from expertpm._canonical import canonical_json, sha256_file
from expertpm._errors import PackageError

from .pipeline import StepContext, StepError, StepInputs, register_step, step_dir
from .recipe import Recipe

__all__ = ["PACKAGE_DIR", "manifest_extras", "build", "pack_built", "built_package_dir"]

PACKAGE_DIR = "package"
BASE_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                    "tokenizer_config.json", "special_tokens_map.json")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _routing(recipe: Recipe) -> dict:
    r = recipe.routing
    out: dict[str, Any] = {"keywords": list(r.keywords), "exclude_keywords": list(r.exclude_keywords),
                           "examples": list(r.examples), "priority": r.priority}
    return {k: v for k, v in out.items() if v != []}


def _training(ctx: StepContext) -> dict:
    """Provenance: the training run's summary and where its data came from."""
    recipe = ctx.recipe
    summary = _read_json(ctx.input("train") / "summary.json") or {}
    keep = ("method", "adapter", "template", "data_sha256", "examples", "blocks", "block_tokens", "config",
            "learning_rate", "steps", "tokens", "final_loss", "run_sha256", "versions")
    out: dict[str, Any] = {"tool": "expertpm forge", **{k: summary[k] for k in keep if k in summary}}
    steps = {}
    for name in recipe.pipeline.steps:
        manifest = _read_json(step_dir(recipe, name) / "_step.json")
        if name in ("train", "evaluate", "build") or not manifest:
            continue
        steps[name] = {k: v for k, v in manifest.get("summary", {}).items() if not isinstance(v, (dict, list))}
    out["data"] = steps
    provenance = _read_json(step_dir(recipe, "synthesize") / "provenance.json")
    if provenance:
        out["teacher"] = provenance.get("teacher", {})
    recipe_digest, _ = sha256_file(recipe.path)
    out["recipe_sha256"] = recipe_digest
    return out


def manifest_extras(ctx: StepContext) -> dict:
    """The manifest sections forge adds to an expert: routing, generation, eval, training."""
    recipe = ctx.recipe
    extras: dict[str, Any] = {"training": _training(ctx)}
    routing = _routing(recipe)
    if routing:
        extras["routing"] = routing
    generation = recipe.generation.manifest()
    if generation:
        extras["generation"] = generation
    if ctx.has_input("evaluate"):
        doc = _read_json(ctx.input("evaluate") / "eval.json") or {}
        if {"metric", "expert_score", "base_score", "n"} <= set(doc):
            extras["eval"] = {k: doc[k] for k in ("metric", "expert_score", "base_score", "n", "probe") if k in doc}
    return extras


def _build_expert(ctx: StepContext, target: Path) -> dict:
    from expertpm._peft import peft_source

    from .train.steps import _require_base

    recipe = ctx.recipe
    info = recipe.expert
    peft_source(ctx.input("train") / "adapter", target, name=info.name, version=info.version,
                base_dir=_require_base(recipe), base_name=recipe.base.package,
                base_version=recipe.base.version_range, description=info.description,
                license=info.license or "UNLICENSED", authors=list(info.authors) or ["unknown"],
                extra=manifest_extras(ctx))
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


def _build_base(ctx: StepContext, target: Path) -> dict:
    from .base import model_info

    recipe = ctx.recipe
    info = recipe.expert
    model_dir = ctx.input("train") / "model"
    target.mkdir(parents=True)
    for name in BASE_MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, target / name)
    model = model_info(target)
    training = _training(ctx)
    evaluation = _read_json(ctx.input("evaluate") / "eval.json") if ctx.has_input("evaluate") else None
    if evaluation:
        training["eval"] = evaluation
    doc = {"format_version": 1, "name": info.name, "version": info.version, "kind": "base",
           "description": info.description, "license": info.license or "UNLICENSED",
           "authors": list(info.authors) or ["unknown"], "model": model, "training": training}
    generation = recipe.generation.manifest()
    if generation:
        doc["generation"] = generation
    (target / "manifest.json").write_bytes(canonical_json(doc))
    return doc


def build(ctx: StepContext) -> dict:
    """Write the package source directory: manifest.json and the adapter (or base model) files."""
    recipe = ctx.recipe
    if not ctx.has_input("train"):
        raise StepError("the build step packages a trained expert, but this recipe does not train",
                        where=recipe.where, hint="add 'train' (and 'evaluate') to pipeline.steps")
    target = ctx.out / PACKAGE_DIR
    doc = _build_base(ctx, target) if recipe.train.method == "cpt" else _build_expert(ctx, target)
    from expertpm._pack import source_files

    summary = {"name": doc["name"], "version": doc["version"], "kind": doc["kind"],
               "files": len(source_files(target))}
    if "eval" in doc:
        summary.update(metric=doc["eval"]["metric"], expert_score=doc["eval"]["expert_score"],
                       base_score=doc["eval"]["base_score"])
    return summary


def built_package_dir(recipe: Recipe) -> Path:
    """The package source directory the build step wrote (after `run_pipeline(..., until="build")`)."""
    path = step_dir(recipe, "build") / PACKAGE_DIR
    if not (path / "manifest.json").is_file():
        raise StepError("the expert has not been built", where=recipe.where,
                        hint=f"run `expertpm forge build {recipe.root.as_posix()}`")
    return path


def pack_built(recipe: Recipe, key, out: Path | str | None):
    """Sign and pack the built source directory into `<name>-<version>.expert` (in `out`, a
    directory, or at `out`, a file path); returns expertpm._pack.Packed."""
    from expertpm._pack import build as pack_source

    try:
        return pack_source(built_package_dir(recipe), out, key)
    except PackageError as exc:
        if exc.where is None:
            exc.where = recipe.where
        raise


register_step("build", build, inputs=StepInputs(
    steps=("train", "evaluate"), config=("expert", "routing", "generation", "base", "train.method"),
    files=lambda r: [r.path] + _base_files(r),
    code=("expertpm._peft", "expertpm._pack", "expertpm._manifest", "expertpm_forge.base"), seeded=False))


def _base_files(recipe: Recipe) -> list[Path]:
    from .train.steps import base_files

    return [] if recipe.base.config is not None else base_files(recipe)
