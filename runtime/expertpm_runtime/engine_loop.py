"""One thread that owns the Engine: admits requests between steps and fans outputs out to sinks.

The Engine is single-threaded, so every call into it happens here. Other threads (the HTTP
server's event loop, the Python API's callers) hand over work as commands and get results back
through `concurrent.futures.Future`s and per-request sinks. A refused request's error travels
back through its future; a crash inside `step()` fails every live request and the loop goes on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from expertpm._errors import InternalError

from .config import ExpertSpec, RequestOutput, SamplingParams
from .metrics_export import ServingMetrics


class Sink(Protocol):
    def put(self, out: RequestOutput) -> None: ...
    def fail(self, exc: BaseException) -> None: ...


@dataclass(slots=True)
class _Live:
    sink: Sink
    submitted: float
    first_token: bool = False


@dataclass(slots=True)
class _Add:
    prompt_ids: list[int]
    params: SamplingParams
    experts: list[ExpertSpec]
    sink: Sink
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)


class EngineLoop:
    def __init__(self, engine, metrics: ServingMetrics | None = None) -> None:
        self.engine = engine
        self.metrics = metrics or ServingMetrics()
        self._inbox: deque = deque()
        self._cv = threading.Condition()
        self._live: dict[int, _Live] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="expertpm-engine", daemon=True)
        self._thread.start()

    # -- called from any thread ----------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams, experts: list[ExpertSpec],
               sink: Sink) -> Future:
        """Queue a request; the future resolves to its engine request id or to the refusal."""
        cmd = _Add(list(prompt_ids), params, list(experts), sink)
        self._push(cmd)
        return cmd.future

    def abort(self, request_id: int) -> None:
        """Stop a request (its KV blocks are freed); its sink hears nothing more."""
        try:
            self._push(("abort", request_id))
        except InternalError:
            pass  # the loop is gone and with it the request

    def call(self, fn: Callable[[Any], Any]) -> Future:
        """Run `fn(engine)` on the loop thread between steps (e.g. `lambda e: e.stats()`)."""
        fut: Future = Future()
        self._push(("call", fn, fut))
        return fut

    def close(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _push(self, cmd) -> None:
        with self._cv:
            if self._stopping:
                raise InternalError("the engine loop is shut down")
            self._inbox.append(cmd)
            self._cv.notify()

    # -- the loop thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._inbox and not self._stopping and not self.engine.has_unfinished():
                    self._cv.wait()
                if self._stopping:
                    self._fail_all(InternalError("the runtime is shutting down"))
                    return
                commands = list(self._inbox)
                self._inbox.clear()
            for cmd in commands:
                self._execute(cmd)
            if self.engine.has_unfinished():
                self._step()

    def _execute(self, cmd) -> None:
        if isinstance(cmd, _Add):
            if not cmd.future.set_running_or_notify_cancel():
                return
            try:
                rid = self.engine.add_request(cmd.prompt_ids, cmd.params, cmd.experts)
            except BaseException as exc:  # a refusal (RuntimeUserError) or a bug: the caller decides
                cmd.future.set_exception(exc)
                return
            self._live[rid] = _Live(cmd.sink, cmd.submitted)
            cmd.future.set_result(rid)
        elif cmd[0] == "abort":
            if self._live.pop(cmd[1], None) is not None:
                self.engine.abort(cmd[1])
                self.metrics.finished.inc("abort")
        elif cmd[0] == "call":
            _, fn, fut = cmd
            try:
                fut.set_result(fn(self.engine))
            except BaseException as exc:
                fut.set_exception(exc)

    def _step(self) -> None:
        before = self.engine.stats()
        start = time.perf_counter()
        try:
            outputs = self.engine.step()
        except Exception as exc:  # a bug or an environment failure: end the live requests, keep serving
            failed = self._live
            self._live = {}
            for rid in failed:
                try:
                    self.engine.abort(rid)
                except Exception:  # noqa: BLE001 - the engine is already broken; free what we can
                    pass
            for live in failed.values():
                live.sink.fail(InternalError(f"the engine failed: {type(exc).__name__}: {exc}"))
            return
        end = time.perf_counter()
        after = self.engine.stats()
        phase = "prefill" if after["prefill_steps"] > before["prefill_steps"] else "decode"
        if after["prefill_steps"] + after["decode_steps"] > before["prefill_steps"] + before["decode_steps"]:
            self.metrics.step_seconds.observe(end - start, phase)
        loads = after["adapter_loads"] - before["adapter_loads"]
        if loads:
            per = (after["adapter_load_seconds"] - before["adapter_load_seconds"]) / loads
            for _ in range(loads):
                self.metrics.expert_load.observe(per)
        for out in outputs:
            live = self._live.get(out.request_id)
            if live is None:
                continue  # aborted by us: nobody listens any more
            if out.new_token_ids and not live.first_token:
                live.first_token = True
                self.metrics.queue_wait.observe(max(0.0, start - live.submitted))
                self.metrics.ttft.observe(end - live.submitted)
            if out.finished:
                del self._live[out.request_id]
                self.metrics.finished.inc(out.finish_reason or "stop")
            live.sink.put(out)

    def _fail_all(self, exc: BaseException) -> None:
        for cmd in self._inbox:
            if isinstance(cmd, _Add) and cmd.future.set_running_or_notify_cancel():
                cmd.future.set_exception(exc)
        self._inbox.clear()
        for live in self._live.values():
            live.sink.fail(exc)
        self._live.clear()
