"""The smallest valid form of every registered spec: shared by the registry and schema tests."""

from __future__ import annotations

from typing import Any

from trainctl.config.base import Family

# required arguments with no default, to build each spec's smallest valid form
REQUIRED: dict[str, Any] = {
    "units": 4, "rate": 0.5, "target_shape": [2, -1], "activation": "relu", "shape": [3],
    "pool_size": 2, "n": 3, "dims": [2, 1],  # norm-family layers
    "filters": 2, "kernel_size": 3,  # conv-family layers
    "input_dim": 10, "output_dim": 4, "layer": {"type": "LSTM", "units": 4},  # seq-family layers
    "scale": 0.5, "height": 4, "width": 4, "factor": 0.1, "height_factor": 0.1,  # preprocessing layers
    "width_factor": 0.1,
    "axes": 1,  # Dot
    "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9, "boundaries": [10],
    "values": [0.1, 0.01], "schedule": [0.1, 0.05], "kind": "linear", "name": "digits",
    "path": "data.csv", "target": "y", "x": "x.npy", "y": "y.npy", "images": "i", "labels": "l", "directory": "d",
}  # fmt: skip
EXTRA: dict[str, dict[str, Any]] = {"InputLayer": {"shape": [3]}}  # needed, though each is optional


def minimal_args(family: Family, name: str) -> dict[str, Any]:
    """``{tag: name, **required}`` for one registered spec."""
    cls = family.specs[name]
    args = {f: REQUIRED[f] for f, info in cls.model_fields.items() if info.is_required()}
    return {family.tag: name, **args, **EXTRA.get(name, {})}
