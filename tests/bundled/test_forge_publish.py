"""`expertpm forge publish` publishes only experts whose evaluation beats their base, unless --force."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from expertpm_forge.publish import NotBetterThanBase, check_beats_base, eval_verdict

WORSE = {"metric": "label_accuracy", "expert_score": 0.25, "base_score": 0.5, "n": 40}
BETTER = {"metric": "label_accuracy", "expert_score": 0.9, "base_score": 0.1, "n": 40}


def forge_publish(world, package: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EXPERTPM_HOME": str(world.maintainer.root)}
    return subprocess.run([sys.executable, "-m", "expertpm", "forge", "publish", str(package), "--index",
                           str(world.dir), "--key", "publisher", *extra], capture_output=True, text=True, env=env)


def published_versions(world) -> list[str]:
    from expertpm._index import add_index, open_index

    add_index(world.client, "main", f"file://{world.dir}", fingerprint=world.fingerprint)
    return [e.version for e in open_index(world.client, "main").entries("sql")]


def test_an_expert_that_does_not_beat_its_base_is_refused(index_world) -> None:
    package = index_world.pack("sql", "1.0.0", eval=WORSE)
    proc = forge_publish(index_world, package)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (f"error: {package}: sql@1.0.0 does not beat its base: expert 0.25 vs base 0.5 on "
                           "label_accuracy (n=40) — improve the expert (data, steps, rank) and rebuild, or pass "
                           "--force to publish it anyway\n")
    assert published_versions(index_world) == []


def test_force_publishes_it_anyway(index_world) -> None:
    package = index_world.pack("sql", "1.0.0", eval=WORSE)
    proc = forge_publish(index_world, package, "--force")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("published sql@1.0.0 (sha256 ")
    assert published_versions(index_world) == ["1.0.0"]


def test_an_expert_that_beats_its_base_is_published(index_world) -> None:
    proc = forge_publish(index_world, index_world.pack("sql", "1.0.0", eval=BETTER))
    assert proc.returncode == 0, proc.stderr
    assert published_versions(index_world) == ["1.0.0"]


def test_an_expert_without_evaluation_is_refused(index_world) -> None:
    proc = forge_publish(index_world, index_world.pack("sql", "1.0.0"))
    assert proc.returncode == 1
    assert "sql@1.0.0 does not beat its base: the package has no eval section" in proc.stderr


@pytest.mark.parametrize(("manifest", "beats", "reason"), [
    ({"kind": "expert", "eval": BETTER}, True, "expert 0.9 vs base 0.1 on label_accuracy (n=40)"),
    ({"kind": "expert", "eval": {**BETTER, "expert_score": 0.1}}, False,
     "expert 0.1 vs base 0.1 on label_accuracy (n=40)"),  # a tie does not beat the base
    ({"kind": "expert", "eval": {"metric": "x", "n": 3}}, False, "the eval section has no expert_score and base_score"),
    ({"kind": "base"}, True, "a base model has no base to beat"),
])
def test_verdicts(manifest: dict, beats: bool, reason: str) -> None:
    verdict = eval_verdict(manifest)
    assert (verdict.beats_base, verdict.reason) == (beats, reason)


def test_check_raises_a_user_error_naming_the_package() -> None:
    manifest = {"name": "ner", "version": "0.2.0", "kind": "expert", "eval": WORSE}
    with pytest.raises(NotBetterThanBase) as info:
        check_beats_base(manifest, where="ner-0.2.0.expert")
    assert str(info.value).startswith("ner-0.2.0.expert: ner@0.2.0 does not beat its base: expert 0.25 vs base 0.5")
    assert check_beats_base(manifest, force=True).beats_base is False
