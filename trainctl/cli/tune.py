"""``trainctl tune CONFIG`` runs (or continues) a study; ``trainctl tune show STUDY`` prints it again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from trainctl.cli.common import emit_json, handle_errors


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _render(result: Any) -> None:
    from trainctl.cli.runs_cmd import _table

    keys = list(dict.fromkeys(k for r in result.rows for k in r.params))
    tests = list(dict.fromkeys(k for r in result.rows for k in r.test))
    headers = ["trial", "state", result.objective, *keys, "epochs", *[f"test_{k}" for k in tests], "run"]
    rows = [
        [
            str(r.number),
            r.state,
            _cell(r.value),
            *[_cell(r.params.get(k)) for k in keys],
            _cell(r.epochs),
            *[_cell(r.test.get(k)) for k in tests],
            Path(r.run_dir).name if r.run_dir else "-",
        ]
        for r in result.rows
    ]
    sys.stdout.write(f"study {result.name} ({result.direction} {result.objective}), storage {result.storage}\n")
    _table(headers, rows, right=[0, 2, *range(3, 3 + len(keys) + 1 + len(tests))])
    if result.best is not None:
        sys.stdout.write(f"best: trial {result.best.number}, {result.objective} = {result.best.value:.6g}\n")
    if result.best_yaml is not None:
        sys.stdout.write(f"best config: {result.best_yaml} (trainctl train {result.best_yaml})\n")


def _as_json(result: Any, plots: list[Path] | None = None) -> dict[str, Any]:
    return {
        "study": result.name,
        "storage": result.storage,
        "objective": result.objective,
        "direction": result.direction,
        "best_yaml": str(result.best_yaml) if result.best_yaml else None,
        "best": result.best.number if result.best else None,
        "stale": result.stale,
        "ran": result.ran,
        "plots": [str(p) for p in plots or []],
        "trials": [
            {
                "number": r.number,
                "state": r.state,
                "value": r.value,
                "params": r.params,
                "epochs": r.epochs,
                "test": r.test,
                "run_dir": r.run_dir,
            }
            for r in result.rows
        ],
    }


@handle_errors("as_json")
def tune(
    config: Annotated[str, typer.Argument(help="A config with a tune: section (or `show` to print a study).")],
    rest: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides (after `show`: the study name).")
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Completed or pruned trials the study should hold.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Trials at once, each in its own process.")] = 1,
    study: Annotated[str | None, typer.Option("--study", help="Study name (default: the config's name).")] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL (default sqlite:///RUNS/STUDY/study.db).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Start no new trial after this many seconds.")
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Studies go to RUNS/STUDY/.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="A JSON summary on stdout.")] = False,
) -> None:
    """Tune hyperparameters with Optuna: each trial is a run folder under RUNS/STUDY/.

    Running the same command again continues the study (after a crash, Ctrl-C or kill -9).
    `trainctl tune show STUDY` prints the table again and draws history.png and importance.png.
    """
    from trainctl.errors import ConfigError

    if config == "show":
        if not rest or len(rest) != 1:
            raise ConfigError("expected `trainctl tune show STUDY`, with one study name")
        from trainctl.tune import load_study_result
        from trainctl.tune.plots import draw

        result = load_study_result(rest[0], storage=storage, runs_dir=runs_dir)
        plots = draw(result)
        if as_json:
            emit_json(_as_json(result, plots))
            return
        _render(result)
        sys.stdout.write("plots: " + ", ".join(str(p) for p in plots) + "\n")
        return
    from trainctl.tune import run_study

    def event(line: str) -> None:
        if not as_json:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    result = run_study(
        Path(config),
        overrides=tuple(rest or ()),
        trials=trials,
        jobs=jobs,
        study=study,
        storage=storage,
        timeout=timeout,
        runs_dir=runs_dir,
        on_event=event,
    )
    if as_json:
        emit_json(_as_json(result))
        return
    _render(result)
