"""Terms over finite version universes.

Every package has a finite, ascending list of versions (its *universe*), so a set of versions is
a bit mask over that list and PubGrub's set algebra (intersection, difference, subset) is a few
integer operations, exact even for pre-releases and for versions that are not semver at all.
A term says "package is selected at a version in mask" (positive) or "package is not selected
at a version in mask" (negative: it may also be absent). A term may carry the label of the
constraint it came from so explanations can quote the user's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

SATISFIED, CONTRADICTED, INCONCLUSIVE = 0, 1, 2


class Term:
    __slots__ = ("package", "positive", "mask", "label")

    def __init__(self, package: Hashable, positive: bool, mask: int, label: str | None = None) -> None:
        self.package = package
        self.positive = positive
        self.mask = mask
        self.label = label

    def negate(self) -> "Term":
        return Term(self.package, not self.positive, self.mask, self.label)

    def intersect(self, other: "Term") -> "Term":
        a, b = self, other
        if a.positive and b.positive:
            mask, positive = a.mask & b.mask, True
        elif a.positive:
            mask, positive = a.mask & ~b.mask, True
        elif b.positive:
            mask, positive = b.mask & ~a.mask, True
        else:
            mask, positive = a.mask | b.mask, False
        label = None
        if positive == a.positive and mask == a.mask:
            label = a.label
        elif positive == b.positive and mask == b.mask:
            label = b.label
        return Term(a.package, positive, mask, label)

    def difference(self, other: "Term") -> "Term":
        return self.intersect(other.negate())

    @property
    def empty(self) -> bool:
        return self.positive and self.mask == 0

    def satisfies(self, other: "Term") -> bool:
        """Whether every selection allowed by self is allowed by other (self ⊆ other)."""
        if self.positive:
            return (self.mask & ~other.mask) == 0 if other.positive else (self.mask & other.mask) == 0
        return False if other.positive else (other.mask & ~self.mask) == 0

    def relation(self, other: "Term") -> int:
        """How `other` (from an incompatibility) relates to self (what is known): SATISFIED etc."""
        if self.satisfies(other):
            return SATISFIED
        if self.intersect(other).empty:
            return CONTRADICTED
        return INCONCLUSIVE

    def same(self, other: "Term") -> bool:
        return self.package == other.package and self.positive == other.positive and self.mask == other.mask

    def __repr__(self) -> str:
        return f"Term({self.package!r}, {'+' if self.positive else '-'}, {self.mask:#b})"


@dataclass(frozen=True, slots=True)
class Universe:
    """The ordered versions of one package and their bit positions."""

    package: Hashable
    versions: tuple
    index: dict  # id(version) -> position: versions need not be cheap to hash
    prerelease: int  # mask of versions a range only matches when it names them (rendering only)

    @classmethod
    def of(cls, package: Hashable, versions: Sequence[object]) -> "Universe":
        versions = tuple(versions)
        pre = 0
        for i, v in enumerate(versions):
            if getattr(v, "prerelease", None):
                pre |= 1 << i
        return cls(package, versions, {id(v): i for i, v in enumerate(versions)}, pre)

    def position(self, version: object) -> int:
        found = self.index.get(id(version))
        if found is None:  # an equal version object that is not the one we handed out
            found = self.versions.index(version)
        return found

    @property
    def full(self) -> int:
        return (1 << len(self.versions)) - 1

    def allowed(self, mask: int) -> list:
        out = []
        while mask:
            low = mask & -mask
            out.append(self.versions[low.bit_length() - 1])
            mask ^= low
        return out

    def render(self, mask: int) -> str:
        """A version range, in our range syntax, naming exactly the versions in `mask`.

        Versions are described relative to this universe (uv does the same), so a gap of one
        version is `>=1.0.0, <1.2.0` rather than a list. Pre-releases outside the mask never
        break a run: our ranges skip pre-releases they do not name anyway.
        """
        n = len(self.versions)
        mask &= self.full
        skip = self.prerelease & ~mask  # transparent positions
        if mask == 0:
            return "(none)"
        if mask | skip == self.full:
            return "*"
        parts = []
        i = 0
        while i < n:
            if not mask >> i & 1:
                i += 1
                continue
            lo = hi = j = i
            while j + 1 < n and ((mask | skip) >> (j + 1) & 1):
                j += 1
                if mask >> j & 1:
                    hi = j
            brk = j + 1  # first position that ends the run (or n)
            need_low = any(not (skip >> k & 1) for k in range(lo))
            need_high = brk < n
            low, high = self.versions[lo], self.versions[brk] if brk < n else None
            if lo == hi and need_low and need_high:
                parts.append(str(low))
            elif need_low and need_high:
                parts.append(f">={low}, <{high}")
            elif need_low:
                parts.append(f">={low}")
            else:
                parts.append(f"<{high}")
            i = brk
        return " || ".join(parts)

    def describe(self, name: str, mask: int) -> str:
        """`name` joined with the range of `mask`: `sql-expert>=2.0.0`, `sql-expert 1.2.0`."""
        text = self.render(mask)
        if text == "*":
            return name
        return f"{name} {text}" if text[0].isdigit() or text[0] in "^~(" else f"{name}{text}"
