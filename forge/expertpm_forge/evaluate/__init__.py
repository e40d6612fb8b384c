"""forge evaluation: task metrics for base vs base + expert, and a forgetting probe.

Public API: `evaluate_expert(...) -> EvalReport` (`.manifest()` is the manifest's `eval`
section), `evaluate_model`, `score(metric, predictions, golds, options)`, `perplexity`, `METRICS`.
"""

from .metrics import Score
from .probe import forgetting_probe, perplexity
from .run import METRICS, EvalConfigError, EvalReport, evaluate_expert, evaluate_model, score
from .sql import EvalDatabaseError

__all__ = [
    "METRICS", "Score", "EvalReport", "EvalConfigError", "EvalDatabaseError",
    "evaluate_expert", "evaluate_model", "score", "perplexity", "forgetting_probe",
]
