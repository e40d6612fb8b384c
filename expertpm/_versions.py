"""Semantic versions and version ranges (cargo-style syntax).

Ranges: `*`, `1.2.3` / `=1.2.3` (exact), `^1.2` (compatible: >=1.2.0, <2.0.0; for 0.x the
leftmost non-zero part is fixed), `~1.2.3` (>=1.2.3, <1.3.0), comparisons `>=1, <2`, and
`||` between alternatives. Partial versions fill in zeros. A pre-release is matched only by a
range that names a pre-release of the same major.minor.patch (npm/cargo rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

import semver

from ._errors import VersionError

_PARTIAL = re.compile(r"^(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A parsed semver version; ordered by semver precedence."""

    raw: str
    _v: semver.Version

    @classmethod
    def parse(cls, text: str, *, where: str | None = None) -> "Version":
        if not isinstance(text, str):
            raise VersionError(f"version must be a string, got {type(text).__name__}", where=where)
        try:
            return cls(text, semver.Version.parse(text))
        except ValueError as exc:
            raise VersionError(
                f"invalid version {text!r}", where=where, hint="use semver MAJOR.MINOR.PATCH, e.g. 1.0.0"
            ) from exc

    @property
    def major(self) -> int:
        return self._v.major

    @property
    def minor(self) -> int:
        return self._v.minor

    @property
    def patch(self) -> int:
        return self._v.patch

    @property
    def prerelease(self) -> str | None:
        return self._v.prerelease

    def release_tuple(self) -> tuple[int, int, int]:
        return (self._v.major, self._v.minor, self._v.patch)

    def __lt__(self, other: "Version") -> bool:
        return self._v.compare(other._v) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._v.compare(other._v) == 0

    def __hash__(self) -> int:
        return hash(self._v.finalize_version()) ^ hash(self._v.prerelease)

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True, slots=True)
class Comparator:
    op: str  # one of = > >= < <=
    version: Version

    def matches(self, v: Version) -> bool:
        c = v._v.compare(self.version._v)
        return {"=": c == 0, ">": c > 0, ">=": c >= 0, "<": c < 0, "<=": c <= 0}[self.op]


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A union (`||`) of intersections of comparators."""

    raw: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str, *, where: str | None = None) -> "VersionRange":
        if not isinstance(text, str) or not text.strip():
            raise VersionError("empty version range", where=where, hint="use e.g. '^1.0' or '*'")
        alternatives = []
        for alt in text.split("||"):
            comparators: list[Comparator] = []
            for part in [p.strip() for p in alt.split(",")]:
                if not part:
                    raise VersionError(f"invalid version range {text!r}", where=where)
                comparators.extend(_expand(part, text, where))
            alternatives.append(tuple(comparators))
        return cls(text.strip(), tuple(alternatives))

    def contains(self, version: Version) -> bool:
        for comparators in self.alternatives:
            if all(c.matches(version) for c in comparators):
                if version.prerelease is None or any(
                    c.version.prerelease and c.version.release_tuple() == version.release_tuple()
                    for c in comparators
                ):
                    return True
        return False

    def __str__(self) -> str:
        return self.raw


def _v(major: int, minor: int, patch: int, pre: str | None = None) -> Version:
    text = f"{major}.{minor}.{patch}" + (f"-{pre}" if pre else "")
    return Version(text, semver.Version.parse(text))


def _expand(part: str, whole: str, where: str | None) -> list[Comparator]:
    if part in ("*", "x", "X"):
        return []
    m = re.match(r"^(\^|~|=|>=|<=|>|<)?\s*(.+)$", part)
    op, body = m.group(1) or "", m.group(2).strip()
    pm = _PARTIAL.match(body)
    if not pm:
        raise VersionError(f"invalid version range {whole!r}: cannot read {body!r}", where=where,
                           hint="use forms like '^1.2', '~1.2.3', '>=1, <2', '*' or '1.2.3'")
    major = int(pm.group(1))
    minor = None if pm.group(2) in (None, "x", "X", "*") else int(pm.group(2))
    patch = None if pm.group(3) in (None, "x", "X", "*") else int(pm.group(3))
    pre = pm.group(4)
    low = _v(major, minor or 0, patch or 0, pre)
    if op == "^":
        if major > 0 or minor is None:
            high = _v(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = _v(0, minor + 1, 0)
        else:
            high = _v(0, 0, patch + 1)
        return [Comparator(">=", low), Comparator("<", _floor(high))]
    if op == "~":
        high = _v(major + 1, 0, 0) if minor is None else _v(major, minor + 1, 0)
        return [Comparator(">=", low), Comparator("<", _floor(high))]
    if op in ("", "="):
        if minor is None:
            return [Comparator(">=", low), Comparator("<", _floor(_v(major + 1, 0, 0)))]
        if patch is None:
            return [Comparator(">=", low), Comparator("<", _floor(_v(major, minor + 1, 0)))]
        return [Comparator("=", low)]
    return [Comparator(op, low)]


def _floor(v: Version) -> Version:
    """The smallest version at `v`'s release, so `<2.0.0` also excludes 2.0.0 pre-releases."""
    return _v(v.major, v.minor, v.patch, "0")
