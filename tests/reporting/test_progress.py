"""Progress displays: the bar reads the device only on its timer; plain mode writes one line per epoch."""

from __future__ import annotations

import io

from rich.console import Console

from trainctl.reporting.progress import PlainProgress, RichProgress, epoch_line


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rich_bar_peeks_only_when_the_interval_has_passed() -> None:
    clock = FakeClock()
    out = io.StringIO()
    bar = RichProgress(Console(file=out, force_terminal=True, width=100), interval=0.5, clock=clock)
    peeks = []

    def peek() -> dict[str, float]:
        peeks.append(clock.now)
        return {"loss": 1.0}

    bar.epoch_begin(0, 2, steps=100)
    for step in range(1, 101):
        clock.now += 0.01  # 100 steps over one second: two refreshes are due
        bar.step(step, peek)
    bar.epoch_end(0, 2, {"loss": 0.5}, 1.0)
    assert len(peeks) == 2
    assert "Epoch 1/2 - 1.0s - loss: 0.5000" in out.getvalue()


def test_plain_progress_is_one_clean_line_per_epoch() -> None:
    out = io.StringIO()
    plain = PlainProgress(out)
    calls = []
    for epoch in range(3):
        plain.epoch_begin(epoch, 3, steps=10)
        for step in range(10):
            plain.step(step, lambda: calls.append(1) or {})  # type: ignore[func-returns-value]
        plain.epoch_end(epoch, 3, {"loss": 0.25, "val_loss": 0.5}, 0.123)
    lines = out.getvalue().splitlines()
    assert lines == [f"Epoch {i}/3 - 0.1s - loss: 0.2500 - val_loss: 0.5000" for i in (1, 2, 3)]
    assert calls == []  # plain mode never syncs the device mid-epoch
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_epoch_line_format() -> None:
    assert epoch_line(4, 10, {"loss": 1.23456, "accuracy": 0.5}, 2.04) == (
        "Epoch 5/10 - 2.0s - loss: 1.2346 - accuracy: 0.5000"
    )
