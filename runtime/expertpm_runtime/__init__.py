"""expertpm's inference runtime: one base model, many experts per request and per batch.

Public API: `Engine`, `EngineConfig`, `SamplingParams`, `ExpertSpec`, `RequestOutput`
(see `engine.py`) and `Runtime`, the text-level API over the local store (see `api.py`). Importing this package does not import torch; `Engine` (and with it torch)
is imported on first use, so the torch-free modules (`scheduler`, `block_manager`,
`sequence`, `packages`) stay importable on their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import EngineConfig, ExpertSpec, RequestOutput, SamplingParams

if TYPE_CHECKING:
    from .api import Runtime
    from .engine import Engine

__all__ = ["Engine", "EngineConfig", "ExpertSpec", "RequestOutput", "Runtime", "SamplingParams"]


def __getattr__(name: str):
    if name == "Engine":
        from .engine import Engine

        return Engine
    if name == "Runtime":
        from .api import Runtime

        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
