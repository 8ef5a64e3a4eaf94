"""Conv-family models as Keras artifacts, in both directions, against real Keras 3 (torch backend);
plus the summary table and the validation errors, checked against Keras's own output and errors."""

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

from trainctl.config import load_config  # noqa: E402
from trainctl.errors import ConfigError  # noqa: E402
from trainctl.model.sequential import Sequential, build_model  # noqa: E402
from trainctl.model.shapes import infer  # noqa: E402
from trainctl.reporting.summary import summary_text  # noqa: E402
from trainctl.serialization import (  # noqa: E402
    load_weights_h5,
    model_spec_from_json,
    save_keras_artifacts,
    spec_to_dict,
)

pytestmark = pytest.mark.keras
L = keras.layers

Case = tuple[tuple[int, ...], list[dict[str, Any]]]

# every 2-D layer of the family, with non-square kernels, strides and paddings
IMAGE: Case = (
    (9, 8, 3),
    [
        {"type": "Conv2D", "filters": 4, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same",
         "activation": "relu"},
        {"type": "DepthwiseConv2D", "kernel_size": [2, 3], "depth_multiplier": 2},
        {"type": "SeparableConv2D", "filters": 3, "kernel_size": [1, 2], "padding": "same"},
        {"type": "Conv2DTranspose", "filters": 2, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same"},
        {"type": "ZeroPadding2D", "padding": [[1, 0], [0, 2]]},
        {"type": "Cropping2D", "cropping": [[2, 1], [1, 0]]},
        {"type": "UpSampling2D", "size": [1, 2], "interpolation": "bilinear"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
)  # fmt: skip
# Conv3D, then Conv1D over the flattened positions
VOLUME: Case = (
    (4, 5, 3, 2),
    [
        {"type": "Conv3D", "filters": 3, "kernel_size": [2, 3, 1], "padding": "same"},
        {"type": "Reshape", "target_shape": [20, 9]},
        {"type": "Conv1D", "filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 2},
    ],
)
MODELS = {"image": IMAGE, "volume": VOLUME}


def keras_layers(layers: list[dict[str, Any]]) -> list[Any]:
    """The same layers built by Keras from the same arguments (lists -> tuples, as Keras users write)."""
    out = []
    for d in layers:
        kwargs = {
            k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in d.items()
            if k != "type"
        }
        out.append(getattr(L, d["type"])(**kwargs))
    return out


def build_ours(in_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> Sequential:
    cfg = {
        "data": {"source": "synthetic", "kind": "random"},
        "model": {"layers": [{"type": "InputLayer", "shape": list(in_shape)}, *layers]},
        "compile": {"loss": "mse"},
    }
    torch.manual_seed(3)
    return build_model(load_config(None, text=json.dumps(cfg)).config.model).eval()


def predict(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def sample(in_shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(4, *in_shape)).astype(np.float32)


@pytest.mark.parametrize("case", list(MODELS))
def test_our_artifacts_load_in_keras(case: str, tmp_path: Path) -> None:
    in_shape, layers = MODELS[case]
    model = build_ours(in_shape, layers)
    save_keras_artifacts(model, tmp_path)
    x = sample(in_shape)
    expected = predict(model, x)
    k_model = keras.models.model_from_json((tmp_path / "model.json").read_text())
    k_model.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(k_model.predict(x, verbose=0), expected, atol=1e-5)
    whole = keras.models.load_model(tmp_path / "model.h5", compile=False)
    np.testing.assert_allclose(whole.predict(x, verbose=0), expected, atol=1e-5)
    assert whole.count_params() == sum(r.params for r in model.info)


@pytest.mark.parametrize("case", list(MODELS))
def test_keras_models_import_into_ours(case: str, tmp_path: Path) -> None:
    in_shape, layers = MODELS[case]
    keras.utils.set_random_seed(5)
    k_model = keras.Sequential([keras.Input(in_shape), *keras_layers(layers)])
    for w in k_model.weights:  # non-zero biases too, so a swapped bias would show
        w.assign(np.random.default_rng(len(w.path)).normal(size=w.shape).astype(np.float32) * 0.3)
    text = k_model.to_json()
    k_model.save_weights(tmp_path / "k.weights.h5")
    spec = model_spec_from_json(text)
    model = build_model(spec).eval()
    load_weights_h5(model, tmp_path / "k.weights.h5")
    x = sample(in_shape)
    np.testing.assert_allclose(predict(model, x), k_model.predict(x, verbose=0), atol=1e-5)
    # and writing the imported spec gives back Keras's own layer configs, key order included
    theirs = json.loads(text)["config"]["layers"]
    mine = spec_to_dict(spec)["config"]["layers"]
    assert [list(e["config"]) for e in mine] == [list(e["config"]) for e in theirs]
    assert _without_axes(mine) == _without_axes(theirs)


def _without_axes(obj: Any) -> Any:
    """Keras 3.15 writes GlorotUniform's ``input_axes``/``output_axes`` (None); the shared initializer
    codec leaves them out (Keras reads both), which is not what this file tests."""
    if isinstance(obj, dict):
        return {k: _without_axes(v) for k, v in obj.items() if k not in ("input_axes", "output_axes")}
    if isinstance(obj, list):
        return [_without_axes(v) for v in obj]
    return obj


def test_summary_equals_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    in_shape, layers = IMAGE
    keras.backend.clear_session()  # Keras's names restart at conv2d, dense...
    k_model = keras.Sequential([keras.Input(in_shape), *keras_layers(layers)], name="convs")
    lines: list[str] = []
    k_model.summary(line_length=76, print_fn=lambda text, **_: lines.append(text))
    spec = load_config(
        None,
        text=json.dumps({
            "data": {"source": "synthetic", "kind": "random"},
            "model": {"name": "convs", "layers": [{"type": "InputLayer", "shape": list(in_shape)}, *layers]},
            "compile": {"loss": "mse"},
        }),
    ).config.model  # fmt: skip
    _, rows = infer(list(spec.layers))
    assert summary_text(spec.name, rows, width=76).rstrip("\n") == "\n".join(lines).rstrip("\n")


def _validate(layers: list[dict[str, Any]], in_shape: list[int]) -> None:
    cfg = {
        "data": {"source": "synthetic", "kind": "random"},
        "model": {"layers": [{"type": "InputLayer", "shape": in_shape}, *layers]},
        "compile": {"loss": "mse"},
    }
    build_model(load_config(None, text=json.dumps(cfg)).config.model)


def test_wrong_input_rank_exits_2_naming_the_layer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"
        "    - {type: Dense, units: 4, input_shape: [6]}\n"
        "    - {type: Conv2D, filters: 2, kernel_size: 3}\n",
    )
    res = CliRunner().invoke(app, ["config", "validate", str(cfg)], catch_exceptions=False)
    assert res.exit_code == 2
    text = res.output + res.stderr
    assert "model.layers[1]" in text
    assert "(batch, height, width, channels)" in text and "(None, 4)" in text


@pytest.mark.parametrize(
    ("layer", "in_shape", "make_keras"),
    [
        # strides and dilation together
        ({"type": "Conv2D", "filters": 2, "kernel_size": 2, "strides": 2, "dilation_rate": [1, 2]}, [6, 6, 1],
         lambda: L.Conv2D(2, 2, strides=2, dilation_rate=(1, 2))),
        # output_padding not below strides
        ({"type": "Conv2DTranspose", "filters": 2, "kernel_size": 3, "strides": 2, "output_padding": [1, 2]},
         [4, 4, 1], lambda: L.Conv2DTranspose(2, 3, strides=2, output_padding=(1, 2))),
        # filters not divisible by groups
        ({"type": "Conv1D", "filters": 3, "kernel_size": 2, "groups": 2}, [5, 4],
         lambda: L.Conv1D(3, 2, groups=2)),
        # input channels not divisible by groups
        ({"type": "Conv1D", "filters": 4, "kernel_size": 2, "groups": 2}, [5, 3],
         lambda: L.Conv1D(4, 2, groups=2)),
        # a valid convolution larger than its input
        ({"type": "Conv2D", "filters": 2, "kernel_size": [2, 5]}, [3, 4, 1], lambda: L.Conv2D(2, (2, 5))),
        # causal padding exists only for Conv1D
        ({"type": "Conv2D", "filters": 2, "kernel_size": 2, "padding": "causal"}, [3, 4, 1],
         lambda: L.Conv2D(2, 2, padding="causal")),
        # a kernel_size with the wrong number of entries
        ({"type": "Conv3D", "filters": 2, "kernel_size": [2, 2]}, [3, 4, 4, 1], lambda: L.Conv3D(2, (2, 2))),
    ],
)  # fmt: skip
def test_config_errors_where_keras_refuses(layer: dict[str, Any], in_shape: list[int], make_keras: Any) -> None:
    with pytest.raises(ValueError):  # Keras refuses it, in the constructor or when building
        keras.Sequential([keras.Input(tuple(in_shape)), make_keras()])
    with pytest.raises(ConfigError) as exc:
        _validate([layer], in_shape)
    assert any(p.key and p.key.startswith("model.layers[1]") for p in exc.value.problems), exc.value.problems


def test_channels_first_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError) as exc:
        _validate([{"type": "Conv2D", "filters": 2, "kernel_size": 3, "data_format": "channels_first"}], [1, 8, 8])
    (problem,) = exc.value.problems
    assert problem.key == "model.layers[1].data_format"
    assert "channels_last" in problem.message and "channels_first" in problem.message
