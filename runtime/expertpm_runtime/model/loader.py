"""Loading a base model's weights from its safetensors files, memory-mapped.

On CPU, a tensor already in the requested dtype is used straight from the mapping (zero copy);
otherwise it is converted (CPU) or staged through pinned memory to the GPU.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import torch
from safetensors import safe_open

from expertpm._canonical import parse_json
from expertpm._errors import RuntimeUserError

from .qwen3 import CausalLM
from .spec import ModelSpec
from .staging import Stager

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weight_files(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(parse_json(index.read_bytes(), where=str(index))["weight_map"].values()))
        return [model_dir / s for s in shards]
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise RuntimeUserError(f"{model_dir} has no *.safetensors weights",
                               hint="save the model with save_pretrained(safe_serialization=True)")
    return files


def load_model(model_dir: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> CausalLM:
    stager = Stager(device)
    with ExitStack() as stack:
        where: dict[str, object] = {}
        for path in weight_files(Path(model_dir)):
            f = stack.enter_context(safe_open(path, framework="pt", device="cpu"))
            for name in f.keys():
                where[name] = f

        def get(name: str) -> torch.Tensor:
            f = where.get(name)
            if f is None:
                raise RuntimeUserError(f"base model at {model_dir} lacks tensor {name}",
                                       hint="the checkpoint does not match its config.json")
            t = f.get_tensor(name)
            return stager.to_device(t).to(dtype) if device.type == "cuda" else t.to(dtype)

        with torch.device(device):
            model = CausalLM(spec, get, device)
        stager.wait()
    return model.eval()
