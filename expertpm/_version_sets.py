"""Fast range matching for the resolver: `VersionRange.contains` on precomputed sort keys.

`VersionRange.contains` compares through `semver.Version.compare`, which rebuilds tuples on every
call; a resolution asks it hundreds of thousands of times. Here each version gets one plain
tuple key with semver precedence (build metadata ignored; a release sorts after its
pre-releases; numeric identifiers before alphanumeric ones, numerically), and a range becomes a
list of (operator, key) checks. Same answers as `VersionRange.contains`, pre-release rule
included (tests compare the two on generated versions and ranges).
"""

from __future__ import annotations

import operator
from typing import Callable

from ._versions import Version, VersionRange

_OPS = {"=": operator.eq, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def version_key(version: Version) -> tuple:
    """A tuple that sorts like semver precedence."""
    pre = version.prerelease
    if not pre:
        return (version.major, version.minor, version.patch, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (version.major, version.minor, version.patch, 0, parts)


def matcher(version_range: VersionRange) -> Callable[[Version, tuple], bool]:
    """`match(version, key)` -> whether `version_range` contains `version` (`key` = version_key(version))."""
    alternatives = []
    for comparators in version_range.alternatives:
        checks = tuple((_OPS[c.op], version_key(c.version)) for c in comparators)
        pre_releases = frozenset(c.version.release_tuple() for c in comparators if c.version.prerelease)
        alternatives.append((checks, pre_releases))

    def match(version: Version, key: tuple) -> bool:
        for checks, pre_releases in alternatives:
            for op, bound in checks:
                if not op(key, bound):
                    break
            else:
                if key[3] == 1 or key[:3] in pre_releases:
                    return True
        return False

    return match
