"""The Python API: a base model and its installed experts, ready to generate.

    with Runtime.from_store(base="tiny-qwen3") as rt:
        print(rt.generate("Parse {\"a\": 1}", experts="json-tool").text)
        for piece in rt.stream("Bonjour !", experts="auto"):
            print(piece, end="", flush=True)

`experts` is None (the base alone), "auto" (the router decides), a composition string
("a+b*0.5" or "a,b:0.5") or a list of names / (name, weight) pairs. Generation defaults come
from the experts' manifests (`generation`: template, max_tokens, temperature, top_p, top_k,
stop), first expert first; explicit arguments win. One engine thread serves every caller.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from expertpm._errors import RuntimeUserError

from .catalog import AUTO, Catalog, ExpertChoice, parse_composition
from .config import EngineConfig, RequestOutput, SamplingParams
from .encoder import EmbeddingCache
from .engine_loop import EngineLoop
from .metrics_export import ServingMetrics
from .router import RouteDecision, Router, RouterConfig
from .text import TextAssembler, last_user_text, normalize_messages, render_prompt, special_stop_ids

_SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "top_k")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready for the engine: its model input, sampling, stop strings and experts."""

    prompt: str
    prompt_ids: list[int]
    params: SamplingParams
    stop: tuple[str, ...]
    experts: tuple[ExpertChoice, ...]
    route: RouteDecision | None

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(c.expert.name for c in self.experts)


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str          # "stop" | "length" | "abort"
    experts: tuple[str, ...]
    route: RouteDecision | None
    prompt_tokens: int


def _max_chain(engine_options: dict) -> int:
    return engine_options.get("max_chain", EngineConfig.__dataclass_fields__["max_chain"].default)


class _QueueSink:
    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()

    def put(self, out: RequestOutput) -> None:
        self.q.put(out)

    def fail(self, exc: BaseException) -> None:
        self.q.put(exc)


class Runtime:
    def __init__(self, engine, catalog: Catalog, *, router_config: RouterConfig | None = None,
                 embedding_cache: Path | None = None, metrics: ServingMetrics | None = None) -> None:
        self.engine = engine
        self.catalog = catalog
        self.metrics = metrics or ServingMetrics()
        config = router_config or RouterConfig()
        if config.max_chain > catalog.max_chain:
            config = dataclasses.replace(config, max_chain=catalog.max_chain)
        self.router = Router(catalog.compatible(), config, cache=EmbeddingCache(embedding_cache))
        self.loop = EngineLoop(engine, self.metrics)
        self._prepare_lock = threading.Lock()  # the tokenizer and the encoder serve one caller at a time

    @classmethod
    def from_store(cls, home=None, base: str | Path | None = None, *, expert_dirs: Sequence[Path] = (),
                   router: RouterConfig | None = None, **engine_options: Any) -> "Runtime":
        """The store of `home` (`--home` > $EXPERTPM_HOME > ~/.expertpm); `base` = name, name@version or dir.

        `engine_options` are `EngineConfig` fields (device, dtype, kv_cache_bytes, max_chain, ...).
        """
        from expertpm._home import Home

        home = home if isinstance(home, Home) else Home.resolve(home)
        catalog = Catalog.from_store(home, base, expert_dirs=expert_dirs, max_chain=_max_chain(engine_options))
        return cls.from_catalog(catalog, router=router, embedding_cache=home.cache_dir / "router", **engine_options)

    @classmethod
    def from_dirs(cls, base_dir: Path, expert_dirs: Sequence[Path] = (), *, router: RouterConfig | None = None,
                  embedding_cache: Path | None = None, **engine_options: Any) -> "Runtime":
        """Package directories outside a store (tests, development)."""
        catalog = Catalog.from_dirs(Path(base_dir), expert_dirs, max_chain=_max_chain(engine_options))
        return cls.from_catalog(catalog, router=router, embedding_cache=embedding_cache, **engine_options)

    @classmethod
    def from_catalog(cls, catalog: Catalog, *, router: RouterConfig | None = None, embedding_cache: Path | None = None,
                     **engine_options: Any) -> "Runtime":
        """Load the catalog's base into a new Engine; `max_chain` comes from the catalog."""
        from .engine import Engine

        default_slots = EngineConfig.__dataclass_fields__["adapter_slots"].default
        options = {"adapter_slots": max(default_slots, catalog.max_chain), **engine_options,
                   "max_chain": catalog.max_chain}
        engine = Engine(EngineConfig(model=catalog.base.path, **options))
        return cls(engine, catalog, router_config=router, embedding_cache=embedding_cache)

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.loop.close()

    def warm(self) -> None:
        """Load the tokenizer and the router's encoder and example embeddings before the first request."""
        _ = self.tokenizer
        self.router.warm()

    @property
    def tokenizer(self):
        tok = self.engine.tokenizer
        if tok is None:
            raise RuntimeUserError(f"the base model {self.catalog.base.name} has no tokenizer",
                                   hint="use a base directory with tokenizer.json, or send token ids")
        return tok

    # -- deciding what runs --------------------------------------------------------------------

    def route(self, prompt: str) -> RouteDecision:
        decision = self.router.route(prompt)
        self.metrics.router_seconds.observe(decision.seconds, decision.method)
        for name in decision.experts or ("base",):
            self.metrics.router_decisions.inc(name)
        return decision

    def choose(self, experts: Any, route_text: str) -> tuple[tuple[ExpertChoice, ...], RouteDecision | None]:
        if experts is None:
            return (), None
        if isinstance(experts, str):
            if experts.strip() == AUTO:
                decision = self.route(route_text)
                return self.catalog.resolve((name, 1.0) for name in decision.experts), decision
            return self.catalog.resolve(parse_composition(experts)), None
        terms = [(e, 1.0) if isinstance(e, str) else (str(e[0]), float(e[1])) for e in experts]
        return self.catalog.resolve(terms), None

    def prepare(self, prompt: str | None = None, experts: Any = None, *, messages: Any = None,
                choices: tuple[ExpertChoice, ...] | None = None, route: RouteDecision | None = None,
                stop: Sequence[str] | str | None = None, seed: int | None = None, ignore_eos: bool = False,
                **sampling: Any) -> Prepared:
        """Turn a prompt (or chat messages) and an expert choice into an engine request.

        `choices` (already resolved experts) skips `experts`; `sampling` takes max_tokens,
        temperature, top_p and top_k.
        """
        with self._prepare_lock:
            return self._prepare(prompt, experts, messages, choices, route, stop, seed, ignore_eos, sampling)

    def _prepare(self, prompt, experts, messages, choices, route, stop, seed, ignore_eos, sampling) -> Prepared:
        if (prompt is None) == (messages is None):
            raise RuntimeUserError("give either a prompt or chat messages")
        if messages is not None:
            messages = normalize_messages(messages)
        elif not isinstance(prompt, str):
            raise RuntimeUserError("the prompt must be a string")
        unknown = set(sampling) - set(_SAMPLING_KEYS)
        if unknown:
            raise TypeError(f"unexpected sampling options: {', '.join(sorted(unknown))}")
        if choices is None:
            choices, route = self.choose(experts, prompt if messages is None else last_user_text(messages))
        gen: dict[str, Any] = {}
        for c in choices:
            for key, value in c.expert.generation.items():
                gen.setdefault(key, value)
        text, special = render_prompt(self.tokenizer, prompt, messages, gen.get("template"))
        ids = self.tokenizer.encode(text, add_special_tokens=special)
        stops = [stop] if isinstance(stop, str) else list(stop or ())
        stop_ids, stop_texts = special_stop_ids(self.tokenizer, list(gen.get("stop", ())) + stops)
        values = {k: sampling[k] if sampling.get(k) is not None else gen.get(k) for k in _SAMPLING_KEYS}
        params = SamplingParams(**{k: v for k, v in values.items() if v is not None},
                                stop_token_ids=stop_ids, seed=seed, ignore_eos=ignore_eos)
        return Prepared(text, ids, params, stop_texts, tuple(choices), route)

    # -- generating ----------------------------------------------------------------------------

    def generate(self, prompt: str | None = None, experts: Any = None, **options: Any) -> Completion:
        """Run one request to the end; options as in `prepare`."""
        return self.generate_prepared(self.prepare(prompt, experts, **options))

    def stream(self, prompt: str | None = None, experts: Any = None, **options: Any) -> Iterator[str]:
        """Yield text as it is generated; closing the iterator early aborts the request."""
        return self.stream_prepared(self.prepare(prompt, experts, **options))

    def generate_prepared(self, prepared: Prepared) -> Completion:
        parts, reason = [], "abort"
        assembler = TextAssembler(self.tokenizer, prepared.stop)
        for delta, reason in self._run(prepared, assembler):
            parts.append(delta)
        return Completion("".join(parts), tuple(assembler.token_ids), reason or "abort", prepared.expert_names,
                          prepared.route, len(prepared.prompt_ids))

    def stream_prepared(self, prepared: Prepared) -> Iterator[str]:
        for delta, _ in self._run(prepared, TextAssembler(self.tokenizer, prepared.stop)):
            if delta:
                yield delta

    def _run(self, prepared: Prepared, assembler: TextAssembler) -> Iterator[tuple[str, str | None]]:
        sink = _QueueSink()
        rid = self.loop.submit(prepared.prompt_ids, prepared.params, [c.spec() for c in prepared.experts],
                               sink).result()
        done = False
        try:
            while not done:
                item = sink.q.get()
                if isinstance(item, BaseException):
                    raise item
                delta = assembler.push(item.new_token_ids)
                if assembler.stopped:
                    done = True
                    self.loop.abort(rid)
                    yield delta, "stop"
                elif item.finished:
                    done = True
                    yield delta + assembler.flush(), item.finish_reason
                else:
                    yield delta, None
        finally:
            if not done:
                self.loop.abort(rid)
