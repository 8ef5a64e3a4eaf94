"""Preprocessing and augmentation layers against REAL Keras 3 (torch backend) and by hand.

Inference: each case builds the same model in trainctl (YAML) and in Keras, and checks param counts,
output shapes, outputs, and the artifacts both ways (Keras loads ours; ours imports Keras's).
Training: the random layers' ``apply`` is compared with Keras's own ``transform_images`` on the
same drawn parameters, and with hand-computed results (flips, rot90, shifts, contrast formula).
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
L = keras.layers

from tests.model.test_norm_layers import (  # noqa: E402
    HEAD,
    infer_keras,
    keras_sequential,
    random_model,
    run,
    size,
    strip,
)
from trainctl.config import load_config  # noqa: E402
from trainctl.errors import ConfigError  # noqa: E402
from trainctl.model import augment as A  # noqa: E402, N812
from trainctl.model import preprocess as P  # noqa: E402, N812
from trainctl.model.sequential import Sequential, build_model  # noqa: E402
from trainctl.model.shapes import infer  # noqa: E402
from trainctl.reporting.summary import summary_text  # noqa: E402
from trainctl.serialization import (  # noqa: E402
    load_model_from_dir,
    load_weights_h5,
    model_spec_from_json,
    model_to_json,
    save_keras_artifacts,
)

pytestmark = pytest.mark.keras
gc.freeze()

CASES: dict[str, tuple[str, Callable[[], list[Any]]]] = {
    "rescale_normalize": (
        """
    - {type: InputLayer, shape: [6, 5, 3]}
    - {type: Rescaling, scale: 0.0125, offset: -0.5}
    - {type: Normalization}
    - {type: Normalization, invert: true}
    - {type: Normalization, mean: [0.5, -1.0, 2.0], variance: [4.0, 0.25, 1.0]}
    - {type: Flatten}
    - {type: Dense, units: 2}
""",
        lambda: [
            keras.Input((6, 5, 3)),
            L.Rescaling(0.0125, offset=-0.5),
            L.Normalization(),
            L.Normalization(invert=True),
            L.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0]),
            L.Flatten(),
            L.Dense(2),
        ],
    ),
    # Keras's legacy .h5 config reader drops a multi-axis `axis` list (see test_norm_layers), so
    # Keras cannot load_model this model.h5 (axis None is the list []); json + either weights file works
    "normalize_axes": (
        """
    - {type: InputLayer, shape: [6, 5, 3]}
    - {type: Normalization, axis: [1, -1], invert: true}
    - {type: Normalization, axis: null}
    - {type: Normalization, mean: 0.25, variance: 2.0, invert: true, axis: [2, 3]}
    - {type: Normalization, mean: [1.0, 2.0, 3.0], variance: [1.0, 4.0, 9.0], axis: [1, 3]}
""",
        lambda: [
            keras.Input((6, 5, 3)),
            L.Normalization(axis=(1, -1), invert=True),
            L.Normalization(axis=None),
            L.Normalization(mean=0.25, variance=2.0, invert=True, axis=(2, 3)),
            L.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0], axis=(1, 3)),
        ],
    ),
    "resize_and_crop": (
        """
    - {type: InputLayer, shape: [12, 16, 3]}
    - {type: Resizing, height: 10, width: 14}
    - {type: Resizing, height: 9, width: 9, crop_to_aspect_ratio: true}
    - {type: Resizing, height: 7, width: 13, pad_to_aspect_ratio: true, fill_value: 0.5}
    - {type: Resizing, height: 11, width: 8, interpolation: nearest}
    - {type: Resizing, height: 9, width: 7, interpolation: bicubic}
    - {type: Resizing, height: 6, width: 5, antialias: true}
    - {type: CenterCrop, height: 5, width: 3}
    - {type: CenterCrop, height: 8, width: 4}
""",
        lambda: [
            keras.Input((12, 16, 3)),
            L.Resizing(10, 14),
            L.Resizing(9, 9, crop_to_aspect_ratio=True),
            L.Resizing(7, 13, pad_to_aspect_ratio=True, fill_value=0.5),
            L.Resizing(11, 8, interpolation="nearest"),
            L.Resizing(9, 7, interpolation="bicubic"),
            L.Resizing(6, 5, antialias=True),
            L.CenterCrop(5, 3),
            L.CenterCrop(8, 4),
        ],
    ),
    "augment": (
        """
    - {type: InputLayer, shape: [10, 12, 3]}
    - {type: RandomFlip}
    - {type: RandomFlip, mode: horizontal, seed: 3}
    - {type: RandomRotation, factor: 0.1}
    - {type: RandomRotation, factor: [-0.2, 0.3], fill_mode: constant, fill_value: 1.5, interpolation: nearest}
    - {type: RandomZoom, height_factor: 0.2}
    - {type: RandomZoom, height_factor: [-0.3, -0.1], width_factor: 0.1, fill_mode: wrap}
    - {type: RandomTranslation, height_factor: 0.1, width_factor: [-0.2, 0.1], fill_mode: nearest}
    - {type: RandomContrast, factor: [0.1, 0.3]}
    - {type: RandomBrightness, factor: 0.2, value_range: [0, 1]}
    - {type: Flatten}
    - {type: Dense, units: 3}
""",
        lambda: [
            keras.Input((10, 12, 3)),
            L.RandomFlip(),
            L.RandomFlip("horizontal", seed=3),
            L.RandomRotation(0.1),
            L.RandomRotation((-0.2, 0.3), fill_mode="constant", fill_value=1.5, interpolation="nearest"),
            L.RandomZoom(0.2),
            L.RandomZoom((-0.3, -0.1), width_factor=0.1, fill_mode="wrap"),
            L.RandomTranslation(0.1, (-0.2, 0.1), fill_mode="nearest"),
            L.RandomContrast((0.1, 0.3)),
            L.RandomBrightness(0.2, value_range=(0, 1)),
            L.Flatten(),
            L.Dense(3),
        ],
    ),
    "channels_first": (
        """
    - {type: InputLayer, shape: [3, 12, 16]}
    - {type: Resizing, height: 10, width: 8, data_format: channels_first}
    - {type: CenterCrop, height: 6, width: 7, data_format: channels_first}
    - {type: RandomFlip, mode: vertical, data_format: channels_first}
    - {type: RandomTranslation, height_factor: 0.2, width_factor: 0.2, data_format: channels_first}
""",
        lambda: [
            keras.Input((3, 12, 16)),
            L.Resizing(10, 8, data_format="channels_first"),
            L.CenterCrop(6, 7, data_format="channels_first"),
            L.RandomFlip("vertical", data_format="channels_first"),
            L.RandomTranslation(0.2, 0.2, data_format="channels_first"),
        ],
    ),
}
NO_LOAD_MODEL = {"normalize_axes"}


def ours(key: str) -> Sequential:
    """Our model, with every weight and adapted statistic random (variances positive)."""
    return random_model(CASES[key][0])


def theirs(key: str) -> Any:
    return keras_sequential(CASES[key][1])


def x_for(model: Sequential, n: int = 5, seed: int = 1) -> np.ndarray:
    shape = tuple(int(d) for d in model.input_shape)  # type: ignore[arg-type]
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, *shape)).astype("float32")


def keras_weights(model: Sequential) -> list[list[np.ndarray]]:
    return [[t.detach().numpy().copy() for _, t in w] for _, w in model.keras_weights()]


@pytest.mark.parametrize("key", list(CASES))
def test_counts_shapes_and_outputs_equal_keras(key: str) -> None:
    model, km = ours(key), theirs(key)
    assert [r.name for r in model.info] == [layer.name for layer in km.layers]
    for row, layer, (_, mine) in zip(model.info, km.layers, model.keras_weights(), strict=True):
        assert (row.trainable_params, row.non_trainable_params) == (
            size(layer.trainable_weights),
            size(layer.non_trainable_weights),
        ), row.name
        assert (None, *row.output_shape) == tuple(layer.output.shape), row.name
        assert [n for n, _ in mine] == [w.path.rsplit("/", 1)[-1] for w in layer.weights], row.name
        layer.set_weights([t.detach().numpy() for _, t in mine])
    x = x_for(model) * 255.0
    np.testing.assert_allclose(run(model, x), infer_keras(km, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", list(CASES))
def test_keras_loads_our_artifacts(key: str, tmp_path: Path) -> None:
    model = ours(key)
    save_keras_artifacts(model, tmp_path)
    x = x_for(model) * 255.0
    want = run(model, x)
    km = keras.models.model_from_json((tmp_path / "model.json").read_text())
    km.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(infer_keras(km, x), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(km.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)
    assert km.count_params() == sum(r.params for r in model.info)
    km2 = keras.models.model_from_json((tmp_path / "model.json").read_text())
    km2.load_weights(tmp_path / "model.h5")
    np.testing.assert_allclose(infer_keras(km2, x), want, rtol=1e-5, atol=1e-5)
    if key not in NO_LOAD_MODEL:
        loaded = keras.models.load_model(tmp_path / "model.h5")
        np.testing.assert_allclose(infer_keras(loaded, x), want, rtol=1e-5, atol=1e-5)
        assert size(loaded.non_trainable_weights) == sum(r.non_trainable_params for r in model.info)
    # and ours reads them back to the same predictions (the weights round-trip)
    back = load_model_from_dir(tmp_path)
    np.testing.assert_array_equal(run(back, x), want)


@pytest.mark.parametrize("key", list(CASES))
def test_keras_model_imports_and_json_round_trips(key: str, tmp_path: Path) -> None:
    km = theirs(key)
    rng = np.random.default_rng(4)
    for w in km.weights:
        if w.dtype != "float32":
            continue
        value = rng.uniform(0.5, 2.0, w.shape) if w.path.endswith("variance") else rng.normal(0, 0.3, w.shape)
        w.assign(value.astype("float32"))
    km.save_weights(tmp_path / "k.weights.h5")
    keras_json = json.loads(km.to_json())
    model = build_model(model_spec_from_json(km.to_json())).eval()
    load_weights_h5(model, tmp_path / "k.weights.h5")
    x = x_for(model) * 255.0
    np.testing.assert_allclose(run(model, x), infer_keras(km, x), rtol=1e-5, atol=1e-5)
    keras_json.pop("compile_config")
    mine = json.loads(model_to_json(model))
    assert mine == strip(keras_json)
    for a, b in zip(mine["config"]["layers"], keras_json["config"]["layers"], strict=True):
        assert list(a["config"]) == list(b["config"])


def test_summary_equals_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for key in ("rescale_normalize", "augment"):
        spec = load_config(None, text=HEAD + CASES[key][0]).config.model
        lines: list[str] = []
        theirs(key).summary(line_length=76, print_fn=lambda text, _lines=lines, **_: _lines.append(text))
        _, rows = infer(list(spec.layers))
        assert summary_text(spec.name, rows).rstrip("\n") == "\n".join(lines).rstrip("\n")


def test_normalization_count_is_an_int32_scalar_in_both_files(tmp_path: Path) -> None:
    import h5py

    save_keras_artifacts(ours("rescale_normalize"), tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as f:
        assert f["layers/normalization/vars/2"].dtype == np.int32
        assert f["layers/normalization/vars/2"].shape == ()
        assert f["layers/normalization/vars/0"].shape == (3,)
        assert "0" not in f["layers/normalization_2/vars"]  # mean/variance in the config: no variables
    save_keras_artifacts(ours("normalize_axes"), tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as f:
        assert f["layers/normalization/vars/0"].shape == (6, 3)  # axis (1, -1): the kept axes
        assert f["layers/normalization_1/vars/0"].shape == ()  # axis None: one statistic
    with h5py.File(tmp_path / "model.h5") as f:
        names = [n.decode() for n in f["model_weights/normalization"].attrs["weight_names"]]
        assert names == ["normalization/mean:0", "normalization/variance:0", "normalization/count:0"]


# ---------------------------------------------------------------------------------------------
# adapt


def _adapt_model(layers: str) -> Sequential:
    return build_model(load_config(None, text=HEAD + layers).config.model)


@pytest.mark.parametrize(("axis", "reduce"), [("-1", (0, 1, 2)), ("null", (0, 1, 2, 3)), ("[1, -1]", (0, 2))])
def test_adapt_equals_numpy_population_stats_and_keras(axis: str, reduce: tuple[int, ...]) -> None:
    model = _adapt_model(
        f"    - {{type: InputLayer, shape: [4, 5, 3]}}\n    - {{type: Rescaling, scale: 2.0, offset: 1.0}}\n"
        f"    - {{type: RandomFlip}}\n    - {{type: Normalization, axis: {axis}}}\n"
    )
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(103, 4, 5, 3)).astype("float32")
    fitted = P.adapt_normalization(model, P.chunks(torch.from_numpy(x), size=10))  # 11 uneven chunks
    assert fitted == ["normalization"]
    seen = x.astype(np.float64) * 2.0 + 1.0  # the Normalization sees Rescaling's output
    norm = model.layers[2]
    np.testing.assert_allclose(norm.mean.numpy(), seen.mean(axis=reduce), rtol=1e-6)
    np.testing.assert_allclose(norm.variance.numpy(), seen.var(axis=reduce), rtol=1e-5)
    assert int(norm.count) == 0  # Keras writes 0 too
    k_axis = {"-1": -1, "null": None, "[1, -1]": (1, -1)}[axis]
    layer = L.Normalization(axis=k_axis)
    layer.adapt(x * 2.0 + 1.0)
    np.testing.assert_allclose(norm.mean.numpy(), keras.ops.convert_to_numpy(layer.adapt_mean), rtol=1e-5)
    np.testing.assert_allclose(norm.variance.numpy(), keras.ops.convert_to_numpy(layer.adapt_variance), rtol=1e-4)
    assert model.training  # adapt restores the mode it found
    out = run(model.eval(), x)
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(layer(x * 2.0 + 1.0)), rtol=1e-4, atol=1e-4)


def test_adapt_skips_layers_with_config_stats() -> None:
    model = _adapt_model("    - {type: Normalization, mean: 1.0, variance: 4.0, input_shape: [3]}\n")
    assert P.adapt_normalization(model, P.chunks(torch.ones(8, 3))) == []
    np.testing.assert_allclose(run(model, np.full((2, 3), 5.0, "float32")), np.full((2, 3), 2.0))


# ---------------------------------------------------------------------------------------------
# training mode: against Keras's transform on the same draws, and by hand

AUG = """
    - {type: InputLayer, shape: [7, 9, 2]}
"""


def _layer(spec: str, shape: tuple[int, ...] = (7, 9, 2)) -> A.RandomLayer:
    text = HEAD + f"    - {{type: InputLayer, shape: {list(shape)}}}\n    - {spec}\n"
    return build_model(load_config(None, text=text).config.model).layers[0]  # type: ignore[return-value]


def _x(n: int = 6, shape: tuple[int, ...] = (7, 9, 2), seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, 255, size=(n, *shape)).astype("float32"))


AFFINE = [(fill, interp) for fill in ("reflect", "wrap", "nearest", "constant") for interp in ("bilinear", "nearest")]


@pytest.mark.parametrize(("fill", "interp"), AFFINE)
def test_rotation_zoom_translation_equal_keras_transform(fill: str, interp: str) -> None:
    x = _x()
    kw = {"fill_mode": fill, "interpolation": interp, "fill_value": 7.0}
    yaml_kw = f"fill_mode: {fill}, interpolation: {interp}, fill_value: 7.0"
    cases = [
        (L.RandomRotation(0.3, **kw), f"{{type: RandomRotation, factor: 0.3, {yaml_kw}}}",
         lambda t: {"angle": torch.as_tensor(np.asarray(t["angle"]))}),
        (L.RandomZoom((-0.4, 0.5), width_factor=(-0.3, 0.3), **kw),
         f"{{type: RandomZoom, height_factor: [-0.4, 0.5], width_factor: [-0.3, 0.3], {yaml_kw}}}",
         lambda t: {"zoom": torch.cat([torch.as_tensor(t["height_zoom"]), torch.as_tensor(t["width_zoom"])], 1)}),
        (L.RandomTranslation(0.4, (-0.5, 0.3), **kw),
         f"{{type: RandomTranslation, height_factor: 0.4, width_factor: [-0.5, 0.3], {yaml_kw}}}",
         lambda t: {"shift": torch.as_tensor(t["translations"]).flip(1)}),
    ]  # fmt: skip
    for klayer, spec, convert in cases:
        transformation = klayer.get_random_transformation(x.numpy(), training=True)
        want = keras.ops.convert_to_numpy(klayer.transform_images(x.numpy(), transformation, training=True))
        mine = _layer(spec)
        params = {k: v.float() for k, v in convert(transformation).items()}
        got = mine.transform(x, params).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-3, err_msg=spec)


def test_flip_contrast_brightness_crop_equal_keras_transform() -> None:
    x = _x(n=8)
    for klayer, spec, convert in [
        (L.RandomFlip(), "{type: RandomFlip}", lambda t: {"flip": torch.as_tensor(t["flips"]).reshape(-1)}),
        (L.RandomFlip("vertical"), "{type: RandomFlip, mode: vertical}",
         lambda t: {"flip": torch.as_tensor(t["flips"]).reshape(-1)}),
        (L.RandomContrast((0.2, 0.5)), "{type: RandomContrast, factor: [0.2, 0.5]}",
         lambda t: {"contrast": torch.as_tensor(t["contrast_factor"]).reshape(-1)}),
        (L.RandomBrightness(0.4), "{type: RandomBrightness, factor: 0.4}",
         lambda t: {"delta": torch.as_tensor(t["rgb_delta"]).reshape(-1)}),
        (L.RandomCrop(4, 5), "{type: RandomCrop, height: 4, width: 5}",
         lambda t: {"start": torch.tensor([[int(t[0]), int(t[1])]] * 8)}),
    ]:  # fmt: skip
        kx = keras.ops.convert_to_tensor(x.clone().numpy())
        transformation = klayer.get_random_transformation(kx, training=True)
        want = keras.ops.convert_to_numpy(klayer.transform_images(kx, transformation, training=True))
        got = _layer(spec).transform(x.clone(), convert(transformation)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4, err_msg=spec)


def test_flip_flips_exactly_the_drawn_samples() -> None:
    x = _x(n=4)
    mask = torch.tensor([True, False, False, True])
    for mode, dims in (("horizontal", (2,)), ("vertical", (1,)), ("horizontal_and_vertical", (1, 2))):
        out = _layer(f"{{type: RandomFlip, mode: {mode}}}").transform(x, {"flip": mask})
        for i in range(4):
            want = x[i : i + 1].flip(dims) if mask[i] else x[i : i + 1]
            assert torch.equal(out[i : i + 1], want), (mode, i)


def test_rotation_by_quarter_turns_equals_rot90() -> None:
    x = _x(n=3, shape=(6, 6, 2))
    layer = _layer("{type: RandomRotation, factor: 0.5}", (6, 6, 2))
    for k in (1, -1, 2):
        out = layer.transform(x, {"angle": torch.full((3,), 90.0 * k)})
        np.testing.assert_allclose(out.numpy(), torch.rot90(x, k, dims=(1, 2)).numpy(), atol=1e-3)


def test_translation_and_zoom_by_hand() -> None:
    x = torch.arange(16.0).reshape(1, 4, 4, 1)
    shift = _layer("{type: RandomTranslation, height_factor: 0.5, width_factor: 0.5, fill_mode: constant}", (4, 4, 1))
    out = shift.transform(x, {"shift": torch.tensor([[2.0, -1.0]])})  # 2 rows down, 1 column left
    want = torch.zeros(4, 4)
    want[2:, :3] = x[0, :2, 1:, 0]
    assert torch.equal(out[0, :, :, 0], want)
    ones = torch.ones(1, 16, 16, 1)
    zoom = _layer("{type: RandomZoom, height_factor: 0.5, fill_mode: constant}", (16, 16, 1))
    out = zoom.transform(ones, {"zoom": torch.tensor([[1.5, 1.5]])})[0, :, :, 0]  # zoom out by 1.5
    assert int((out.sum(1) == 0).sum()) == 4 and int((out.sum(0) == 0).sum()) == 4  # as Keras (notes §6.2)


def test_contrast_and_brightness_formulas_by_hand() -> None:
    x = _x(n=2)
    out = _layer("{type: RandomContrast, factor: 0.5}").transform(x, {"contrast": torch.tensor([1.5, 0.5])})
    xs = x.numpy().astype(np.float64)
    mean = xs.mean(axis=(1, 2), keepdims=True)
    want = np.clip((xs - mean) * np.array([1.5, 0.5]).reshape(2, 1, 1, 1) + mean, 0, 255)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-3)
    out = _layer("{type: RandomBrightness, factor: 0.5, value_range: [0, 255]}").transform(
        x, {"delta": torch.tensor([100.0, -100.0])}
    )
    want = np.clip(xs + np.array([100.0, -100.0]).reshape(2, 1, 1, 1), 0, 255)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6, atol=1e-4)


def test_draws_stay_in_their_documented_ranges() -> None:
    g = torch.Generator().manual_seed(0)
    n = 4000
    contrast = _layer("{type: RandomContrast, factor: 0.2}").draw(n, (7, 9), g)["contrast"]
    assert 0.8 <= float(contrast.min()) < 0.81 and 1.19 < float(contrast.max()) <= 1.2  # [1 - f, 1 + f], as documented
    angle = _layer("{type: RandomRotation, factor: 0.1}").draw(n, (7, 9), g)["angle"]
    assert -36.0 <= float(angle.min()) < -35.0 and 35.0 < float(angle.max()) <= 36.0
    delta = _layer("{type: RandomBrightness, factor: 0.2, value_range: [0, 1]}").draw(n, (7, 9), g)["delta"]
    assert -0.2 <= float(delta.min()) < -0.19 and 0.19 < float(delta.max()) <= 0.2
    zoom = _layer("{type: RandomZoom, height_factor: [0.1, 0.3]}").draw(n, (7, 9), g)["zoom"]
    assert torch.equal(zoom[:, 0], zoom[:, 1]) and float(zoom.min()) >= 1.1 and float(zoom.max()) <= 1.3
    shift = _layer("{type: RandomTranslation, height_factor: 0.2, width_factor: [0, 0.5]}").draw(n, (10, 4), g)["shift"]
    assert float(shift[:, 0].abs().max()) <= 2.0 and float(shift[:, 1].min()) >= 0.0 and float(shift[:, 1].max()) <= 2.0
    flips = _layer("{type: RandomFlip}").draw(n, (7, 9), g)["flip"]
    assert 0.45 < float(flips.float().mean()) < 0.55
    start = _layer("{type: RandomCrop, height: 4, width: 5}").draw(n, (7, 9), g)["start"]
    assert (start == start[0]).all() and 0 <= int(start[0, 0]) <= 3 and 0 <= int(start[0, 1]) <= 4
    crops = {tuple(_layer("{type: RandomCrop, height: 4, width: 5}").draw(2, (7, 9), g)["start"][0].tolist())
             for _ in range(200)}  # fmt: skip
    assert crops == {(t, left) for t in range(4) for left in range(5)}


def test_random_layers_are_identity_at_inference_and_crop_resizes() -> None:
    x = _x()
    specs = ["{type: RandomFlip}", "{type: RandomRotation, factor: 0.4}", "{type: RandomZoom, height_factor: 0.3}",
             "{type: RandomTranslation, height_factor: 0.3, width_factor: 0.3}", "{type: RandomContrast, factor: 0.9}",
             "{type: RandomBrightness, factor: 0.9}"]  # fmt: skip
    for spec in specs:
        layer = _layer(spec).eval()
        assert torch.equal(layer(x), x), spec
        assert not torch.equal(layer.train()(x), x), spec
    crop = _layer("{type: RandomCrop, height: 4, width: 6}").eval()
    want = keras.ops.convert_to_numpy(L.Resizing(4, 6, crop_to_aspect_ratio=True)(x.numpy()))
    np.testing.assert_allclose(crop(x).numpy(), want, rtol=1e-6, atol=1e-4)  # Keras's documented inference


def test_draws_follow_the_seed_and_the_generator_state() -> None:
    text = HEAD + AUG + "    - {type: RandomRotation, factor: 0.2}\n    - {type: RandomFlip, seed: 5}\n"

    def trained(seed: int, batches: int = 2) -> list[torch.Tensor]:
        model = build_model(load_config(None, text=text).config.model).train()
        A.seed_augmentation(model, seed)
        return [model(_x(seed=i)) for i in range(batches)]

    a, b, c = trained(1), trained(1), trained(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    model = build_model(load_config(None, text=text).config.model).train()
    A.seed_augmentation(model, 1)
    states = A.generator_states(model)
    assert set(states) == {"random_rotation", "random_flip"}
    first = model(_x(seed=0))
    A.set_generator_states(model, states)  # rewinding replays the same draw
    assert torch.equal(model(_x(seed=0)), first)
    # a layer's own seed wins over the run's seed
    other = build_model(load_config(None, text=text).config.model)
    A.seed_augmentation(other, 99)
    assert torch.equal(other.layers[1].generator.get_state(), build_model(model.spec).layers[1].generator.get_state())


def test_global_draw_sliced_equals_the_local_rows() -> None:
    """A distributed run draws for the global batch and applies its slice: same rows, same result."""
    layer = _layer("{type: RandomZoom, height_factor: 0.3, width_factor: 0.2}")
    x = _x(n=8)
    params = layer.draw(8, (7, 9), torch.Generator().manual_seed(3))
    whole = layer.transform(x, params)
    part = layer.transform(x[4:], {k: v[4:] for k, v in params.items()})
    assert torch.equal(whole[4:], part)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("{type: RandomRotation, factor: 1.5}", "RandomRotation factor in [-1.0, 1.0], received 1.5"),
        ("{type: RandomZoom, height_factor: -1.0}", "RandomZoom height_factor in (-1.0, 1.0], received -1.0"),
        ("{type: RandomContrast, factor: -0.1}", "RandomContrast factor in [0.0, 1.0]"),
        ("{type: Resizing, height: 4, width: 4, crop_to_aspect_ratio: true, pad_to_aspect_ratio: true}", "both"),
        ("{type: Normalization, mean: 1.0}", "both mean and variance"),
        ("{type: Normalization, axis: 4}", "axis in [-4, 4)"),
        ("{type: RandomFlip, mode: diagonal}", "horizontal"),
        ("{type: Normalization, mean: [1, 2, 3], variance: [1, 1, 1]}", "length 1 or 2"),
    ],
)
def test_bad_configs_are_config_errors(spec: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_model(load_config(None, text=HEAD + AUG + f"    - {spec}\n").config.model)
    assert words in err.value.render()


def test_image_layers_refuse_flat_input() -> None:
    with pytest.raises(ConfigError) as err:
        build_model(load_config(None, text=HEAD + "    - {type: RandomFlip, input_shape: [8]}\n").config.model)
    assert "expected images of rank 4" in err.value.render() and "Reshape" in err.value.render()


def test_random_crop_json_from_keras_round_trips() -> None:
    """Keras draws and saves a seed for a RandomCrop built without one; it comes back as given."""
    keras.backend.clear_session(free_memory=False)
    km = keras.Sequential([keras.Input((9, 7, 2)), L.RandomCrop(5, 4), L.GlobalAveragePooling2D()], name="sequential")
    keras_json = json.loads(km.to_json())
    keras_json.pop("compile_config")
    model = build_model(model_spec_from_json(km.to_json()))
    assert model.layers[0].seed == km.layers[0].seed is not None
    assert json.loads(model_to_json(model)) == strip(keras_json)


def test_augmentation_leaves_the_global_torch_rng_alone() -> None:
    """Dropout and initializers draw from torch's global RNG; the augmentation layers never do."""
    text = HEAD + AUG + "".join(
        f"    - {s}\n"
        for s in ("{type: RandomFlip}", "{type: RandomRotation, factor: 0.2}", "{type: RandomContrast, factor: 0.2}",
                  "{type: RandomCrop, height: 5, width: 5}")
    )  # fmt: skip
    model = build_model(load_config(None, text=text).config.model).train()
    before = torch.get_rng_state()
    model(_x())
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(("fill", "interp"), AFFINE)
def test_affine_transform_equals_keras_ops_on_general_matrices(fill: str, interp: str) -> None:
    """Random matrices with shear and large shifts (several reflections/wraps), odd sizes, 3 channels."""
    rng = np.random.default_rng(len(fill) * 7 + len(interp))
    images = rng.uniform(-3.0, 3.0, size=(5, 6, 11, 3)).astype("float32")
    transform = np.zeros((5, 8), dtype="float32")
    transform[:, :6] = rng.uniform(-1.5, 1.5, size=(5, 6)).astype("float32")
    transform[:, 2] *= 10.0  # shifts well beyond the image
    transform[:, 5] *= 10.0
    transform[:, [0, 4]] += 1.0
    want = keras.ops.convert_to_numpy(
        keras.ops.image.affine_transform(
            images, transform.copy(), interpolation=interp, fill_mode=fill, fill_value=-0.5
        )
    )
    got = A.affine_transform(
        torch.from_numpy(images), torch.from_numpy(transform), interpolation=interp, fill_mode=fill, fill_value=-0.5
    ).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # nearest: the same pixels exactly
