"""Every adapter type gives PEFT's own logits (fp32, within 1e-4) on the same tiny model."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

PROMPT = [5, 17, 33, 2, 99, 140, 7, 61, 250, 3, 12]


def peft_logits(base, expert_dir, prompt, num_virtual=0):
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), expert_dir)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt])).logits[0]
    return logits[num_virtual:]


@pytest.mark.parametrize("kind,kw", [
    ("lora", {}),
    ("lora", {"targets": ["q_proj", "v_proj"], "r": 2}),
    ("dora", {}),
    ("ia3", {}),
    ("prompt", {}),
])
def test_adapter_logits_match_peft(tiny_base, make_expert, tiny_engine_factory, kind, kw):
    spec = make_expert(kind, seed=11, **kw)
    engine = tiny_engine_factory()
    ours = engine.prompt_logits(PROMPT, [spec])
    n_virtual = 4 if kind == "prompt" else 0
    ref = peft_logits(tiny_base, spec.path, PROMPT, n_virtual)
    base_only = engine.prompt_logits(PROMPT)
    assert (ref - base_only).abs().max() > 1e-2  # the adapter really changes the output
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["lora", "prompt"])
def test_generation_matches_peft_generate(tiny_base, make_expert, tiny_engine_factory, kind):
    from expertpm_runtime import SamplingParams

    spec = make_expert(kind, seed=12)
    ours = tiny_engine_factory().generate([PROMPT], SamplingParams(max_tokens=10, ignore_eos=True), [[spec]])[0]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32), spec.path)
    ref = model.generate(input_ids=torch.tensor([PROMPT]), max_new_tokens=10, do_sample=False,
                         eos_token_id=None, pad_token_id=0)[0, len(PROMPT):].tolist()
    assert ours == ref
