"""Keras-loadable model artifacts: ``model.json``, ``model.weights.h5`` and ``model.h5``.

Everything is written atomically with h5py and json only, so Keras 3 (``model_from_json`` +
``load_weights``, or ``load_model``) and tf-keras can open what trainctl trains, and trainctl can
import what Keras saved. File formats: ``shared/notes/keras-format.md``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

from trainctl.atomic import atomic_path, atomic_write_bytes
from trainctl.errors import ArtifactError, ConfigError, TrainctlError
from trainctl.h5probe import H5Probe
from trainctl.model.sequential import Sequential, build_model
from trainctl.serialization.keras_h5 import load_weights_h5, save_model_h5, save_weights_h5
from trainctl.serialization.keras_json import model_spec_from_json, model_to_json, spec_to_dict

MODEL_JSON = "model.json"
WEIGHTS_H5 = "model.weights.h5"
MODEL_H5 = "model.h5"

__all__ = [
    "MODEL_H5",
    "MODEL_JSON",
    "WEIGHTS_H5",
    "atomic_path",
    "atomic_write_bytes",
    "load_model_from_dir",
    "load_weights_h5",
    "model_spec_from_json",
    "model_to_json",
    "save_keras_artifacts",
    "save_model_h5",
    "save_weights_h5",
]


def save_keras_artifacts(
    model: Sequential, run_dir: Path, *, training_config: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``model.json``, ``model.weights.h5`` and ``model.h5`` into ``run_dir``, each atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = [run_dir / MODEL_JSON, run_dir / WEIGHTS_H5, run_dir / MODEL_H5]
    text = json.dumps(spec_to_dict(model.spec), indent=2) + "\n"  # indented: people read and diff it
    atomic_write_bytes(paths[0], text.encode("utf-8"))
    save_weights_h5(model, paths[1])
    save_model_h5(model, paths[2], training_config=training_config)
    return paths


def load_model_from_dir(run_dir: Path, probe: H5Probe | None = None) -> Sequential:
    """``model.json`` + ``model.weights.h5`` -> our built model with those weights, in eval mode.

    The random initialisation that building does is run on a forked RNG, so loading a model does
    not change the caller's torch random stream (and therefore not a seeded run's results).
    ``probe``: the weights file's child-process read, if the caller started it earlier.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ArtifactError(f"run folder not found: {run_dir}")
    json_path = run_dir / MODEL_JSON
    if not json_path.is_file():
        raise ArtifactError(f"{MODEL_JSON}: file not found in {run_dir}")
    weights = run_dir / WEIGHTS_H5
    if probe is None and weights.is_file():
        probe = H5Probe(weights)
    with probe if probe is not None else contextlib.nullcontext():
        model = _model_of(json_path)
        load_weights_h5(model, weights, probe)
    return model.eval()


def _model_of(json_path: Path) -> Sequential:
    try:
        text = json_path.read_text(encoding="utf-8")
        spec = model_spec_from_json(text)
        with torch.random.fork_rng(devices=[]):
            model = build_model(spec)
    except (ArtifactError, ConfigError, OSError, UnicodeDecodeError) as exc:
        detail = exc.render() if isinstance(exc, TrainctlError) else str(exc)
        raise ArtifactError(f"{MODEL_JSON}: {detail}") from None
    return model


# ``.keras`` zip archives (Keras 3 ``model.save("x.keras")``), read with zipfile only.
from trainctl.serialization.keras_zip import KerasArchive, load_keras_zip, read_keras_zip  # noqa: E402

__all__ += ["KerasArchive", "load_keras_zip", "read_keras_zip"]
