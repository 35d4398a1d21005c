"""Progress lines for long steps, on stderr so stdout stays clean for data."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


class Progress:
    """Numbered steps with elapsed times: `[2/5] fitting models ... done in 3.2 s`."""

    def __init__(self, total: int, *, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.done += 1
        start = time.perf_counter()
        if not self.quiet:
            print(f"[{self.done}/{self.total}] {label} ...", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if not self.quiet:
                print(" failed", file=self.stream, flush=True)
            raise
        if not self.quiet:
            print(f" done in {time.perf_counter() - start:.1f} s", file=self.stream, flush=True)


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
