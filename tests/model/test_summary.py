"""``summary_text`` must equal Keras 3's ``model.summary()`` byte for byte (stdout not a terminal)."""

from __future__ import annotations

from typing import Any

import pytest

from trainctl.config.schema import ModelSpec
from trainctl.model.shapes import infer
from trainctl.reporting.summary import readable_size, summary_text

MNIST_MLP = [
    {"type": "Dense", "units": 256, "activation": "sigmoid", "input_shape": [784]},
    {"type": "Dense", "units": 128, "activation": "relu"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]
MODELS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "mnist_mlp": ("sequential", MNIST_MLP),
    "mixed": (
        "digits_cnn_free",
        [
            {"type": "InputLayer", "shape": [28, 28]},
            {"type": "Flatten"},
            {"type": "Dense", "units": 512, "activation": "relu"},
            {"type": "Dropout", "rate": 0.2},
            {"type": "Reshape", "target_shape": [16, 32]},
            {"type": "Dense", "units": 8, "use_bias": False},
            {"type": "Activation", "activation": "tanh"},
            {"type": "Flatten", "name": "flat_features"},
            {"type": "Dense", "units": 10},
        ],
    ),
    "frozen": (
        "transfer",
        [
            {"type": "InputLayer", "shape": [None, 20]},
            {"type": "Dense", "units": 64, "trainable": False},
            {"type": "Dense", "units": 64, "trainable": False, "name": "frozen_feature_extractor_block_two_of_two"},
            {"type": "Dense", "units": 3},
        ],
    ),
    "big": (
        "wide",
        [{"type": "Dense", "units": 4096, "input_shape": [3072]}, {"type": "Dense", "units": 1000}],
    ),
}


def ours(model_name: str, layers: list[dict[str, Any]], width: int = 76) -> str:
    spec = ModelSpec.model_validate({"name": model_name, "layers": layers})
    _, rows = infer(list(spec.layers))
    return summary_text(spec.name, rows, width=width)


def keras_model(keras: Any, model_name: str, layers: list[dict[str, Any]]) -> Any:
    keras.backend.clear_session()  # names restart at dense, dense_1...
    built: list[Any] = []
    for d in layers:
        kwargs = {k: v for k, v in d.items() if k != "type"}
        if d["type"] == "InputLayer":
            built.append(keras.Input(tuple(kwargs["shape"])))
            continue
        input_shape = kwargs.pop("input_shape", None)
        if input_shape is not None:
            built.append(keras.Input(tuple(input_shape)))
        trainable = kwargs.pop("trainable", True)
        if "target_shape" in kwargs:
            kwargs["target_shape"] = tuple(kwargs["target_shape"])
        layer = getattr(keras.layers, d["type"])(**kwargs)
        layer.trainable = trainable
        built.append(layer)
    return keras.Sequential(built, name=model_name)


@pytest.mark.keras
@pytest.mark.parametrize("case", list(MODELS))
def test_equals_keras_print_fn_output(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    keras = pytest.importorskip("keras")
    monkeypatch.setenv("COLUMNS", "80")  # Keras's console is as wide as the terminal
    name, layers = MODELS[case]
    lines: list[str] = []
    keras_model(keras, name, layers).summary(line_length=76, print_fn=lambda text, **_: lines.append(text))
    assert ours(name, layers).rstrip("\n") == "\n".join(lines).rstrip("\n")


@pytest.mark.keras
def test_equals_keras_on_redirected_stdout(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The default path (no print_fn): Keras sizes the table from the 80-column fallback."""
    keras = pytest.importorskip("keras")
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe or a file gives
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    name, layers = MODELS["mnist_mlp"]
    model = keras_model(keras, name, layers)
    capsys.readouterr()
    model.summary()
    printed = capsys.readouterr().out
    assert ours(name, layers) == printed
    assert "235,146 (918.54 KB)" in printed


@pytest.mark.keras
def test_wide_terminal_width_equals_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 92-column terminal: Keras draws 88 wide (its cap) in a 92-column console."""
    keras = pytest.importorskip("keras")
    monkeypatch.setenv("COLUMNS", "92")
    name, layers = MODELS["mixed"]
    lines: list[str] = []
    keras_model(keras, name, layers).summary(print_fn=lambda text, **_: lines.append(text))
    assert ours(name, layers, width=88).rstrip("\n") == "\n".join(lines).rstrip("\n")
    assert len(lines[0].splitlines()[1]) == 88


def test_mnist_mlp_by_hand() -> None:
    """Numbers worked out by hand: 784*256+256, 256*128+128, 128*10+10; 4 bytes each."""
    text = ours(*MODELS["mnist_mlp"])
    lines = text.splitlines()
    assert lines[0] == 'Model: "sequential"'
    assert all(len(line) == 76 for line in lines[1:-3])
    for label, shape, params in (("dense", 256, "200,960"), ("dense_1", 128, "32,896"), ("dense_2", 10, "1,290")):
        row = next(line for line in lines if line.startswith(f"│ {label} (Dense)"))
        assert f"(None, {shape})" in row
        assert row.rstrip("│ ").endswith(params)
    assert lines[-3:] == [
        " Total params: 235,146 (918.54 KB)",
        " Trainable params: 235,146 (918.54 KB)",
        " Non-trainable params: 0 (0.00 B)",
    ]
    assert "\x1b[" not in text  # no colour codes unless asked for


def test_color_output_has_ansi_codes_and_same_text() -> None:
    import re

    spec = ModelSpec.model_validate({"layers": MNIST_MLP})
    _, rows = infer(list(spec.layers))
    colored = summary_text("sequential", rows, color=True)
    assert "\x1b[" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == summary_text("sequential", rows)


@pytest.mark.keras
@pytest.mark.parametrize("n_bytes", [0, 1, 1023, 1024, 940584, 2**20 - 1, 2**20, 5 * 2**30 + 7, 3 * 2**40])
def test_readable_size_equals_keras(n_bytes: int) -> None:
    pytest.importorskip("keras")
    from keras.src.utils.summary_utils import readable_memory_size

    assert readable_size(n_bytes) == readable_memory_size(n_bytes)
