"""How a pipeline run shows itself: rich progress bars on a terminal, one line per step otherwise."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, TextIO

__all__ = ["Reporter", "NullReporter", "LineReporter", "RichReporter", "console_reporter", "summary_text"]

Advance = Callable[[int], None]


def summary_text(summary: Mapping[str, Any]) -> str:
    """The scalar fields of a step summary as `key=value` pairs."""
    parts = []
    for key, value in summary.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif isinstance(value, (int, str, bool)) and len(str(value)) <= 40:
            parts.append(f"{key}={value}")
    return " ".join(parts)


class Reporter:
    """Receives pipeline events; never influences the run."""

    def step_start(self, step: str, description: str) -> None:
        pass

    def step_done(self, outcome) -> None:
        pass

    def log(self, step: str, message: str) -> None:
        pass

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Advance]:
        yield lambda n=1: None


class NullReporter(Reporter):
    """Silent (library use and tests)."""


class LineReporter(Reporter):
    """One line per finished or cached step (logs, CI, pipes)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def step_done(self, outcome) -> None:
        timing = f"{outcome.seconds:6.1f}s" if outcome.status == "ran" else "       "
        self.stream.write(f"{outcome.step:<10} {outcome.status:<6} {timing}  {summary_text(outcome.summary)}\n")
        self.stream.flush()

    def log(self, step: str, message: str) -> None:
        self.stream.write(f"{step:<10} {message}\n")
        self.stream.flush()


class RichReporter(LineReporter):
    """Progress bars for long loops, plus the step lines."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        super().__init__(stream)
        self.console = Console(file=stream)

    def step_start(self, step: str, description: str) -> None:
        self.console.print(f"[bold]{step}[/bold] {description}", highlight=False)

    def step_done(self, outcome) -> None:
        style = "green" if outcome.status == "ran" else "dim"
        self.console.print(f"[{style}]{outcome.step:<10} {outcome.status:<6}[/{style}] "
                           f"{summary_text(outcome.summary)}", highlight=False)

    def log(self, step: str, message: str) -> None:
        self.console.print(f"  {message}", highlight=False)

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Advance]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n=1: bar.advance(task, n)


def console_reporter(stream: TextIO | None = None) -> Reporter:
    stream = stream or sys.stderr
    return RichReporter(stream) if stream.isatty() else LineReporter(stream)
