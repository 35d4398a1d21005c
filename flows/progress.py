"""Progress lines for long steps, on stderr so stdout stays clean for data."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


# The step whose line is printed up to "..." and waits for its " done in" (None between steps).
_open_step: Progress | None = None


def note(text: str) -> None:
    """A line for the user on stderr during a step: after the step's open line, not glued to it
    (`[1/6] loading the champion model ...note: this workspace was moved`); the step's line is then
    printed again with its time."""
    if _open_step is not None:
        print(file=_open_step.stream, flush=True)
        _open_step.interrupted = True
    print(text, file=sys.stderr, flush=True)


class Progress:
    """Numbered steps with elapsed times: `[2/5] fitting models ... done in 3.2 s`."""

    def __init__(self, total: int, *, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interrupted = False

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        global _open_step
        self.done += 1
        start = time.perf_counter()
        line = f"[{self.done}/{self.total}] {label} ..."
        if not self.quiet:
            print(line, end="", file=self.stream, flush=True)
            self.interrupted, _open_step = False, self
        try:
            yield
        except BaseException:
            if not self.quiet:
                print(f"{line if self.interrupted else ''} failed", file=self.stream, flush=True)
            raise
        finally:
            _open_step = None
        if not self.quiet:
            print(f"{line if self.interrupted else ''} done in {time.perf_counter() - start:.1f} s", file=self.stream, flush=True)


class LocalSteps:
    """Runs a flow's steps in this process, one progress line each (the no-server executor).

    `step(label, function, *args, io=False, **kwargs)` calls `function(*args, **kwargs)`; the Prefect
    executor in flows/orchestration.py has the same signature and runs each step as a task.
    """

    def __init__(self, total: int, *, quiet: bool = False) -> None:
        self.progress = Progress(total, quiet=quiet)

    def __call__(self, label: str, function, *args, io: bool = False, **kwargs):
        with self.progress.step(label):
            return function(*args, **kwargs)
