"""forge's pipeline: plain named steps, each re-run only when the sha256 of its inputs changes.

A step is a function ``fn(ctx: StepContext) -> dict | None`` registered under a name with the
inputs it depends on (upstream steps' outputs, recipe slices, files, code modules). It writes
its outputs into ``ctx.out``; on success that directory becomes ``experts/<name>/.forge/<step>/``
holding ``_step.json`` (the inputs, their digest, the outputs' digests and the returned summary).
A later run skips the step when the digest of its inputs is unchanged and its outputs are
intact. Upstream steps enter a step's inputs by the digest of their *outputs*, so a step that
re-runs and produces the same bytes does not invalidate the steps after it.

Other modules register steps with ``register_step`` at import time; the pipeline imports
``expertpm_forge.data.steps`` and every ``expertpm_forge.<package>.steps`` module it finds.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import pkgutil
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping

from expertpm._canonical import canonical_json, sha256_bytes, sha256_file
from expertpm._errors import UserError

from ._pipeline_report import NullReporter, Reporter
from .recipe import STEP_ORDER, Recipe, display_path

__all__ = [
    "StepInputs", "Step", "StepContext", "StepOutcome", "StepState", "StepError",
    "register_step", "registered_steps", "load_step_modules", "run_pipeline", "plan", "step_dir",
]

STEP_FILE = "_step.json"
FORMAT = 1


class StepError(UserError):
    """A step cannot run: unavailable, missing upstream outputs, or refused by the step."""


@dataclass(frozen=True, slots=True)
class StepInputs:
    steps: tuple[str, ...] = ()  # upstream steps whose outputs are read (those in the recipe count)
    config: tuple[str, ...] = ()  # recipe slices such as "data" or "train.seed"
    files: Callable[[Recipe], Iterable[Path]] | None = None  # further input files, by content
    code: tuple[str, ...] = ()  # modules whose source is the step's code version (fn's own module always)
    seeded: bool = True  # the step uses ctx.seed, so train.seed is one of its inputs


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    fn: Callable[["StepContext"], Mapping[str, Any] | None]
    inputs: StepInputs
    description: str = ""


@dataclass(slots=True)
class StepContext:
    recipe: Recipe
    step: str
    out: Path  # write outputs here (fresh and empty)
    scratch: Path  # .forge/cache/<step>/: survives failures and re-runs (checkpoints, caches)
    seed: int  # deterministic per (train.seed, step)
    reporter: Reporter
    upstream: dict[str, Path] = field(default_factory=dict)

    def has_input(self, step: str) -> bool:
        return step in self.upstream

    def input(self, step: str) -> Path:
        """The output directory of an upstream step of this pipeline."""
        if step not in self.upstream:
            raise StepError(f"step {self.step!r} needs the output of step {step!r}, which this recipe "
                            "does not run", where=self.recipe.where, hint=f"add {step!r} to pipeline.steps")
        return self.upstream[step]

    def progress(self, total: int | None, label: str):
        return self.reporter.progress(total, f"{self.step}: {label}")

    def log(self, message: str) -> None:
        self.reporter.log(self.step, message)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step: str
    status: str  # "ran" or "cached"
    summary: Mapping[str, Any]
    inputs_sha256: str
    seconds: float


@dataclass(frozen=True, slots=True)
class StepState:
    step: str
    state: str  # "up to date", "stale", "not run", "waiting", "unavailable", "error"
    reason: str = ""


_REGISTRY: dict[str, Step] = {}
_IMPORT_FAILURES: dict[str, str] = {}
_CODE_DIGESTS: dict[str, str] = {}


def register_step(name: str, fn: Callable[[StepContext], Mapping[str, Any] | None], *,
                  inputs: StepInputs = StepInputs(), description: str = "") -> Step:
    """Register (or replace) the step `name`; call it at import time of your `steps` module."""
    if name not in STEP_ORDER:
        raise ValueError(f"unknown step name {name!r}; pipeline steps are {', '.join(STEP_ORDER)}")
    for up in inputs.steps:
        if up not in STEP_ORDER or STEP_ORDER.index(up) >= STEP_ORDER.index(name):
            raise ValueError(f"step {name!r} cannot read step {up!r}: it does not come before it")
    step = Step(name, fn, inputs, description or (fn.__doc__ or "").strip().split("\n")[0])
    _REGISTRY[name] = step
    return step


def load_step_modules() -> dict[str, Step]:
    """Import every module that registers steps; returns the registry."""
    import expertpm_forge

    names = ["expertpm_forge.data.steps"]
    for info in sorted(pkgutil.iter_modules(expertpm_forge.__path__), key=lambda i: i.name):
        if info.ispkg and info.name not in ("data", "teacher"):
            names.append(f"expertpm_forge.{info.name}.steps")
    names.append("expertpm_forge.build")  # the `build` step (package source directory)
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        except Exception as exc:  # a broken optional module must not break the data steps
            _IMPORT_FAILURES[name] = f"{type(exc).__name__}: {exc}"
    return dict(_REGISTRY)


def registered_steps() -> dict[str, Step]:
    return dict(_REGISTRY)


def step_dir(recipe: Recipe, step: str) -> Path:
    return recipe.forge_dir / step


def step_seed(recipe: Recipe, step: str) -> int:
    return int(hashlib.sha256(f"{recipe.train.seed}:{step}".encode()).hexdigest()[:8], 16)


def _code_digest(module: str) -> str:
    if module not in _CODE_DIGESTS:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec else None
        _CODE_DIGESTS[module] = sha256_file(Path(origin))[0] if origin and origin.endswith(".py") else "?"
    return _CODE_DIGESTS[module]


def _label(recipe: Recipe, path: Path) -> str:
    return Path(os.path.relpath(path.absolute(), recipe.root)).as_posix()


def _read_manifest(directory: Path) -> dict | None:
    try:
        doc = json.loads((directory / STEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def _outputs_intact(directory: Path, manifest: Mapping) -> bool:
    for rel, digest in manifest.get("outputs", {}).items():
        path = directory / rel
        if not path.is_file() or sha256_file(path)[0] != digest:
            return False
    return True


def _inputs(recipe: Recipe, step: Step) -> dict[str, Any]:
    """The inputs document of `step`; raises StepError when an upstream output is missing."""
    upstream = {}
    for up in step.inputs.steps:
        if up not in recipe.pipeline.steps:
            continue
        manifest = _read_manifest(step_dir(recipe, up))
        if manifest is None:
            raise StepError(f"step {step.name!r} needs the output of step {up!r}, which has not run",
                            where=recipe.where, hint=f"run `expertpm forge {up} {display_path(recipe.root)}` first")
        upstream[up] = manifest["outputs_sha256"]
    files = {}
    for path in (step.inputs.files(recipe) if step.inputs.files else ()):
        if not path.is_file():
            raise StepError(f"step {step.name!r} needs the file {display_path(path)}, which does not exist",
                            where=recipe.where, hint="create it, or build what makes it first")
        files[_label(recipe, path)] = sha256_file(path)[0]
    modules = sorted({step.fn.__module__, *step.inputs.code})
    return {
        "step": step.name, "seed": step_seed(recipe, step.name) if step.inputs.seeded else None,
        "steps": upstream, "files": files,
        "config": {s: recipe.config_slice(s) for s in step.inputs.config},
        "code": {m: _code_digest(m) for m in modules},
    }


def plan(recipe: Recipe, registry: Mapping[str, Step] | None = None) -> list[StepState]:
    """What `run` would do now, without running anything."""
    registry = load_step_modules() if registry is None else registry
    states: list[StepState] = []
    pending = False  # an earlier step will re-run, so later inputs are not known yet
    for name in recipe.pipeline.steps:
        if name not in registry:
            states.append(StepState(name, "unavailable", _unavailable_reason(name)))
            pending = True
            continue
        manifest = _read_manifest(step_dir(recipe, name))
        if pending:
            states.append(StepState(name, "waiting" if manifest is None else "stale", "an earlier step will run"))
            continue
        try:
            digest = sha256_bytes(canonical_json(_inputs(recipe, registry[name])))
        except StepError as exc:
            states.append(StepState(name, "waiting", exc.message))
            pending = True
            continue
        except UserError as exc:  # e.g. a source pattern that matches nothing
            states.append(StepState(name, "error", str(exc)))
            pending = True
            continue
        if manifest is None:
            state = StepState(name, "not run")
        elif manifest.get("inputs_sha256") != digest:
            state = StepState(name, "stale", "inputs changed")
        elif not _outputs_intact(step_dir(recipe, name), manifest):
            state = StepState(name, "stale", "outputs changed on disk")
        else:
            state = StepState(name, "up to date")
        pending = pending or state.state != "up to date"
        states.append(state)
    return states


def _unavailable_reason(name: str) -> str:
    reason = f"no forge module registers step {name!r}"
    failures = "; ".join(f"{m}: {e}" for m, e in sorted(_IMPORT_FAILURES.items()))
    return f"{reason} (import failed: {failures})" if failures else reason


def run_pipeline(recipe: Recipe, *, only: str | None = None, until: str | None = None,
                 force: bool | Collection[str] = False, reporter: Reporter | None = None) -> list[StepOutcome]:
    """Run the recipe's steps in order (all; up to `until`; or just `only`), caching each.

    `force` re-runs steps whose inputs did not change: all of them (True) or the named ones."""
    reporter = reporter or NullReporter()
    registry = load_step_modules()
    steps = list(recipe.pipeline.steps)
    for wanted in (only, until):
        if wanted is not None and wanted not in steps:
            raise StepError(f"step {wanted!r} is not part of this recipe's pipeline", where=recipe.where,
                            hint=f"its steps are: {', '.join(steps)}")
    if only is not None:
        steps = [only]
    elif until is not None:
        steps = steps[: steps.index(until) + 1]
    from filelock import FileLock, Timeout

    recipe.forge_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(recipe.forge_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise StepError("another forge run is working on this expert", where=recipe.where,
                        hint=f"wait for it, or remove {recipe.forge_dir / '.lock'} if none is running") from exc
    try:
        outcomes = []
        for name in steps:
            if name not in registry:
                done = [o.step for o in outcomes]
                raise StepError(f"step {name!r} is not available: {_unavailable_reason(name)}",
                                where=recipe.where, hint=(f"steps {', '.join(done)} finished and are cached; "
                                                          if done else "") + "install the forge module that "
                                f"provides it, or remove {name!r} from pipeline.steps")
            forced = force is True or (not isinstance(force, bool) and name in force)
            outcomes.append(_run_step(recipe, registry[name], force=forced, reporter=reporter))
        return outcomes
    finally:
        lock.release()


def _run_step(recipe: Recipe, step: Step, *, force: bool, reporter: Reporter) -> StepOutcome:
    inputs = _inputs(recipe, step)
    digest = sha256_bytes(canonical_json(inputs))
    final = step_dir(recipe, step.name)
    manifest = _read_manifest(final)
    if (not force and manifest is not None and manifest.get("inputs_sha256") == digest
            and _outputs_intact(final, manifest)):
        outcome = StepOutcome(step.name, "cached", manifest.get("summary", {}), digest, 0.0)
        reporter.step_done(outcome)
        return outcome
    reporter.step_start(step.name, step.description)
    tmp = recipe.forge_dir / f".{step.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    scratch = recipe.forge_dir / "cache" / step.name
    scratch.mkdir(parents=True, exist_ok=True)
    upstream = {up: step_dir(recipe, up) for up in inputs["steps"]}
    ctx = StepContext(recipe, step.name, tmp, scratch, step_seed(recipe, step.name), reporter, upstream)
    started = time.perf_counter()
    try:
        summary = dict(step.fn(ctx) or {})
        outputs = {p.relative_to(tmp).as_posix(): sha256_file(p)[0]
                   for p in sorted(tmp.rglob("*")) if p.is_file()}
        doc = {"format": FORMAT, "step": step.name, "inputs_sha256": digest, "inputs": inputs,
               "outputs": outputs, "outputs_sha256": sha256_bytes(canonical_json(outputs)),
               "summary": summary}
        (tmp / STEP_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = recipe.forge_dir / f".{step.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    outcome = StepOutcome(step.name, "ran", summary, digest, time.perf_counter() - started)
    reporter.step_done(outcome)
    return outcome
