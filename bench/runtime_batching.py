"""A stream of 64 requests with mixed prompt lengths: ours versus transformers' continuous batching.

  - ours (Engine.generate, continuous batching)  vs  transformers `generate_batch`   (target >= 2x)
  - KV waste: KV slots allocated versus slots holding a token, sampled after every step of our
    run (target < 5%); a padded static cache (what `generate` on a padded batch allocates) is
    printed as the baseline.

Both sides get the same KV capacity (`--kv-tokens`, default: exactly what the workload needs)
and generate `--new` tokens per request with EOS ignored.
"""

from __future__ import annotations

import random
import time

from runtime_common import bench_base, engine, hf_model, parser, setup, sync


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--min-prompt", type=int, default=16)
    p.add_argument("--max-prompt", type=int, default=256)
    p.add_argument("--new", type=int, default=32)
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--max-num-seqs", type=int, default=32)
    p.add_argument("--skip-hf", action="store_true", help="only run ours (KV waste)")
    args = p.parse_args()
    setup(args)
    base = bench_base(args.cache)
    rng = random.Random(0)
    prompts = [[rng.randrange(3, 40000) for _ in range(rng.randint(args.min_prompt, args.max_prompt))]
               for _ in range(args.requests)]
    bs = args.block_size
    need_blocks = sum((len(q) + args.new + bs - 1) // bs for q in prompts)

    from expertpm_runtime import SamplingParams

    eng = engine(base, args, block_size=bs, max_num_seqs=args.max_num_seqs, enable_prefix_caching=False)
    block_bytes = eng.stats()["kv_block_bytes"]
    eng = engine(base, args, block_size=bs, max_num_seqs=args.max_num_seqs, enable_prefix_caching=False,
                 kv_cache_bytes=need_blocks * block_bytes)
    params = SamplingParams(max_tokens=args.new, ignore_eos=True)
    eng.generate(prompts[:2], SamplingParams(max_tokens=2, ignore_eos=True))  # warm-up

    allocated = used = 0
    t0 = time.perf_counter()
    for q in prompts:
        eng.add_request(q, params)
    while eng.has_unfinished():
        eng.step()
        running = eng.scheduler.running
        # tokens whose KV is in the cache: all but each sequence's newest token
        used += sum(len(s) - 1 for s in running)
        allocated += eng.block_manager.num_used * bs
    sync(args)
    t_ours = time.perf_counter() - t0
    stats = eng.stats()
    tokens = args.requests * args.new
    waste = 1 - used / allocated if allocated else 0.0
    longest = max(len(q) for q in prompts) + args.new
    static_waste = 1 - sum(len(q) + args.new for q in prompts) / (args.requests * longest)
    print(f"# {args.requests} requests, prompts {args.min_prompt}-{args.max_prompt} tokens, {args.new} new each, "
          f"KV capacity {need_blocks * bs} tokens ({need_blocks * block_bytes / 2**20:.1f} MiB)")
    print(f"ours: {t_ours:.2f} s, {tokens / t_ours:.1f} generated tokens/s (prefill {stats['prefill_seconds']:.1f} s "
          f"in {stats['prefill_steps']} steps, decode {stats['decode_seconds']:.1f} s in {stats['decode_steps']} steps), "
          f"{stats['preemptions']} preemptions")
    print(f"KV waste (ours, block size {bs}, averaged over steps): {100 * waste:.2f}% (target < 5%); "
          f"padded static cache of the same requests: {100 * static_waste:.1f}%")
    if args.skip_hf:
        return

    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    hf = hf_model(base, args)
    gen = GenerationConfig(max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False, eos_token_id=-1,
                           pad_token_id=0)
    cb = ContinuousBatchingConfig(num_blocks=need_blocks, page_size=bs, max_batch_tokens=4096,
                                  max_requests_per_batch=args.max_num_seqs)
    hf.generate_batch(prompts[:2], generation_config=GenerationConfig(max_new_tokens=2, do_sample=False,
                      eos_token_id=-1, pad_token_id=0), continuous_batching_config=cb, warmup=False)
    t0 = time.perf_counter()
    out = hf.generate_batch(prompts, generation_config=gen, continuous_batching_config=cb, warmup=False)
    sync(args)
    t_hf = time.perf_counter() - t0
    assert len(out) == args.requests
    print(f"transformers generate_batch: {t_hf:.2f} s, {tokens / t_hf:.1f} generated tokens/s")
    print(f"ours / generate_batch throughput: {t_hf / t_ours:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
