"""The stand-in teacher: a local OpenAI-compatible chat-completions server answering from rules.

It is the offline replacement for a GPT-4-class teacher. `POST /v1/chat/completions` reads the
generation request from tags in the last user message (`generators.parse_request`) and answers
with one choice whose content is a JSON list of examples. `GET /v1/models` lists its one model.
It binds to 127.0.0.1 only. Standard library `http.server`, one thread per request.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from .generators import RequestError, generate, parse_request

__all__ = ["MODEL", "answer", "make_server", "endpoint_of", "running_server", "serve"]

MODEL = "expertpm-stand-in"
HOST = "127.0.0.1"


def answer(body: dict) -> dict:
    """The chat-completion response to one request body; raises RequestError on a bad request."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    request = parse_request(body.get("messages"))
    content = json.dumps(generate(request), ensure_ascii=False)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"] if isinstance(m, dict))
    completion_tokens = len(content.split())
    return {
        "id": f"chatcmpl-{request.seed:016x}", "object": "chat.completion", "created": 0,
        "model": body.get("model") or MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "expertpm-stand-in-teacher/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # quiet: the CLI prints one line at start
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _send(self, status: int, doc: dict) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "expertpm"}]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}; use POST /v1/chat/completions")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self._error(400, "the request body is not JSON")
            return
        try:
            self._send(200, answer(body))
        except RequestError as exc:
            self._error(400, str(exc))


def make_server(port: int = 0, *, verbose: bool = False) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:`port` (0 picks a free port; see `server.server_address`)."""
    server = ThreadingHTTPServer((HOST, port), _Handler)
    server.daemon_threads = True
    server.verbose = verbose  # type: ignore[attr-defined]
    return server


def endpoint_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/v1"


@contextmanager
def running_server(port: int = 0) -> Iterator[str]:
    """Run the stand-in teacher in a background thread; yields its endpoint URL (…/v1)."""
    server = make_server(port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stand-in-teacher",
                              daemon=True)
    thread.start()
    try:
        yield endpoint_of(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve(port: int, *, verbose: bool = False, ready=None) -> None:
    """Serve until interrupted (`expertpm forge teacher-serve`)."""
    server = make_server(port, verbose=verbose)
    if ready is not None:
        ready(endpoint_of(server))
    try:
        server.serve_forever()
    finally:
        server.server_close()
