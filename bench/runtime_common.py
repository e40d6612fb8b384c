"""Shared setup of the runtime benchmarks: the ~69M-parameter Qwen3 shape, rank-16 LoRA experts.

Models and experts are random (speed does not depend on the values) and cached under
`--cache` (default: $TMPDIR/expertpm-bench) so reruns skip building them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "runtime"), str(REPO / "tests" / "runtime")]

# hidden 512, 12 layers, GQA 8/4 heads, MLP 2048, tied 43k vocabulary: 69.2M parameters;
# a rank-16 LoRA on all seven linear kinds is 8.7 MB in fp32 (the reference point).
BENCH_SHAPE = dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, num_key_value_heads=4,
                   head_dim=64, intermediate_size=2048, vocab_size=43000, max_position_embeddings=2048,
                   initializer_range=0.02, rms_norm_eps=1e-6, tie_word_embeddings=True, eos_token_id=2,
                   bos_token_id=1, pad_token_id=0)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "expertpm-bench")
    p.add_argument("--repeats", type=int, default=3)
    return p


def setup(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# device={args.device} dtype={args.dtype} torch={torch.__version__} threads={torch.get_num_threads()}")


def bench_base(cache: Path) -> Path:
    from conftest import build_tiny_base

    out = cache / ("base-" + hashlib.sha256(json.dumps(BENCH_SHAPE, sort_keys=True).encode()).hexdigest()[:10])
    if not (out / "manifest.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        build_tiny_base(out, seed=0, **BENCH_SHAPE)
    return out


def bench_experts(cache: Path, base: Path, n: int, rank: int = 16):
    """n rank-`rank` LoRA experts on all linear layers (ExpertSpecs), built once and cached."""
    from conftest import ALL_LINEAR, build_expert

    from expertpm_runtime import ExpertSpec

    specs = []
    for i in range(n):
        out = cache / f"{base.name}-lora{rank}-{i}"
        if not (out / "manifest.json").is_file():
            out.mkdir(parents=True, exist_ok=True)
            build_expert(base, out, "lora", seed=100 + i, name=f"bench-{i}", r=rank, alpha=2 * rank,
                         targets=ALL_LINEAR, scale=0.02)
        digest = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
        specs.append(ExpertSpec(digest=digest, path=out))
    return specs


def engine(base: Path, args, **kw):
    from expertpm_runtime import Engine, EngineConfig

    kw.setdefault("kv_cache_bytes", 512 << 20)
    kw.setdefault("max_rank", 16)
    return Engine(EngineConfig(model=base, device=args.device, dtype=args.dtype, **kw))


def hf_model(base: Path, args):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, args.dtype)).to(args.device)
    return model.eval()


def sync(args) -> None:
    if args.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, args, repeats: int) -> tuple[float, object]:
    """Median wall seconds of `repeats` runs (after one warm-up), and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        sync(args)
        t0 = time.perf_counter()
        result = fn()
        sync(args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def report(name: str, ours: float, baseline: float, baseline_name: str, target: str) -> None:
    """Print one ratio line: ours / baseline in 'better is bigger' units (e.g. throughput)."""
    print(f"{name}: {ours:.4g} vs {baseline_name} {baseline:.4g} -> ratio {ours / baseline:.3g}x (target {target})")


def env_note() -> str:
    return f"cpus={os.cpu_count()}"
