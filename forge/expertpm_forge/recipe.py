"""The forge recipe: `experts/<name>/forge.toml`, parsed into frozen dataclasses.

Every problem is one `RecipeError` naming the file and the field, e.g.
``experts/sql/forge.toml: train.rank: expected a positive integer — got -3``.
Relative paths are relative to the recipe's directory. Unknown keys are errors (typos must not
pass silently); `[train.options]` and `[eval.options]` are free-form tables for settings the
training and evaluation code add later. See docs/forge.md for the full schema.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from expertpm._errors import FormatError

__all__ = [
    "Recipe", "RecipeError", "load_recipe", "STEP_ORDER", "TASK_KINDS", "DEFAULT_METRICS",
    "ExpertInfo", "BaseSpec", "DataSpec", "TeacherSpec", "TaskSpec", "TrainSpec", "EvalSpec",
    "RoutingSpec", "GenerationSpec", "PipelineSpec",
]

STEP_ORDER = ("clean", "chunk", "dedupe", "synthesize", "format", "split", "train", "evaluate", "build")
TASK_KINDS = ("chat", "tool-call", "classification", "ner", "sql", "cypher", "text")
DEFAULT_METRICS = {
    "chat": "exact_match", "tool-call": "tool_call", "classification": "label_accuracy",
    "ner": "entity_f1", "sql": "sql_execution", "cypher": "exact_match", "text": "perplexity",
}
RECIPE_FILE = "forge.toml"
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
DEFAULT_FEEDFORWARD_MODULES = ("down_proj",)


class RecipeError(FormatError):
    """A recipe (`forge.toml`) or a file it names is invalid; `.where` is the recipe file."""


@dataclass(frozen=True, slots=True)
class ExpertInfo:
    name: str
    version: str
    description: str
    license: str | None
    authors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BaseSpec:
    """Exactly one of: a local Hugging Face model directory, an installed base package
    (`name@range`), or a model config to build a new base from (continued pre-training)."""

    path: Path | None = None
    package: str | None = None
    version_range: str | None = None
    config: Path | None = None
    tokenizer: Path | None = None  # a tokenizer.json to chunk with when the base has none yet


@dataclass(frozen=True, slots=True)
class DataSpec:
    sources: tuple[str, ...] = ()
    text_field: str = "text"
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    min_chunk_tokens: int = 1
    boilerplate: bool = True
    boilerplate_min_docs: int = 3
    boilerplate_fraction: float = 0.5
    exact_dedupe: bool = True
    near_dedupe: bool = True
    near_threshold: float = 0.8
    shingle_size: int = 5
    num_perm: int = 128


@dataclass(frozen=True, slots=True)
class TeacherSpec:
    endpoint: str
    model: str
    template: str  # a path relative to the recipe, or `builtin:<kind>`
    template_path: Path
    n_per_chunk: int = 8
    requests_per_chunk: int = 1
    max_chunks: int | None = None
    temperature: float = 0.0
    max_tokens: int = 2048
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    concurrency: int = 4
    cache_dir: Path = Path(".forge/cache/teacher")
    api_key_env: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    kind: str
    labels: tuple[str, ...] = ()
    schema: Path | None = None


@dataclass(frozen=True, slots=True)
class TrainSpec:
    method: str = "sft"
    adapter: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    feedforward_modules: tuple[str, ...] = DEFAULT_FEEDFORWARD_MODULES
    num_virtual_tokens: int = 16
    lr: float = 2e-3
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_len: int = 256
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    dtype: str = "float32"
    dpo_beta: float = 0.1
    checkpoint_every: int = 50
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def adapter_settings(self) -> dict[str, Any]:
        """The adapter part, named as the manifest's `adapter` section (and forge's AdapterSpec) name it."""
        return {"type": self.adapter, "rank": self.rank, "alpha": self.alpha, "dropout": self.dropout,
                "target_modules": self.target_modules, "feedforward_modules": self.feedforward_modules,
                "num_virtual_tokens": self.num_virtual_tokens}

    def loop_settings(self) -> dict[str, Any]:
        """The optimiser/loop part, named as forge's TrainConfig names it (`options` stay apart)."""
        return {"learning_rate": self.lr, "epochs": self.epochs, "max_steps": self.max_steps,
                "batch_size": self.batch_size, "grad_accum": self.grad_accum, "max_length": self.max_len,
                "warmup_steps": self.warmup_steps, "weight_decay": self.weight_decay,
                "max_grad_norm": self.max_grad_norm, "seed": self.seed, "checkpoint_every": self.checkpoint_every,
                "dtype": self.dtype, "dpo_beta": self.dpo_beta}


@dataclass(frozen=True, slots=True)
class EvalSpec:
    metric: str
    size: int | None = None
    fraction: float = 0.1
    file: Path | None = None
    probe: Path | None = None
    near_threshold: float = 0.8
    on_overlap: str = "refuse"  # a pinned eval file overlapping training: "refuse", or "drop-train" items
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RoutingSpec:
    keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    examples_file: Path | None = None
    priority: float = 0.5


@dataclass(frozen=True, slots=True)
class GenerationSpec:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    template: str | None = None

    def render(self, prompt: str) -> str:
        """The prompt as the model sees it (the manifest's `generation.template`)."""
        return self.template.replace("{prompt}", prompt) if self.template else prompt

    def manifest(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["stop"] = list(self.stop)
        return {k: v for k, v in out.items() if v not in (None, [])}


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    steps: tuple[str, ...] = STEP_ORDER


@dataclass(frozen=True, slots=True)
class Recipe:
    path: Path  # the forge.toml file
    expert: ExpertInfo
    base: BaseSpec
    data: DataSpec
    teacher: TeacherSpec | None
    task: TaskSpec
    train: TrainSpec
    eval: EvalSpec
    routing: RoutingSpec
    generation: GenerationSpec
    pipeline: PipelineSpec

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def where(self) -> str:
        return display_path(self.path)

    @property
    def forge_dir(self) -> Path:
        return self.root / ".forge"

    def config_slice(self, dotted: str) -> Any:
        """A JSON-able view of one section or field (`"data"`, `"train.seed"`), with paths
        written relative to the recipe so caches survive moving the checkout."""
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part)
        return _jsonable(value, self.root)


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _jsonable(value: Any, root: Path) -> Any:
    if is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name), root) for f in fields(value)}
    if isinstance(value, Path):
        try:
            return value.relative_to(root).as_posix()
        except ValueError:
            return value.as_posix()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v, root) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, root) for k, v in value.items()}
    return value


def load_recipe(location: str | os.PathLike) -> Recipe:
    """Load `experts/<name>` (a directory holding forge.toml) or a forge.toml path."""
    path = Path(location)
    if path.is_dir() or path.suffix != ".toml":
        path = path / RECIPE_FILE
    where = display_path(path)
    if not path.is_file():
        raise RecipeError("no recipe here", where=where,
                          hint=f"an expert source directory holds a {RECIPE_FILE} (see docs/forge.md)")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RecipeError("not UTF-8 text", where=where, hint="re-save the file as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"invalid TOML: {exc}", where=where) from exc
    from ._recipe_parse import parse_recipe

    return parse_recipe(doc, path.absolute(), where)
