"""Callback specs, with Keras 3 names, arguments and defaults.

Differences from Keras, all because a YAML file cannot hold Python code or must stay portable:
- ``ModelCheckpoint.filepath`` and ``CSVLogger.filename`` are optional and relative to the run
  directory; ``{epoch}`` and ``{<metric>}`` placeholders work as in Keras.
- ``LearningRateScheduler.schedule`` is data, not a function: a mapping ``{epoch: lr}`` (the
  last boundary at or below the epoch applies), a list of per-epoch rates, or a schedule spec
  (ExponentialDecay...) evaluated at the epoch index instead of the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, field_validator

from trainctl.config.base import CALLBACKS, ComponentSpec
from trainctl.config.compile import Schedule

Mode = Literal["auto", "min", "max"]


class CallbackSpec(ComponentSpec):
    pass


def _in_run_folder(value: str | None) -> str | None:
    """Callback files stay inside the run folder and clear of its own files (trainctl.paths)."""
    from trainctl.errors import ConfigError
    from trainctl.paths import check_relative

    if value is not None:
        try:
            check_relative(value, key="")
        except ConfigError as exc:
            raise ValueError(exc.render()) from None
    return value


@CALLBACKS.register()
class EarlyStopping(CallbackSpec):
    type: Literal["EarlyStopping"] = "EarlyStopping"
    monitor: str = "val_loss"
    min_delta: NonNegativeFloat = 0.0
    patience: NonNegativeInt = 0
    verbose: Literal[0, 1] = 0
    mode: Mode = "auto"
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: NonNegativeInt = 0


@CALLBACKS.register()
class ModelCheckpoint(CallbackSpec):
    type: Literal["ModelCheckpoint"] = "ModelCheckpoint"
    filepath: str | None = None
    monitor: str = "val_loss"
    verbose: Literal[0, 1] = 0
    save_best_only: bool = False
    save_weights_only: bool = False
    mode: Mode = "auto"
    save_freq: Literal["epoch"] | PositiveInt = "epoch"
    initial_value_threshold: float | None = None

    _filepath = field_validator("filepath")(_in_run_folder)


@CALLBACKS.register()
class CSVLogger(CallbackSpec):
    type: Literal["CSVLogger"] = "CSVLogger"
    filename: str = "training.log"
    separator: str = Field(",", min_length=1)
    append: bool = False

    _filename = field_validator("filename")(_in_run_folder)


@CALLBACKS.register()
class TerminateOnNaN(CallbackSpec):
    type: Literal["TerminateOnNaN"] = "TerminateOnNaN"


@CALLBACKS.register()
class ReduceLROnPlateau(CallbackSpec):
    type: Literal["ReduceLROnPlateau"] = "ReduceLROnPlateau"
    monitor: str = "val_loss"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: NonNegativeInt = 10
    verbose: Literal[0, 1] = 0
    mode: Mode = "auto"
    min_delta: NonNegativeFloat = 1e-4
    cooldown: NonNegativeInt = 0
    min_lr: NonNegativeFloat = 0.0


@CALLBACKS.register()
class LearningRateScheduler(CallbackSpec):
    type: Literal["LearningRateScheduler"] = "LearningRateScheduler"
    schedule: dict[NonNegativeInt, PositiveFloat] | list[PositiveFloat] | Schedule  # type: ignore[valid-type]
    verbose: Literal[0, 1] = 0


@CALLBACKS.register()
class TensorBoard(CallbackSpec):
    """Keras's TensorBoard logs, written with torch's SummaryWriter (needs the ``tensorboard`` extra).

    ``log_dir`` is relative to the run directory. Keras's TensorFlow-only options (profiling,
    embeddings, weight images, steps per second) are not offered.
    """

    type: Literal["TensorBoard"] = "TensorBoard"
    log_dir: str = "logs"
    histogram_freq: NonNegativeInt = 0
    write_graph: bool = True
    update_freq: Literal["epoch", "batch"] | PositiveInt = "epoch"

    _log_dir = field_validator("log_dir")(_in_run_folder)


if TYPE_CHECKING:  # the union is built at run time from the registry
    Callback = Any
else:
    Callback = CALLBACKS.field()
