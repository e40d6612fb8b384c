"""Parsing of forge.toml tables into the recipe dataclasses (see recipe.py for the shapes)."""

from __future__ import annotations

import difflib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from expertpm._errors import UserError

from .recipe import (
    DEFAULT_FEEDFORWARD_MODULES, DEFAULT_METRICS, DEFAULT_TARGET_MODULES, STEP_ORDER, TASK_KINDS, BaseSpec, DataSpec, EvalSpec, ExpertInfo,
    GenerationSpec, PipelineSpec, Recipe, RecipeError, RoutingSpec, TaskSpec, TeacherSpec,
    TrainSpec,
)

_MISSING = object()
SECTIONS = ("expert", "base", "data", "teacher", "task", "train", "eval", "routing", "generation",
            "pipeline")
TEMPLATES_DIR = Path(__file__).parent / "teacher" / "templates"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_int(minimum: int | None) -> str:
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    return "an integer" if minimum is None else f"an integer >= {minimum}"


class Table:
    """Reads the keys of one TOML table; `finish()` rejects keys nobody asked for."""

    def __init__(self, data: Any, *, where: str, prefix: str, root: Path) -> None:
        if not isinstance(data, dict):
            raise RecipeError(f"{prefix}: expected a table", where=where, hint=f"write it as [{prefix}]")
        self.data, self.where, self.prefix, self.root = data, where, prefix, root
        self._seen: set[str] = set()

    def fail(self, key: str, expected: str, hint: str | None = None) -> RecipeError:
        return RecipeError(f"{self.prefix}.{key}: {expected}", where=self.where, hint=hint)

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise self.fail(key, "missing", f"add `{key} = ...` under [{self.prefix}]")
            return default
        return self.data[key]

    def str(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> Any:
        if key not in self.data and default is not _MISSING:
            return self.get(key, default)
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string", f"got {_show(value)}")
        if choices and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"got {value!r}; use one of {', '.join(choices)}"
            raise self.fail(key, "unknown value", hint + (f" (did you mean {close[0]!r}?)" if close else ""))
        return value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int | None = 1) -> Any:
        if key not in self.data and default is not _MISSING:
            return self.get(key, default)
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or (
                minimum is not None and value < minimum):
            raise self.fail(key, f"expected {_expected_int(minimum)}", f"got {_show(value)}")
        return value

    def float(self, key: str, default: Any = _MISSING, *, low: float | None = None,
              high: float | None = None) -> Any:
        """A number; with only `low` given it must be > low (a positive number for low=0)."""
        if key not in self.data and default is not _MISSING:
            return self.get(key, default)
        value = self.get(key)
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if ok and high is None and low is not None:
            ok = value > low
        elif ok and low is not None:
            ok = low <= value <= high
        if not ok:
            if high is not None:
                expected = f"expected a number between {low:g} and {high:g}"
            else:
                expected = "expected a positive number" if low == 0 else (
                    "expected a number" if low is None else f"expected a number > {low:g}")
            raise self.fail(key, expected, f"got {_show(value)}")
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false", f"got {_show(value)}")
        return value

    def strs(self, key: str, default: tuple = (), *, nonempty: bool = False,
             blank_ok: bool = False) -> tuple[str, ...]:
        value = self.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) and (v if blank_ok else v.strip()) for v in value):
            raise self.fail(key, "expected a list of non-empty strings", f"got {_show(value)}")
        if nonempty and not value:
            raise self.fail(key, "expected at least one entry", f'add e.g. {key} = ["..."]')
        return tuple(value)

    def path(self, key: str, *, must_exist: bool = True) -> Path | None:
        value = self.str(key, None)
        if value is None:
            return None
        path = self.root / value
        if must_exist and not path.exists():
            raise self.fail(key, f"file {value!r} does not exist",
                            f"paths are relative to the recipe's directory {self.root.name}/")
        return path

    def options(self, key: str = "options") -> MappingProxyType:
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table", f"write it as [{self.prefix}.{key}]")
        return MappingProxyType(dict(value))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(self._seen), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(self._seen))}"
            raise self.fail(unknown[0], "unknown key", hint)


def parse_recipe(doc: dict, path: Path, where: str) -> Recipe:
    root = path.parent
    for key in doc:
        if key not in SECTIONS:
            close = difflib.get_close_matches(key, SECTIONS, n=1)
            raise RecipeError(f"{key}: unknown section", where=where,
                              hint=f"did you mean [{close[0]}]?" if close else f"sections: {', '.join(SECTIONS)}")

    def table(name: str, required: bool = False) -> Table | None:
        if name not in doc:
            if required:
                raise RecipeError(f"{name}: missing section", where=where, hint=f"add a [{name}] table")
            return None
        return Table(doc[name], where=where, prefix=name, root=root)

    def done(t: Table | None, value: Any) -> Any:
        if t is not None:
            t.finish()
        return value

    t = table("expert", required=True)
    expert = done(t, _expert(t))
    t = table("task", required=True)
    task = done(t, _task(t))
    t = table("base")
    base = done(t, _base(t) if t else BaseSpec())
    t = table("data")
    data = done(t, _data(t) if t else DataSpec())
    t = table("teacher")
    teacher = done(t, _teacher(t, task.kind) if t else None)
    t = table("train")
    train = done(t, _train(t) if t else TrainSpec())
    t = table("eval")
    evaluation = done(t, _eval(t, task.kind) if t else EvalSpec(metric=DEFAULT_METRICS[task.kind]))
    t = table("routing")
    routing = done(t, _routing(t) if t else RoutingSpec())
    t = table("generation")
    generation = done(t, _generation(t) if t else GenerationSpec())
    t = table("pipeline")
    pipeline = done(t, _pipeline(t, teacher is not None, where))
    if teacher is None and ("synthesize" in pipeline.steps or (task.kind != "text" and "format" in pipeline.steps)):
        raise RecipeError("teacher: missing section", where=where,
                          hint=f"task.kind = {task.kind!r} needs a [teacher] (endpoint, model, template)")
    if teacher is not None and task.kind != "text" and "format" in pipeline.steps and "synthesize" not in pipeline.steps:
        raise RecipeError("pipeline.steps: 'format' needs 'synthesize' for this task", where=where,
                          hint=f"task.kind = {task.kind!r} learns from teacher examples")
    if "clean" in pipeline.steps and not data.sources:
        raise RecipeError("data.sources: missing", where=where,
                          hint='list the documents to learn from, e.g. sources = ["docs/*.md"]')
    return Recipe(path, expert, base, data, teacher, task, train, evaluation, routing, generation, pipeline)


def _expert(t: Table) -> ExpertInfo:
    from expertpm._names import validate_name
    from expertpm._versions import Version

    name, version = t.str("name"), t.str("version")
    for key, check in (("name", lambda: validate_name(name)), ("version", lambda: Version.parse(version))):
        try:
            check()
        except UserError as exc:
            raise t.fail(key, exc.message, exc.hint) from exc
    return ExpertInfo(name, version, t.str("description", ""), t.str("license", None), t.strs("authors"))


def _base(t: Table) -> BaseSpec:
    from expertpm._names import validate_name
    from expertpm._versions import VersionRange

    given = [k for k in ("path", "package", "config") if k in t.data]
    if len(given) > 1:
        raise t.fail(given[1], f"conflicts with base.{given[0]}", "give exactly one of path, package, config")
    package = version_range = None
    if "package" in t.data:
        package, _, version_range = t.str("package").partition("@")
        try:
            validate_name(package)
            VersionRange.parse(version_range or "*")
        except UserError as exc:
            raise t.fail("package", exc.message, "write it as name@range, e.g. tiny-base@^0.1") from exc
    return BaseSpec(path=t.path("path", must_exist=False), package=package,
                    version_range=version_range or ("*" if package else None),
                    config=t.path("config"), tokenizer=t.path("tokenizer"))


def _data(t: Table) -> DataSpec:
    chunk_tokens = t.int("chunk_tokens", 256)
    overlap = t.int("chunk_overlap", 32, minimum=0)
    if overlap >= chunk_tokens:
        raise t.fail("chunk_overlap", f"must be smaller than data.chunk_tokens ({chunk_tokens})",
                     f"got {overlap}")
    return DataSpec(
        sources=t.strs("sources"), text_field=t.str("text_field", "text"),
        chunk_tokens=chunk_tokens, chunk_overlap=overlap,
        min_chunk_tokens=t.int("min_chunk_tokens", 1),
        boilerplate=t.bool("boilerplate", True), boilerplate_min_docs=t.int("boilerplate_min_docs", 3, minimum=2),
        boilerplate_fraction=t.float("boilerplate_fraction", 0.5, low=0.0, high=1.0),
        exact_dedupe=t.bool("exact_dedupe", True), near_dedupe=t.bool("near_dedupe", True),
        near_threshold=t.float("near_threshold", 0.8, low=0.05, high=1.0),
        shingle_size=t.int("shingle_size", 5), num_perm=t.int("num_perm", 128, minimum=8),
    )


def _teacher(t: Table, kind: str) -> TeacherSpec:
    endpoint = t.str("endpoint")
    if not endpoint.startswith(("http://", "https://")):
        raise t.fail("endpoint", "expected an http(s) URL", "e.g. http://127.0.0.1:8765/v1")
    template = t.str("template", f"builtin:{kind}")
    if template.startswith("builtin:"):
        template_path = TEMPLATES_DIR / f"{template.removeprefix('builtin:')}.txt"
        if not template_path.is_file():
            known = sorted(p.stem for p in TEMPLATES_DIR.glob("*.txt"))
            raise t.fail("template", f"no built-in template {template!r}",
                         f"built-ins: {', '.join('builtin:' + k for k in known)}")
    else:
        template_path = t.path("template")
    return TeacherSpec(
        endpoint=endpoint.rstrip("/"), model=t.str("model"), template=template, template_path=template_path,
        n_per_chunk=t.int("n_per_chunk", 8), requests_per_chunk=t.int("requests_per_chunk", 1),
        max_chunks=t.int("max_chunks", None), temperature=t.float("temperature", 0.0, low=0.0, high=2.0),
        max_tokens=t.int("max_tokens", 2048), timeout=t.float("timeout", 60.0, low=0.0),
        retries=t.int("retries", 3, minimum=0), backoff=t.float("backoff", 1.0, low=0.0, high=60.0),
        concurrency=t.int("concurrency", 4), cache_dir=t.path("cache_dir", must_exist=False) or (
            t.root / ".forge" / "cache" / "teacher"),
        api_key_env=t.str("api_key_env", None),
    )


def _task(t: Table) -> TaskSpec:
    kind = t.str("kind", choices=TASK_KINDS)
    labels = t.strs("labels")
    if kind == "classification" and len(labels) < 2:
        raise t.fail("labels", "classification needs at least two labels", 'e.g. labels = ["positive", "negative"]')
    if kind == "ner" and not labels:
        raise t.fail("labels", "ner needs the entity types", 'e.g. labels = ["PERSON", "ORG", "LOC"]')
    if len(set(labels)) != len(labels):
        raise t.fail("labels", "duplicate label", f"got {list(labels)}")
    return TaskSpec(kind=kind, labels=labels, schema=t.path("schema"))


def _train(t: Table) -> TrainSpec:
    method = t.str("method", "sft", choices=("sft", "dpo", "cpt"))
    adapter = t.str("adapter", "lora", choices=("lora", "dora", "ia3", "prompt", "full"))
    if adapter == "full" and method != "cpt":
        raise t.fail("adapter", "'full' (all weights) is only for method = 'cpt'", "use lora, dora, ia3 or prompt")
    return TrainSpec(
        method=method, adapter=adapter, rank=t.int("rank", 8), alpha=t.float("alpha", 16.0, low=0.0),
        dropout=t.float("dropout", 0.0, low=0.0, high=0.99),
        target_modules=t.strs("target_modules", DEFAULT_TARGET_MODULES, nonempty=True),
        feedforward_modules=t.strs("feedforward_modules", DEFAULT_FEEDFORWARD_MODULES),
        num_virtual_tokens=t.int("num_virtual_tokens", 16), lr=t.float("lr", 2e-3, low=0.0),
        epochs=t.float("epochs", 3.0, low=0.0), max_steps=t.int("max_steps", None),
        batch_size=t.int("batch_size", 8), grad_accum=t.int("grad_accum", 1),
        max_len=t.int("max_len", 256, minimum=8), warmup_steps=t.int("warmup_steps", 10, minimum=0),
        weight_decay=t.float("weight_decay", 0.0, low=0.0, high=1.0),
        max_grad_norm=t.float("max_grad_norm", 1.0, low=0.0),
        dtype=t.str("dtype", "float32", choices=("float32", "bfloat16", "float16")),
        dpo_beta=t.float("dpo_beta", 0.1, low=0.0), checkpoint_every=t.int("checkpoint_every", 50, minimum=0),
        seed=t.int("seed", 0, minimum=0), options=t.options(),
    )


def _eval(t: Table, kind: str) -> EvalSpec:
    return EvalSpec(
        metric=t.str("metric", DEFAULT_METRICS[kind]), size=t.int("size", None, minimum=0),
        fraction=t.float("fraction", 0.1, low=0.0, high=0.9), file=t.path("file"), probe=t.path("probe"),
        near_threshold=t.float("near_threshold", 0.8, low=0.05, high=1.0),
        on_overlap=t.str("on_overlap", "refuse", choices=("refuse", "drop-train")), options=t.options(),
    )


def _routing(t: Table) -> RoutingSpec:
    examples: tuple[str, ...] = ()
    examples_file = None
    raw = t.get("examples", ())
    if isinstance(raw, str):
        examples_file = t.path("examples")
        lines = examples_file.read_text(encoding="utf-8").splitlines()
        examples = tuple(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))
    else:
        examples = t.strs("examples")
    return RoutingSpec(
        keywords=t.strs("keywords"), exclude_keywords=t.strs("exclude_keywords"), examples=examples,
        examples_file=examples_file, priority=t.float("priority", 0.5, low=0.0, high=1.0),
    )


def _generation(t: Table) -> GenerationSpec:
    template = t.str("template", None)
    if template is not None and "{prompt}" not in template:
        raise t.fail("template", "must contain {prompt}", "e.g. template = \"Question: {prompt}\\nSQL:\"")
    return GenerationSpec(
        temperature=t.float("temperature", None, low=0.0, high=2.0), top_p=t.float("top_p", None, low=0.0, high=1.0),
        top_k=t.int("top_k", None, minimum=0), max_tokens=t.int("max_tokens", None),
        stop=t.strs("stop", blank_ok=True), template=template,
    )


def _pipeline(t: Table | None, has_teacher: bool, where: str) -> PipelineSpec:
    if t is None or "steps" not in t.data:
        if t is not None:
            t.get("steps", None)
        steps = STEP_ORDER if has_teacher else tuple(s for s in STEP_ORDER if s != "synthesize")
        return PipelineSpec(steps)
    steps = t.strs("steps", nonempty=True)
    for step in steps:
        if step not in STEP_ORDER:
            close = difflib.get_close_matches(step, STEP_ORDER, n=1)
            raise t.fail("steps", f"unknown step {step!r}",
                         f"did you mean {close[0]!r}?" if close else f"steps: {', '.join(STEP_ORDER)}")
    if list(steps) != sorted(steps, key=STEP_ORDER.index) or len(set(steps)) != len(steps):
        raise t.fail("steps", "steps must appear once each, in pipeline order", f"order: {', '.join(STEP_ORDER)}")
    return PipelineSpec(steps)
