"""Progress displays for the training loop: a rich bar on a terminal, one plain line otherwise.

The loop calls ``step`` every batch; reading the loss forces a device sync, so the bar asks for
it (``peek``) only when its timer says a refresh is due. The clock is injected for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

Logs = dict[str, float]


def format_logs(logs: Logs) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def epoch_line(epoch: int, epochs: int, logs: Logs, seconds: float, lr: float | None = None) -> str:
    """``Epoch 3/10 - 1.2s - loss: 0.4123 - accuracy: 0.8812 - val_loss: ...`` (Keras verbose=2)."""
    parts = [f"Epoch {epoch + 1}/{epochs}", f"{seconds:.1f}s", format_logs(logs)]
    return " - ".join(p for p in parts if p)


class PlainProgress:
    """One line per epoch, no carriage returns, colours or cursor movement: for logs and CI."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, step: int, peek: Callable[[], Logs]) -> None:
        pass

    def epoch_end(self, epoch: int, epochs: int, logs: Logs, seconds: float) -> None:
        self.stream.write(epoch_line(epoch, epochs, logs, seconds) + "\n")
        self.stream.flush()


class RichProgress:
    """A bar per epoch on a terminal; the loss shown is refreshed every ``interval`` seconds."""

    def __init__(self, console: Console, *, interval: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.interval = interval
        self.clock = clock
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last = 0.0

    def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None:
        self._bar = Progress(
            TextColumn(f"Epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=True,
            auto_refresh=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=steps)
        self._last = self.clock()

    def step(self, step: int, peek: Callable[[], Logs]) -> None:
        now = self.clock()
        if self._bar is None or self._task is None or now - self._last < self.interval:
            return
        self._last = now
        self._bar.update(self._task, completed=step, description=format_logs(peek()))
        self._bar.refresh()

    def epoch_end(self, epoch: int, epochs: int, logs: Logs, seconds: float) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self.console.print(epoch_line(epoch, epochs, logs, seconds), highlight=False)
