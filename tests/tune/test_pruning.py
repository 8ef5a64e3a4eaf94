"""The pruning callback against a small fake trial: what it reports, and when it stops the run."""

from __future__ import annotations

from types import SimpleNamespace

from trainctl.tune.pruning import PruningReporter


class FakeTrial:
    def __init__(self, prune_from: int) -> None:
        self.reports: list[tuple[float, int]] = []
        self.prune_from = prune_from

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.reports[-1][1] >= self.prune_from


def _run(reporter: PruningReporter, epochs: int, logs: list[dict[str, float]]) -> int:
    trainer = SimpleNamespace(stop_training=False)
    reporter.set_trainer(trainer)  # type: ignore[arg-type]
    done = 0
    for epoch in range(epochs):
        reporter.on_epoch_end(epoch, logs[epoch])
        done += 1
        if trainer.stop_training:
            break
    return done


def test_reports_every_epoch_and_stops_when_pruned() -> None:
    trial = FakeTrial(prune_from=2)
    reporter = PruningReporter(trial, "val_loss", epochs=5)
    ran = _run(reporter, 5, [{"loss": 1.0, "val_loss": 2.0 - i / 10} for i in range(5)])
    assert ran == 3 and reporter.pruned_at == 3
    assert trial.reports == [(2.0, 0), (1.9, 1), (1.8, 2)]


def test_the_last_epoch_is_reported_but_not_pruned() -> None:
    trial = FakeTrial(prune_from=2)
    reporter = PruningReporter(trial, "val_loss", epochs=3)
    ran = _run(reporter, 3, [{"val_loss": 1.0}] * 3)
    assert ran == 3 and reporter.pruned_at is None and len(trial.reports) == 3


def test_a_missing_objective_stops_and_lists_the_keys() -> None:
    trial = FakeTrial(prune_from=99)
    reporter = PruningReporter(trial, "val_auc", epochs=4)
    ran = _run(reporter, 4, [{"loss": 1.0, "val_loss": 1.0}] * 4)
    assert ran == 1 and reporter.missing == ["loss", "val_loss"] and trial.reports == []
