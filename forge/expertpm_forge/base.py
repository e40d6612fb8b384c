"""The tiny base model: tokenizer → randomly initialised Qwen3 → continued pre-training.

    build_base(corpus, work_dir) -> BaseBuild(model_dir=work_dir/"cpt"/"model", ...)

Everything is seeded, so the same corpus and configs give the same weights on the same
software versions. The defaults (~4M parameters) pre-train on 2 CPU cores in a few minutes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from expertpm._manifest import TOKENIZER_FILES, directory_digests

from .tokenizer import ENDOFTEXT, IM_END, TokenizerConfig, load_tokenizer, train_tokenizer
from .train.config import TrainConfig
from .train.methods import TrainResult, continue_pretraining


@dataclass(frozen=True, slots=True)
class BaseModelConfig:
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 64
    intermediate_size: int = 688
    context_length: int = 1024
    rope_theta: float = 10000.0
    # None: 1/sqrt(hidden_size). Qwen's 0.02 suits 4096-wide models; in a narrow model it leaves
    # the tied embeddings (= output layer) too short to express confident next-token choices.
    initializer_range: float | None = None


# Continued pre-training defaults for the tiny base: 128-token blocks, a few epochs of the corpus.
PRETRAIN = TrainConfig(learning_rate=3e-3, epochs=4, batch_size=16, max_length=128, warmup_steps=20,
                       weight_decay=0.01, checkpoint_every=50, seed=0)


@dataclass(frozen=True, slots=True)
class BaseBuild:
    model_dir: Path
    tokenizer_dir: Path
    parameters: int
    vocab_size: int
    pretrain: TrainResult


def init_base(tokenizer_dir: Path, out_dir: Path, config: BaseModelConfig = BaseModelConfig(),
              *, seed: int = 0) -> Path:
    """A randomly initialised Qwen3 model with the given tokenizer, saved as an HF directory."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = load_tokenizer(tokenizer_dir)
    vocab = -(-len(tokenizer) // 64) * 64  # round up: friendlier matrix shapes
    eos = [tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(ENDOFTEXT)]
    model_config = Qwen3Config(
        vocab_size=vocab, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads, head_dim=config.head_dim,
        max_position_embeddings=config.context_length, rope_theta=config.rope_theta,
        tie_word_embeddings=True, eos_token_id=eos[0], pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None, dtype="float32",
        initializer_range=config.initializer_range or config.hidden_size ** -0.5,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(model_config)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
                                               do_sample=False, bos_token_id=None)
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    model.save_pretrained(str(out_dir))
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).is_file():
            shutil.copyfile(Path(tokenizer_dir) / name, out_dir / name)
    return out_dir


def build_base(corpus: Iterable[Path], work_dir: Path, *, model: BaseModelConfig = BaseModelConfig(),
               tokenizer: TokenizerConfig = TokenizerConfig(), pretrain: TrainConfig = PRETRAIN,
               seed: int = 0, resume: bool = True,
               progress: Callable[[int, int, float], None] | None = None) -> BaseBuild:
    """Train the tokenizer, initialise the model and pre-train it on `corpus` (files or dirs).

    Work lands in `work_dir/{tokenizer,init,cpt}`; the finished base is `work_dir/cpt/model`.
    """
    corpus = [Path(p) for p in corpus]
    work_dir = Path(work_dir)
    tok_dir = train_tokenizer(corpus, work_dir / "tokenizer", tokenizer)
    init_dir = init_base(tok_dir, work_dir / "init", model, seed=seed)
    result = continue_pretraining(init_dir, corpus, work_dir / "cpt", config=pretrain, resume=resume,
                                  progress=progress)
    info = model_info(init_dir)
    return BaseBuild(model_dir=result.output or init_dir, tokenizer_dir=tok_dir,
                     parameters=info["parameters"], vocab_size=info["vocab_size"], pretrain=result)


def model_info(model_dir: Path) -> dict:
    """The manifest's `model` section of a base directory, plus its parameter count."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    weights, tokenizer = directory_digests(model_dir)
    parameters = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                shape = fh.get_slice(key).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                parameters += count
    return {"architecture": config["model_type"], "weights_sha256": weights, "tokenizer_sha256": tokenizer,
            "vocab_size": config["vocab_size"], "context_length": config["max_position_embeddings"],
            "parameters": parameters}


