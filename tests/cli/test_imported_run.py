"""An imported Keras model with no data source: evaluate and predict work from --data alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import Cli, write

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, np.ndarray, np.ndarray]:
    tmp = tmp_path_factory.mktemp("keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(7, activation="tanh"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp / "m.keras"
    model.save(path)
    np.savez(tmp / "eval.npz", x_test=x, y_test=y)
    return path, model, x, y


def test_imported_run_evaluates_and_predicts_like_keras(keras_model, tmp_path: Path) -> None:
    path, model, x, y = keras_model
    cli = Cli(tmp_path / "runs")
    out = tmp_path / "imported"
    res = cli(
        "import", str(path), "--out", str(out), "--loss", "sparse_categorical_crossentropy", "--metrics", "accuracy"
    )
    assert res.exit_code == 0, res.output

    res = cli("evaluate", str(out))
    assert res.exit_code == 3 and "--data" in res.stderr

    res = cli("evaluate", str(out), "--data", str(path.parent / "eval.npz"), "--json")
    assert res.exit_code == 0, res.output
    ours = json.loads(res.stdout)["metrics"]
    theirs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], rel=1e-6)

    np.save(tmp_path / "x.npy", x)
    res = cli("predict", str(out), str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npy"))
    assert res.exit_code == 0, res.output
    assert np.abs(np.load(tmp_path / "p.npy") - model.predict(x, verbose=0)).max() <= 1e-5


def test_imported_run_takes_a_config_with_its_own_steps(keras_model, tmp_path: Path) -> None:
    path, model, x, y = keras_model
    cli = Cli(tmp_path / "runs")
    out = tmp_path / "imported"
    assert cli("import", str(path), "--out", str(out), "--loss", "sparse_categorical_crossentropy").exit_code == 0
    scaled = x * 10.0
    np.savez(tmp_path / "d.npz", x_train=scaled, y_train=y, x_test=scaled, y_test=y)
    cfg = write(
        tmp_path,
        """
data: {source: npz, path: d.npz, x: [{scale: 10}]}
model: {layers: [{type: Dense, units: 3, activation: softmax, input_shape: [6]}]}
compile: {loss: sparse_categorical_crossentropy}
""",
    )
    res = cli("evaluate", str(out), "--data", str(cfg), "--json")
    assert res.exit_code == 0, res.output
    theirs = model.evaluate(x, y, verbose=0, return_dict=True)  # the config's scale step undoes the *10
    assert json.loads(res.stdout)["metrics"]["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
