"""A hostile corpus (issue 13, classes 1, 2 and 5): each input is built here in tmp_path and run
through a real ``python -m trainctl`` under memory/CPU limits and a timeout. None may exit 1; each
gets its documented exit code and one clear message without a traceback, and nothing is written
outside the run folder or --output."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.cli.hostile import GOOD, assert_clean_failure, snapshot, trainctl


def cfg(tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None, name: str = "cfg.yaml") -> Path:
    data = copy.deepcopy(GOOD)
    if edit is not None:
        edit(data)
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def setter(dotted: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        node = data
        *head, last = dotted.split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[last] = value

    return edit


def callback(spec: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return setter("fit.callbacks", [spec])


def npz_cfg(tmp: Path, x: np.ndarray, y: np.ndarray, loss: str = "sparse_categorical_crossentropy") -> Path:
    np.savez(tmp / "d.npz", x_train=x, y_train=y)

    def edit(data: dict[str, Any]) -> None:
        data["data"] = {"source": "npz", "path": "d.npz"}
        units = 3 if loss == "sparse_categorical_crossentropy" else 1
        data["model"]["layers"] = [{"type": "Dense", "units": units, "input_shape": [3]}]
        data["compile"] = {"optimizer": "sgd", "loss": loss}

    return cfg(tmp, edit)


X = np.random.default_rng(0).random((40, 3)).astype(np.float32)
LABELS = np.arange(40) % 3


def with_nan(x: np.ndarray, row: int, col: int, value: float) -> np.ndarray:
    x = x.copy()
    x[row, col] = value
    return x


# ------------------------------------------------------------------------- config validate: exit 2
# (case id, build(tmp) -> config path, expected fragments); `config validate` imports no torch: fast
VALIDATE: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    (
        "lr-inf",
        lambda t: cfg(t, setter("compile.optimizer", {"type": "sgd", "learning_rate": float("inf")})),
        ("compile.optimizer.learning_rate", "finite"),
    ),
    (
        "lr-minus-inf",
        lambda t: cfg(t, setter("compile.optimizer", {"type": "adam", "learning_rate": -float("inf")})),
        ("compile.optimizer.learning_rate",),
    ),
    (
        "lr-nan",
        lambda t: cfg(t, setter("compile.optimizer", {"type": "sgd", "learning_rate": float("nan")})),
        ("compile.optimizer.learning_rate",),
    ),
    (
        "baseline-nan",
        lambda t: cfg(t, callback({"type": "EarlyStopping", "baseline": float("nan")})),
        ("fit.callbacks[0].baseline", "finite"),
    ),
    (
        "min-delta-inf",
        lambda t: cfg(t, callback({"type": "EarlyStopping", "min_delta": float("inf")})),
        ("fit.callbacks[0].min_delta", "finite"),
    ),
    ("seed-2^63", lambda t: cfg(t, setter("seed", 2**63)), ("seed", "0..2**63-1")),
    ("seed-huge", lambda t: cfg(t, setter("seed", 10**30)), ("seed",)),
    ("seed-negative", lambda t: cfg(t, setter("seed", -5)), ("seed", "received -5")),
    ("threads-1e11", lambda t: cfg(t, setter("threads", 10**11)), ("threads", "1024")),
    ("threads-zero", lambda t: cfg(t, setter("threads", 0)), ("threads",)),
    ("device-tpu", lambda t: cfg(t, setter("device", "tpu")), ("device", "'tpu'")),
    ("name-dotdot", lambda t: cfg(t, setter("name", "../../escape")), ("name", "'../../escape'")),
    ("name-absolute", lambda t: cfg(t, setter("name", "/tmp/escape")), ("name",)),
    ("name-hidden", lambda t: cfg(t, setter("name", ".hidden")), ("name",)),
    ("name-too-long", lambda t: cfg(t, setter("name", "a" * 300)), ("name", "at most 200")),
    (
        "csv-preprocess-json",
        lambda t: cfg(t, callback({"type": "CSVLogger", "filename": "preprocess.json"})),
        ("fit.callbacks[0].filename", "collide"),
    ),
    (
        "csv-run-json",
        lambda t: cfg(t, callback({"type": "CSVLogger", "filename": "run.json"})),
        ("fit.callbacks[0].filename", "collide"),
    ),
    (
        "csv-into-state",
        lambda t: cfg(t, callback({"type": "CSVLogger", "filename": "state/x.csv"})),
        ("fit.callbacks[0].filename", "collide"),
    ),
    (
        "csv-absolute",
        lambda t: cfg(t, callback({"type": "CSVLogger", "filename": str(t / "abs.log")})),
        ("fit.callbacks[0].filename", "absolute"),
    ),
    (
        "csv-dotdot",
        lambda t: cfg(t, callback({"type": "CSVLogger", "filename": "logs/../../../x.log"})),
        ("fit.callbacks[0].filename", "'..'"),
    ),
    (
        "csv-long-part",
        lambda t: cfg(t, callback({"type": "CSVLogger", "filename": "b" * 300})),
        ("fit.callbacks[0].filename", "255 bytes"),
    ),
    ("csv-empty", lambda t: cfg(t, callback({"type": "CSVLogger", "filename": ""})), ("fit.callbacks[0].filename",)),
    (
        "ckpt-model-json",
        lambda t: cfg(t, callback({"type": "ModelCheckpoint", "filepath": "model.json"})),
        ("fit.callbacks[0].filepath", "collide"),
    ),
    (
        "ckpt-weights",
        lambda t: cfg(t, callback({"type": "ModelCheckpoint", "filepath": "MODEL.WEIGHTS.H5"})),
        ("fit.callbacks[0].filepath", "collide"),
    ),
    (
        "ckpt-dotdot",
        lambda t: cfg(t, callback({"type": "ModelCheckpoint", "filepath": "../x{epoch}"})),
        ("fit.callbacks[0].filepath", "'..'"),
    ),
    (
        "ckpt-home",
        lambda t: cfg(t, callback({"type": "ModelCheckpoint", "filepath": "~/x"})),
        ("fit.callbacks[0].filepath", "absolute"),
    ),
    (
        "tensorboard-absolute",
        lambda t: cfg(t, callback({"type": "TensorBoard", "log_dir": "/tmp/tb"})),
        ("fit.callbacks[0].log_dir", "absolute"),
    ),
]


def _binary(t: Path) -> Path:
    (t / "cfg.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    return t / "cfg.yaml"


def _utf16(t: Path) -> Path:
    (t / "cfg.yaml").write_text(yaml.safe_dump(GOOD), encoding="utf-16")
    return t / "cfg.yaml"


VALIDATE += [
    ("binary-config", _binary, ("cfg.yaml", "UTF-8")),
    ("utf16-config", _utf16, ("cfg.yaml", "UTF-8")),
]


@pytest.mark.parametrize("build,fragments", [pytest.param(b, f, id=i) for i, b, f in VALIDATE])
def test_config_validate_refuses(tmp_path: Path, build: Callable[[Path], Path], fragments: tuple[str, ...]) -> None:
    path = build(tmp_path)
    before = snapshot(tmp_path)
    res = trainctl("config", "validate", path, cwd=tmp_path)
    assert_clean_failure(res, 2, *fragments)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------- train: exit 2 or 3, and no escape
def _train_case(tmp: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    runs = tmp / "runs"
    before = snapshot(tmp, (runs,))
    res = trainctl("train", config, "--runs-dir", runs, *extra, cwd=tmp)
    assert snapshot(tmp, (runs,)) == before, "train wrote outside --runs-dir"
    return res


@pytest.mark.parametrize(
    "flags,fragments",
    [
        pytest.param(("--name", "../../escape"), ("--name", "'../../escape'"), id="name-dotdot"),
        pytest.param(("--name", "/tmp/escape-abs"), ("--name",), id="name-absolute"),
        pytest.param(("--name", "x" * 300), ("--name", "at most 200"), id="name-too-long"),
        pytest.param(("--device", "tpu"), ("device", "'tpu'"), id="device-tpu"),
        pytest.param(("--threads", "100000000000"), ("threads",), id="threads-huge"),
    ],
)
def test_train_flags_refused_before_any_folder(
    tmp_path: Path, flags: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    res = _train_case(tmp_path, cfg(tmp_path), *flags)
    assert_clean_failure(res, 2, *fragments)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not Path("/tmp/escape-abs").exists()


STRUCT = np.zeros(40, dtype=[("a", "f4"), ("b", "f4"), ("c", "f4")])
DATA: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("labels-too-big", lambda t: npz_cfg(t, X, LABELS + 2), ("compile.loss", "0..2", "received 3")),
    ("labels-negative", lambda t: npz_cfg(t, X, LABELS - 1), ("compile.loss", "received -1")),
    ("labels-fractional", lambda t: npz_cfg(t, X, LABELS + 0.5), ("compile.loss", "whole-number")),
    ("nan-in-x", lambda t: npz_cfg(t, with_nan(X, 7, 2, np.nan), LABELS), ("d.npz[x_train]", "row 7, column 2")),
    ("inf-in-x", lambda t: npz_cfg(t, with_nan(X, 3, 0, np.inf), LABELS), ("d.npz[x_train]", "row 3, column 0")),
    ("nan-in-y", lambda t: npz_cfg(t, X, with_nan(X[:, :1], 11, 0, np.nan), "mse"), ("d.npz[y_train]", "row 11")),
    ("complex-x", lambda t: npz_cfg(t, X.astype(np.complex64), LABELS), ("d.npz[x_train]", "complex")),
    ("string-x", lambda t: npz_cfg(t, X.astype("U8"), LABELS), ("d.npz[x_train]", "strings")),
    ("bytes-y", lambda t: npz_cfg(t, X, LABELS.astype("S2")), ("d.npz[y_train]", "byte strings")),
    ("structured-x", lambda t: npz_cfg(t, STRUCT, LABELS), ("d.npz[x_train]", "structured")),
    ("datetime-x", lambda t: npz_cfg(t, np.zeros((40, 3), "datetime64[s]"), LABELS), ("d.npz[x_train]", "dates")),
]


@pytest.mark.parametrize("build,fragments", [pytest.param(b, f, id=i) for i, b, f in DATA])
def test_train_bad_data_is_3(tmp_path: Path, build: Callable[[Path], Path], fragments: tuple[str, ...]) -> None:
    res = _train_case(tmp_path, build(tmp_path))
    assert_clean_failure(res, 3, *fragments)


# ------------------------------------------------------------------------- a finished run, damaged: exit 4
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    res = trainctl("train", cfg(tmp), "--runs-dir", tmp / "runs", "--json", cwd=tmp)
    assert res.returncode == 0, res.stderr
    return Path(json.loads(res.stdout)["run_dir"])


def _copy_run(finished: Path, tmp: Path) -> Path:
    run = tmp / "runs" / finished.name
    shutil.copytree(finished, run)
    np.save(tmp / "x.npy", X)
    return run


def _run_json(text: str) -> Callable[[Path], None]:
    return lambda run: (run / "run.json").write_text(text)


DAMAGE = [
    ("run-json-list", _run_json("[1, 2, 3]"), "JSON object"),
    ("run-json-string", _run_json('"hello"'), "JSON object"),
    ("run-json-deep", _run_json("[" * 100000 + "]" * 100000), "run.json"),
    ("run-json-binary", lambda run: (run / "run.json").write_bytes(b"\xff\xfe\x00garbage"), "run.json"),
]
COMMANDS = {
    "evaluate": lambda run, t: ("evaluate", run),
    "predict": lambda run, t: ("predict", run, t / "x.npy", "-o", t / "out.csv"),
    "runs-show": lambda run, t: ("runs", "show", run),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("damage,fragment", [pytest.param(d, f, id=i) for i, d, f in DAMAGE])
def test_damaged_run_json_is_4(
    finished: Path, tmp_path: Path, command: str, damage: Callable[[Path], None], fragment: str
) -> None:
    run = _copy_run(finished, tmp_path)
    damage(run)
    before = snapshot(tmp_path)
    res = trainctl(*COMMANDS[command](run, tmp_path), cwd=tmp_path)
    assert_clean_failure(res, 4, fragment)
    assert snapshot(tmp_path) == before


def test_runs_list_marks_a_damaged_run(finished: Path, tmp_path: Path) -> None:
    run = _copy_run(finished, tmp_path)
    (run / "run.json").write_text("[" * 100000 + "]" * 100000)
    res = trainctl("runs", "list", "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "corrupt" in res.stdout


@pytest.mark.parametrize(
    "dtype,fragment",
    [pytest.param(np.complex64, "dtype complex64", id="complex"), pytest.param("U4", "dtype <U4", id="strings")],
)
def test_predict_refuses_non_real_input(finished: Path, tmp_path: Path, dtype: Any, fragment: str) -> None:
    run = _copy_run(finished, tmp_path)
    np.save(tmp_path / "bad.npy", X.astype(dtype))
    res = trainctl("predict", run, tmp_path / "bad.npy", "-o", tmp_path / "out.csv", cwd=tmp_path)
    assert_clean_failure(res, 3, fragment)
    assert not (tmp_path / "out.csv").exists()
