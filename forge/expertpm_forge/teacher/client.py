"""A client for an OpenAI-compatible `/v1/chat/completions` endpoint, with a response cache.

One `httpx.Client` is reused for every request. Connection failures, timeouts, 429 and 5xx
answers, and malformed responses (not JSON, no `choices[0].message.content`, or content that the
caller's `parse` rejects) are retried with exponential backoff, then raised as one clear error.
4xx answers are not retried. Every accepted response is written to the cache at once, keyed by
sha256(model, messages, params), so a run that fails half-way loses nothing it already paid for.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from expertpm._canonical import canonical_json, sha256_bytes
from expertpm._errors import NetworkError, UserError

__all__ = ["TeacherClient", "TeacherError", "Completion", "ResponseCache", "cache_key"]

T = TypeVar("T")


class TeacherError(UserError):
    """The teacher endpoint answered, but not with something usable."""


@dataclass(frozen=True, slots=True)
class Completion(Generic[T]):
    content: str
    value: T  # what `parse` made of the content
    cached: bool
    key: str


def cache_key(model: str, messages: list[dict], params: dict) -> str:
    return sha256_bytes(canonical_json({"model": model, "messages": messages, "params": params}))


class ResponseCache:
    """One JSON file per response: `<dir>/<key[:2]>/<key>.json`, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            doc = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing or damaged: ask again
        return doc.get("content") if isinstance(doc, dict) and isinstance(doc.get("content"), str) else None

    def put(self, key: str, request: dict, content: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"key": key, "request": request, "content": content}, ensure_ascii=False,
                                  sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.is_dir() else 0


class _Retry(Exception):
    """A failure worth another attempt; `.reason` says what happened."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class TeacherClient:
    def __init__(self, endpoint: str, model: str, *, cache_dir: Path | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, api_key: str | None = None) -> None:
        import httpx

        self.endpoint, self.model = endpoint.rstrip("/"), model
        self.url = f"{self.endpoint}/chat/completions"
        self.retries, self.backoff = retries, backoff
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)
        self.requests_sent = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TeacherClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def complete(self, messages: list[dict], *, params: dict[str, Any] | None = None,
                 parse: Callable[[str], T] = str) -> Completion[T]:
        params = dict(params or {})
        key = cache_key(self.model, messages, params)
        if self.cache is not None and (content := self.cache.get(key)) is not None:
            try:
                return Completion(content, parse(content), True, key)
            except (ValueError, TypeError):
                pass  # a cached answer the current parser rejects: ask again
        last: _Retry | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            try:
                content = self._post(messages, params)
                try:
                    value = parse(content)
                except (ValueError, TypeError) as exc:
                    raise _Retry(f"the answer is not what the template asks for: {exc}", "malformed") from exc
            except _Retry as retry:
                last = retry
                continue
            if self.cache is not None:
                self.cache.put(key, {"model": self.model, "messages": messages, "params": params}, content)
            return Completion(content, value, False, key)
        assert last is not None
        attempts = f"after {self.retries + 1} attempt{'s' if self.retries else ''}"
        if last.kind == "unreachable":
            raise NetworkError(f"teacher {self.endpoint} is unreachable {attempts}: {last.reason}",
                               hint="start it (e.g. `expertpm forge teacher-serve`) or fix teacher.endpoint")
        raise TeacherError(f"teacher {self.endpoint} failed {attempts}: {last.reason}",
                           hint="answers received so far are cached; fix the teacher and run again")

    def _post(self, messages: list[dict], params: dict[str, Any]) -> str:
        import httpx

        self.requests_sent += 1
        try:
            response = self._http.post(self.url, json={"model": self.model, "messages": messages, **params})
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out ({type(exc).__name__})", "unreachable") from exc
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}", "unreachable") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}: {_error_text(response)}", "server")
        if response.status_code >= 400:
            raise TeacherError(f"teacher {self.endpoint} refused the request: HTTP {response.status_code}: "
                               f"{_error_text(response)}", hint="check teacher.endpoint, teacher.model and the API key")
        try:
            body = response.json()
            content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Retry(f"malformed response (not an OpenAI chat completion): {response.text[:80]!r}",
                         "malformed") from exc
        if not isinstance(content, str):
            raise _Retry("malformed response: message content is not text", "malformed")
        return content


def _error_text(response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
        if message:
            return str(message)[:200]
    except (ValueError, AttributeError):
        pass
    return response.text[:200] or response.reason_phrase
