"""A progress line on stderr for long work (replay, record, simulate, bench), redrawn in place
and only when stderr is a terminal: pipes, logs and journald never see it."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`update(done)` at will (redraws at most every `every_s`); `close()` erases the line."""

    def __init__(self, label: str, total: float, unit: str = "s", stream: TextIO | None = None,
                 every_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.label, self.total, self.unit, self.every_s = label, float(total), unit, every_s
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):  # closed or not a real stream
            self.enabled = False
        self._last = -float("inf")
        self._width = 0

    def update(self, done: float, note: str = "") -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < self.every_s:
            return
        self._last = now
        pct = f" ({100 * done / self.total:.0f} %)" if self.total > 0 else ""
        digits = 1 if self.unit == "s" else 0  # seconds to a tenth; counts whole
        line = (f"{self.label}: {done:.{digits}f} / {self.total:.{digits}f} {self.unit}"
                f"{pct}{note}")
        self._draw(line)

    def _draw(self, line: str) -> None:
        pad = max(0, self._width - len(line))
        self._width = len(line)
        try:
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        if self.enabled and self._width:
            self._draw("")
            self.stream.write("\r")
            self.stream.flush()
            self._width = 0
