"""The Optuna side of a study: storage, sampler, pruner and search space, built from the ``tune:`` spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainctl.errors import ConfigError

SQLITE_TIMEOUT_S = 60  # trials in parallel processes share one SQLite file: wait for its lock


def default_storage(runs_dir: Path, study: str) -> str:
    return f"sqlite:///{(Path(runs_dir) / study / 'study.db').resolve()}"


def open_storage(url: str) -> Any:
    """An RDB storage for any SQLAlchemy URL Optuna accepts; SQLite waits for its lock instead of failing."""
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL or an unreachable database
        raise ConfigError(
            f"expected a storage URL Optuna can open, received {url!r} ({type(exc).__name__}: {exc})",
            key="--storage",
            hint="e.g. sqlite:///runs/STUDY/study.db or postgresql://user@host/db",
        ) from None


def distributions(spec: Any) -> dict[str, Any]:
    """``tune.parameters`` as Optuna distributions, keyed by the dotted override key."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for key, dist in spec.parameters.items():
        kind, value = dist.kind, dist.get(dist.kind)
        if kind == "choice":
            out[key] = CategoricalDistribution(list(value))
        elif kind == "int":
            out[key] = IntDistribution(int(value[0]), int(value[1]))
        else:
            out[key] = FloatDistribution(float(value[0]), float(value[1]), log=kind == "loguniform")
    return out


def sampler(spec: Any, seed: int | None) -> Any:
    import optuna

    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        space: dict[str, list[Any]] = {}
        for key, dist in spec.parameters.items():
            value = dist.get(dist.kind)
            space[key] = list(value) if dist.kind == "choice" else list(range(int(value[0]), int(value[1]) + 1))
        return optuna.samplers.GridSampler(space, seed=seed)
    if spec.sampler == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise ConfigError(
                "sampler cmaes needs the cmaes package, which is not installed",
                key="tune.sampler",
                hint="pip install cmaes, or use sampler: tpe",
            )
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(spec: Any, epochs: int) -> Any:
    import optuna

    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs)
