"""ModelCheckpoint with Keras 3 semantics (``keras/src/callbacks/model_checkpoint.py``).

``filepath`` is relative to the run directory and may hold ``{epoch}`` (1-based, as in Keras)
and ``{<logs key>}`` placeholders with format specs. The template comes from a config file, so
it is never given to ``str.format``: only plain names with a format spec are accepted, which
rules out attribute and index access such as ``{epoch.__class__}``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from trainctl.config.base import did_you_mean
from trainctl.errors import ConfigError
from trainctl.training.callbacks.base import Callback, Logs
from trainctl.training.callbacks.monitor import Monitor, decode_float, encode_float

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONVERSIONS: dict[str, Callable[[object], str]] = {"s": str, "r": repr, "a": ascii}
# (literal text, field name or None, format spec, conversion or None)
Piece = tuple[str, str | None, str, str | None]


def parse_template(template: str) -> list[Piece]:
    """Split a filepath template into pieces, rejecting anything but ``{name:spec}`` fields."""
    try:
        raw = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ConfigError(f"expected a filepath template, received {template!r}: {err}", key="filepath") from None
    pieces: list[Piece] = []
    for literal, name, spec, conversion in raw:
        bad_conversion = conversion is not None and conversion not in _CONVERSIONS
        if name is not None and (not _NAME.match(name) or "{" in (spec or "") or bad_conversion):
            raise ConfigError(
                "expected placeholders like {epoch:03d} or {val_loss:.4f}, "
                f"received {{{name}{':' + spec if spec else ''}}} in {template!r}",
                key="filepath",
                hint="attribute access, indexing and nested fields are not allowed",
            )
        pieces.append((literal, name, spec or "", conversion))
    return pieces


def render_template(pieces: list[Piece], values: dict[str, Any], template: str) -> str:
    """Fill the parsed template from ``values`` with ``format()`` on each value alone."""
    out: list[str] = []
    for literal, name, spec, conversion in pieces:
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            guess = did_you_mean(name, values)
            raise ConfigError(
                f"filepath {template!r} uses {{{name}}}, which is not in the logs; available: {', '.join(values)}",
                key="filepath",
                hint=f"did you mean {{{guess}}}?" if guess else None,
            )
        value = values[name]
        if conversion:
            value = _CONVERSIONS[conversion](value)
        try:
            out.append(format(value, spec))
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"cannot format {{{name}:{spec}}} in {template!r} with value {value!r}: {err}",
                key="filepath",
            ) from None
    return "".join(out)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) at the end of every epoch, or only when it improves."""

    def __init__(
        self,
        filepath: str | None = None,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        if save_freq != "epoch":
            raise ConfigError(
                f"expected save_freq 'epoch', received {save_freq!r}: saving every N batches is not supported yet",
                key="save_freq",
                hint="use save_freq: epoch",
            )
        if filepath is None:
            filepath = "checkpoints/best" if save_best_only else "checkpoints/epoch{epoch:03d}"
        self.filepath = filepath
        self._pieces = parse_template(filepath)
        self.monitor = Monitor("ModelCheckpoint", monitor, mode)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        # Keras seeds ``best`` with initial_value_threshold and never resets it between fits.
        self.best: float | None = initial_value_threshold
        self.messages: list[str] = []

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        path = render_template(self._pieces, {**logs, "epoch": epoch + 1}, self.filepath)
        if self.save_best_only:
            current = self.monitor.value(logs, self.trainer)
            best = "None" if self.best is None else f"{self.best:.5f}"
            name = self.monitor.monitor
            if not self.monitor.improved(current, self.best):
                if self.verbose > 0:
                    self.messages.append(f"Epoch {epoch + 1}: {name} did not improve from {best}")
                return
            if self.verbose > 0:
                self.messages.append(
                    f"Epoch {epoch + 1}: {name} improved from {best} to {current:.5f}, saving model to {path}"
                )
            self.best = current
        elif self.verbose > 0:
            self.messages.append(f"Epoch {epoch + 1}: saving model to {path}")
        target = self.trainer.resolve_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.trainer.save_checkpoint(target, weights_only=self.save_weights_only)
        if self.verbose > 0:
            self.messages.append(f"Epoch {epoch + 1}: finished saving model to {path}")

    def state_dict(self) -> dict[str, Any]:
        return {"best": encode_float(self.best)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = decode_float(state["best"])
