"""One trial, in its own process: ``python -m trainctl.tune.trial``, started by :mod:`trainctl.tune.study`.

The coordinator has already asked Optuna for the trial (so its parameters are sampled and stored);
this process reads them back, trains an ordinary run folder with them as ``key=value`` overrides,
reports the objective at every epoch end, and tells Optuna how the trial ended. Exit codes: 0 the
trial completed or was pruned, 2 a config problem (the study stops), others: this trial failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from trainctl.errors import ConfigError, TrainctlError


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trainctl.tune.trial")
    p.add_argument("--storage", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--number", type=int, required=True)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--runs-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--override", action="append", default=[])
    return p.parse_args(argv)


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """The sampled parameters as ``key=value`` overrides (values in text YAML reads back exactly)."""
    from trainctl.config.tune import scalar_text

    return [f"{key}={scalar_text(value)}" for key, value in params.items()]


def run_trial(args: argparse.Namespace) -> int:
    import optuna

    from trainctl.api import train
    from trainctl.config import load_config
    from trainctl.runs import RunDir
    from trainctl.tune.pruning import PruningReporter
    from trainctl.tune.storage import open_storage
    from trainctl.tune.storage import pruner as make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(args.storage)
    fail = optuna.trial.TrialState.FAIL
    try:  # the trial's own config: its parameters come from the storage, its pruner from tune:
        pre = load_config(args.config, args.override)
    except TrainctlError as exc:
        sys.stderr.write(f"error: trial {args.number}: {exc.render()}\n")
        return exc.exit_code
    spec = pre.config.tune
    study = optuna.load_study(study_name=args.study, storage=storage, pruner=make_pruner(spec, pre.config.fit.epochs))
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, args.number)
    storage.set_trial_system_attr(trial_id, "trainctl:pid", os.getpid())
    storage.set_trial_system_attr(trial_id, "trainctl:host", socket.gethostname())
    trial = optuna.trial.Trial(study, trial_id)

    def record(**attrs: Any) -> None:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)

    interrupt: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: interrupt.append(signum))
    try:
        overrides = [*args.override, *trial_overrides(trial.params), f"threads={args.threads}"]
        loaded = load_config(args.config, overrides)
        objective = loaded.config.tune.objective
        reporter = PruningReporter(trial, objective, loaded.config.fit.epochs)
        result = train(
            loaded,
            runs_dir=args.runs_dir,
            name=f"trial-{args.number}",
            interrupt=interrupt,
            callbacks=[reporter],
            on_run_dir=lambda path: record(run_dir=str(path)),
        )
    except TrainctlError as exc:
        record(error=exc.render())
        study.tell(args.number, state=fail)
        sys.stderr.write(f"error: trial {args.number}: {exc.render()}\n")
        return exc.exit_code
    history = result.history
    run = RunDir(result.run_dir)
    test = result.metrics.get("test", {})
    record(epochs=result.epochs, **{f"test_{k}": float(v) for k, v in test.items()})
    if reporter.missing is not None:
        bad = ConfigError(
            f"expected the objective {objective!r} among the history keys, received {', '.join(reporter.missing)}",
            key="tune.objective",
            hint="give a validation split (fit.validation_split) for val_* keys, or name a key listed here",
        )
        record(error=bad.render())
        run.update_run(status="failed", error=bad.render())
        study.tell(args.number, state=fail)
        sys.stderr.write(f"error: {bad.render()}\n")
        return bad.exit_code
    if reporter.pruned_at is not None:
        run.update_run(status="pruned", pruned_after_epoch=reporter.pruned_at, trial=args.number, study=args.study)
        study.tell(args.number, state=optuna.trial.TrialState.PRUNED)
        return 0
    value = float(history[objective][-1])
    run.update_run(trial=args.number, study=args.study, objective={objective: value})
    study.tell(args.number, value)
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_trial(_args(argv)))


if __name__ == "__main__":
    main()
