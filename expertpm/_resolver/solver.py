"""PubGrub version solving over finite universes (after Natalie Weizenbaum's pub solver).

Loop: propagate what the incompatibilities force; on a conflict, derive its root cause (a new,
learned incompatibility) and backjump; otherwise decide the next package's preferred version
and add that version's dependencies. Dependencies shared by neighbouring versions are added as
one incompatibility over the whole run of versions ("sql-expert>=2.0.0 requires ..."), which
both prunes the search and makes explanations short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Mapping, Sequence

from .incompatibility import (
    ROOT,
    ROOT_VERSION,
    ConflictCause,
    DependencyCause,
    Incompatibility,
    NogoodCause,
    NoVersionsCause,
    RootCause,
)
from .partial import PartialSolution
from .providers import ANY, Exclusion, Requirement
from .reporters import Reporter
from .terms import CONTRADICTED, INCONCLUSIVE, SATISFIED, Term, Universe

_CONFLICT = object()


class NoSolution(Exception):
    """Raised with the failure incompatibility; `explain()` turns it into words."""

    def __init__(self, incompatibility: Incompatibility, solver: "Solver") -> None:
        super().__init__("no solution")
        self.incompatibility = incompatibility
        self.solver = solver


@dataclass(frozen=True, slots=True)
class Resolution:
    """The selected version of every package, and who requires whom (root's edges under `roots`)."""

    versions: dict
    dependencies: dict = field(default_factory=dict)
    roots: tuple = ()


class Solver:
    def __init__(self, provider, reporter: Reporter | None = None) -> None:
        self.provider = provider
        self.reporter = reporter or Reporter()
        self.solution = PartialSolution()
        self.incompatibilities: dict[Hashable, list[Incompatibility]] = {}
        self.universes: dict[Hashable, Universe] = {}
        self.first_seen: dict[Hashable, int] = {}
        self._masks: dict[tuple, int] = {}
        self._deps: dict[tuple, frozenset] = {}
        self._dep_incompats: dict[tuple, list[tuple[int, Incompatibility]]] = {}
        self._root_requirements: tuple = ()
        self._ranks: dict[Hashable, tuple] = {}

    # -- universes and masks -------------------------------------------------------------
    def universe(self, package: Hashable) -> Universe:
        found = self.universes.get(package)
        if found is None:
            versions = (ROOT_VERSION,) if package is ROOT else self.provider.versions(package)
            found = self.universes[package] = Universe.of(package, versions)
            self.first_seen[package] = len(self.first_seen)
        return found

    def mask(self, package: Hashable, constraint: Hashable) -> int:
        key = (package, constraint)
        found = self._masks.get(key)
        if found is None:
            universe = self.universe(package)
            if constraint == ANY:
                found = universe.full
            else:
                matches = self.provider.matches
                found = 0
                for i, version in enumerate(universe.versions):
                    if matches(package, constraint, version):
                        found |= 1 << i
            self._masks[key] = found
        return found

    def dependencies_of(self, package: Hashable, position: int) -> frozenset:
        key = (package, position)
        found = self._deps.get(key)
        if found is None:
            if package is ROOT:
                found = frozenset(self._root_requirements)
            else:
                version = self.universe(package).versions[position]
                found = frozenset(self.provider.dependencies(package, version))
            self._deps[key] = found
        return found

    # -- the main loop --------------------------------------------------------------------
    def solve(self, requirements: Sequence[Requirement | Exclusion]) -> Resolution:
        self._root_requirements = tuple(requirements)
        self._order = {dep: i for i, dep in enumerate(self._root_requirements)}
        self.reporter.starting()
        self.universe(ROOT)
        self._add(Incompatibility([Term(ROOT, False, 1)], RootCause()))
        package = ROOT
        while package is not None:
            self._propagate(package)
            package = self._decide()
        resolution = self._resolution()
        self.reporter.ending(resolution)
        return resolution

    def _add(self, incompatibility: Incompatibility) -> None:
        for term in incompatibility.terms:
            self.incompatibilities.setdefault(term.package, []).append(incompatibility)

    def _propagate(self, package: Hashable) -> None:
        changed = {package: None}
        while changed:
            package = next(iter(changed))
            del changed[package]
            incompatibilities = self.incompatibilities.get(package, ())
            for i in range(len(incompatibilities) - 1, -1, -1):
                result = self._propagate_one(incompatibilities[i])
                if result is _CONFLICT:
                    root_cause = self._resolve_conflict(incompatibilities[i])
                    changed.clear()
                    changed[self._propagate_one(root_cause)] = None
                    break
                if result is not None:
                    changed[result] = None

    def _propagate_one(self, incompatibility: Incompatibility):
        unsatisfied = None
        relation = self.solution.relation
        for term in incompatibility.terms:
            rel = relation(term)
            if rel == CONTRADICTED:
                return None
            if rel == INCONCLUSIVE:
                if unsatisfied is not None:
                    return None
                unsatisfied = term
        if unsatisfied is None:
            return _CONFLICT
        self.solution.derive(unsatisfied.negate(), incompatibility)
        return unsatisfied.package

    def _resolve_conflict(self, incompatibility: Incompatibility) -> Incompatibility:
        self.reporter.conflict(incompatibility)
        learned = False
        while not incompatibility.is_failure():
            most_recent_term = most_recent = difference = None
            previous_level = 1
            for term in incompatibility.terms:
                satisfier = self.solution.satisfier(term)
                if most_recent is None:
                    most_recent_term, most_recent = term, satisfier
                elif most_recent.index < satisfier.index:
                    previous_level = max(previous_level, most_recent.level)
                    most_recent_term, most_recent, difference = term, satisfier, None
                else:
                    previous_level = max(previous_level, satisfier.level)
                if most_recent_term is term:
                    difference = most_recent.term.difference(most_recent_term)
                    if difference.empty:
                        difference = None
                    else:
                        previous_level = max(previous_level, self.solution.satisfier(difference.negate()).level)
            if previous_level < most_recent.level or most_recent.cause is None:
                self.reporter.backtracking(previous_level)
                self.solution.backtrack(previous_level)
                if learned:
                    self._add(incompatibility)
                return incompatibility
            cause = most_recent.cause
            terms = [t for t in incompatibility.terms if t is not most_recent_term]
            terms += [t for t in cause.terms if t.package != most_recent.term.package]
            if difference is not None:
                terms.append(difference.negate())
            incompatibility = Incompatibility(terms, ConflictCause(incompatibility, cause))
            learned = True
        raise NoSolution(incompatibility, self)

    def _next_package(self) -> tuple[Hashable, Term] | None:
        """The undecided package to decide next: at most one version left first, then by rank."""
        best = best_key = None
        terms, ranks = self.solution.terms, self._ranks
        for package in self.solution.undecided:
            term = terms[package]
            rank = ranks.get(package)
            if rank is None:
                prio = () if package is ROOT else tuple(self.provider.priority(package))
                rank = ranks[package] = (prio, self.first_seen[package])
            key = (term.mask & (term.mask - 1) != 0, rank)
            if best_key is None or key < best_key:
                best, best_key = (package, term), key
        return best

    def _decide(self) -> Hashable | None:
        chosen = self._next_package()
        if chosen is None:
            return None
        package, term = chosen
        universe = self.universe(package)
        allowed = universe.allowed(term.mask)
        version = allowed[0] if package is ROOT else (self.provider.choose_version(package, allowed) if allowed else None)
        if version is None:
            self._add(Incompatibility([Term(package, True, term.mask, term.label)], NoVersionsCause()))
            return package
        position = universe.position(version)
        conflict = False
        for incompatibility in self._dependency_incompatibilities(package, position):
            conflict = conflict or all(
                t.package == package or self.solution.relation(t) == SATISFIED for t in incompatibility.terms
            )
        if not conflict and package is not ROOT:
            incompatibility = self._nogood(package, version, position)
            if incompatibility is not None:
                self._add(incompatibility)
                conflict = all(
                    t.package == package or self.solution.relation(t) == SATISFIED for t in incompatibility.terms
                )
        if not conflict:
            self.reporter.deciding(package, version)
            self.solution.decide(package, position)
        return package

    def _nogood(self, package: Hashable, version: object, position: int) -> Incompatibility | None:
        nogood = self.provider.check_decision(package, version, _Decided(self))
        if nogood is None:
            return None
        terms = [Term(p, True, self.mask(p, c)) for p, c in nogood.members]
        if not terms or any(t.mask == 0 for t in terms):
            return None  # a member with no versions can never be selected: nothing to forbid
        if package not in {t.package for t in terms}:
            terms.append(Term(package, True, 1 << position))
        return Incompatibility(terms, NogoodCause(nogood.reason))

    def _dependency_incompatibilities(self, package: Hashable, position: int) -> list[Incompatibility]:
        """One incompatibility per dependency, each covering the run of neighbouring versions with it."""
        out = []
        deps = self.dependencies_of(package, position)
        ordered = sorted(deps, key=lambda d: self._order.get(d, len(self._order))) if package is ROOT else _stable(deps)
        n = len(self.universe(package).versions)
        for dep in ordered:
            if dep.package == package:
                continue
            key = (package, dep)
            known = self._dep_incompats.setdefault(key, [])
            found = next((inc for span, inc in known if span >> position & 1), None)
            if found is None:
                lo = hi = position
                while lo > 0 and dep in self.dependencies_of(package, lo - 1):
                    lo -= 1
                while hi + 1 < n and dep in self.dependencies_of(package, hi + 1):
                    hi += 1
                span = ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1)
                dep_mask = self.mask(dep.package, dep.constraint)
                excludes = isinstance(dep, Exclusion)
                if excludes and dep_mask == 0:
                    continue  # excluding nothing is no constraint
                dependee = Term(dep.package, excludes, dep_mask, dep.label)
                found = Incompatibility([Term(package, True, span), dependee], DependencyCause(dep.label, excludes, getattr(dep, "reason", "")))
                if not excludes and dep_mask == 0:
                    # "requires a set with no versions" is a tautology to the term algebra; state the
                    # real fact, "there is no version of X", and learn right away that P is unusable
                    missing = Incompatibility([Term(dep.package, True, 0, dep.label)], NoVersionsCause())
                    found = Incompatibility([Term(package, True, span)], ConflictCause(found, missing))
                    if found.is_failure():
                        raise NoSolution(found, self)
                known.append((span, found))
                self._add(found)
            out.append(found)
        return out

    def _resolution(self) -> Resolution:
        versions, edges = {}, {}
        decisions = self.solution.decisions
        for package, position in decisions.items():
            if package is ROOT:
                continue
            versions[package] = self.universes[package].versions[position]
        for package, position in decisions.items():
            deps = self._root_requirements if package is ROOT else _stable(self.dependencies_of(package, position))
            names = tuple(d.package for d in deps if isinstance(d, Requirement) and d.package in versions)
            if package is ROOT:
                roots = tuple(dict.fromkeys(names))
            else:
                edges[package] = tuple(dict.fromkeys(names))
        return Resolution(versions, edges, roots)


class _Decided(Mapping):
    """A read-only view of the decided versions (no copy per decision)."""

    __slots__ = ("_solver",)

    def __init__(self, solver: Solver) -> None:
        self._solver = solver

    def __getitem__(self, package: Hashable) -> object:
        if package is ROOT:
            raise KeyError(package)
        return self._solver.universes[package].versions[self._solver.solution.decisions[package]]

    def __iter__(self):
        return (p for p in self._solver.solution.decisions if p is not ROOT)

    def __len__(self) -> int:
        decisions = self._solver.solution.decisions
        return len(decisions) - (ROOT in decisions)


def _stable(deps: frozenset) -> list:
    """Dependencies in a fixed order (frozensets iterate in hash order, which varies per run)."""
    return sorted(deps, key=lambda d: (type(d).__name__, str(d.package), repr(d.constraint), d.label))
