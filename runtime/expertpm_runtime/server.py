"""`expertpm serve`: an OpenAI-compatible HTTP API over one Runtime (litestar + uvicorn).

    POST /v1/completions, /v1/chat/completions   (`stream: true` → server-sent events)
    GET  /v1/models   /metrics (Prometheus text)   /health

`model` is an expert name, `a+b` / `a*0.5+b` for a composition, `auto` for the router, or the
base's name for the base alone. Every refusal is a 4xx OpenAI error object and the server keeps
serving. Requests are prepared (routed, tokenized) in a worker thread and handed to the engine
loop; tokens come back through an asyncio queue per request. A client that disconnects mid-stream
has its request aborted in the engine, which frees its KV blocks at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from litestar import Litestar, Request, get, post
from litestar.exceptions import HTTPException
from litestar.response import Response, Stream

from expertpm._errors import ExpertpmError, RuntimeUserError

from .api import Prepared, Runtime
from .catalog import AUTO
from .config import RequestOutput
from .openai_format import ApiError, ParsedRequest, ResponseShape, error_body, parse_body, parse_request, sse
from .text import TextAssembler


_PATHS = frozenset({"/v1/completions", "/v1/chat/completions", "/v1/models", "/metrics", "/health"})


class _AsyncSink:
    """Receives engine outputs on the engine thread and queues them on the server's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.q: asyncio.Queue = asyncio.Queue()

    def put(self, item: RequestOutput | BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.q.put_nowait, item)
        except RuntimeError:
            pass  # the event loop is closed: the server is gone

    fail = put


def create_app(runtime: Runtime) -> Litestar:
    metrics = runtime.metrics

    async def start(prepared: Prepared) -> tuple[int, _AsyncSink]:
        sink = _AsyncSink(asyncio.get_running_loop())
        future = runtime.loop.submit(prepared.prompt_ids, prepared.params, [c.spec() for c in prepared.experts], sink)
        try:
            return await asyncio.wrap_future(future), sink
        except asyncio.CancelledError:  # the client left before the engine took the request
            future.add_done_callback(lambda f: f.cancelled() or f.exception() or runtime.loop.abort(f.result()))
            raise

    async def events(rid: int, sink: _AsyncSink, assembler: TextAssembler) -> AsyncIterator[tuple[str, str | None]]:
        """(text delta, finish reason once done); aborts the engine request if left early."""
        done = False
        try:
            while not done:
                item = await sink.q.get()
                if isinstance(item, BaseException):
                    raise item
                metrics.generated_tokens.inc(amount=len(item.new_token_ids))
                delta = assembler.push(item.new_token_ids)
                if assembler.stopped:
                    done = True
                    runtime.loop.abort(rid)
                    yield delta, "stop"
                elif item.finished:
                    done = True
                    yield delta + assembler.flush(), item.finish_reason
                elif delta:
                    yield delta, None
        finally:
            if not done:  # the client went away (cancelled) or an error: free the engine's resources
                runtime.loop.abort(rid)

    async def complete(request: Request, chat: bool) -> Response | Stream:
        req = parse_request(parse_body(await request.body()), chat=chat)
        prepared = await asyncio.to_thread(_prepare, runtime, req)
        rid, sink = await start(prepared)
        route = prepared.route.to_dict() if prepared.route is not None else None
        shape = ResponseShape(req.model, chat=chat, experts=prepared.expert_names, route=route)
        headers = {"x-expertpm-experts": "+".join(prepared.expert_names) or "base"}
        assembler = TextAssembler(runtime.tokenizer, prepared.stop)
        if not req.stream:
            parts, reason = [], None
            async for delta, reason in events(rid, sink, assembler):
                parts.append(delta)
            usage = (len(prepared.prompt_ids), len(assembler.token_ids))
            return Response(shape.full("".join(parts), reason, *usage), headers=headers)

        async def body() -> AsyncIterator[bytes]:
            yield sse(shape.chunk("", first=True))
            try:
                async for delta, reason in events(rid, sink, assembler):
                    if delta or reason:
                        yield sse(shape.chunk(delta, reason))
            except ExpertpmError as exc:
                yield sse(error_body(str(exc), type="server_error"))
            yield sse("[DONE]")

        return Stream(body(), media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})

    @post("/v1/completions", status_code=200)
    async def completions(request: Request) -> Response | Stream:
        return await complete(request, chat=False)

    @post("/v1/chat/completions", status_code=200)
    async def chat_completions(request: Request) -> Response | Stream:
        return await complete(request, chat=True)

    @get("/v1/models")
    async def models() -> dict:
        base = runtime.catalog.base
        data = [{"id": base.name, "object": "model", "created": 0, "owned_by": "expertpm", "kind": "base",
                 "version": base.version}]
        data += [{"id": e.name, "object": "model", "created": 0, "owned_by": "expertpm", "kind": "expert",
                  "version": e.version, "digest": e.digest, "description": e.description}
                 for e in runtime.catalog.compatible()]
        data.append({"id": AUTO, "object": "model", "created": 0, "owned_by": "expertpm", "kind": "router",
                     "description": "the router picks experts per prompt; 'a+b' composes experts"})
        return {"object": "list", "data": data}

    @get("/metrics", media_type="text/plain; version=0.0.4")
    async def prometheus() -> str:
        stats = await asyncio.wrap_future(runtime.loop.call(lambda engine: engine.stats()))
        return metrics.render(stats)

    @get("/health")
    async def health() -> dict:
        return {"status": "ok" if runtime.loop.alive else "engine loop stopped", "base": runtime.catalog.base.name,
                "experts": len(runtime.catalog.compatible())}

    return Litestar(
        route_handlers=[completions, chat_completions, models, prometheus, health],
        exception_handlers={Exception: _error_response},
        middleware=[_count_requests(metrics)],
        debug=False,
    )


def _prepare(runtime: Runtime, req: ParsedRequest) -> Prepared:
    choices = runtime.catalog.parse_model(req.model)  # None: `auto`
    return runtime.prepare(req.prompt, AUTO if choices is None else None, choices=choices, messages=req.messages,
                           ignore_eos=req.ignore_eos, **req.options)


def _error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        status, body = exc.status_code, error_body(str(exc), type=exc.type, code=exc.code, param=exc.param)
    elif isinstance(exc, RuntimeUserError):
        status = getattr(exc, "status_code", 400)
        body = error_body(str(exc), code=getattr(exc, "code", None) or "invalid_request")
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        body = error_body(exc.detail, type="invalid_request_error" if status < 500 else "server_error")
    else:
        status = 500
        body = error_body(f"internal error: {type(exc).__name__}: {exc}", type="server_error")
    return Response(body, status_code=status)


def _count_requests(metrics):
    def middleware(app):
        async def wrapped(scope, receive, send) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)

            async def counting_send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    path = scope["path"] if scope["path"] in _PATHS else "other"
                    metrics.requests.inc(path, str(message["status"]))
                await send(message)

            return await app(scope, receive, counting_send)
        return wrapped
    return middleware


def serve(runtime: Runtime, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Run the server until interrupted (blocks)."""
    import uvicorn

    uvicorn.run(create_app(runtime), host=host, port=port, log_level=log_level)
