"""`expertpm forge publish`: a forge-built expert into a signed index, only if it beats its base.

    publish_built(index, source, key, force=False) -> expertpm._index.Published

`source` is a `.expert` file or an expert source directory (which is built first: the pipeline up
to `build`, cached, then packed with `key` into `.forge/dist/`). An expert package must carry an
`eval` section whose `expert_score` is above its `base_score`; otherwise the publish is refused
unless `force` is set. Base packages (`kind = "base"`) have no base to beat and always pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from expertpm._errors import UserError

__all__ = ["NotBetterThanBase", "EvalVerdict", "eval_verdict", "check_beats_base", "package_for", "publish_built"]

DIST_DIR = "dist"


class NotBetterThanBase(UserError):
    """An expert's evaluation does not show it beating its base model."""


@dataclass(frozen=True, slots=True)
class EvalVerdict:
    beats_base: bool
    reason: str  # one line: the scores, or why there are none


def eval_verdict(manifest: Mapping) -> EvalVerdict:
    """Whether a manifest's `eval` shows the expert beating its base (bases always do)."""
    if manifest.get("kind") == "base":
        return EvalVerdict(True, "a base model has no base to beat")
    evaluation = manifest.get("eval")
    if not isinstance(evaluation, Mapping):
        return EvalVerdict(False, "the package has no eval section (it was never evaluated against its base)")
    expert, base = evaluation.get("expert_score"), evaluation.get("base_score")
    if not isinstance(expert, (int, float)) or not isinstance(base, (int, float)):
        return EvalVerdict(False, "the eval section has no expert_score and base_score")
    scores = (f"expert {expert:.4g} vs base {base:.4g} on {evaluation.get('metric', '?')} "
              f"(n={evaluation.get('n', '?')})")
    return EvalVerdict(expert > base, scores)


def check_beats_base(manifest: Mapping, *, force: bool = False, where: str | None = None) -> EvalVerdict:
    """Raise NotBetterThanBase unless the expert beats its base or `force` is set."""
    verdict = eval_verdict(manifest)
    if not verdict.beats_base and not force:
        name = f"{manifest.get('name')}@{manifest.get('version')}"
        raise NotBetterThanBase(f"{name} does not beat its base: {verdict.reason}", where=where,
                                hint="improve the expert (data, steps, rank) and rebuild, or pass --force to "
                                     "publish it anyway")
    return verdict


def package_for(source: Path | str, key, *, reporter=None) -> Path:
    """The `.expert` to publish: `source` itself, or the built and packed expert of a source dir."""
    source = Path(source)
    if source.is_file() and source.suffix == ".expert":
        return source
    from .build import pack_built
    from .pipeline import run_pipeline
    from .recipe import load_recipe

    recipe = load_recipe(source)
    run_pipeline(recipe, until="build", reporter=reporter)
    out = recipe.forge_dir / DIST_DIR
    out.mkdir(parents=True, exist_ok=True)
    return pack_built(recipe, key, out).path


def publish_built(index, source: Path | str, key, *, force: bool = False, reporter=None):
    """Publish a forge-built expert (or base) to the index at `index` (a directory or file:// URL)."""
    from expertpm._index import publish
    from expertpm._package import read_manifest

    package = package_for(source, key, reporter=reporter)
    manifest, _, _ = read_manifest(package)
    check_beats_base(manifest.doc, force=force, where=str(package))
    return publish(index, package, key)
