"""Incompatibilities: sets of terms that cannot all hold, and why (their cause).

The causes form the derivation tree an explanation walks: external facts (the root's
requirements, a version's dependencies or exclusions, a missing version, a provider's nogood)
at the leaves, and `ConflictCause` nodes joining two incompatibilities into a derived one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

from .terms import Term


class _Root:
    """The package standing for the project being resolved ("you")."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ROOT"


ROOT: Hashable = _Root()
ROOT_VERSION = "root"


@dataclass(frozen=True, slots=True)
class RootCause:
    """The root package must be selected."""


@dataclass(frozen=True, slots=True)
class DependencyCause:
    """A version range of a package requires (or excludes) another package; `label` names it."""

    label: str
    excludes: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NoVersionsCause:
    """No version of a package is left in the required set."""


@dataclass(frozen=True, slots=True)
class NogoodCause:
    """A provider rule over several packages (e.g. at most N experts together)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConflictCause:
    """Derived during conflict resolution from two other incompatibilities."""

    conflict: "Incompatibility"
    other: "Incompatibility"


class Incompatibility:
    __slots__ = ("terms", "cause")

    def __init__(self, terms: list[Term], cause) -> None:
        if isinstance(cause, ConflictCause) and len(terms) > 1:
            # the root is always selected, so "root and X" is just "X"
            terms = [t for t in terms if not (t.package is ROOT and t.positive)] or terms
        merged: dict[Hashable, Term] = {}
        for term in terms:
            seen = merged.get(term.package)
            merged[term.package] = term if seen is None else seen.intersect(term)
        self.terms = list(merged.values())
        self.cause = cause

    @property
    def derived(self) -> bool:
        return isinstance(self.cause, ConflictCause)

    def is_failure(self) -> bool:
        return not self.terms or (
            len(self.terms) == 1 and self.terms[0].positive and self.terms[0].package is ROOT
        )

    def term_for(self, package: Hashable) -> Term | None:
        for term in self.terms:
            if term.package == package:
                return term
        return None

    def __repr__(self) -> str:
        return f"Incompatibility({self.terms!r}, {type(self.cause).__name__})"
