"""Serving metrics in the Prometheus text exposition format (version 0.0.4). No dependencies.

`ServingMetrics` holds what the server and the engine loop observe (router, queue wait, time to
first token, prefill and decode step times, requests by outcome); `render(engine_stats)` adds
the engine's own counters and gauges (adapter loads and their total time, KV blocks, ...).
"""

from __future__ import annotations

import math
import threading
from typing import Iterable, Mapping

# Seconds: from 0.5 ms (keyword routing, a decode step of a tiny model) to a minute.
TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Engine stats that only grow: exported as counters (`_total`); the rest are gauges.
_ENGINE_COUNTERS = {"prefill_seconds", "decode_seconds", "prefill_steps", "decode_steps", "prompt_tokens",
                    "prefill_tokens", "generation_tokens", "cached_prompt_tokens", "requests_added",
                    "requests_finished", "requests_aborted", "requests_failed", "adapter_load_seconds", "adapter_loads",
                    "adapter_hits", "adapter_evictions", "preemptions"}


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if isinstance(x, float) else str(x)


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help, labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            for labels, v in sorted(self._values.items()):
                yield f"{self.name}{_labels(self.label_names, labels)} {_num(v)}"


class Histogram:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = (), buckets=TIME_BUCKETS) -> None:
        self.name, self.help, self.label_names, self.buckets = name, help, labels, tuple(buckets)
        self._series: dict[tuple[str, ...], list] = {}  # labels -> [bucket counts..., sum, count]
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            s = self._series.setdefault(labels, [0] * len(self.buckets) + [0.0, 0])
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    s[i] += 1
            s[-2] += value
            s[-1] += 1

    def count(self, *labels: str) -> int:
        return self._series.get(labels, [0])[-1]

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            for labels, s in sorted(self._series.items()):
                for bound, n in [*zip(self.buckets, s), (math.inf, s[-1])]:
                    le = 'le="' + _num(bound) + '"'
                    yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {n}"
                yield f"{self.name}_sum{_labels(self.label_names, labels)} {_num(s[-2])}"
                yield f"{self.name}_count{_labels(self.label_names, labels)} {s[-1]}"


class ServingMetrics:
    def __init__(self) -> None:
        self.requests = Counter("expertpm_requests_total", "HTTP requests by endpoint and status code",
                                ("endpoint", "status"))
        self.router_seconds = Histogram("expertpm_router_seconds", "time to route one prompt", ("method",))
        self.router_decisions = Counter("expertpm_router_decisions_total",
                                        "experts chosen by the router (base = none)", ("expert",))
        self.queue_wait = Histogram("expertpm_queue_wait_seconds",
                                    "from submission until the step that produces the first token starts")
        self.ttft = Histogram("expertpm_time_to_first_token_seconds", "from submission until the first token")
        self.expert_load = Histogram("expertpm_expert_load_seconds",
                                     "loading one expert's tensors into an adapter slot")
        self.step_seconds = Histogram("expertpm_step_seconds", "engine step duration", ("phase",))
        self.finished = Counter("expertpm_requests_finished_total", "finished generations by reason",
                                ("reason",))
        self.refused = Counter("expertpm_requests_refused_total", "requests the runtime refused", ("code",))
        self.generated_tokens = Counter("expertpm_generated_tokens_total", "tokens streamed to clients")

    def series(self):
        return [self.requests, self.router_seconds, self.router_decisions, self.expert_load, self.queue_wait, self.ttft,
                self.step_seconds, self.finished, self.refused, self.generated_tokens]

    def render(self, engine_stats: Mapping[str, float] | None = None) -> str:
        lines: list[str] = []
        for s in self.series():
            lines.extend(s.render())
        for key, value in sorted((engine_stats or {}).items()):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if key in _ENGINE_COUNTERS:
                name = f"expertpm_engine_{key}_total"
                lines += [f"# HELP {name} engine counter {key}", f"# TYPE {name} counter"]
            else:
                name = f"expertpm_engine_{key}"
                lines += [f"# HELP {name} engine gauge {key}", f"# TYPE {name} gauge"]
            lines.append(f"{name} {_num(value)}")
        return "\n".join(lines) + "\n"
