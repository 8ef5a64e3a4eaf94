"""``trainctl import`` end to end: files Keras 3 (torch backend) saved -> run folder, exit codes, --json."""

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

from tests.clihelp import Cli  # noqa: E402
from trainctl.serialization import load_model_from_dir  # noqa: E402

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(3)
    km = keras.Sequential(
        [keras.Input((4, 2)), keras.layers.Flatten(), keras.layers.Dense(6, activation="tanh"),
         keras.layers.Dense(2, activation="sigmoid")]
    )  # fmt: skip
    km.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(16, 4, 2)).astype("float32")
    km.fit(x, (x[:, :2, 0] > 0).astype("float32"), epochs=1, verbose=0)
    km.save(d / "m.keras")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    plain.save(d / "plain.h5")
    conv = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.GaussianNoise(0.1, name="noise"), keras.layers.Flatten()]
    )
    conv.save(d / "conv.keras")
    return {"dir": d, "km": km, "x": x}


def test_import_json_output_and_predictions(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = cli("import", files["dir"] / "m.keras", "--out", out, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["run_dir"] == str(out) and report["status"] == "imported"
    assert report["format"] == "keras" and report["keras_version"] == keras.__version__
    assert report["params"] == files["km"].count_params()
    assert (report["loss"], report["metrics"], report["data"]) == ("binary_crossentropy", ["accuracy"], False)
    with torch.no_grad():
        ours = load_model_from_dir(out)(torch.from_numpy(files["x"])).numpy()
    assert np.abs(ours - files["km"].predict(files["x"], verbose=0)).max() <= 1e-5


def test_plain_output_says_where_and_what_is_missing(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    res = cli("import", files["dir"] / "m.keras", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert str(tmp_path / "run") in res.stdout and "--data" in res.stdout
    assert res.stderr == ""


def test_unsupported_layer_reaches_the_user(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    res = cli("import", files["dir"] / "conv.keras", "--out", tmp_path / "run", "--loss", "mse")
    assert res.exit_code == 4
    assert "GaussianNoise" in res.stderr and "'noise'" in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()
    res = cli("import", files["dir"] / "conv.keras", "--out", tmp_path / "run", "--loss", "mse", "--json")
    err = json.loads(res.stdout)
    assert (res.exit_code, err["status"], err["exit_code"]) == (4, "error", 4)
    assert any("GaussianNoise" in p for p in err["problems"])


def test_out_that_is_not_empty_is_refused(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x.txt").write_text("keep")
    res = cli("import", files["dir"] / "m.keras", "--out", tmp_path / "run")
    assert res.exit_code == 2 and "--out" in res.stderr and "not empty" in res.stderr
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["x.txt"]


def test_uncompiled_model_imports_and_evaluate_asks_for_loss(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    res = cli("import", files["dir"] / "plain.h5", "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    assert "loss none" in res.stdout
    res = cli("evaluate", tmp_path / "a", "--data", files["dir"] / "plain.h5")
    assert res.exit_code == 2 and "compile.loss" in res.stderr and "--loss" in res.stderr
    res = cli("import", files["dir"] / "plain.h5", "--out", tmp_path / "b", "--loss", "mse", "--metrics", "mae, acc",
              "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert (report["loss"], report["metrics"]) == ("mean_squared_error", ["mae", "acc"])


def test_misspelt_loss_gets_a_guess(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    res = cli("import", files["dir"] / "plain.h5", "--out", tmp_path / "a", "--loss", "mean_squared_eror")
    assert res.exit_code == 2
    assert "--loss" in res.stderr and "did you mean 'mean_squared_error'" in res.stderr


@pytest.mark.parametrize(
    ("names", "code"),
    [(["m.keras", "plain.h5"], 2), (["model.bin"], 2), (["missing.keras"], 4), ([], 2)],
)
def test_wrong_files(cli: Cli, files: dict[str, Any], tmp_path: Path, names: list[str], code: int) -> None:
    res = cli("import", *[files["dir"] / n for n in names], "--out", tmp_path / "run")
    assert res.exit_code == code, res.output
    assert not (tmp_path / "run").exists()


def test_out_is_required_and_command_is_listed(cli: Cli, files: dict[str, Any]) -> None:
    assert cli("import", files["dir"] / "m.keras").exit_code == 2
    assert "import" in cli("--help").stdout
    assert "--data-config" in cli("import", "--help").stdout


def test_data_config_problem_names_file_and_line(cli: Cli, files: dict[str, Any], tmp_path: Path) -> None:
    cfg = tmp_path / "data.yaml"
    cfg.write_text("seed: 1\ndata:\n  source: synthetic\n  kind: xorr\n")
    res = cli("import", files["dir"] / "m.keras", "--out", tmp_path / "run", "--data-config", cfg)
    assert res.exit_code == 2
    assert f"{cfg}:4" in res.stderr and "xor" in res.stderr
