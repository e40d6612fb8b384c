"""The scheduler side of the runtime never imports torch (nano-vllm's split)."""

from __future__ import annotations

import subprocess
import sys

from expertpm_testing import REPO


def test_scheduler_block_manager_and_sequence_import_no_torch():
    code = ("import sys; import expertpm_runtime, expertpm_runtime.scheduler, expertpm_runtime.block_manager, "
            "expertpm_runtime.sequence, expertpm_runtime.packages, expertpm_runtime.model.spec; "
            "from expertpm_runtime import EngineConfig, SamplingParams, ExpertSpec, RequestOutput; "
            "bad = sorted(m for m in ('torch', 'transformers', 'safetensors', 'numpy') if m in sys.modules); "
            "print(','.join(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": f"{REPO}:{REPO / 'runtime'}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_public_api_is_pinned():
    import expertpm_runtime

    assert sorted(expertpm_runtime.__all__) == ["Engine", "EngineConfig", "ExpertSpec", "RequestOutput",
                                                "Runtime", "SamplingParams"]
    assert expertpm_runtime.Engine.__name__ == "Engine"
