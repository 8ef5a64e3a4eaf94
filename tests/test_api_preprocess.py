"""Preprocessing layers in real runs: Normalization is adapted on the training rows (after the
validation split) before training, Keras loads the run folder and predicts the same, and a Keras
model with adapted statistics imports through ``trainctl import`` with its weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from tests.clihelp import Cli, write  # noqa: E402
from trainctl.config import load_config  # noqa: E402
from trainctl.data import load_data, validation_split  # noqa: E402
from trainctl.serialization import load_model_from_dir  # noqa: E402

pytestmark = pytest.mark.keras

CONFIG = """
name: digits_prep
seed: 3
data:
  source: sklearn
  name: digits
  test_split: 0.2
  x: [{reshape: [8, 8, 1]}]   # raw pixels 0..16: the model rescales them
model:
  layers:
    - {type: Rescaling, scale: 0.0625, input_shape: [8, 8, 1]}
    - {type: Normalization}
    - {type: RandomFlip, mode: horizontal}
    - {type: RandomRotation, factor: 0.05}
    - {type: RandomContrast, factor: 0.2, value_range: [-5, 5]}
    - {type: Conv2D, filters: 4, kernel_size: 3, activation: relu}
    - {type: Flatten}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 2, batch_size: 32, validation_split: 0.25}
threads: 1
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("prep")
    path = write(tmp, CONFIG)
    out = Cli(tmp / "runs").train_json(path)
    cfg = load_config(path).config
    ds = load_data(cfg.data, base_dir=tmp, seed=cfg.seed)
    return {"run": Path(out["run_dir"]), "ds": ds}


def test_normalization_is_adapted_on_the_training_rows(trained: dict[str, Any]) -> None:
    x = trained["ds"].x_train
    tr, _ = validation_split(len(x), 0.25)
    seen = np.asarray(x[tr], dtype=np.float64) / 16.0  # what the Normalization sees: Rescaling's output
    with h5py.File(trained["run"] / "model.weights.h5") as f:
        group = f["layers/normalization/vars"]
        mean, var, count, count_dtype = group["0"][()], group["1"][()], group["2"][()], group["2"].dtype
    np.testing.assert_allclose(mean, [seen.mean()], rtol=1e-6)
    np.testing.assert_allclose(var, [seen.var()], rtol=1e-5)  # population variance, as Keras's adapt
    assert count == 0 and count_dtype == np.int32
    all_rows = np.asarray(x, dtype=np.float64) / 16.0
    assert abs(all_rows.mean() - seen.mean()) > 1e-4  # the validation rows are left out


def test_keras_loads_the_run_and_predicts_the_same(trained: dict[str, Any]) -> None:
    run, x = trained["run"], np.asarray(trained["ds"].x_test, dtype=np.float32)
    with torch.no_grad():
        ours = load_model_from_dir(run)(torch.from_numpy(x)).numpy()
    km = keras.models.model_from_json((run / "model.json").read_text())
    km.load_weights(run / "model.weights.h5")
    assert np.abs(km.predict(x, verbose=0) - ours).max() <= 1e-5
    loaded = keras.models.load_model(run / "model.h5", compile=False)
    assert np.abs(loaded.predict(x, verbose=0) - ours).max() <= 1e-5


def test_import_keeps_keras_adapted_statistics(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    data = np.random.default_rng(0).uniform(0, 255, size=(40, 6, 5, 3)).astype("float32")
    norm = keras.layers.Normalization()
    norm.adapt(data)
    km = keras.Sequential(
        [keras.Input((6, 5, 3)), keras.layers.RandomFlip(), norm, keras.layers.RandomZoom(0.2),
         keras.layers.CenterCrop(4, 4), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )  # fmt: skip
    km.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    km.save(tmp_path / "m.keras")
    res = Cli(tmp_path / "runs")("import", tmp_path / "m.keras", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    model = load_model_from_dir(tmp_path / "run")
    layer = model.layers[1]
    np.testing.assert_allclose(layer.mean.numpy(), keras.ops.convert_to_numpy(norm.adapt_mean), rtol=1e-6)
    np.testing.assert_allclose(layer.variance.numpy(), keras.ops.convert_to_numpy(norm.adapt_variance), rtol=1e-6)
    with torch.no_grad():
        ours = model(torch.from_numpy(data)).numpy()
    assert np.abs(ours - km.predict(data, verbose=0)).max() <= 1e-5
    # and what the import wrote loads back into Keras with the same statistics
    again = keras.models.model_from_json((tmp_path / "run" / "model.json").read_text())
    again.load_weights(tmp_path / "run" / "model.weights.h5")
    assert np.abs(again.predict(data, verbose=0) - ours).max() <= 1e-5
