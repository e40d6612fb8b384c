"""The partial solution: an ordered list of decisions and derivations, with decision levels."""

from __future__ import annotations

from typing import Hashable

from .terms import INCONCLUSIVE, Term


class Assignment:
    __slots__ = ("term", "level", "index", "cause", "version")

    def __init__(self, term: Term, level: int, index: int, cause, version) -> None:
        self.term = term
        self.level = level
        self.index = index
        self.cause = cause  # None for a decision, else the incompatibility it was derived from
        self.version = version  # the decided version's position, for decisions


class PartialSolution:
    def __init__(self) -> None:
        self.assignments: list[Assignment] = []
        self.by_package: dict[Hashable, list[Assignment]] = {}
        self.terms: dict[Hashable, Term] = {}  # the intersection of each package's assignments
        self.decisions: dict[Hashable, int] = {}  # package -> decided version position
        self.undecided: dict[Hashable, None] = {}  # packages with a positive term and no decision
        self.level = 0

    def decide(self, package: Hashable, position: int) -> None:
        self.level += 1
        self.decisions[package] = position
        self.undecided.pop(package, None)
        self._add(Term(package, True, 1 << position), None, position)

    def derive(self, term: Term, cause) -> None:
        self._add(term, cause, None)

    def _add(self, term: Term, cause, version) -> None:
        assignment = Assignment(term, self.level, len(self.assignments), cause, version)
        self.assignments.append(assignment)
        self.by_package.setdefault(term.package, []).append(assignment)
        known = self.terms.get(term.package)
        term = self.terms[term.package] = term if known is None else known.intersect(term)
        if term.positive and term.package not in self.decisions:
            self.undecided[term.package] = None

    def relation(self, term: Term) -> int:
        known = self.terms.get(term.package)
        return INCONCLUSIVE if known is None else known.relation(term)

    def satisfier(self, term: Term) -> Assignment:
        """The earliest assignment after which the partial solution satisfies `term`."""
        acc = None
        for assignment in self.by_package.get(term.package, ()):
            acc = assignment.term if acc is None else acc.intersect(assignment.term)
            if acc.satisfies(term):
                return assignment
        raise AssertionError(f"{term!r} is not satisfied by the partial solution")

    def backtrack(self, level: int) -> None:
        touched = set()
        while self.assignments and self.assignments[-1].level > level:
            assignment = self.assignments.pop()
            package = assignment.term.package
            self.by_package[package].pop()
            if assignment.cause is None:
                del self.decisions[package]
            touched.add(package)
            self.undecided.pop(package, None)
        for package in touched:
            remaining = self.by_package[package]
            if not remaining:
                del self.by_package[package]
                del self.terms[package]
                continue
            acc = remaining[0].term
            for assignment in remaining[1:]:
                acc = acc.intersect(assignment.term)
            self.terms[package] = acc
            if acc.positive and package not in self.decisions:
                self.undecided[package] = None
        self.level = level
