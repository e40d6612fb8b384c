"""The reporter seam: the core tells a reporter what it does and never prints anything itself."""

from __future__ import annotations

from typing import Hashable


class Reporter:
    """Receives progress events from the solver; every method is a no-op by default."""

    def starting(self) -> None:
        pass

    def deciding(self, package: Hashable, version: object) -> None:
        pass

    def conflict(self, incompatibility) -> None:
        """A conflict was found; `incompatibility` is the one that was violated."""

    def backtracking(self, level: int) -> None:
        pass

    def ending(self, resolution) -> None:
        pass


class CountingReporter(Reporter):
    """Counts events; handy for progress displays and for tests of the search itself."""

    def __init__(self) -> None:
        self.decisions = 0
        self.conflicts = 0
        self.backtracks = 0

    def deciding(self, package: Hashable, version: object) -> None:
        self.decisions += 1

    def conflict(self, incompatibility) -> None:
        self.conflicts += 1

    def backtracking(self, level: int) -> None:
        self.backtracks += 1
