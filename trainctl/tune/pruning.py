"""The callback a trial trains with: it reports the objective to Optuna at every epoch end and
stops the run when the pruner says so (the run then ends as ``pruned``)."""

from __future__ import annotations

from typing import Any

from trainctl.training.callbacks.base import Callback, Logs


class PruningReporter(Callback):
    """``trial.report(logs[objective], epoch)``; ``should_prune`` -> ``stop_training``."""

    def __init__(self, trial: Any, objective: str, epochs: int) -> None:
        self.trial = trial
        self.objective = objective
        self.epochs = epochs  # the last epoch is reported but never pruned: the run is done anyway
        self.pruned_at: int | None = None  # the epoch (1-based) after which the trial was pruned
        self.missing: list[str] | None = None  # the history keys there were, if the objective was not

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.objective not in logs:
            self.missing = sorted(logs)
            self.trainer.stop_training = True
            return
        self.trial.report(float(logs[self.objective]), epoch)
        if epoch + 1 < self.epochs and self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.trainer.stop_training = True
