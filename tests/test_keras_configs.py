"""Every config in configs/, trained with the CLI, opened by REAL Keras 3 (torch backend).

For each config: ``model_from_json(model.json)`` + ``load_weights(model.weights.h5)`` and
``load_model(model.h5)`` must predict what trainctl predicts (max |diff| <= 1e-5) on the config's own
preprocessed data; Keras's ``evaluate`` must reproduce the test loss and metrics trainctl wrote to
metrics.json; and the model Keras saved again must import back into trainctl unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from tests.clihelp import CONFIGS, Cli  # noqa: E402
from trainctl.config import load_config  # noqa: E402
from trainctl.data import load_data, take_rows  # noqa: E402
from trainctl.importer import import_keras  # noqa: E402
from trainctl.serialization import load_model_from_dir  # noqa: E402

pytestmark = pytest.mark.keras

ALL = sorted(CONFIGS.glob("*.yaml"))
IDX_SOURCES = {"mnist", "fashion_mnist", "idx"}  # need the IDX files: --smoke, skipped without them
SMOKE_TEST_ROWS = 128  # api.SMOKE_TEST_ROWS: the test rows a --smoke run evaluates on
BATCH = 256


def test_every_config_is_covered() -> None:
    assert len(ALL) >= 6


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _train(cli: Cli, path: Path, smoke: bool) -> Path:
    args = ["--smoke"] if smoke else ["fit.epochs=2"]
    out = cli.train_json(path, *args)
    assert out["status"] in ("completed", "stopped_early")
    return Path(out["run_dir"])


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_keras_reads_what_the_config_trained(
    path: Path, cli: Cli, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cfg = load_config(path).config
    if len(cfg.model.inputs or ()) > 1 or len(cfg.model.outputs or ()) > 1:
        # load_data reads one x and one y; tests/cli/test_functional_run.py covers Keras loading a run
        # with several inputs/outputs, and tests/serialization/test_functional_artifacts.py the files
        pytest.skip("several inputs or outputs: covered by test_functional_run.py")
    if cfg.data.source == "image_directory" and not (CONFIGS / cfg.data.directory).is_dir():
        pytest.skip(f"{cfg.data.directory} is made by benchmarks/make_image_folder.py")
    smoke = cfg.data.source in IDX_SOURCES
    if smoke:
        request.getfixturevalue("shared_datasets")  # skips without ../shared/datasets
    run = _train(cli, path, smoke)
    ds = load_data(cfg.data, base_dir=CONFIGS, seed=cfg.seed)
    if smoke:
        ds = take_rows(ds, BATCH, SMOKE_TEST_ROWS)
    x = (ds.x_test if ds.x_test is not None else ds.x_train)[:BATCH]
    ours_model = load_model_from_dir(run)
    ours = _predict(ours_model, x)
    assert np.isfinite(ours).all()

    from_json = keras.models.model_from_json((run / "model.json").read_text())
    from_json.load_weights(run / "model.weights.h5")
    assert np.abs(from_json.predict(x, verbose=0) - ours).max() <= 1e-5
    keras_layers = [layer.name for layer in from_json.layers if not isinstance(layer, keras.layers.InputLayer)]
    if ours_model.graph.functional:  # Keras lists a Functional model's layers in its own graph order
        assert sorted(keras_layers) == sorted(r.name for r in ours_model.info)
    else:
        assert keras_layers == [r.name for r in ours_model.info]
    assert from_json.count_params() == sum(r.params for r in ours_model.info)

    whole = keras.models.load_model(run / "model.h5")
    assert np.abs(whole.predict(x, verbose=0) - ours).max() <= 1e-5
    assert whole.compiled and whole.count_params() == from_json.count_params()

    metrics = json.loads((run / "metrics.json").read_text())
    if ds.x_test is not None:  # Keras's own evaluate agrees with the test numbers trainctl wrote
        theirs = whole.evaluate(ds.x_test, ds.y_test, verbose=0, return_dict=True, batch_size=BATCH)
        for key, value in metrics["test"].items():
            assert theirs[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key

    # and back: what Keras saves imports into trainctl unchanged, compile settings included
    whole.save(tmp_path / "again.keras")
    result = import_keras([tmp_path / "again.keras"], tmp_path / "imported")
    assert result.config.compile.loss.type == cfg.compile.loss.type
    assert [m.type for m in result.config.compile.metrics] == [m.type for m in cfg.compile.metrics]
    assert np.abs(_predict(load_model_from_dir(tmp_path / "imported"), x) - ours).max() <= 1e-5
