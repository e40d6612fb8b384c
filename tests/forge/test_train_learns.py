"""Forge's training measurably teaches a task: a LoRA on the micro base beats the base by far."""

from __future__ import annotations

import pytest

from expertpm_forge.evaluate import evaluate_expert
from expertpm_testing.forge_train import PROBE_TEXT, TOPICS, topic_records


@pytest.mark.slow
def test_lora_expert_beats_its_base_on_held_out_items(micro_base, topic_expert):
    held_out = topic_records(40, seed=1)  # other seed: new sentence/word combinations
    report = evaluate_expert(micro_base, topic_expert, held_out, metric="label_accuracy",
                             options={"labels": sorted(TOPICS)}, probe=PROBE_TEXT)
    assert report.expert_score >= 0.8, report.items[:5]
    assert report.base_score <= 0.2
    assert report.parts["expert"]["valid_label"] >= 0.9  # answers are labels, not chatter
    assert report.probe["ratio"] < 3.0  # the expert did not wreck general text
