"""Progress of an install: quiet by default, rich progress bars when the CLI runs on a terminal.

The installer only calls `progress.task(label, total_bytes)` and, on the task, `advance(n)`,
`reset()` and `done()`; it never prints.
"""

from __future__ import annotations

import sys
import threading
from typing import Protocol


class Task(Protocol):
    def advance(self, n: int) -> None: ...

    def reset(self) -> None: ...

    def done(self) -> None: ...


class _NullTask:
    __slots__ = ()

    def advance(self, n: int) -> None:
        pass

    def reset(self) -> None:
        pass

    def done(self) -> None:
        pass


class NullProgress:
    """No output at all (scripts, pipes, tests)."""

    def task(self, label: str, total: int) -> Task:
        return _NullTask()

    def close(self) -> None:
        pass


class RichProgress:
    """One bar per package (bytes read, speed) on stderr; removed when the install ends."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=Console(file=sys.stderr), transient=True)
        self._progress.start()
        self._lock = threading.Lock()

    def task(self, label: str, total: int) -> Task:
        with self._lock:
            return _RichTask(self._progress, self._progress.add_task(label, total=total))

    def close(self) -> None:
        self._progress.stop()


class _RichTask:
    __slots__ = ("_progress", "_id")

    def __init__(self, progress, task_id) -> None:
        self._progress, self._id = progress, task_id

    def advance(self, n: int) -> None:
        self._progress.advance(self._id, n)

    def reset(self) -> None:
        self._progress.reset(self._id)

    def done(self) -> None:
        self._progress.remove_task(self._id)


def progress_for_terminal(enabled: bool | None = None):
    """RichProgress when stderr is a terminal (or `enabled` is True), NullProgress otherwise."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return RichProgress() if enabled else NullProgress()
