"""A PubGrub resolver core that knows nothing about experts.

    resolve(provider, requirements, reporter=None) -> Resolution
        raises ResolutionError whose message is the uv-style explanation, `.hint` the fixes and
        `.causes` the external facts (`Cause`) of the failure; `.incompatibility` is the raw tree.

Everything about packages comes through a `Provider` (see providers.py); progress goes to a
`Reporter` (reporters.py). See docs/resolver.md for the design.
"""

from __future__ import annotations

from typing import Sequence

from .._errors import ResolutionError
from .explain import Cause, Explainer
from .incompatibility import ROOT, Incompatibility
from .providers import ANY, BaseProvider, Exclusion, Nogood, Provider, Requirement
from .reporters import CountingReporter, Reporter
from .solver import NoSolution, Resolution, Solver

__all__ = [
    "ANY",
    "BaseProvider",
    "Cause",
    "CountingReporter",
    "Exclusion",
    "Incompatibility",
    "Nogood",
    "Provider",
    "ROOT",
    "Reporter",
    "Requirement",
    "Resolution",
    "resolve",
]


def resolve(provider: Provider, requirements: Sequence[Requirement | Exclusion], reporter: Reporter | None = None) -> Resolution:
    try:
        return Solver(provider, reporter).solve(requirements)
    except NoSolution as failure:
        explainer = Explainer(failure.solver)
        message = explainer.report(failure.incompatibility)
        hints = explainer.hints(failure.incompatibility)
        error = ResolutionError(
            message,
            causes=explainer.external_causes(failure.incompatibility),
            hint="; ".join(hints) if hints else None,
        )
        error.incompatibility = failure.incompatibility
        raise error from None
