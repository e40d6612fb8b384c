"""From token ids back to text, incrementally: what to stream now, and where a stop string ends it.

Streaming decodes the whole completion each time and emits only what is new and safe: text that
ends in an incomplete UTF-8 sequence, or that could be the start of a stop string, is held back
until the next token settles it. When a stop string appears the text ends just before it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from expertpm._errors import RuntimeUserError

ROLES = ("system", "user", "assistant")


class TextAssembler:
    def __init__(self, tokenizer, stop: Iterable[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.token_ids: list[int] = []
        self.text = ""
        self.emitted = 0
        self.stopped = False  # a stop string ended the text

    def push(self, token_ids: Iterable[int]) -> str:
        """Add tokens; the text that became final (possibly empty)."""
        if self.stopped:
            return ""
        self.token_ids.extend(token_ids)
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        if self.stop:
            start = max(0, self.emitted - self.hold)
            hits = [i for s in self.stop if (i := text.find(s, start)) >= 0]
            if hits:
                end = max(min(hits), self.emitted)
                self.text, self.stopped = text[:end], True
                return self._emit(end)
        self.text = text
        safe = len(text.rstrip("\ufffd"))
        for k in range(min(self.hold, safe - self.emitted), 0, -1):
            if any(s.startswith(text[safe - k:safe]) for s in self.stop):
                safe -= k
                break
        return self._emit(safe)

    def flush(self) -> str:
        """The rest of the text, once generation is over."""
        return self._emit(len(self.text))

    def _emit(self, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta, self.emitted = self.text[self.emitted:end], end
        return delta


def special_stop_ids(tokenizer, stop: Iterable[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Split stop strings into special tokens (matched by id: decoding hides them) and plain text."""
    special = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    ids, texts = [], []
    for s in stop:
        if s in special:
            ids.append(tokenizer.convert_tokens_to_ids(s))
        elif s:
            texts.append(s)
    return tuple(ids), tuple(texts)


def normalize_messages(messages: Any) -> list[dict[str, str]]:
    """OpenAI chat messages → [{"role", "content"}] with text content; refuses anything else."""
    if not isinstance(messages, list) or not messages:
        raise RuntimeUserError("'messages' must be a non-empty list of {role, content} objects")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES:
            raise RuntimeUserError(f"messages[{i}] needs a role of {', '.join(ROLES)}",
                                   hint='write {"role": "user", "content": "..."}')
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text is understood
            if not all(isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise RuntimeUserError(f"messages[{i}].content has a part that is not text",
                                       hint="this server reads text parts only")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise RuntimeUserError(f"messages[{i}].content must be a string")
        out.append({"role": m["role"], "content": content})
    return out


def render_prompt(tokenizer, prompt: str | None, messages: list[dict] | None,
                  template: str | None) -> tuple[str, bool]:
    """The text fed to the model and whether the tokenizer should add its special tokens.

    A plain prompt goes through the expert's `generation.template` (`{prompt}` replaced); so does
    a chat made of one user message. Longer chats use the tokenizer's chat template, or a plain
    `role: content` transcript when it has none.
    """
    if messages is None:
        return (template.replace("{prompt}", prompt) if template else prompt), True
    if template and len(messages) == 1 and messages[0]["role"] == "user":
        return template.replace("{prompt}", messages[0]["content"]), True
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), False
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:", True


def last_user_text(messages: list[dict]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), messages[-1]["content"])
