"""``history.png`` (the objective per trial, and the best so far) and ``importance.png`` (Optuna's
parameter importances) for ``trainctl tune show``. matplotlib only (Agg), no plotly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainctl.tune.study import StudyResult


def draw(result: StudyResult, storage: Any = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    out = [_history(result, result.study_dir / "history.png"), _importance(result, result.study_dir / "importance.png")]
    return out


def _save(fig: Any, path: Path) -> Path:
    from trainctl.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _history(result: StudyResult, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    done = sorted((r for r in result.rows if r.state == "complete" and r.value is not None), key=lambda r: r.number)
    pruned = [r for r in result.rows if r.state == "pruned"]
    if done:
        xs = [r.number for r in done]
        ys = [float(r.value) for r in done if r.value is not None]
        ax.scatter(xs, ys, label="completed", zorder=3)
        best: list[float] = []
        pick = min if result.direction == "minimize" else max
        for y in ys:
            best.append(y if not best else pick(best[-1], y))
        ax.step(xs, best, where="post", color="tab:red", label="best so far")
    for r in pruned:
        ax.axvline(r.number, color="0.8", linewidth=1, zorder=1)
    if pruned:
        ax.plot([], [], color="0.8", label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{result.objective} ({result.direction})")
    ax.set_title(f"study {result.name}")
    ax.legend(loc="best")
    fig.tight_layout()
    return _save(fig, path)


def _importance(result: StudyResult, path: Path) -> Path:
    import matplotlib.pyplot as plt

    importances = _importances(result)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * max(len(importances), 1)))
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel("importance (fANOVA)")
    else:
        ax.text(0.5, 0.5, "needs at least 2 completed trials", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title(f"parameter importance for {result.objective}")
    fig.tight_layout()
    return _save(fig, path)


def _importances(result: StudyResult) -> dict[str, float]:
    import optuna

    from trainctl.tune.storage import open_storage

    st = optuna.load_study(study_name=result.name, storage=open_storage(result.storage))
    complete = [t for t in st.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(st))
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same parameters
        return {}
