"""OpenAI-compatible request parsing and response shapes for `/v1/completions` and
`/v1/chat/completions`. Plain dicts in, plain dicts out; no web framework here.

Every problem with a request body becomes an `ApiError` carrying the HTTP status and the
OpenAI error `type`, `code` and `param`, so the server answers 4xx with the usual error object.
Extensions beyond OpenAI: `top_k`, `ignore_eos`; responses carry `expertpm.experts` (and
`expertpm.route` for `model: "auto"`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from expertpm._errors import RuntimeUserError


class ApiError(RuntimeUserError):
    def __init__(self, message: str, *, status_code: int = 400, code: str | None = None,
                 param: str | None = None, type: str = "invalid_request_error", **kw) -> None:
        super().__init__(message, **kw)
        self.status_code, self.code, self.param, self.type = status_code, code, param, type


def error_body(message: str, *, type: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def parse_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError("the request body is not UTF-8", code="invalid_json") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                       code="invalid_json", hint="send a JSON object") from exc
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object", code="invalid_json")
    return body


def _field(body: dict, key: str, kind: str, default: Any = None) -> Any:
    value = body.get(key)
    if value is None:
        return default
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "stop": isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value)),
    }[kind]
    if not ok:
        what = {"int": "an integer", "number": "a number", "str": "a string", "bool": "true or false",
                "stop": "a string or a list of strings"}[kind]
        raise ApiError(f"'{key}' must be {what}, not {json.dumps(value)[:60]}", param=key)
    return value


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    model: str
    stream: bool
    prompt: str | None = None
    messages: list | None = None
    options: dict = field(default_factory=dict)  # for Runtime.prepare: stop, seed, max_tokens, ...
    ignore_eos: bool = False


def parse_request(body: dict, *, chat: bool) -> ParsedRequest:
    model = _field(body, "model", "str")
    if not model:
        raise ApiError("'model' is required: an expert name, 'a+b' for a composition, or 'auto'", param="model",
                       code="model_not_found")
    if _field(body, "n", "int", 1) != 1:
        raise ApiError("only n=1 is supported", param="n")
    max_tokens = _field(body, "max_completion_tokens", "int") if chat else None
    options = {
        "max_tokens": max_tokens if max_tokens is not None else _field(body, "max_tokens", "int"),
        "temperature": _field(body, "temperature", "number"),
        "top_p": _field(body, "top_p", "number"),
        "top_k": _field(body, "top_k", "int"),
        "seed": _field(body, "seed", "int"),
        "stop": _field(body, "stop", "stop"),
    }
    common = dict(model=model, stream=_field(body, "stream", "bool", False),
                  options={k: v for k, v in options.items() if v is not None},
                  ignore_eos=_field(body, "ignore_eos", "bool", False))
    if chat:
        if "messages" not in body:
            raise ApiError("'messages' is required", param="messages")
        return ParsedRequest(messages=body["messages"], **common)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError("'prompt' must be a string", param="prompt")
    return ParsedRequest(prompt=prompt, **common)


class ResponseShape:
    """Builds the response objects (whole or as stream chunks) for one request."""

    def __init__(self, model: str, *, chat: bool, experts: tuple[str, ...], route: dict | None) -> None:
        kind = "chatcmpl" if chat else "cmpl"
        self.id = f"{kind}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model, self.chat = model, chat
        self.extension = {"experts": list(experts), **({"route": route} if route is not None else {})}

    def _head(self, object_: str) -> dict:
        return {"id": self.id, "object": object_, "created": self.created, "model": self.model}

    def full(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {**self._head("chat.completion" if self.chat else "text_completion"), "choices": [choice],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
                "expertpm": self.extension}

    def chunk(self, text: str | None, finish_reason: str | None = None, *, first: bool = False) -> dict:
        if self.chat:
            delta = ({"role": "assistant", "content": text or ""} if first else
                     ({"content": text} if text else {}))
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            head = self._head("chat.completion.chunk")
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
            head = self._head("text_completion")
        return {**head, "choices": [choice], **({"expertpm": self.extension} if first else {})}


def sse(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode("utf-8")
