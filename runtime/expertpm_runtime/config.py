"""The runtime's public value types: engine configuration, sampling, expert choice, step output.

Plain dataclasses, no torch: the server and CLI build these without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How to build an Engine.

    `kv_cache_bytes` is a hard budget: the KV cache gets exactly the number of blocks that fit in
    it and the scheduler never allocates past that. `adapter_slots` experts can be resident at
    once (LRU over the unpinned ones); `max_rank` sizes every slot, so the slot pool takes
    adapter_slots × layers × Σ_modules (max_rank·(in+out) + …) elements (`stats()["adapter_pool_bytes"]`;
    on CPU its pages are only touched when used). `max_chain` experts at most per request.
    """

    model: Path
    device: str = "cpu"
    dtype: str = "float32"
    block_size: int = 16
    kv_cache_bytes: int = 256 << 20
    max_num_seqs: int = 32
    max_num_batched_tokens: int = 4096
    max_chain: int = 10
    adapter_slots: int = 16
    max_rank: int = 64
    max_model_len: int | None = None  # default: the model's max_position_embeddings
    enable_prefix_caching: bool = True


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """`temperature == 0` means greedy; `top_k == 0` and `top_p == 1` disable those filters.

    Generation stops at `max_tokens`, at the model's end-of-sequence token (unless `ignore_eos`),
    at any of `stop_token_ids`, or at the context limit. The stopping token is part of the output.
    """

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    stop_token_ids: tuple[int, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False


@dataclass(frozen=True, slots=True)
class ExpertSpec:
    """One expert applied to a request: the installed package directory and its weight αᵢ.

    `digest` is the package's content digest (the store's sha256 of the `.expert` archive); it
    is the adapter cache key, never the name.
    """

    digest: str
    path: Path
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class RequestOutput:
    """What one `Engine.step()` produced for one request.

    `finish_reason` is None while running, then "stop" (EOS or a stop token), "length"
    (max_tokens or the context limit), "abort" (`Engine.abort`) or "error" (an expert could not
    be loaded when the request was scheduled; `Engine.last_error` says why).
    """

    request_id: int
    new_token_ids: list[int] = field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None
