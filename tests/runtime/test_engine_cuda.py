"""The CUDA path (skipped without a GPU): same tokens and logits as the CPU path."""

from __future__ import annotations

import pytest
import torch

from expertpm_runtime import SamplingParams

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

PROMPTS = [[5, 17, 33, 2, 99], [140, 7, 61], [250, 3, 12, 8, 8, 8, 1]]


def test_cuda_greedy_and_expert_logits_match_cpu(make_expert, tiny_engine_factory):
    specs = [make_expert("lora", seed=81), make_expert("dora", seed=82), make_expert("ia3", seed=83),
             make_expert("prompt", seed=84)]
    cpu, gpu = tiny_engine_factory(), tiny_engine_factory(device="cuda")
    params = SamplingParams(max_tokens=8, ignore_eos=True)
    rows = [[specs[0]], [specs[1], specs[2]], [specs[3]]]
    assert gpu.generate(PROMPTS, params, rows) == cpu.generate(PROMPTS, params, rows)
    for spec in specs:
        torch.testing.assert_close(gpu.prompt_logits(PROMPTS[2], [spec]).cpu(), cpu.prompt_logits(PROMPTS[2], [spec]),
                                   atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cuda_half_precision_with_experts(make_expert, tiny_engine_factory, dtype):
    spec = make_expert("lora", seed=85)
    ref = tiny_engine_factory().prompt_logits(PROMPTS[0], [spec])
    ours = tiny_engine_factory(device="cuda", dtype=dtype).prompt_logits(PROMPTS[0], [spec]).cpu()
    assert (ours - ref).abs().max() < 0.1 * ref.abs().max()
