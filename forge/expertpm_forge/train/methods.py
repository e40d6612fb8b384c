"""The three training methods forge offers, as plain functions over paths and configs.

    train_sft(base_dir, data, out_dir, adapter=..., config=...)      -> out_dir/adapter/
    train_dpo(base_dir, data, out_dir, adapter=..., init_adapter=...) -> out_dir/adapter/
    continue_pretraining(model_dir, corpus, out_dir, config=...)       -> out_dir/model/

Each run also writes `curve.{json,csv,png}`, `summary.json` (provenance for the manifest's
`training` section) and `timing.json` (seconds, tokens/s) into `out_dir`, and keeps a resumable checkpoint in `out_dir/checkpoint/`
until it completes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from expertpm._canonical import canonical_json, sha256_bytes
from expertpm._manifest import TOKENIZER_FILES, directory_digests

from ..tokenizer import DEFAULT_PROMPT_TEMPLATE, ENDOFTEXT, read_documents
from .config import AdapterSpec, TrainConfig, TrainConfigError
from .curve import write_curve
from .data import Records, encode_blocks, encode_pairs, encode_sft, examples_digest, texts_of
from .loop import LoopResult, run_loop
from .models import attach_adapter, context_length, load_adapter, load_base, save_adapter
from .objectives import CausalLMObjective, DPOObjective, reference_logps

Progress = Callable[[int, int, float], None]


@dataclass(frozen=True, slots=True)
class TrainResult:
    out_dir: Path
    output: Path | None  # the adapter (SFT/DPO) or model (CPT) directory; None when stopped early
    completed: bool
    steps: int
    total_steps: int
    seconds: float
    tokens_per_s: float
    final_loss: float | None
    curve: dict[str, Path]
    summary: dict


def train_sft(base_dir: Path, data, out_dir: Path, *, adapter: AdapterSpec = AdapterSpec(),
              config: TrainConfig = TrainConfig(), template: str = DEFAULT_PROMPT_TEMPLATE,
              base_name: str | None = None, resume: bool = True, stop_at_step: int | None = None,
              progress: Progress | None = None) -> TrainResult:
    """Supervised fine-tuning of a new adapter on {prompt, completion} records (JSONL path or list)."""
    model, tokenizer = load_base(base_dir, config.dtype)
    examples = encode_sft(Records.coerce(data), tokenizer, template, _max_length(model, adapter, config),
                          eos_id=tokenizer.eos_token_id, context_length=context_length(model))
    peft_model = attach_adapter(model, adapter, config.seed)
    objective = CausalLMObjective(examples, config.batch_size, config.seed, tokenizer.pad_token_id)
    facts = {"method": "sft", "adapter": adapter.manifest(config.dtype), "template": template,
             "data_sha256": examples_digest(examples), "examples": len(examples)}
    result = _train(peft_model, objective, config, config.lr_for(adapter.type), Path(out_dir), base_dir,
                    facts, resume, stop_at_step, progress)
    return _finish_adapter(peft_model, result, base_name)


def train_dpo(base_dir: Path, data, out_dir: Path, *, adapter: AdapterSpec = AdapterSpec(),
              config: TrainConfig = TrainConfig(), template: str = DEFAULT_PROMPT_TEMPLATE,
              init_adapter: Path | None = None, base_name: str | None = None, resume: bool = True,
              stop_at_step: int | None = None, progress: Progress | None = None) -> TrainResult:
    """DPO on {prompt, chosen, rejected} records.

    Without `init_adapter` a fresh adapter is trained and the reference is the base with the
    adapter disabled. With `init_adapter` (usually the SFT expert) training continues from it and
    the reference is that starting expert, as in the DPO paper.
    """
    model, tokenizer = load_base(base_dir, config.dtype)
    if init_adapter is not None:
        from .models import adapter_spec_of

        adapter = adapter_spec_of(init_adapter)
    pairs = encode_pairs(Records.coerce(data), tokenizer, template, _max_length(model, adapter, config),
                         eos_id=tokenizer.eos_token_id, context_length=context_length(model))
    if init_adapter is not None:
        peft_model = load_adapter(model, init_adapter, trainable=True)
        reference = reference_logps(peft_model, pairs, config.batch_size, tokenizer.pad_token_id)
    else:
        peft_model = attach_adapter(model, adapter, config.seed)
        with peft_model.disable_adapter():
            reference = reference_logps(peft_model, pairs, config.batch_size, tokenizer.pad_token_id)
    objective = DPOObjective(pairs, reference, config.dpo_beta, config.batch_size, config.seed,
                             tokenizer.pad_token_id)
    facts = {"method": "dpo", "adapter": adapter.manifest(config.dtype), "template": template,
             "data_sha256": examples_digest(pairs), "examples": len(pairs),
             "reference": "initial adapter" if init_adapter else "base"}
    result = _train(peft_model, objective, config, config.lr_for(adapter.type), Path(out_dir), base_dir,
                    facts, resume, stop_at_step, progress)
    return _finish_adapter(peft_model, result, base_name)


def continue_pretraining(model_dir: Path, corpus: Records | Sequence[str] | Iterable[Path], out_dir: Path, *,
                         config: TrainConfig = TrainConfig(), resume: bool = True,
                         stop_at_step: int | None = None, progress: Progress | None = None) -> TrainResult:
    """Full-parameter causal-LM training on plain text; `corpus` is text files/directories,
    {text} records, or a list of strings. Documents are joined and cut into `max_length` blocks."""
    model, tokenizer = load_base(model_dir, config.dtype)
    if config.max_length > context_length(model):
        raise TrainConfigError(f"max_length {config.max_length} exceeds the model's context "
                               f"{context_length(model)}", where="train.max_length")
    examples = encode_blocks(_texts(corpus), tokenizer, config.max_length,
                             eos_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT))
    objective = CausalLMObjective(examples, config.batch_size, config.seed, tokenizer.pad_token_id)
    facts = {"method": "cpt", "data_sha256": examples_digest(examples), "blocks": len(examples),
             "block_tokens": config.max_length}
    out_dir = Path(out_dir)
    result = _train(model, objective, config, config.lr_for("full"), out_dir, model_dir,
                    facts, resume, stop_at_step, progress)
    if result.completed:
        target = out_dir / "model"
        shutil.rmtree(target, ignore_errors=True)
        model.save_pretrained(str(target))
        for name in TOKENIZER_FILES:  # byte-for-byte, so the tokenizer digest is unchanged
            if (Path(model_dir) / name).is_file():
                shutil.copyfile(Path(model_dir) / name, target / name)
        result = _with_output(result, target)
    return result


def _texts(corpus) -> list[str]:
    if isinstance(corpus, Records):
        return texts_of(corpus)
    items = list(corpus)
    if items and all(isinstance(i, str) and not Path(i).exists() for i in items):
        return items
    from ..tokenizer import corpus_files

    return list(read_documents(corpus_files(map(Path, items))))


def _max_length(model, adapter: AdapterSpec, config: TrainConfig) -> int:
    virtual = adapter.num_virtual_tokens if adapter.type == "prompt" else 0
    ctx = context_length(model)
    if ctx and config.max_length + virtual > ctx:
        raise TrainConfigError(f"max_length {config.max_length} (+{virtual} virtual tokens) exceeds the base's "
                               f"context of {ctx} tokens", where="train.max_length")
    return config.max_length


def _train(model, objective, config: TrainConfig, lr: float, out_dir: Path, base_dir: Path, facts: dict,
           resume: bool, stop_at_step: int | None, progress: Progress | None) -> TrainResult:
    import peft
    import torch
    import transformers

    weights, tokenizer = directory_digests(Path(base_dir))
    facts = {**facts, "config": config.as_dict(), "learning_rate": lr,
             "base": {"weights_sha256": weights, "tokenizer_sha256": tokenizer}}
    fingerprint = sha256_bytes(canonical_json(facts))
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "checkpoint"
    loop: LoopResult = run_loop(model, objective, config, lr, checkpoint_dir=checkpoint, fingerprint=fingerprint,
                                resume=resume, stop_at_step=stop_at_step, progress=progress)
    curve = write_curve(loop.log, out_dir, title=f"{facts['method']} loss")
    # summary.json holds only what the run determines (same inputs, same bytes); wall-clock
    # figures go to timing.json so a re-run does not look like a different result downstream.
    summary = {**facts, "run_sha256": fingerprint, "steps": loop.steps_done, "total_steps": loop.total_steps,
               "tokens": loop.log[-1]["tokens"] if loop.log else 0,
               "final_loss": loop.log[-1]["loss"] if loop.log else None,
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                            "peft": peft.__version__}}
    timing = {"seconds": round(loop.seconds, 3), "tokens": loop.tokens, "tokens_per_s": round(loop.tokens_per_s, 1)}
    if loop.completed:
        shutil.rmtree(checkpoint, ignore_errors=True)
        (out_dir / "summary.json").write_bytes(canonical_json(summary))
        (out_dir / "timing.json").write_bytes(canonical_json(timing))
    return TrainResult(out_dir, None, loop.completed, loop.steps_done, loop.total_steps, loop.seconds,
                       loop.tokens_per_s, summary["final_loss"], curve, summary)


def _finish_adapter(peft_model, result: TrainResult, base_name: str | None) -> TrainResult:
    if not result.completed:
        return result
    return _with_output(result, save_adapter(peft_model, result.out_dir / "adapter", base_name=base_name))


def _with_output(result: TrainResult, output: Path) -> TrainResult:
    from dataclasses import replace

    return replace(result, output=output)
