"""How much memory training a model needs, estimated from the config alone (no torch).

The estimate, documented in the README ("Memory estimate"), is

    parameters x 4 bytes x (1 weight + 1 gradient + optimizer slots)
    + batch size x 4 bytes x (input + every layer's output per sample)

in float32: the weights, their gradients and the optimizer's per-weight state (Adam keeps 2
slots, RMSprop 1, plain SGD 0...), plus the activations autograd keeps for the backward pass. It
is a floor (no allocator slack, no workspace, no data set), good for telling a model of 10^12
units from one that fits, which is its job: ``train`` refuses before creating a run folder when
the floor is above the memory available on the device.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainctl.bounds import human

BYTES_PER_FLOAT = 4
# Per-weight state each optimizer keeps (Keras's variables, which ours mirror)
_SLOTS = {"SGD": 0, "Adam": 2, "AdamW": 2, "Adamax": 2, "Nadam": 2, "RMSprop": 1, "Adagrad": 1, "Adadelta": 2}


def optimizer_slots(optimizer: Any) -> int:
    """Per-weight state of an optimizer spec (a name string counts as its defaults)."""
    kind = type(optimizer).__name__ if not isinstance(optimizer, str) else optimizer
    slots = _SLOTS.get(kind, _SLOTS.get(next((k for k in _SLOTS if k.lower() == str(kind).lower()), ""), 2))
    if getattr(optimizer, "momentum", 0):
        slots += 1
    if getattr(optimizer, "centered", False) or getattr(optimizer, "amsgrad", False):
        slots += 1
    return slots


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    trainable: int
    slots: int
    batch_size: int
    activations_per_sample: int

    @property
    def weights_bytes(self) -> int:
        return BYTES_PER_FLOAT * (self.params + self.trainable * (1 + self.slots))

    @property
    def activation_bytes(self) -> int:
        return BYTES_PER_FLOAT * self.batch_size * self.activations_per_sample

    @property
    def total(self) -> int:
        return self.weights_bytes + self.activation_bytes

    def describe(self) -> str:
        return (
            f"training needs about {human(self.total)} ({self.params:,} parameters with gradients and "
            f"{self.slots} optimizer slot(s): {human(self.weights_bytes)}; activations at batch size "
            f"{self.batch_size}: {human(self.activation_bytes)})"
        )


def _size(shape: Sequence[int | None]) -> int:
    return math.prod(d if d is not None else 1 for d in shape)


def estimate(rows: Sequence[Any], batch_size: int, optimizer: Any) -> MemoryEstimate:
    """The estimate for summary rows (:class:`trainctl.model.shapes.LayerInfo`)."""
    acts = (_size(rows[0].input_shape) if rows else 0) + sum(_size(r.output_shape) for r in rows)
    return MemoryEstimate(
        params=sum(r.params for r in rows),
        trainable=sum(r.trainable_params for r in rows),
        slots=optimizer_slots(optimizer),
        batch_size=batch_size,
        activations_per_sample=acts,
    )


def spec_rows(spec: Any) -> list[Any]:
    """Summary rows of a model spec, chain or graph (torch-free shape inference)."""
    from trainctl.model.shapes_graph import build_graph, summary_rows

    return summary_rows(build_graph(spec))


def config_estimate(cfg: Any) -> MemoryEstimate:
    """The estimate for a validated RunConfig."""
    return estimate(spec_rows(cfg.model), cfg.fit.resolved_batch_size, cfg.compile.optimizer)


def available_bytes(device: Any) -> int | None:
    """Memory training may use on ``device``: free GPU memory on CUDA, else MemAvailable (Linux)."""
    if str(device).startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_weights_fit(spec: Any) -> None:
    """Raise :class:`ConfigError` when a model spec's float32 weights exceed available RAM."""
    from trainctl.errors import ConfigError

    try:
        rows = spec_rows(spec)
    except (ConfigError, TypeError, AttributeError):
        return  # not a shape-inferable chain: building the model reports its own error
    need = BYTES_PER_FLOAT * sum(r.params for r in rows)
    have = available_bytes("cpu")
    if have is not None and need > have:
        raise ConfigError(
            f"the model's {sum(r.params for r in rows):,} weights need {human(need)}, and {human(have)} is available",
            key="model.layers",
        )
