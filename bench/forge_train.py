"""SFT throughput: forge's training loop vs `transformers.Trainer` + PEFT, same config, same process.

    .venv/bin/python bench/forge_train.py [--base DIR] [--steps 40] [--repeats 2]

Both runs train a fresh LoRA (r=8 on q/k/v/o) with the same records, batch size, learning rate,
schedule, gradient clipping and fp32 on the same base. tokens/s counts the non-padding tokens of
the batches each run consumed, divided by the wall time of the training call alone (model loading
and saving excluded). Runs alternate (forge, Trainer, forge, Trainer, ...) and the median of each
side is reported, so a neighbour's load on a shared machine hits both. Target: ratio >= 1.0.
Without --base, a tiny base (default shape, random weights: throughput does not depend on them)
is made from the bundled corpus.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "forge")]

WORDS = ("cat dog river market city lamp bread table window garden station music teacher "
         "winter summer yellow orange quiet bright small heavy").split()


def records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(WORDS, rng.randint(6, 14))
        out.append({"prompt": "Sort these words: " + " ".join(words),
                    "completion": " ".join(sorted(words))})
    return out


def make_base(tmp: Path) -> Path:
    from expertpm_forge.base import init_base
    from expertpm_forge.tokenizer import train_tokenizer

    tokenizer = train_tokenizer([REPO / "experts" / "base" / "corpus"], tmp / "tokenizer")
    return init_base(tokenizer, tmp / "base")


def forge_run(base: Path, data: list[dict], steps: int, out: Path) -> tuple[int, float]:
    from expertpm_forge.train import AdapterSpec, TrainConfig, train_sft

    config = TrainConfig(learning_rate=5e-3, max_steps=steps, batch_size=8, max_length=128, warmup_steps=5,
                         checkpoint_every=0, seed=0)
    result = train_sft(base, data, out, adapter=AdapterSpec(type="lora"), config=config)
    return result.summary["tokens"], result.seconds


def trainer_run(base: Path, data: list[dict], steps: int, out: Path) -> tuple[int, float]:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from expertpm_forge.tokenizer import DEFAULT_PROMPT_TEMPLATE, load_tokenizer
    from expertpm_forge.train.data import Records, encode_sft

    tok = load_tokenizer(base)
    examples = encode_sft(Records.coerce(data), tok, DEFAULT_PROMPT_TEMPLATE, 128, eos_id=tok.eos_token_id)
    dataset = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels}
               for e in examples]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type=TaskType.CAUSAL_LM,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)
    seen = [0]

    def counting_collator(features):
        batch = collator(features)
        seen[0] += int(batch["attention_mask"].sum())
        return batch

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=8, max_steps=steps,
                             learning_rate=5e-3, lr_scheduler_type="linear", warmup_steps=5, weight_decay=0.0,
                             max_grad_norm=1.0, optim="adamw_torch", logging_steps=10_000, save_strategy="no",
                             report_to=[], use_cpu=True, dataloader_num_workers=0, seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=counting_collator)
    began = time.perf_counter()
    trainer.train()
    return seen[0], time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="a base model directory (default: make a tiny one)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = args.base or make_base(tmp)
        data = records(args.steps * 8)
        forge_run(base, data[:32], 3, tmp / "warm-forge")  # first-call costs out of the timings
        trainer_run(base, data[:32], 3, tmp / "warm-trainer")
        rates: dict[str, list[float]] = {"forge": [], "trainer": []}
        for i in range(args.repeats):
            for name, fn in (("forge", forge_run), ("trainer", trainer_run)):
                tokens, seconds = fn(base, data, args.steps, tmp / f"{name}-{i}")
                rates[name].append(tokens / seconds)
                print(f"  {name:8s} run {i + 1}: {tokens} tokens in {seconds:.2f}s = {tokens / seconds:,.0f} tokens/s")
    forge, trainer = statistics.median(rates["forge"]), statistics.median(rates["trainer"])
    print(f"SFT LoRA r=8, batch 8, {args.steps} steps, fp32, {torch.get_num_threads()} threads")
    print(f"forge loop:            {forge:,.0f} tokens/s (median of {args.repeats})")
    print(f"transformers.Trainer:  {trainer:,.0f} tokens/s (median of {args.repeats})")
    print(f"ratio forge/Trainer:   {forge / trainer:.2f}x (target >= 1.0)")


if __name__ == "__main__":
    main()
