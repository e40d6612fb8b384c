"""`expertpm pack` of a ~200 MB base-model tree versus `tar --zstd -cf` of the same tree (target: ratio <= 1.5).

Both run as fresh processes on the same source directory, interleaved, N times each; the median
wall time counts. The best wall times and the CPU times are printed too: on a shared, loaded
machine they are the steadier figures. `pack` pays a fixed ~0.3 s for the Python interpreter,
imports (jsonschema) and CLI discovery that `tar` does not. The tree is a Hugging Face-shaped base directory: one large safetensors file of float16
values drawn from a normal distribution (about as compressible as real weights), a second shard,
config and tokenizer files. `pack` hashes every file, validates the safetensors headers, signs and
writes a deterministic tar.zst at zstd level 3 (tar --zstd uses the zstd CLI's default, level 3).

    .venv/bin/python bench/pack.py [--size-mb 200] [-n 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 1.5
REPO = Path(__file__).resolve().parents[1]


def write_safetensors(path: Path, name: str, values: np.ndarray) -> None:
    data = values.astype("<f2").tobytes()
    header = json.dumps({name: {"dtype": "F16", "shape": list(values.shape), "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.write(data)


def make_tree(src: Path, size_mb: int) -> int:
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    big, small = int(size_mb * 0.9) << 20, int(size_mb * 0.1) << 20
    write_safetensors(src / "model-00001-of-00002.safetensors", "model.layers.weight",
                      rng.standard_normal(big // 2, dtype=np.float32).reshape(-1, 1024) * 0.02)
    write_safetensors(src / "model-00002-of-00002.safetensors", "lm_head.weight",
                      rng.standard_normal(small // 2, dtype=np.float32).reshape(-1, 1024) * 0.02)
    (src / "config.json").write_text(json.dumps({"model_type": "qwen3", "vocab_size": 32768, "hidden_size": 1024}))
    vocab = {f"tok{i}": i for i in range(32768)}
    (src / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": vocab, "merges": []}}))
    (src / "tokenizer_config.json").write_text("{}")
    (src / "manifest.json").write_text(json.dumps({
        "format_version": 1, "name": "bench-base", "version": "1.0.0", "kind": "base", "description": "bench",
        "license": "MIT", "authors": ["bench"],
        "model": {"architecture": "qwen3", "weights_sha256": "0" * 64, "tokenizer_sha256": "0" * 64,
                  "vocab_size": 32768, "context_length": 4096}}))
    return sum(p.stat().st_size for p in src.iterdir())


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the tree (default 200)")
    parser.add_argument("-n", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--workdir", help="where to build the tree (default: a temporary directory)")
    args = parser.parse_args()
    if shutil.which("tar") is None or shutil.which("zstd") is None:
        print("needs GNU tar and zstd on PATH", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="expertpm-bench-pack-", dir=args.workdir))
    try:
        src = work / "src"
        total = make_tree(src, args.size_mb)
        env = dict(os.environ, EXPERTPM_HOME=str(work / "home"), PYTHONPATH=str(REPO))
        subprocess.run([sys.executable, "-m", "expertpm", "keys", "generate"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        ours = [sys.executable, "-m", "expertpm", "pack", str(src), "-o", str(work / "ours.expert")]
        tar = ["tar", "--zstd", "-cf", str(work / "tar.tar.zst"), "-C", str(src), "."]
        run(ours, env), run(tar, env)  # warm the page cache
        base, measured = [], []
        for _ in range(args.n):
            base.append(run(tar, env))
            measured.append(run(ours, env))
        t_tar, t_ours = (statistics.median(w for w, _ in runs) for runs in (base, measured))
        c_tar, c_ours = (statistics.median(c for _, c in runs) for runs in (base, measured))
        best_tar, best_ours = (min(w for w, _ in runs) for runs in (base, measured))
        ratio = t_ours / t_tar
        print(f"tree: {total / 1e6:.1f} MB in {len(list(src.iterdir()))} files; medians of {args.n} interleaved runs")
        print(f"tar --zstd -cf: {t_tar:.3f} s wall, {c_tar:.3f} s CPU  -> "
              f"{(work / 'tar.tar.zst').stat().st_size / 1e6:.1f} MB")
        print(f"expertpm pack:  {t_ours:.3f} s wall, {c_ours:.3f} s CPU  -> "
              f"{(work / 'ours.expert').stat().st_size / 1e6:.1f} MB")
        print(f"best wall: tar {best_tar:.3f} s, pack {best_ours:.3f} s -> ratio {best_ours / best_tar:.2f}")
        print(f"CPU ratio pack / tar --zstd: {c_ours / c_tar:.2f}")
        print(f"ratio pack / tar --zstd: {ratio:.2f} (target <= {TARGET})")
        return 0 if ratio <= TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
