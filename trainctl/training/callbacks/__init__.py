"""Keras callbacks built from their config specs: one table from spec class to callback class."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from trainctl.config import callbacks as specs
from trainctl.errors import ConfigError, Problem
from trainctl.training.callbacks.base import Callback, TrainerView
from trainctl.training.callbacks.csv_logger import CSVLogger
from trainctl.training.callbacks.early_stopping import EarlyStopping
from trainctl.training.callbacks.lr_scheduler import LearningRateScheduler
from trainctl.training.callbacks.model_checkpoint import ModelCheckpoint
from trainctl.training.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from trainctl.training.callbacks.tensorboard import TensorBoard
from trainctl.training.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BUILDERS",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
    "TrainerView",
    "build_callback",
    "build_callbacks",
    "locate_error",
]

# Every callback spec's arguments are its Keras constructor's, so the spec class names the class.
BUILDERS: dict[type[specs.CallbackSpec], Callable[..., Callback]] = {
    specs.EarlyStopping: EarlyStopping,
    specs.ModelCheckpoint: ModelCheckpoint,
    specs.CSVLogger: CSVLogger,
    specs.TerminateOnNaN: TerminateOnNaN,
    specs.ReduceLROnPlateau: ReduceLROnPlateau,
    specs.LearningRateScheduler: LearningRateScheduler,
    specs.TensorBoard: TensorBoard,
}


def build_callback(spec: specs.CallbackSpec) -> Callback:
    """The callback for one spec. Errors carry keys relative to the spec (``filepath``...)."""
    cls = BUILDERS.get(type(spec))
    if cls is None:
        raise ConfigError(
            f"expected one of {', '.join(c.__name__ for c in BUILDERS)} specs, received {type(spec).__name__}"
        )
    return cls(**spec.kwargs())


def build_callbacks(specs_: Iterable[specs.CallbackSpec]) -> list[Callback]:
    """Callbacks in config order; an error is located at ``fit.callbacks[i]``."""
    built: list[Callback] = []
    for i, spec in enumerate(specs_):
        try:
            built.append(build_callback(spec))
        except ConfigError as err:
            raise locate_error(err, i) from None
    return built


def locate_error(err: ConfigError, index: int, prefix: str = "fit.callbacks") -> ConfigError:
    """``err`` with its keys placed under ``fit.callbacks[index]``.

    Callbacks raise with keys relative to their spec (``monitor``, ``filepath``) because they do
    not know their position; the builder here and the trainer (for errors raised while
    training) use this to turn them into full config keys.
    """
    base = f"{prefix}[{index}]"
    problems = [Problem(p.message, f"{base}.{p.key}" if p.key else base, p.where, p.hint) for p in err.problems]
    first = problems[0]
    return ConfigError(first.message, key=first.key, hint=first.hint, problems=problems)
