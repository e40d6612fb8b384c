"""Several experts on one request (W' = W + Σ αᵢ sᵢ BᵢAᵢ, never merged) and mixed-expert batches."""

from __future__ import annotations

import dataclasses

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from expertpm_runtime import SamplingParams

PROMPTS = [[5, 17, 33, 2, 99], [140, 7, 61], [250, 3, 12, 8, 8, 8, 1], [77], [1, 2], [30, 31, 32, 33],
           [200, 201], [9, 9, 9]]


def with_weight(spec, w):
    return dataclasses.replace(spec, weight=w)


def test_composition_equals_hand_merged_weights(tiny_base, make_expert, tiny_engine_factory):
    a = make_expert("lora", seed=21)
    b = make_expert("lora", seed=22, targets=["q_proj", "down_proj"], r=2, alpha=4)
    alphas = (0.7, -1.3)
    hf = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    params = dict(hf.named_parameters())
    with torch.no_grad():
        for spec, alpha, rank, lora_alpha in ((a, alphas[0], 4, 8), (b, alphas[1], 2, 4)):
            tensors = load_file(spec.path / "adapter_model.safetensors")
            for name, A in tensors.items():
                if ".lora_A." not in name:
                    continue
                B = tensors[name.replace("lora_A", "lora_B")]
                target = name.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
                params[target] += alpha * (lora_alpha / rank) * (B @ A)
        prompt = PROMPTS[0] + PROMPTS[2]
        ref = hf(torch.tensor([prompt])).logits[0]
    engine = tiny_engine_factory()
    ours = engine.prompt_logits(prompt, [with_weight(a, alphas[0]), with_weight(b, alphas[1])])
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    # and the base is untouched afterwards: no expert → base logits
    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    torch.testing.assert_close(engine.prompt_logits(prompt), base(torch.tensor([prompt])).logits[0].detach(),
                               atol=1e-4, rtol=1e-4)


def test_mixed_batch_equals_each_row_alone(make_expert, tiny_engine_factory):
    lora_a, lora_b = make_expert("lora", seed=31), make_expert("lora", seed=32, r=2)
    dora, ia3, prompt = make_expert("dora", seed=33), make_expert("ia3", seed=34), make_expert("prompt", seed=35)
    expert_rows = [[], [lora_a], [lora_b], [with_weight(lora_a, 0.5), with_weight(lora_b, 1.5)], [dora], [ia3],
                   [prompt], [lora_a, ia3, prompt, dora]]
    params = SamplingParams(max_tokens=6, ignore_eos=True)
    engine = tiny_engine_factory()
    together = engine.generate(PROMPTS, params, expert_rows)
    stats = engine.stats()
    assert stats["prefill_steps"] == 1 and stats["decode_steps"] == 5  # one pass per step for all rows
    alone = [tiny_engine_factory().generate([p], params, [e])[0] for p, e in zip(PROMPTS, expert_rows)]
    assert together == alone
    assert len({tuple(t) for t in together[:2]} | {tuple(together[4])}) == 3  # experts change the output


def test_mixed_batch_logits_match_single_rows(make_expert, tiny_engine_factory):
    """Same check at the logit level, through the runner, for one decode step of a mixed batch."""
    from expertpm_runtime.sequence import ExpertUse, Sequence

    lora_a, ia3 = make_expert("lora", seed=31), make_expert("ia3", seed=34)
    engine = tiny_engine_factory()
    engine.validate_experts([lora_a, ia3])
    uses = [(), (ExpertUse(lora_a.digest, 1.0),), (ExpertUse(lora_a.digest, 0.5), ExpertUse(ia3.digest, 2.0))]
    seqs = [Sequence(seq_id=100 + i, token_ids=list(p), num_prompt_tokens=len(p), params=SamplingParams(),
                     experts=u) for i, (p, u) in enumerate(zip(PROMPTS, uses))]
    for s in seqs:
        engine.block_manager.allocate(s)
        s.num_cached_tokens = 0
        engine._pin(s)
    batch = torch.cat([engine.runner.all_logits(s)[-1:] for s in seqs])
    with torch.inference_mode():
        for s in seqs:
            engine.block_manager.deallocate(s)
        for s in seqs:
            engine.block_manager.allocate(s)
            s.num_cached_tokens = 0
        ctx = engine.runner._prepare(seqs, True)
        together = engine.runner.model(ctx, engine.runner.kv_cache)
    torch.testing.assert_close(together, batch, atol=1e-5, rtol=1e-5)
