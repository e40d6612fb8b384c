"""Training records → token ids → padded batches.

Record shapes (JSONL, one object a line):
  SFT  {"prompt": str, "completion": str}            loss only on the completion (+ end-of-turn)
  DPO  {"prompt": str, "chosen": str, "rejected": str}
  CPT  {"text": str}   (or plain-text files: blank-line separated documents)

The prompt is put into a template (`{prompt}` is replaced, nothing else is interpreted) and
tokenized separately from the completion, so training sees exactly the token boundary that
generation will see. No packing for SFT/DPO: one record per row, padded to the longest row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from expertpm._errors import UserError

IGNORE = -100


class TrainingDataError(UserError):
    """Training data is missing, malformed, or does not fit the model's context."""


@dataclass(frozen=True, slots=True)
class Records:
    """Records plus where each came from ("data.jsonl:17"), for error messages."""

    items: list[dict[str, Any]]
    locations: list[str]

    @classmethod
    def from_jsonl(cls, path: Path) -> "Records":
        path = Path(path)
        if not path.is_file():
            raise TrainingDataError("training data file not found", where=str(path))
        items, locations = [], []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"invalid JSON: {exc.msg}", where=f"{path}:{number}") from exc
            if not isinstance(item, dict):
                raise TrainingDataError("each line must be a JSON object", where=f"{path}:{number}")
            items.append(item)
            locations.append(f"{path}:{number}")
        if not items:
            raise TrainingDataError("training data is empty", where=str(path))
        return cls(items, locations)

    @classmethod
    def coerce(cls, data: "Records | Path | str | Sequence[dict]", source: str = "records") -> "Records":
        if isinstance(data, Records):
            return data
        if isinstance(data, (str, Path)):
            return cls.from_jsonl(Path(data))
        items = list(data)
        if not items:
            raise TrainingDataError("training data is empty", where=source)
        return cls(items, [f"{source}[{i}]" for i in range(len(items))])


@dataclass(frozen=True, slots=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken


@dataclass(frozen=True, slots=True)
class Pair:
    chosen: Example
    rejected: Example


def render(template: str, prompt: str) -> str:
    return template.replace("{prompt}", prompt)


def _field(item: dict, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise TrainingDataError(f"field {key!r} must be a non-empty string", where=where)
    return value


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _completion_example(prompt_ids, completion_ids, where, max_length, context_hint) -> Example:
    total = len(prompt_ids) + len(completion_ids)
    if total > max_length:
        raise TrainingDataError(
            f"record is {total} tokens (prompt {len(prompt_ids)} + completion {len(completion_ids)})"
            f" but max_length is {max_length}",
            where=where, hint=f"shorten or drop the record, or raise train.max_length{context_hint}")
    return Example(prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids)


def encode_sft(records: Records, tokenizer, template: str, max_length: int,
               *, eos_id: int, context_length: int | None = None) -> list[Example]:
    hint = f" (the base's context is {context_length})" if context_length else ""
    out = []
    for item, where in zip(records.items, records.locations):
        prompt_ids = _encode(tokenizer, render(template, _field(item, "prompt", where)))
        completion_ids = _encode(tokenizer, _field(item, "completion", where)) + [eos_id]
        out.append(_completion_example(prompt_ids, completion_ids, where, max_length, hint))
    return out


def encode_pairs(records: Records, tokenizer, template: str, max_length: int,
                 *, eos_id: int, context_length: int | None = None) -> list[Pair]:
    hint = f" (the base's context is {context_length})" if context_length else ""
    out = []
    for item, where in zip(records.items, records.locations):
        prompt_ids = _encode(tokenizer, render(template, _field(item, "prompt", where)))
        chosen, rejected = (_encode(tokenizer, _field(item, k, where)) + [eos_id] for k in ("chosen", "rejected"))
        if chosen == rejected:
            raise TrainingDataError("chosen and rejected are identical", where=where)
        out.append(Pair(_completion_example(prompt_ids, chosen, where, max_length, hint),
                        _completion_example(prompt_ids, rejected, where, max_length, hint)))
    return out


def encode_blocks(texts: Iterable[str], tokenizer, block_size: int, *, eos_id: int) -> list[Example]:
    """Continued pre-training: documents joined by end-of-document and cut into full blocks."""
    stream: list[int] = []
    for text in texts:
        if text.strip():
            stream.extend(_encode(tokenizer, text))
            stream.append(eos_id)
    blocks = [stream[i:i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
    if not blocks:
        raise TrainingDataError(
            f"the corpus has {len(stream)} tokens, fewer than one block of {block_size}",
            hint="add text or lower train.max_length")
    return [Example(block, list(block)) for block in blocks]


def texts_of(records: Records) -> list[str]:
    return [_field(item, "text", where) for item, where in zip(records.items, records.locations)]


def pad(examples: Sequence[Example], pad_id: int):
    """Right-padded `input_ids`, `attention_mask`, `labels` tensors for one micro-batch."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def examples_digest(examples: Sequence[Example | Pair]) -> str:
    """sha256 over the token ids: identifies the exact training data of a run."""
    h = hashlib.sha256()
    for e in examples:
        parts = (e.chosen, e.rejected) if isinstance(e, Pair) else (e,)
        for part in parts:
            h.update(json.dumps([part.input_ids, part.labels], separators=(",", ":")).encode())
    return h.hexdigest()
