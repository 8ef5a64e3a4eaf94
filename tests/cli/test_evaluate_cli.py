"""``trainctl evaluate``: output forms, exit codes, and numbers checked against scikit-learn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, read_json, write


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, Path]]:
    tmp = tmp_path_factory.mktemp("evcli")
    cli = Cli(tmp / "runs")
    runs = {
        "digits": Path(cli.train_json(CONFIGS / "digits_quickstart.yaml", "fit.epochs=2")["run_dir"]),
        "xor": Path(cli.train_json(CONFIGS / "xor.yaml", "fit.epochs=2")["run_dir"]),
    }
    return cli, runs


def test_json_output_by_run_name_equals_train_metrics(env: tuple[Cli, dict[str, Path]]) -> None:
    cli, runs = env
    res = cli("evaluate", "digits_quickstart", "--runs-dir", cli.runs, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"run_dir", "data", "samples", "metrics"}
    assert out["run_dir"] == str(runs["digits"]) and out["samples"] == 360
    expected = read_json(runs["digits"] / "metrics.json")["test"]
    assert out["metrics"] == pytest.approx(expected, rel=1e-5)


def test_plain_output_is_one_keras_style_line(env: tuple[Cli, dict[str, Path]]) -> None:
    cli, runs = env
    res = cli("evaluate", runs["digits"])
    assert res.exit_code == 0, res.output
    m = re.fullmatch(r"loss: (\d+\.\d{4}) - accuracy: (\d\.\d{4})\n", res.stdout)
    assert m, res.stdout
    expected = read_json(runs["digits"] / "metrics.json")["test"]
    assert float(m[1]) == pytest.approx(expected["loss"], abs=5e-5)
    assert float(m[2]) == pytest.approx(expected["accuracy"], abs=5e-5)


def _keras_style_sparse_ce(proba: np.ndarray, y: np.ndarray) -> float:
    """Keras's sparse categorical crossentropy on probabilities: renormalise, clip, -log, mean."""
    p = proba / proba.sum(-1, keepdims=True)
    p = np.clip(p, np.float32(1e-7), np.float32(1 - 1e-7))
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


def test_data_npz_equals_sklearn_on_predict_output(env: tuple[Cli, dict[str, Path]], tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score

    cli, runs = env
    digits = load_digits()
    x, y = digits.data[::3], digits.target[::3]  # raw pixels 0..16: the run's saved {scale: 16} applies
    np.savez(tmp_path / "d.npz", x_test=x, y_test=y, x_train=x[:5], y_train=y[:5])
    np.save(tmp_path / "x.npy", x)
    res = cli("predict", runs["digits"], tmp_path / "x.npy", "--output", tmp_path / "p.npy")
    assert res.exit_code == 0, res.output
    proba = np.load(tmp_path / "p.npy")
    res = cli("evaluate", runs["digits"], "--data", tmp_path / "d.npz", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["samples"] == len(y) and out["data"] == str(tmp_path / "d.npz")
    assert out["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, proba.argmax(1)), rel=1e-7)
    assert out["metrics"]["loss"] == pytest.approx(_keras_style_sparse_ce(proba, y), rel=1e-5)


def test_data_config_means_its_test_split_with_this_runs_preprocessing(
    env: tuple[Cli, dict[str, Path]], tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    cli, runs = env
    cfg = write(tmp_path, (CONFIGS / "digits_quickstart.yaml").read_text().replace("seed: 7", "seed: 11"))
    cfg.write_text(cfg.read_text().replace("test_split: 0.2", "test_split: 0.3"))
    digits = load_digits()
    _, x_te, _, y_te = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=11, stratify=digits.target
    )
    np.savez(tmp_path / "split.npz", x=x_te, y=y_te)
    by_config = json.loads(cli("evaluate", runs["digits"], "--data", cfg, "--json").stdout)
    by_arrays = json.loads(cli("evaluate", runs["digits"], "--data", tmp_path / "split.npz", "--json").stdout)
    assert by_config["samples"] == len(y_te) == 540
    assert by_config["metrics"] == pytest.approx(by_arrays["metrics"], rel=1e-6)


def test_exit_codes(env: tuple[Cli, dict[str, Path]], tmp_path: Path) -> None:
    cli, runs = env
    res = cli("evaluate", "digits_quickstar", "--runs-dir", cli.runs)
    assert res.exit_code == 4 and "did you mean 'digits_quickstart'" in res.stderr
    res = cli("evaluate", runs["xor"])
    assert res.exit_code == 3 and "test split" in res.stderr and "--data" in res.stderr
    res = cli("evaluate", runs["digits"], "--data", tmp_path / "nope.npz")
    assert res.exit_code == 3 and "nope.npz" in res.stderr
    np.savez(tmp_path / "narrow.npz", x=np.zeros((4, 10)), y=np.zeros(4, dtype=int))
    res = cli("evaluate", runs["digits"], "--data", tmp_path / "narrow.npz")
    assert res.exit_code == 3 and "expected 64 features per sample, received 10" in res.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text('{"format_version": 1}')
    res = cli("evaluate", tmp_path / "broken", "--json")
    assert res.exit_code == 4
    err = json.loads(res.stdout)
    assert err["exit_code"] == 4 and "config.resolved.yaml" in err["problems"][0]


def test_data_csv_with_a_label_column_equals_npz(env: tuple[Cli, dict[str, Path]], tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    cli, runs = env
    d = load_digits()
    x, y = d.data[1::4], d.target[1::4]
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    rows = "\n".join(",".join([*(str(int(v)) for v in r), str(t)]) for r, t in zip(x, y, strict=True))
    (tmp_path / "d.csv").write_text(header + "\n" + rows + "\n")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    by_csv = json.loads(cli("evaluate", runs["digits"], "--data", tmp_path / "d.csv", "--json").stdout)
    by_npz = json.loads(cli("evaluate", runs["digits"], "--data", tmp_path / "d.npz", "--json").stdout)
    assert by_csv["samples"] == len(y) and by_csv["metrics"] == pytest.approx(by_npz["metrics"], rel=1e-7)
    (tmp_path / "nolabel.csv").write_text("a,b\n1,2\n")
    res = cli("evaluate", runs["digits"], "--data", tmp_path / "nolabel.csv")
    assert res.exit_code == 3 and "label column" in res.stderr
