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
