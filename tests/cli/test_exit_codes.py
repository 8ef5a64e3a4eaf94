"""Every failure kind has its own exit code, one clear message with its place, and no traceback."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import Cli, read_json, train_until_then_signal, write

GOOD = """
name: codes
seed: 1
data: {source: synthetic, kind: random, n: 64, features: 3}
model:
  layers:
    - {type: Dense, units: 4, activation: relu, input_shape: [3]}
    - {type: Dense, units: 1}
compile: {optimizer: sgd, loss: mse}
fit: {epochs: 2, batch_size: 16}
"""


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text


def test_success_is_zero(cli: Cli, tmp_path: Path) -> None:
    assert cli("train", write(tmp_path, GOOD)).exit_code == 0


def test_typo_in_key_is_2_with_line_and_suggestion(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, GOOD.replace("epochs: 2", "epocs: 2")))
    assert res.exit_code == 2
    assert "cfg.yaml:10: fit.epocs: unknown key 'epocs'" in res.stderr
    assert "did you mean 'epochs'?" in res.stderr
    _no_traceback(res.output)


def test_wrong_type_is_2(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, GOOD.replace("units: 4", "units: four")))
    assert res.exit_code == 2
    assert "cfg.yaml:7: model.layers[0].units: expected a valid integer" in res.stderr
    assert "received 'four'" in res.stderr
    _no_traceback(res.output)


def test_unknown_layer_is_2(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, GOOD.replace("type: Dense, units: 1", "type: Dens, units: 1")))
    assert res.exit_code == 2
    assert "cfg.yaml:8: model.layers[1].type: unknown layer 'Dens'" in res.stderr
    assert "did you mean 'Dense'?" in res.stderr


def test_all_problems_reported_together(cli: Cli, tmp_path: Path) -> None:
    bad = GOOD.replace("epochs: 2", "epocs: 2").replace("units: 4", "units: four").replace("sgd", "sgdd")
    res = cli("config", "validate", write(tmp_path, bad))
    assert res.exit_code == 2
    assert res.stderr.count("cfg.yaml:") == 3


def test_bad_override_is_2(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, GOOD), "fit.epochs=zero")
    assert res.exit_code == 2
    assert "override 'fit.epochs=zero'" in res.stderr


def test_double_one_hot_is_3_and_names_the_step(cli: Cli, tmp_path: Path) -> None:
    y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    np.savez(tmp_path / "d.npz", x_train=np.random.rand(30, 4).astype(np.float32), y_train=y)
    text = """
data:
  source: npz
  path: d.npz
  y: [{one_hot: 3}]
model:
  layers:
    - {type: Dense, units: 3, activation: softmax, input_shape: [4]}
compile: {loss: categorical_crossentropy}
"""
    res = cli("train", write(tmp_path, text))
    assert res.exit_code == 3, res.output
    assert "cfg.yaml:5: data.y[0]" in res.stderr and "one-hot" in res.stderr
    _no_traceback(res.output)


def test_missing_data_file_is_3(cli: Cli, tmp_path: Path) -> None:
    text = GOOD.replace("{source: synthetic, kind: random, n: 64, features: 3}", "{source: npz, path: nope.npz}")
    res = cli("train", write(tmp_path, text))
    assert res.exit_code == 3
    assert "nope.npz" in res.stderr and "data.path" in res.stderr


def test_labels_that_do_not_fit_the_loss_are_3(cli: Cli, tmp_path: Path) -> None:
    text = """
data: {source: sklearn, name: iris}
model:
  layers:
    - {type: Dense, units: 3, activation: softmax, input_shape: [4]}
compile: {loss: categorical_crossentropy}
"""
    res = cli("train", write(tmp_path, text))
    assert res.exit_code == 3
    assert "sparse_categorical_crossentropy" in res.stderr or "one_hot" in res.stderr


def test_input_shape_mismatch_is_3(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, GOOD.replace("input_shape: [3]", "input_shape: [5]")))
    assert res.exit_code == 3
    assert "model.layers[0].input_shape" in res.stderr and "(5,)" in res.stderr and "(3,)" in res.stderr


def test_divergence_is_5_and_history_is_kept(cli: Cli, tmp_path: Path) -> None:
    text = GOOD.replace("optimizer: sgd", "optimizer: {type: SGD, learning_rate: 1.0e+12}")
    res = cli("train", write(tmp_path, text), "--json")
    assert res.exit_code == 5
    out = json.loads(res.stdout)
    assert out["status"] == "error" and out["error"] == "diverged"
    run = next(cli.runs.iterdir())
    assert read_json(run / "run.json")["status"] == "diverged"
    _no_traceback(res.stderr)


def test_smoke_fails_on_non_finite_loss(cli: Cli, tmp_path: Path) -> None:
    text = GOOD.replace("optimizer: sgd", "optimizer: {type: SGD, learning_rate: 1.0e+12}")
    assert cli("train", write(tmp_path, text), "--smoke").exit_code == 5


def test_missing_config_file_is_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "xor.yaml").write_text(GOOD)
    res = cli("train", tmp_path / "xorr.yaml")
    assert res.exit_code == 2
    assert "did you mean" in res.stderr and "xor.yaml" in res.stderr


def test_debug_shows_the_traceback(cli: Cli, tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        cli("--debug", "train", write(tmp_path, GOOD.replace("epochs: 2", "epocs: 2")))
    assert "epocs" in str(info.value.problems[0].render())  # type: ignore[attr-defined]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_exit_130_and_143(tmp_path: Path, sig: int, code: int) -> None:
    cfg = write(tmp_path, GOOD.replace("n: 64", "n: 20000").replace("epochs: 2", "epochs: 500"))
    returncode, err = train_until_then_signal(cfg, tmp_path / "runs", "Epoch 1/", sig)
    assert returncode == code, err
    _no_traceback(err)
    run = next((tmp_path / "runs").iterdir())
    info = read_json(run / "run.json")
    assert info["status"] == "interrupted"
    assert len(read_json(run / "history.json")["loss"]) >= 1
