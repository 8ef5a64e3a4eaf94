"""``trainctl export``: onnxruntime on the exported ONNX, and ``torch.export.load`` on the .pt2,
give what ``trainctl predict`` gives (within 1e-5), for every shipped config and every layer family;
with --raw-inputs they are fed the raw source rows. Bad cases exit 4 and name the run or the layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.clihelp import CONFIGS, Cli, write
from trainctl.cli.main import app
from trainctl.config import load_config

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-5
ROWS = 37  # not the traced batch size (3): the batch axis must be dynamic


def _train(cli: Cli, cfg: Path, *overrides: str) -> Path:
    out = cli.train_json(cfg, "--smoke", "threads=1", *overrides)
    return Path(out["run_dir"])


def _raw_rows(run_dir: Path) -> np.ndarray:
    """Raw rows from the run's own source (as a user would feed predict), before any preprocessing."""
    from trainctl.data.sources import load_raw
    from trainctl.evaluation import open_run

    lr = open_run(run_dir, device="cpu")
    raw = load_raw(lr.config.data, base_dir=lr.base_dir, seed=lr.config.seed)
    x = raw.x_test if raw.x_test is not None else raw.x
    return np.ascontiguousarray(x[:ROWS])


def _predict(run_dir: Path, raw: np.ndarray, tmp: Path) -> np.ndarray:
    """What `trainctl predict RUN rows.npy -o out.npy` writes."""
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    np.save(tmp / "rows.npy", raw)
    res = CliRunner().invoke(app, ["predict", str(run_dir), str(tmp / "rows.npy"), "-o", str(tmp / "out.npy")])
    assert res.exit_code == 0, res.output
    return np.load(tmp / "out.npy")


def _export(run_dir: Path, *args: str) -> dict:
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    res = CliRunner().invoke(app, ["export", str(run_dir), *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _onnx(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.shape[0] == "batch"
    return sess.run(None, {inp.name: x})[0]


def _pt2(path: str, x: np.ndarray) -> np.ndarray:
    import torch

    program = torch.export.load(path)
    with torch.no_grad():
        return program.module()(torch.as_tensor(x)).numpy()


def _check_all(
    run_dir: Path, tmp: Path, *, plain_pt2: bool = False, raw: np.ndarray | None = None, want: np.ndarray | None = None
) -> None:
    """ONNX (raw inputs and preprocessed inputs) and .pt2 against predict on the same raw rows
    (by default the run's own source rows; an image run passes decoded pixels and their predictions)."""
    from trainctl.evaluation import open_run

    if raw is None or want is None:
        raw = _raw_rows(run_dir)
        want = _predict(run_dir, raw, tmp)

    raw_onnx = _export(run_dir, "--format", "onnx", "--raw-inputs")
    assert raw_onnx["input_dtype"] == str(raw.dtype)
    np.testing.assert_allclose(_onnx(raw_onnx["path"], raw), want, rtol=0, atol=TOL)

    x = open_run(run_dir, device="cpu").preprocessor.transform_x(raw)
    plain = _export(run_dir, "--format", "onnx", "--output", str(tmp / "plain.onnx"))
    assert plain["raw_inputs"] is False
    np.testing.assert_allclose(_onnx(plain["path"], x), want, rtol=0, atol=TOL)

    if plain_pt2:
        pt2 = _export(run_dir, "--format", "torch")
        np.testing.assert_allclose(_pt2(pt2["path"], x), want, rtol=0, atol=TOL)
    else:
        pt2 = _export(run_dir, "--format", "torch", "--raw-inputs")
        np.testing.assert_allclose(_pt2(pt2["path"], raw), want, rtol=0, atol=TOL)

    info = json.loads((run_dir / "run.json").read_text())
    recorded = {e["path"]: e for e in info["exports"]}
    for done in (raw_onnx, plain, pt2):
        entry = recorded[done["path"]]
        assert entry["format"] == done["format"] and entry["bytes"] == Path(done["path"]).stat().st_size
    assert not list(Path(plain["path"]).parent.glob(".*.tmp"))  # atomic: no temporary left behind


# ---------------------------------------------------------------------------------------------
# several inputs or outputs: one named graph input per model input, one named output per output


def _several_rows(run_dir: Path) -> dict[str, np.ndarray]:
    """The run's own test arrays, read from its .npz as a user would: ``x_test_<input>`` (or
    ``x_test`` for a model with one input), ``ROWS`` rows, keyed by input name."""
    from trainctl.evaluation import open_run

    lr = open_run(run_dir, device="cpu")
    names = lr.model.graph.input_names
    with np.load(lr.base_dir / lr.config.data.path) as archive:
        keys = [f"x_test_{n}" if f"x_test_{n}" in archive.files else "x_test" for n in names]
        return {n: np.ascontiguousarray(archive[k][:ROWS]) for n, k in zip(names, keys, strict=True)}


def _predict_several(run_dir: Path, rows: dict[str, np.ndarray], tmp: Path) -> dict[str, np.ndarray]:
    """What `trainctl predict RUN in.npz -o out.npz` writes: one array per output, by output name."""
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    np.savez(tmp / "in.npz", **rows)  # type: ignore[arg-type]
    res = CliRunner().invoke(app, ["predict", str(run_dir), str(tmp / "in.npz"), "-o", str(tmp / "out.npz")])
    assert res.exit_code == 0, res.output
    with np.load(tmp / "out.npz") as out:
        return {k: out[k] for k in out.files}


def _check_several(run_dir: Path, tmp: Path, dtypes: dict[str, np.dtype]) -> None:
    """ONNX (with and without --raw-inputs: the same inputs) and .pt2 against predict's .npz."""
    import torch

    rows = {n: a.astype(dtypes[n]) for n, a in _several_rows(run_dir).items()}
    want = _predict_several(run_dir, rows, tmp)
    names = list(rows)
    for args in (("--raw-inputs",), ("--output", str(tmp / "plain.onnx"))):
        done = _export(run_dir, "--format", "onnx", *args)
        assert [i["name"] for i in done["inputs"]] == names and done["outputs"] == list(want)
        sess = ort.InferenceSession(done["path"], providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == names  # the Keras input names, in model order
        assert [o.name for o in sess.get_outputs()] == list(want)  # the output layer names
        assert all(t.shape[0] == "batch" for t in [*sess.get_inputs(), *sess.get_outputs()])
        got = sess.run(None, rows)
        assert len(got) == len(want)
        for name, arr in zip(want, got, strict=True):
            np.testing.assert_allclose(arr, want[name], rtol=0, atol=TOL, err_msg=name)

    for args in ((), ("--raw-inputs",)):
        pt2 = _export(run_dir, "--format", "torch", *args)
        program = torch.export.load(pt2["path"])
        with torch.no_grad():
            out = program.module()(*(torch.as_tensor(rows[n]) for n in names))
        outs = out if isinstance(out, tuple | list) else (out,)
        assert len(outs) == len(want)
        for name, arr in zip(want, outs, strict=True):
            np.testing.assert_allclose(arr.numpy(), want[name], rtol=0, atol=TOL, err_msg=name)
    info = json.loads((run_dir / "run.json").read_text())
    assert {e["outputs"] == list(want) for e in info["exports"]} == {True}


def _several_io(cfg: Path) -> bool:
    import yaml

    model = yaml.safe_load(cfg.read_text())["model"]
    return len(model.get("inputs", [])) > 1 or len(model.get("outputs", [])) > 1


SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_exports_and_matches_predict(
    name: str, cli: Cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if load_config(CONFIGS / name).config.data.source == "image_directory":
        _check_image_run(cli, CONFIGS / name, tmp_path)
        return
    from tests.imagefolder import shipped_overrides

    overrides = shipped_overrides(CONFIGS / name, tmp_path)  # .npy shards a documented command makes
    if "mnist" in name and not overrides:  # reads the IDX files; never downloads in a test
        request.getfixturevalue("shared_datasets")
    run_dir = _train(cli, CONFIGS / name, *overrides)
    if _several_io(CONFIGS / name):  # the wine Functional configs
        _check_several(run_dir, tmp_path, dtypes={"wide": np.float32, "deep": np.float32, "chem": np.float32})
    else:
        _check_all(run_dir, tmp_path)


TWO_IN_TWO_OUT = """
name: tokens_and_features
seed: 5
data: {source: npz, path: data.npz}
model:
  inputs:
    - {name: features, shape: [8]}
    - {name: tokens, shape: [5], dtype: int32}
  layers:
    - {name: tok_embed, type: Embedding, input_dim: 30, output_dim: 4, inputs: tokens}
    - {name: tok_pool, type: GlobalAveragePooling1D}
    - {name: feat_bn, type: BatchNormalization, inputs: features}
    - {name: merge, type: Concatenate, inputs: [feat_bn, tok_pool]}
    - {name: trunk, type: Dense, units: 16, activation: relu}
    - {name: cls, type: Dense, units: 3, activation: softmax}
    - {name: reg, type: Dense, units: 1, inputs: trunk}
  outputs: [cls, reg]
compile:
  optimizer: adam
  loss: {cls: sparse_categorical_crossentropy, reg: mean_squared_error}
  loss_weights: {cls: 1.0, reg: 0.5}
fit: {epochs: 1, batch_size: 16}
"""


def test_a_two_input_two_output_model_with_int_tokens_exports(cli: Cli, tmp_path: Path) -> None:
    """An int32 token input (fed as int64 ids, as predict reads it) beside a float input, two heads."""
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 60), ("test", 40)):
        arrays[f"x_{split}_features"] = rng.normal(size=(n, 8)).astype(np.float32)
        arrays[f"x_{split}_tokens"] = rng.integers(0, 30, size=(n, 5)).astype(np.int32)
        arrays[f"y_{split}_cls"] = rng.integers(0, 3, size=n)
        arrays[f"y_{split}_reg"] = rng.normal(size=(n, 1)).astype(np.float32)
    np.savez(tmp_path / "data.npz", **arrays)  # type: ignore[arg-type]
    run_dir = _train(cli, write(tmp_path, TWO_IN_TWO_OUT))
    _check_several(run_dir, tmp_path, dtypes={"features": np.float32, "tokens": np.int64})
    text = _export(run_dir, "--format", "onnx")
    assert text["inputs"] == [
        {"name": "features", "shape": ["batch", 8], "dtype": "float32"},
        {"name": "tokens", "shape": ["batch", 5], "dtype": "int64"},
    ]


def _check_image_run(cli: Cli, cfg: Path, tmp: Path) -> None:
    """A run trained on an image folder: predict takes the image files, the exported model the
    decoded float pixels (what --raw-inputs means for images: decoding stays outside the graph)."""
    from tests.imagefolder import folder_overrides, png_folder
    from trainctl.data.images import TrainedImageReader
    from trainctl.evaluation import open_run

    root = png_folder(tmp / "images")
    run_dir = _train(cli, cfg, *folder_overrides(root))
    reader = TrainedImageReader([root / "test"], open_run(run_dir, device="cpu").config.data)
    pixels = np.concatenate(list(reader.chunks(64)))
    res = CliRunner().invoke(app, ["predict", str(run_dir), str(root / "test"), "-o", str(tmp / "out.npy")])
    assert res.exit_code == 0, res.output
    want = np.load(tmp / "out.npy")
    assert len(want) == len(pixels) == 12
    _check_all(run_dir, tmp, raw=pixels, want=want)


# ---------------------------------------------------------------------------------------------
# one small model per layer family, trained one smoke epoch on random data (moving BN stats move)

FAMILIES = {
    "dense_core": (
        (6, 4),
        """
    - {type: Flatten, input_shape: [6, 4]}
    - {type: Dense, units: 8, activation: tanh}
    - {type: Dropout, rate: 0.3}
    - {type: Reshape, target_shape: [2, 4]}
    - {type: Permute, dims: [2, 1]}
    - {type: Flatten}
    - {type: Activation, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "conv2d": (
        (8, 8, 2),
        """
    - {type: ZeroPadding2D, padding: 1, input_shape: [8, 8, 2]}
    - {type: Conv2D, filters: 4, kernel_size: 3, activation: relu}
    - {type: BatchNormalization}
    - {type: DepthwiseConv2D, kernel_size: 3, padding: same}
    - {type: SeparableConv2D, filters: 4, kernel_size: 3}
    - {type: SpatialDropout2D, rate: 0.2}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: UpSampling2D, size: 2}
    - {type: Conv2DTranspose, filters: 3, kernel_size: 2, strides: 2}
    - {type: Cropping2D, cropping: 1}
    - {type: AveragePooling2D, pool_size: 2}
    - {type: GlobalMaxPooling2D}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "conv2d_gap": (
        (6, 6, 1),
        """
    - {type: Conv2D, filters: 3, kernel_size: 3, padding: same, input_shape: [6, 6, 1]}
    - {type: LayerNormalization}
    - {type: GlobalAveragePooling2D}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "conv1d": (
        (10, 3),
        """
    - {type: Conv1D, filters: 4, kernel_size: 3, activation: relu, input_shape: [10, 3]}
    - {type: SpatialDropout1D, rate: 0.2}
    - {type: MaxPooling1D, pool_size: 2}
    - {type: AveragePooling1D, pool_size: 2}
    - {type: GlobalAveragePooling1D}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "conv1d_gmp": (
        (10, 3),
        """
    - {type: Conv1D, filters: 4, kernel_size: 3, input_shape: [10, 3]}
    - {type: BatchNormalization}
    - {type: GlobalMaxPooling1D}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "conv3d": (
        (4, 4, 4, 1),
        """
    - {type: Conv3D, filters: 2, kernel_size: 2, activation: relu, input_shape: [4, 4, 4, 1]}
    - {type: MaxPooling3D, pool_size: 1}
    - {type: AveragePooling3D, pool_size: 3}
    - {type: Flatten}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "recurrent": (
        (7, 3),
        """
    - {type: SimpleRNN, units: 4, return_sequences: true, input_shape: [7, 3]}
    - {type: GRU, units: 5, return_sequences: true, go_backwards: true}
    - {type: TimeDistributed, layer: {type: Dense, units: 4}}
    - {type: Bidirectional, layer: {type: LSTM, units: 3}}
    - {type: RepeatVector, n: 2}
    - {type: LSTM, units: 3}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
    "masked_embedding": (
        (9,),
        """
    - {type: Embedding, input_dim: 6, output_dim: 4, mask_zero: true, input_shape: [9]}
    - {type: Bidirectional, layer: {type: GRU, units: 3, return_sequences: true}}
    - {type: LSTM, units: 4}
    - {type: Dense, units: 3, activation: softmax}
""",
    ),
}

FAMILY_CFG = """
name: fam
seed: 3
data: {{source: npz, path: data.npz{steps}}}
model:
  layers:{layers}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
fit: {{epochs: 1, batch_size: 16}}
"""


def _family_data(tmp: Path, name: str, shape: tuple[int, ...]) -> str:
    rng = np.random.default_rng(0)
    if name == "masked_embedding":  # ids with padding before, inside and after the tokens
        x = rng.integers(1, 6, size=(80, *shape))
        for i, row in enumerate(x):
            row[: i % 5] = 0
            row[4 + i % 3] = 0 if i % 2 else row[4 + i % 3]
            if i % 7 == 0:
                row[-2:] = 0
        steps = ", x: [{cast: int64}]"
    else:
        x = rng.normal(size=(80, *shape)).astype(np.float32)
        steps = ""
    y = rng.integers(0, 3, size=80)
    np.savez(tmp / "data.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    return steps


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_layer_family_exports_and_matches_predict(family: str, cli: Cli, tmp_path: Path) -> None:
    shape, layers = FAMILIES[family]
    steps = _family_data(tmp_path, family, shape)
    cfg = write(tmp_path, FAMILY_CFG.format(steps=steps, layers=layers))
    run_dir = _train(cli, cfg)
    _check_all(run_dir, tmp_path, plain_pt2=True)


# ---------------------------------------------------------------------------------------------
# bad cases


def test_missing_run_exits_4(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    res = CliRunner().invoke(app, ["export", str(tmp_path / "nope"), "--format", "onnx"])
    assert res.exit_code == 4
    assert "run folder not found" in res.stderr and "nope" in res.stderr


def test_unknown_format_exits_2(cli: Cli, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    res = CliRunner().invoke(app, ["export", str(tmp_path), "--format", "tflite"])
    assert res.exit_code == 2 and "--format" in res.stderr


TINY = """
name: tiny
seed: 1
data: {source: sklearn, name: digits, test_split: 0.2, x: [{scale: 16}]}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [64]}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
fit: {epochs: 1}
"""


def test_a_layer_that_cannot_be_traced_is_named(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer whose forward branches on its data cannot become a graph: exit 4 names that layer."""
    import torch

    from trainctl.model import layers

    run_dir = _train(cli, write(tmp_path, TINY))
    original = layers.Dense.forward_pre

    def branchy(self, x):  # type: ignore[no-untyped-def]
        if self.keras_name == "dense_1" and bool((x > 0).any()):
            return original(self, x) + 1
        return original(self, x)

    monkeypatch.setattr(layers.Dense, "forward_pre", branchy)
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "onnx"])
    assert res.exit_code == 4, res.output
    assert "layer 'dense_1' (Dense, model.layers[1]) cannot be exported" in res.stderr
    assert not (run_dir / "export" / "model.onnx").exists()
    assert "exports" not in json.loads((run_dir / "run.json").read_text())
    del torch


def test_an_op_without_onnx_translation_is_named(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer that traces but uses an op ONNX has no translation for: exit 4 names the layer and the op."""
    import torch

    from trainctl.model import layers

    run_dir = _train(cli, write(tmp_path, TINY))
    original = layers.Dense.forward_pre

    def odd(self, x):  # type: ignore[no-untyped-def]
        out = original(self, x)
        return torch.special.bessel_j0(out) if self.keras_name == "dense" else out

    monkeypatch.setattr(layers.Dense, "forward_pre", odd)
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "onnx"])
    assert res.exit_code == 4, res.output
    assert "layer 'dense' (Dense, model.layers[0]) cannot be exported to ONNX" in res.stderr
    assert "bessel_j0" in res.stderr
    # the same layer is fine for torch.export: only ONNX lacks the op
    ok = CliRunner().invoke(app, ["export", str(run_dir), "--format", "torch"])
    assert ok.exit_code == 0, ok.output
