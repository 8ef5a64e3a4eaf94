"""HDF5 layouts, reading errors and atomic writes, checked with h5py against the documented layouts.

Layouts: shared/notes/keras-format.md §2 (native ``.weights.h5``, legacy weights, legacy whole model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from trainctl.config import load_config
from trainctl.errors import ArtifactError
from trainctl.model.sequential import Sequential, build_model
from trainctl.serialization import (
    atomic_path,
    atomic_write_bytes,
    keras_h5,
    load_model_from_dir,
    load_weights_h5,
    save_keras_artifacts,
    save_model_h5,
    save_weights_h5,
)
from trainctl.serialization.keras_h5 import keras_snake

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"
SMALL = """
    - {type: InputLayer, shape: [3]}
    - {type: Dense, units: 4, activation: relu}
    - {type: Dropout, rate: 0.5}
    - {type: Dense, units: 2, name: out}
"""


def _model(body: str = SMALL, seed: int = 0) -> Sequential:
    torch.manual_seed(seed)
    model = build_model(load_config(None, text=HEAD + body).config.model)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model


def _state(model: Sequential) -> list[np.ndarray]:
    return [t.detach().numpy().copy() for _, w in model.keras_weights() for _, t in w]


@pytest.mark.parametrize(
    ("cls", "key"),
    [("Dense", "dense"), ("Conv2D", "conv2d"), ("MaxPooling2D", "max_pooling2d"),
     ("BatchNormalization", "batch_normalization"), ("SimpleRNN", "simple_rnn"),
     ("GlobalAveragePooling1D", "global_average_pooling1d"), ("LSTM", "lstm")],
)  # fmt: skip
def test_keras_snake_case_keys(cls: str, key: str) -> None:
    assert keras_snake(cls) == key


def test_native_layout(tmp_path: Path) -> None:
    model = _model()
    save_weights_h5(model, tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r") as f:
        assert dict(f.attrs) == {}
        assert f["vars"].attrs["name"] == "sequential" and len(f["vars"]) == 0
        assert sorted(f["layers"]) == ["dense", "dense_1", "dropout"]  # class keys, not layer names
        assert f["layers/dense_1/vars"].attrs["name"] == "out"
        assert len(f["layers/dropout/vars"]) == 0  # the empty group tf-keras needs
        first: Any = model.layers[0]
        kernel, bias = first.kernel, first.bias
        np.testing.assert_array_equal(f["layers/dense/vars/0"][()], kernel.detach().numpy())
        np.testing.assert_array_equal(f["layers/dense/vars/1"][()], bias.detach().numpy())
        assert f["layers/dense_1/vars/0"].shape == (4, 2)


def test_legacy_whole_model_layout(tmp_path: Path) -> None:
    model = _model()
    save_model_h5(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        config = json.loads(f.attrs["model_config"])
        assert "training_config" not in f.attrs
        assert [e["class_name"] for e in config["config"]["layers"]] == [
            "InputLayer",
            "Dense",
            "Dropout",
            "Dense",
        ]
        assert all("module" not in e for e in config["config"]["layers"])
        g = f["model_weights"]
        assert [n.decode() for n in g.attrs["layer_names"]] == ["dense", "dropout", "out"]
        assert [n.decode() for n in g["out"].attrs["weight_names"]] == ["out/kernel:0", "out/bias:0"]
        assert len(g["dropout"].attrs["weight_names"]) == 0
        last: Any = model.layers[2]
        np.testing.assert_array_equal(g["out/out/kernel:0"][()], last.kernel.detach().numpy())
        assert "top_level_model_weights" in g


@pytest.mark.parametrize("name", ["m.weights.h5", "m.h5"])
def test_write_then_read_restores_weights(name: str, tmp_path: Path) -> None:
    src, dst = _model(seed=0), _model(seed=1)
    writer = save_weights_h5 if name.endswith(".weights.h5") else save_model_h5
    writer(src, tmp_path / name)
    load_weights_h5(dst, tmp_path / name)
    for a, b in zip(_state(src), _state(dst), strict=True):
        np.testing.assert_array_equal(a, b)


def test_reads_tf_keras_weights_file_by_position_with_split_layer_names(tmp_path: Path) -> None:
    """A legacy weights-only file as tf-keras writes it; group names differ from ours on purpose."""
    rng = np.random.default_rng(0)
    k1, b1, k2, b2 = (rng.normal(size=s).astype("float64") for s in [(3, 4), (4,), (4, 2), (2,)])
    with h5py.File(tmp_path / "tf.h5", "w") as f:
        f.attrs["layer_names0"] = np.array([b"first"])  # split attribute: layer_names0, layer_names1
        f.attrs["layer_names1"] = np.array([b"drop", b"second"])
        f.attrs["keras_version"] = "2.15.0"
        for name, ws in [("first", [k1, b1]), ("drop", []), ("second", [k2, b2])]:
            g = f.create_group(name)
            wn = [f"{name}/{w}:0" for w in ("kernel", "bias")[: len(ws)]]
            g.attrs["weight_names"] = np.array([w.encode() for w in wn]) if wn else np.array([])
            for w, arr in zip(wn, ws, strict=True):
                g.create_dataset(w, data=arr)
    model = _model()
    load_weights_h5(model, tmp_path / "tf.h5")
    for got, want in zip(_state(model), [k1, b1, k2, b2], strict=True):
        np.testing.assert_allclose(got, want.astype("float32"))


# ---------------------------------------------------------------------------------------------
# reading errors


def _raises(model: Sequential, path: Path, *parts: str) -> None:
    before = _state(model)
    with pytest.raises(ArtifactError) as err:
        load_weights_h5(model, path)
    assert err.value.exit_code == 4
    for part in (path.name, *parts):
        assert part in str(err.value)
    for a, b in zip(before, _state(model), strict=True):  # a failed load changes nothing
        np.testing.assert_array_equal(a, b)


def test_missing_file(tmp_path: Path) -> None:
    _raises(_model(), tmp_path / "model.weights.h5", "not found")


def test_not_hdf5(tmp_path: Path) -> None:
    (tmp_path / "model.weights.h5").write_bytes(b"PK\x03\x04 this is a zip, not HDF5" * 10)
    _raises(_model(), tmp_path / "model.weights.h5", "HDF5")


@pytest.mark.parametrize("name", ["model.weights.h5", "model.h5"])
def test_truncated(name: str, tmp_path: Path) -> None:
    model = _model("    - {type: InputLayer, shape: [64]}\n    - {type: Dense, units: 64}\n")
    (save_weights_h5 if name.endswith(".weights.h5") else save_model_h5)(model, tmp_path / name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    _raises(model, tmp_path / name)


def test_transposed_kernel_names_layer_and_shapes(tmp_path: Path) -> None:
    model = _model()
    with h5py.File(tmp_path / "model.weights.h5", "w") as f:
        f.create_group("vars")
        f.create_dataset("layers/dense/vars/0", data=np.zeros((3, 4), "float32"))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(4, "float32"))
        f.create_dataset("layers/dense_1/vars/0", data=np.zeros((2, 4), "float32"))  # (4, 2) transposed
        f.create_dataset("layers/dense_1/vars/1", data=np.zeros(2, "float32"))
    with pytest.raises(ArtifactError) as err:
        load_weights_h5(model, tmp_path / "model.weights.h5")
    assert str(err.value) == "model.weights.h5: layer 'out' expects kernel of shape (4, 2), the file has (2, 4)"


def test_layer_count_mismatch(tmp_path: Path) -> None:
    bigger = _model(SMALL + "    - {type: Dense, units: 3}\n")
    save_model_h5(bigger, tmp_path / "model.h5")
    save_weights_h5(bigger, tmp_path / "model.weights.h5")
    _raises(_model(), tmp_path / "model.h5", "layer count mismatch", "3")
    _raises(_model(), tmp_path / "model.weights.h5", "layer count mismatch")


def test_weight_count_mismatch(tmp_path: Path) -> None:
    no_bias = _model(SMALL.replace("name: out", "name: out, use_bias: false"))
    save_weights_h5(no_bias, tmp_path / "model.weights.h5")
    _raises(_model(), tmp_path / "model.weights.h5", "'out'", "expects 2 weights", "has 1")


def test_native_file_with_legacy_suffix_is_explained(tmp_path: Path) -> None:
    save_weights_h5(_model(), tmp_path / "a.weights.h5")
    (tmp_path / "a.weights.h5").rename(tmp_path / "a.h5")  # Keras also picks the reader by suffix
    _raises(_model(), tmp_path / "a.h5", ".weights.h5")


def test_load_model_from_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_model_from_dir(tmp_path / "nope")
    with pytest.raises(ArtifactError, match=r"model\.json"):
        load_model_from_dir(tmp_path)
    save_keras_artifacts(_model(), tmp_path)
    (tmp_path / "model.weights.h5").unlink()
    with pytest.raises(ArtifactError, match=r"model\.weights\.h5"):
        load_model_from_dir(tmp_path)
    (tmp_path / "model.json").write_text('{"class_name": "Sequential", "config": {"name": "m", "layers": '
                                         '[{"class_name": "ConvLSTM2D", "config": {"filters": 2}}]}}')  # fmt: skip
    with pytest.raises(ArtifactError, match=r"model\.json.*ConvLSTM2D"):
        load_model_from_dir(tmp_path)


def test_load_model_from_dir_round_trip_keeps_rng_and_eval(tmp_path: Path) -> None:
    model = _model().eval()
    save_keras_artifacts(model, tmp_path)
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    loaded = load_model_from_dir(tmp_path)
    assert torch.equal(torch.rand(3), expected_next)  # building did not consume the caller's RNG
    assert not loaded.training
    x = torch.randn(4, 3)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# ---------------------------------------------------------------------------------------------
# atomic writes


def test_artifacts_are_exactly_three_files(tmp_path: Path) -> None:
    paths = save_keras_artifacts(_model(), tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "model.h5",
        "model.json",
        "model.weights.h5",
    ]
    assert [p.name for p in paths] == ["model.json", "model.weights.h5", "model.h5"]


def test_atomic_write_bytes_replaces(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "f.txt", b"one")
    atomic_write_bytes(tmp_path / "f.txt", b"two")
    assert (tmp_path / "f.txt").read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_failure_inside_atomic_path_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.h5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]


@pytest.mark.parametrize("writer", [save_weights_h5, save_model_h5])
def test_failure_while_writing_h5_leaves_nothing(
    writer: Callable[[Sequential, Path], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def flaky(t: torch.Tensor) -> np.ndarray:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("No space left on device")
        return t.detach().numpy()

    monkeypatch.setattr(keras_h5, "_numpy", flaky)
    with pytest.raises(OSError, match="No space"):
        writer(_model(), tmp_path / "model.weights.h5")
    assert len(calls) == 2  # it failed after writing part of the file
    assert list(tmp_path.iterdir()) == []
