"""Progress of long commands: a rich bar on a terminal, plain lines when output goes to a file.

``StageProgress`` is the ``progress(stage, step, total)`` callback the training stages call after
every optimizer step (``training.runtime.ProgressFn``). On a terminal it draws one bar per stage
(on stderr, transient). Otherwise (``homepilot train ... > log.txt``, CI) it prints one line on
stdout when a stage starts, every ``every_s`` seconds (step, latest loss from the run's
``metrics.jsonl``, elapsed time, ETA) and when it ends, flushed at once so the file grows while
the command runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


def _latest_loss(metrics: Path | None, stage: str) -> float | None:
    if metrics is None or not metrics.is_file():
        return None
    try:
        with metrics.open("rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            lines = f.read().decode("utf-8", "replace").splitlines()
        for line in reversed(lines):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("stage") == stage and "loss" in row:
                return float(row["loss"])
    except OSError:
        return None
    return None


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class LineProgress:
    """Plain progress lines: stage start, every ``every_s`` seconds, stage end."""

    def __init__(self, label: str, out: TextIO | None = None, metrics: Path | None = None, every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.out, self.metrics, self.every_s, self.clock = label, out or sys.stdout, metrics, every_s, clock
        self.stage: str | None = None
        self.done = 0
        self.t0 = self.last = 0.0

    def line(self, text: str) -> None:
        print(f"[{self.label}] {text}", file=self.out, flush=True)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage != self.stage or done < self.done:  # a new stage (or the same stage of the next run)
            self.stage, self.t0, self.last = stage, now, now
            self.line(f"{stage}: started, {total} steps")
        self.done = done
        finished = total and done >= total
        if now - self.last >= self.every_s or finished:
            self.last = now
            elapsed = now - self.t0
            eta = elapsed / done * (total - done) if done and total else float("nan")
            loss = _latest_loss(self.metrics, stage)
            parts = [f"{stage}: step {done}/{total}" + (f" ({100 * done / total:.0f}%)" if total else "")]
            if loss is not None:
                parts.append(f"loss {loss:.3f}")
            parts.append(f"{_clock(elapsed)} elapsed")
            if not finished and eta == eta:
                parts.append(f"ETA {_clock(eta)}")
            self.line(", ".join(parts) + (" - done" if finished else ""))


class StageProgress:
    """Context manager giving a ``progress(stage, step, total)`` callback: bar or lines."""

    def __init__(self, label: str, metrics: Path | None = None, every_s: float = 30.0, out: TextIO | None = None) -> None:
        self.label, self.metrics, self.every_s, self.out = label, metrics, every_s, out  # out: lines' stream (stdout)
        self._bar = None
        self._tasks: dict[str, int] = {}
        self._lines: LineProgress | None = None

    def __enter__(self) -> StageProgress:
        if (self.out or sys.stdout).isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
        else:
            self._lines = LineProgress(self.label, out=self.out, metrics=self.metrics, every_s=self.every_s)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def note(self, text: str) -> None:
        """A one-off message (a quickstart step starting)."""
        if self._bar is not None:
            self._bar.console.log(text)
        else:
            self._lines.line(text)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._bar is not None:
            if stage not in self._tasks:
                self._tasks[stage] = self._bar.add_task(stage, total=total)
            self._bar.update(self._tasks[stage], completed=done, total=total)
        else:
            self._lines(stage, done, total)
