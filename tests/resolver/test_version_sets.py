"""The resolver's fast range matcher agrees with `VersionRange.contains` everywhere."""

from __future__ import annotations

import itertools
import random

from expertpm._version_sets import matcher, version_key
from expertpm._versions import Version, VersionRange

VERSIONS = [f"{a}.{b}.{c}{pre}" for a, b, c in itertools.product((0, 1, 2), (0, 1, 3), (0, 2))
            for pre in ("", "-alpha", "-alpha.1", "-alpha.beta", "-beta.2", "-beta.11", "-rc.1", "+build.5")]
RANGES = ["*", "1.2.3", "=1.0.2", "^1.2", "^0.1", "^0.0.2", "~1.3", "~1", ">=1, <2", ">0.1.0", "<=1.3.0",
          ">=1.0.0-alpha, <1.0.0", "^1.0.0-beta.2", "1.x", "0.*", ">=2.1.0-rc.1", "<1 || >=2.1", "~2.0.0-alpha.1"]


def test_sort_keys_follow_semver_precedence():
    versions = [Version.parse(v) for v in VERSIONS]
    rng = random.Random(7)
    for _ in range(2000):
        a, b = rng.choice(versions), rng.choice(versions)
        assert (version_key(a) < version_key(b)) == (a < b), (a, b)
        assert (version_key(a) == version_key(b)) == (a == b), (a, b)


def test_matcher_equals_version_range_contains():
    for text in RANGES:
        version_range = VersionRange.parse(text)
        match = matcher(version_range)
        for raw in VERSIONS:
            version = Version.parse(raw)
            assert match(version, version_key(version)) == version_range.contains(version), (text, raw)
