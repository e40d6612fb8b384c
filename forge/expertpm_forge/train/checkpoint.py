"""Resumable training checkpoints: trainable weights, optimiser state, step, RNG, loss log.

Tensors go to safetensors (never pickle); scalars and the loss log go to `state.json`. A
checkpoint is written to a temporary sibling directory and renamed into place, so a crash never
leaves a half-written checkpoint behind. `fingerprint` identifies the run (config + data + base);
a checkpoint from a different run is refused rather than silently mixed in.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from expertpm._errors import UserError

STATE = "state.json"
WEIGHTS = "trainable.safetensors"
OPTIMIZER = "optimizer.safetensors"


class CheckpointError(UserError):
    """A checkpoint is unreadable or belongs to a different training run."""


@dataclass(frozen=True, slots=True)
class Restored:
    step: int
    log: list[dict]


def save_checkpoint(path: Path, *, params: dict, optimizer, step: int, log: list[dict],
                    fingerprint: str) -> None:
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({name: p.detach().contiguous() for name, p in params.items()}, str(tmp / WEIGHTS))

    state = optimizer.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict] = {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    save_file(tensors, str(tmp / OPTIMIZER))
    meta = {"step": step, "fingerprint": fingerprint, "param_groups": state["param_groups"],
            "scalars": scalars, "log": log}
    (tmp / STATE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def load_checkpoint(path: Path, *, params: dict, optimizer, fingerprint: str) -> Restored:
    """Restore weights, optimiser and RNG in place; return the step to continue from."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    try:
        meta = json.loads((path / STATE).read_text(encoding="utf-8"))
        weights = load_file(str(path / WEIGHTS))
        tensors = load_file(str(path / OPTIMIZER))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint is unreadable: {exc}", where=str(path),
                              hint="delete the checkpoint directory to start over") from exc
    if meta.get("fingerprint") != fingerprint:
        raise CheckpointError(
            "checkpoint belongs to a different run (config, data or base changed)", where=str(path),
            hint="delete the checkpoint directory, or train with resume=False")
    if set(weights) != set(params):
        raise CheckpointError("checkpoint weights do not match the model's trainable parameters",
                              where=str(path))
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])

    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, extra in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return Restored(step=int(meta["step"]), log=list(meta["log"]))
