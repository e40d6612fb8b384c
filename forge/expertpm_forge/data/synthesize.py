"""Synthetic examples from a teacher: one templated request per (chunk, round), answers cached.

Each answer must be a JSON list of example objects (or {"examples": [...]}); Markdown code
fences around it are tolerated. Anything else counts as a malformed answer and is retried by the
client. The examples are written as they came; `format` validates them.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..teacher.client import TeacherClient
from ..teacher.templates import load_template
from .records import DataError, read_jsonl, write_jsonl

__all__ = ["parse_examples", "synthesize"]

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.S)


def parse_examples(content: str) -> list[dict[str, Any]]:
    """The examples in a teacher answer; ValueError when it is not a JSON list of objects."""
    match = _FENCE.match(content)
    doc = json.loads(match.group(1) if match else content)
    if isinstance(doc, dict) and isinstance(doc.get("examples"), list):
        doc = doc["examples"]
    if not isinstance(doc, list) or not all(isinstance(item, dict) for item in doc):
        raise ValueError("expected a JSON list of objects")
    return doc


def _label(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def synthesize(recipe, chunks_file: Path, out: Path, *, progress=None) -> dict[str, Any]:
    """Ask the teacher for examples for every chunk; writes examples.jsonl and provenance.json."""
    spec, task = recipe.teacher, recipe.task
    chunks = read_jsonl(chunks_file)
    if spec.max_chunks is not None:
        chunks = chunks[: spec.max_chunks]
    template_label = spec.template if spec.template.startswith("builtin:") else _label(spec.template_path, recipe.root)
    template = load_template(spec.template_path, template_label)
    schema_text = task.schema.read_text(encoding="utf-8") if task.schema is not None else ""
    api_key = None
    if spec.api_key_env:
        api_key = os.environ.get(spec.api_key_env)
        if not api_key:
            raise DataError(f"teacher.api_key_env: ${spec.api_key_env} is not set", where=recipe.where,
                            hint=f"export {spec.api_key_env}=... before running forge")
    params = {"temperature": spec.temperature, "max_tokens": spec.max_tokens}
    jobs = [(chunk, r) for chunk in chunks for r in range(spec.requests_per_chunk)]
    values = {"n": spec.n_per_chunk, "task": task.kind, "labels": ", ".join(task.labels), "schema": schema_text,
              "expert": recipe.expert.name, "description": recipe.expert.description,
              "pairs": "yes" if recipe.train.method == "dpo" else "no"}
    records, cached = [], 0
    with TeacherClient(spec.endpoint, spec.model, cache_dir=spec.cache_dir, timeout=spec.timeout,
                       retries=spec.retries, backoff=spec.backoff, api_key=api_key) as client, \
            ThreadPoolExecutor(max_workers=spec.concurrency) as pool:

        def ask(job):
            chunk, round_ = job
            messages = template.render({**values, "chunk": chunk["text"], "round": round_})
            return client.complete(messages, params=params, parse=parse_examples)

        futures = [pool.submit(ask, job) for job in jobs]
        try:
            for (chunk, round_), future in zip(jobs, futures):
                result = future.result()
                cached += result.cached
                for k, example in enumerate(result.value):
                    records.append({"id": f"{chunk['id']}/{round_}/{k}", "chunk": chunk["id"], "round": round_,
                                    "example": example})
                if progress is not None:
                    progress(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    write_jsonl(out / "examples.jsonl", records)
    # the provenance file holds only what determines the examples (no endpoint, no cache hits),
    # so a re-run that yields the same examples yields the same bytes
    teacher = {"model": spec.model, "params": params, "templates": {template.label: template.sha256},
               "requests": len(jobs), "examples": len(records)}
    (out / "provenance.json").write_text(json.dumps({"teacher": teacher}, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
    if not records:
        raise DataError(f"the teacher returned no examples for {len(jobs)} requests", where=recipe.where,
                        hint="check that the template and task.schema describe the task (see docs/forge.md)")
    return {"chunks": len(chunks), "requests": len(jobs), "cached": cached, "examples": len(records),
            "teacher": {**teacher, "endpoint": spec.endpoint}}
