"""Time to first token when the request's expert is not loaded yet versus when it is hot.

Cold: the engine has never seen the expert (manifest read, header check, mmap, copy into a slot,
all inside the timed request); page cache warm. Hot: the same expert already sits in a slot.
Each sample is a fresh request of `--prompt` tokens (no prefix-cache reuse). Target: cold <= 1.2x hot.
"""

from __future__ import annotations

import random
import statistics
import time

from runtime_common import bench_base, bench_experts, engine, parser, setup, sync


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--experts", type=int, default=4, help="distinct experts cycled through the cold runs")
    args = p.parse_args()
    setup(args)
    base = bench_base(args.cache)
    specs = bench_experts(args.cache, base, args.experts)
    from expertpm_runtime import SamplingParams

    eng = engine(base, args, adapter_slots=2, max_chain=1, enable_prefix_caching=False)
    rng = random.Random(0)
    params = SamplingParams(max_tokens=1, ignore_eos=True)

    def forget(spec) -> None:
        """Make the engine cold for this expert again (its page-cache pages stay warm)."""
        eng.runner.pool.forget(spec.digest)
        eng.runner.layouts.pop(spec.digest, None)
        eng._packages.pop(spec.digest, None)

    def ttft(spec) -> float:
        prompt = [rng.randrange(3, 40000) for _ in range(args.prompt)]
        t0 = time.perf_counter()
        eng.add_request(prompt, params, experts=[spec])
        while not any(out.new_token_ids for out in eng.step()):
            pass
        sync(args)
        elapsed = time.perf_counter() - t0
        while eng.has_unfinished():
            eng.step()
        return elapsed

    ttft(specs[0])  # warm-up
    cold, hot = [], []
    for i in range(max(args.repeats * 3, 6)):
        spec = specs[i % len(specs)]
        forget(spec)
        cold.append(ttft(spec))
        hot.append(ttft(spec))
    c, h = statistics.median(cold), statistics.median(hot)
    loads = eng.stats()["adapter_loads"]
    print(f"# prompt {args.prompt} tokens, rank-16 LoRA on all linear layers, {loads} cold loads")
    print(f"TTFT cold expert: {c * 1e3:.1f} ms, hot expert: {h * 1e3:.1f} ms -> cold/hot {c / h:.3f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
