"""A shipped two-output config end to end: train with Keras's per-output history keys, predict an
.npz keyed by input name into one array per output, and Keras loading the run's model.h5 and
model.json + model.weights.h5 predicts the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, read_json


@pytest.mark.keras
def test_two_output_run_trains_predicts_and_loads_in_keras(cli: Cli, keras: Any, tmp_path: Path) -> None:
    out = cli.train_json(CONFIGS / "wine_two_heads.yaml", "fit.epochs=2", "fit.callbacks=[]")
    run = Path(out["run_dir"])
    history = read_json(run / "history.json")
    keys = ["loss", "cultivar_loss", "alcohol_loss", "cultivar_accuracy", "alcohol_mae"]
    assert set(history) == {*keys, *(f"val_{k}" for k in keys), "lr", "epoch_time"}
    data = np.load(CONFIGS / "data" / "wine_two_heads.npz")
    x = data["x_test"][:7]
    np.savez(tmp_path / "in.npz", chem=x)
    res = cli("predict", run, tmp_path / "in.npz", "--output", tmp_path / "out.npz")
    assert res.exit_code == 0, res.output
    ours = np.load(tmp_path / "out.npz")
    assert sorted(ours.files) == ["alcohol", "cultivar"]
    whole = keras.models.load_model(run / "model.h5", compile=False)
    from_json = keras.models.model_from_json((run / "model.json").read_text())
    from_json.load_weights(run / "model.weights.h5")
    for model in (whole, from_json):
        cultivar, alcohol = model.predict(x, verbose=0)
        np.testing.assert_allclose(ours["cultivar"], cultivar, atol=1e-5)
        np.testing.assert_allclose(ours["alcohol"], alcohol, atol=1e-5)
    res = cli("predict", run, tmp_path / "in.npz", "--output", tmp_path / "out.csv")
    assert res.exit_code == 0
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "cultivar_0,cultivar_1,cultivar_2,alcohol_0"


def test_multi_input_npz_must_name_every_input(cli: Cli, tmp_path: Path) -> None:
    out = cli.train_json(CONFIGS / "wine_wide_deep.yaml", "fit.epochs=1")
    np.savez(tmp_path / "in.npz", wide=np.zeros((2, 6), np.float32))
    res = cli("predict", out["run_dir"], tmp_path / "in.npz", "--output", tmp_path / "o.npz")
    assert res.exit_code == 3 and "'deep'" in res.stderr


def test_evaluate_reports_every_output(cli: Cli) -> None:
    out = cli.train_json(CONFIGS / "wine_two_heads.yaml", "fit.epochs=2", "fit.callbacks=[]")
    res = cli("evaluate", out["run_dir"], "--json")
    assert res.exit_code == 0, res.output
    import json

    metrics = json.loads(res.stdout)["metrics"]
    assert metrics == pytest.approx(out["metrics"]["test"], abs=1e-6)
    assert set(metrics) == {"loss", "cultivar_loss", "alcohol_loss", "cultivar_accuracy", "alcohol_mae"}
    res = cli("evaluate", out["run_dir"], "--report", "--task", "regression")
    assert res.exit_code == 2 and "--task" in res.stderr  # each output's kind comes from its loss
    # (the per-output report itself: tests/cli/test_report_outputs.py)


def test_labels_out_of_range_for_one_output_exit_3_naming_it(cli: Cli, tmp_path: Path) -> None:
    """Each output's labels are checked against its own loss and width: 3 cultivars, a label 3 is
    a data error naming the output, before any training (the regression head takes any value)."""
    data = dict(np.load(CONFIGS / "data" / "wine_two_heads.npz"))
    data["y_train_cultivar"] = data["y_train_cultivar"].copy()
    data["y_train_cultivar"][5] = 3
    np.savez(tmp_path / "bad.npz", **data)
    res = cli("train", CONFIGS / "wine_two_heads.yaml", f"data.path={tmp_path / 'bad.npz'}")
    assert res.exit_code == 3, res.output
    want = "expected class labels in 0..2 for a 3-unit output, received 3 in the training 'cultivar' labels"
    assert want in res.stderr
    assert "Traceback" not in res.output + res.stderr
