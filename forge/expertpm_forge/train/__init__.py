"""forge training: SFT (LoRA, DoRA, IA³, prompt tuning), DPO and continued pre-training.

A plain PyTorch loop over PEFT models (see `loop.py` for why not TRL or `Trainer`). Public API:
"""

from .checkpoint import CheckpointError
from .config import ADAPTER_TYPES, AdapterSpec, TrainConfig, TrainConfigError, adapter_from_dict
from .data import Records, TrainingDataError
from .methods import TrainResult, continue_pretraining, train_dpo, train_sft
from .models import ModelLoadError, load_adapter, load_base

__all__ = [
    "ADAPTER_TYPES", "AdapterSpec", "TrainConfig", "TrainConfigError", "adapter_from_dict",
    "Records", "TrainingDataError", "CheckpointError", "ModelLoadError",
    "TrainResult", "train_sft", "train_dpo", "continue_pretraining", "load_base", "load_adapter",
]
