"""The provider seam: everything the resolver core needs to know about packages, and nothing more.

The core sees packages as hashable keys and versions as opaque values in a finite, ordered list
per package. A provider answers five questions: which versions exist (in ascending order), does
a version satisfy a constraint, which version to try first, what a chosen version depends on,
and whether a decision breaks a rule that spans many packages (a *nogood*). It also names things
for explanations. Constraints are opaque hashable values; the core caches which versions match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Protocol, Sequence

ANY: Hashable = ("*",)
"""The constraint every version of a package satisfies."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """The depending version needs `package` at a version satisfying `constraint`.

    `label` is how explanations name the required set, e.g. ``sql-expert>=2`` or
    ``base tiny-qwen3 with weights digest 3f2a…``.
    """

    package: Hashable
    constraint: Hashable
    label: str


@dataclass(frozen=True, slots=True)
class Exclusion:
    """The depending version cannot be used together with `package` at `constraint`.

    `reason`, if given, is said once where the exclusion is stated ("... (one base per project)").
    """

    package: Hashable
    constraint: Hashable
    label: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Nogood:
    """These packages (each at its constraint) cannot all be selected together; `reason` says why."""

    members: tuple[tuple[Hashable, Hashable], ...]
    reason: str


class Provider(Protocol):
    def versions(self, package: Hashable) -> Sequence[object]:
        """Every usable version of `package`, in ascending order (empty if the package is unknown)."""

    def matches(self, package: Hashable, constraint: Hashable, version: object) -> bool:
        """Whether `version` of `package` satisfies `constraint` (never called with ANY)."""

    def choose_version(self, package: Hashable, allowed: Sequence[object]) -> object | None:
        """The version to try first among `allowed` (ascending, non-empty)."""

    def priority(self, package: Hashable) -> tuple:
        """A fixed rank: among undecided packages with several versions left, the smallest rank
        is decided next (packages with one version left always go first; ties by first seen)."""

    def dependencies(self, package: Hashable, version: object) -> Iterable[Requirement | Exclusion]:
        """What `version` of `package` requires or excludes. Must not change for a given version."""

    def check_decision(
        self, package: Hashable, version: object, decided: Mapping[Hashable, object]
    ) -> Nogood | None:
        """A rule over many packages that deciding `version` would break, or None."""

    def display(self, package: Hashable) -> str:
        """How explanations name `package` (e.g. ``sql-expert``, ``base tiny-qwen3``)."""

    def describe_missing(self, package: Hashable) -> str:
        """A sentence fragment for a package with no versions at all (e.g. ``x is not in any index``)."""

    def hints(self, causes: Sequence) -> list[str]:
        """Fix suggestions for a failure with these external `Cause`s (e.g. close names of unknown ones)."""


class BaseProvider:
    """Defaults for the optional parts of `Provider`."""

    def priority(self, package: Hashable) -> tuple:
        return ()

    def check_decision(self, package, version, decided) -> Nogood | None:
        return None

    def display(self, package: Hashable) -> str:
        return str(package)

    def describe_missing(self, package: Hashable) -> str:
        return f"{self.display(package)} does not exist"

    def hints(self, causes: Sequence) -> list[str]:
        return []
