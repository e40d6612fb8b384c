"""Turning a failed resolution into words: the one place where conflicts become sentences.

The failure incompatibility is the root of a derivation tree whose leaves are external facts.
We walk it the way pub's and uv's reporters do: one sentence per derivation, "Because X and Y,
Z." for a node of two leaves, "And because X, Z." to chain onto the previous sentence, and
numbered lines "(1)" for a derived fact used more than once. Then we suggest fixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Hashable

from .incompatibility import (
    ROOT,
    ConflictCause,
    DependencyCause,
    Incompatibility,
    NogoodCause,
    NoVersionsCause,
)
from .terms import Term


@dataclass(frozen=True, slots=True)
class Cause:
    """One external fact of a failure, as data: `kind` is dependency|exclusion|missing|rule."""

    kind: str
    text: str
    packages: tuple


class Explainer:
    def __init__(self, solver) -> None:
        self.solver = solver
        self.provider = solver.provider
        self.lines: list[tuple[str, int | None]] = []
        self.numbers: dict[int, int] = {}
        self.derivations: dict[int, int] = {}

    # -- naming terms and incompatibilities -----------------------------------------------
    def term(self, term: Term) -> str:
        if term.package is ROOT:
            return "your project"
        if term.label:
            return term.label
        universe = self.solver.universe(term.package)
        return universe.describe(self.provider.display(term.package), term.mask)

    def describe(self, inc: Incompatibility) -> str:
        cause, terms = inc.cause, inc.terms
        if inc.is_failure():
            return "your requirements are unsatisfiable"
        if isinstance(cause, DependencyCause) and len(terms) == 2:
            depender, label = terms[0], cause.label
            if depender.package is ROOT:
                return f"you forbid {label}" if cause.excludes else f"you require {label}"
            verb = "is incompatible with" if cause.excludes else "requires"
            reason = f" ({cause.reason})" if cause.reason else ""
            return f"{self.term(depender)} {verb} {label}{reason}"
        if isinstance(cause, NoVersionsCause):
            term = terms[0]
            if not self.solver.universe(term.package).versions:
                return self.provider.describe_missing(term.package)
            return f"there is no version of {self.term(term)}"
        if isinstance(cause, NogoodCause):
            return f"{_join([self.term(t) for t in terms], 'and')} cannot all be used together ({cause.reason})"
        positive = [self.term(t) for t in terms if t.positive]
        negative = [self.term(t.negate()) for t in terms if not t.positive]
        if len(terms) == 1:
            return f"{positive[0]} cannot be used" if positive else f"{negative[0]} is required"
        if positive and negative:
            if len(positive) == 1:
                return f"{positive[0]} requires {_join(negative, 'or')}"
            return f"if {_join(positive, 'and')} are used then {_join(negative, 'or')} is required"
        if positive:
            if len(positive) == 2:
                return f"{positive[0]} is incompatible with {positive[1]}"
            return f"{_join(positive, 'and')} cannot be used together"
        return f"one of {_join(negative, 'or')} is required"

    def _both(self, a: Incompatibility, b: Incompatibility, a_line: int | None = None, b_line: int | None = None) -> str:
        for first, second, l1, l2 in ((a, b, a_line, b_line), (b, a, b_line, a_line)):
            text = self._requires_through(first, second, l1, l2)
            if text:
                return text
        if a_line is None and b_line is None:
            text = self._requires_both(a, b)
            if text:
                return text
            if _is_root_dependency(a) and not _is_root_dependency(b):
                a, b = b, a  # "X requires Y and you require Z" reads better than the reverse
        left = self.describe(a) + (f" ({a_line})" if a_line else "")
        right = self.describe(b) + (f" ({b_line})" if b_line else "")
        return f"{left} and {right}"

    def _requires_through(self, prior: Incompatibility, latter: Incompatibility, p_line, l_line) -> str | None:
        """`A requires B which requires C` when prior's required set lies inside latter's depender."""
        p_pos, p_neg = _requirement_shape(prior)
        l_pos, l_neg = _requirement_shape(latter)
        if p_pos is None or l_pos is None or p_neg.package != l_pos.package:
            return None
        if not p_neg.negate().satisfies(l_pos):
            return None
        subject = "you require" if p_pos.package is ROOT else f"{self.term(p_pos)} requires"
        text = f"{subject} {self.term(p_neg.negate())}" + (f" ({p_line})" if p_line else "")
        return f"{text} which requires {self.term(l_neg.negate())}" + (f" ({l_line})" if l_line else "")

    def _requires_both(self, a: Incompatibility, b: Incompatibility) -> str | None:
        """`A requires B and C` for two requirements of the same depender."""
        if not (isinstance(a.cause, DependencyCause) and isinstance(b.cause, DependencyCause)):
            return None
        if a.cause.excludes or b.cause.excludes or len(a.terms) != 2 or len(b.terms) != 2:
            return None
        if not a.terms[0].same(b.terms[0]):
            return None
        subject = "you require" if a.terms[0].package is ROOT else f"{self.term(a.terms[0])} requires"
        return f"{subject} {a.cause.label} and {b.cause.label}"

    # -- walking the derivation tree ------------------------------------------------------
    def report(self, failure: Incompatibility) -> str:
        self._count(failure)
        if not failure.derived:
            return f"Because {self.describe(failure)}, your requirements are unsatisfiable."
        self._visit(failure, conclusion=True)
        # a line keeps its number only if a later line refers to it
        referenced = {int(n) for text, _ in self.lines for n in re.findall(r"\((\d+)\)", text)}
        lines = [(text, n if n in referenced else None) for text, n in self.lines]
        width = max((len(text) for text, n in lines if n is not None), default=0)
        out = [f"{text.ljust(width)} ({n})" if n is not None else text for text, n in lines]
        return "\n".join(out).strip("\n")

    def _count(self, inc: Incompatibility) -> None:
        key = id(inc)
        self.derivations[key] = self.derivations.get(key, 0) + 1
        if self.derivations[key] == 1 and inc.derived:
            self._count(inc.cause.conflict)
            self._count(inc.cause.other)

    def _write(self, inc: Incompatibility, message: str, numbered: bool) -> None:
        if numbered:
            number = len(self.numbers) + 1
            self.numbers[id(inc)] = number
            self.lines.append((message, number))
        else:
            self.lines.append((message, None))

    def _visit(self, inc: Incompatibility, conclusion: bool = False) -> None:
        numbered = conclusion or self.derivations[id(inc)] > 1
        text = self.describe(inc)
        cause: ConflictCause = inc.cause
        conflict, other = cause.conflict, cause.other
        number = self.numbers.get
        if conflict.derived and other.derived:
            c_line, o_line = number(id(conflict)), number(id(other))
            if c_line is not None and o_line is not None:
                self._write(inc, f"Because {self._both(conflict, other, c_line, o_line)}, {text}.", numbered)
            elif c_line is not None or o_line is not None:
                with_line, without = (conflict, other) if c_line is not None else (other, conflict)
                self._visit(without)
                self._write(inc, f"And because {self.describe(with_line)} ({number(id(with_line))}), {text}.", numbered)
            elif _single_line(conflict) or _single_line(other):
                first, second = (conflict, other) if _single_line(other) else (other, conflict)
                self._visit(first)
                self._visit(second)
                self._write(inc, f"Thus, {text}.", numbered)
            else:
                self._visit(conflict, conclusion=True)
                self.lines.append(("", None))
                self._visit(other)
                self._write(inc, f"And because {self.describe(conflict)} ({number(id(conflict))}), {text}.", numbered)
        elif conflict.derived or other.derived:
            derived, external = (conflict, other) if conflict.derived else (other, conflict)
            d_line = number(id(derived))
            if d_line is not None:
                self._write(inc, f"Because {self._both(external, derived, None, d_line)}, {text}.", numbered)
            elif self._collapsible(derived):
                inner: ConflictCause = derived.cause
                inner_derived, inner_external = (
                    (inner.conflict, inner.other) if inner.conflict.derived else (inner.other, inner.conflict)
                )
                self._visit(inner_derived)
                self._write(inc, f"And because {self._both(inner_external, external)}, {text}.", numbered)
            else:
                self._visit(derived)
                self._write(inc, f"And because {self.describe(external)}, {text}.", numbered)
        else:
            self._write(inc, f"Because {self._both(conflict, other)}, {text}.", numbered)

    def _collapsible(self, inc: Incompatibility) -> bool:
        if self.derivations[id(inc)] > 1:
            return False
        cause: ConflictCause = inc.cause
        if cause.conflict.derived == cause.other.derived:
            return False
        complex_ = cause.conflict if cause.conflict.derived else cause.other
        return id(complex_) not in self.numbers

    # -- data and hints -------------------------------------------------------------------
    def external_causes(self, failure: Incompatibility) -> list[Cause]:
        out, seen = [], set()

        def walk(inc: Incompatibility) -> None:
            if id(inc) in seen:
                return
            seen.add(id(inc))
            if inc.derived:
                walk(inc.cause.conflict)
                walk(inc.cause.other)
                return
            kind = {DependencyCause: "dependency", NoVersionsCause: "missing", NogoodCause: "rule"}.get(
                type(inc.cause), "root"
            )
            if kind == "dependency" and inc.cause.excludes:
                kind = "exclusion"
            if kind != "root":
                packages = tuple(t.package for t in inc.terms if t.package is not ROOT)
                out.append(Cause(kind, self.describe(inc), packages))

        walk(failure)
        return out

    def hints(self, failure: Incompatibility) -> list[str]:
        """Suggest the versions of a required package that the failure did not rule out."""
        forbidden: dict[Hashable, int] = {}
        required: dict[Hashable, int] = {}
        stack, seen = [failure], set()
        while stack:
            inc = stack.pop()
            if id(inc) in seen:
                continue
            seen.add(id(inc))
            if inc.derived:
                stack += [inc.cause.other, inc.cause.conflict]
                if len(inc.terms) == 1 and inc.terms[0].positive:
                    t = inc.terms[0]
                    forbidden[t.package] = forbidden.get(t.package, 0) | t.mask
            elif isinstance(inc.cause, DependencyCause) and inc.terms[0].package is ROOT and len(inc.terms) == 2:
                t = inc.terms[1]
                required[t.package] = t.mask
        hints = []
        for package, mask in required.items():
            universe = self.solver.universe(package)
            banned = forbidden.get(package, 0)
            rest = universe.full & ~banned
            if banned and mask & ~banned == 0 and rest:
                hints.append(f"try {universe.describe(self.provider.display(package), rest)}")
        return hints + [h for h in self.provider.hints(self.external_causes(failure)) if h not in hints]


def _single_line(inc: Incompatibility) -> bool:
    cause: ConflictCause = inc.cause
    return not cause.conflict.derived and not cause.other.derived


def _requirement_shape(inc: Incompatibility) -> tuple[Term | None, Term | None]:
    """(depender, required) for an incompatibility of the form {P, not Q}; (None, None) otherwise."""
    if len(inc.terms) != 2 or isinstance(inc.cause, (NoVersionsCause, NogoodCause)):
        return None, None
    first, second = inc.terms
    if _excludes(inc):
        return None, None
    if first.positive and not second.positive:
        return first, second
    if second.positive and not first.positive:
        return second, first
    return None, None


def _excludes(inc: Incompatibility) -> bool:
    return isinstance(inc.cause, DependencyCause) and inc.cause.excludes


def _is_root_dependency(inc: Incompatibility) -> bool:
    return isinstance(inc.cause, DependencyCause) and bool(inc.terms) and inc.terms[0].package is ROOT


def _join(items: list[str], word: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"
