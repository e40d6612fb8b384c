"""Per-query routing: which installed experts (if any) should answer a prompt. No torch here.

1. **Exclude keywords** rule an expert out (word boundaries, case-insensitive).
2. **Keywords** are the fast path: when any expert's keyword occurs in the prompt, the matching
   experts are chosen (most hits, then priority) and no embedding is computed.
3. Otherwise the prompt is embedded with all-MiniLM-L6-v2 and compared with every expert's
   example utterances (cosine; the expert's score is its best example, plus a small priority
   bonus). Experts at or above `threshold` are chosen, best first.
4. Nothing matched, or the best similarity is below `threshold`: the base answers alone
   ("generic query → base").
At most `max_chain` experts are chosen. The decision carries every expert's score and a reason.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Protocol, Sequence

from .encoder import EmbeddingCache, Encoder, LazyEncoder


class Routable(Protocol):
    name: str
    digest: str

    @property
    def routing(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RouterConfig:
    threshold: float = 0.4        # cosine similarity below which the base answers alone
    max_chain: int = 2            # most experts the router composes on one prompt
    use_embeddings: bool = True   # False: keywords only (no encoder is ever loaded)
    priority_weight: float = 0.05  # how much `routing.priority` (0..1) adds to a similarity


@dataclass(frozen=True, slots=True)
class ExpertScore:
    name: str
    keyword_hits: tuple[str, ...]
    excluded_by: tuple[str, ...]
    similarity: float | None      # best cosine over the examples; None when not computed
    best_example: str | None
    priority: float
    score: float                  # what candidates are ranked by
    selected: bool
    reason: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    prompt: str
    experts: tuple[str, ...]      # chosen expert names, best first; () = the base alone
    method: str                   # "keywords" | "embedding" | "none"
    reason: str
    scores: tuple[ExpertScore, ...]
    seconds: float

    @property
    def base_only(self) -> bool:
        return not self.experts

    def to_dict(self) -> dict:
        return asdict(self)


def keyword_pattern(words: Sequence[str]) -> re.Pattern | None:
    """One regex matching any of `words` as whole words, case-insensitively, longest first."""
    words = sorted({w.strip() for w in words if w.strip()}, key=lambda w: (-len(w), w))
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)


class _Entry:
    __slots__ = ("expert", "include", "exclude", "examples", "priority")

    def __init__(self, expert: Routable) -> None:
        routing = expert.routing or {}
        self.expert = expert
        self.include = keyword_pattern(routing.get("keywords", ()))
        self.exclude = keyword_pattern(routing.get("exclude_keywords", ()))
        self.examples = tuple(routing.get("examples", ()))
        self.priority = float(routing.get("priority", 0.0))


def _hits(pattern: re.Pattern | None, text: str) -> tuple[str, ...]:
    if pattern is None:
        return ()
    return tuple(dict.fromkeys(m.group(0).lower() for m in pattern.finditer(text)))


class Router:
    """Routes prompts over a fixed set of experts; embeds their examples once (cached on disk)."""

    def __init__(self, experts: Sequence[Routable], config: RouterConfig = RouterConfig(), *,
                 encoder: Encoder | None = None, cache: EmbeddingCache | None = None) -> None:
        self.config = config
        self._entries = [_Entry(e) for e in experts]
        self._encoder = encoder if encoder is not None else LazyEncoder()
        self._cache = cache if cache is not None else EmbeddingCache(None)

    @property
    def needs_encoder(self) -> bool:
        return self.config.use_embeddings and any(e.examples for e in self._entries)

    def warm(self) -> None:
        """Load the encoder and embed every expert's examples now rather than on the first query."""
        if self.needs_encoder:
            for entry in self._entries:
                if entry.examples:
                    self._cache.get(self._encoder, entry.expert.digest, entry.examples)

    def route(self, prompt: str) -> RouteDecision:
        start = time.perf_counter()
        entries = [(e, _hits(e.include, prompt), _hits(e.exclude, prompt)) for e in self._entries]
        live = [(e, hits) for e, hits, excl in entries if not excl]
        by_keyword = [(e, hits) for e, hits in live if hits]
        similarities: dict[int, tuple[float, str]] = {}
        if by_keyword:
            method = "keywords"
            ranked = sorted(by_keyword, key=lambda p: (-len(p[1]), -p[0].priority, p[0].expert.name))
            scores = {id(e): 1.0 + self.config.priority_weight * e.priority for e, _ in ranked}
            chosen = [e for e, _ in ranked][: self.config.max_chain]
        elif self.needs_encoder and any(e.examples for e, _ in live):
            method = "embedding"
            similarities = self._similarities(prompt, [e for e, _ in live if e.examples])
            scores = {i: s + self.config.priority_weight * self._entry(i).priority
                      for i, (s, _) in similarities.items()}
            above = [i for i, (s, _) in similarities.items() if s >= self.config.threshold]
            above.sort(key=lambda i: (-scores[i], self._entry(i).expert.name))
            chosen = [self._entry(i) for i in above[: self.config.max_chain]]
        else:
            method, scores, chosen = "none", {}, []
        chosen_ids = {id(e) for e in chosen}
        out = []
        for e, hits, excl in entries:
            sim = similarities.get(id(e))
            out.append(ExpertScore(
                name=e.expert.name, keyword_hits=hits, excluded_by=excl,
                similarity=None if sim is None else round(sim[0], 4), best_example=None if sim is None else sim[1],
                priority=e.priority, score=round(scores.get(id(e), 0.0), 4), selected=id(e) in chosen_ids,
                reason=self._why(e, hits, excl, sim, id(e) in chosen_ids, method)))
        out.sort(key=lambda s: (not s.selected, -s.score, s.name))
        names = tuple(e.expert.name for e in sorted(chosen, key=lambda e: -scores[id(e)]))
        return RouteDecision(prompt=prompt, experts=names, method=method,
                             reason=self._summary(names, method, similarities),
                             scores=tuple(out), seconds=time.perf_counter() - start)

    # -- internals -----------------------------------------------------------------------------

    def _entry(self, key: int) -> _Entry:
        return next(e for e in self._entries if id(e) == key)

    def _similarities(self, prompt: str, entries: list[_Entry]) -> dict[int, tuple[float, str]]:
        query = self._encoder.encode([prompt])[0]
        out = {}
        for e in entries:
            sims = self._cache.get(self._encoder, e.expert.digest, e.examples) @ query
            best = int(sims.argmax())
            out[id(e)] = (float(sims[best]), e.examples[best])
        return out

    def _why(self, e: _Entry, hits, excl, sim, selected: bool, method: str) -> str:
        if excl:
            return f"excluded by keyword {', '.join(map(repr, excl))}"
        if method == "keywords":
            if not hits:
                return "no keyword matched (keyword fast path; similarity not computed)"
            kw = f"keyword {', '.join(map(repr, hits))}"
            return kw if selected else f"{kw}, but max_chain={self.config.max_chain} was reached"
        if sim is None:
            return "no keyword matched and no example utterances"
        if sim[0] < self.config.threshold:
            return f"similarity {sim[0]:.3f} < threshold {self.config.threshold}"
        what = f"similarity {sim[0]:.3f} to {sim[1]!r}"
        return what if selected else f"{what}, but max_chain={self.config.max_chain} was reached"

    def _summary(self, names: tuple[str, ...], method: str, sims: dict) -> str:
        if names:
            by = "keyword match" if method == "keywords" else f"similarity >= {self.config.threshold}"
            return f"{' + '.join(names)} by {by}"
        if method == "embedding" and sims:
            best_id, (best, _) = max(sims.items(), key=lambda kv: kv[1][0])
            return (f"generic query → base: best similarity {best:.3f} ({self._entry(best_id).expert.name}) "
                    f"< threshold {self.config.threshold}")
        if not self._entries:
            return "no experts installed → base"
        return "generic query → base: no keyword matched" + (
            "" if self.config.use_embeddings else " (keywords only)")
