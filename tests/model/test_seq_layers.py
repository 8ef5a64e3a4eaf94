"""Sequence layers against REAL Keras 3 (torch backend): Embedding, SimpleRNN, LSTM, GRU,
Bidirectional, TimeDistributed, and Embedding(mask_zero) masking.

For each model, built the same way in trainctl (YAML) and in Keras (its own layer classes): equal
parameter counts and output shapes, equal outputs on the same weights (ours copied in with
``set_weights``, so the weight layout is checked too), the same JSON config keys, and the artifacts
both ways (our run-folder files in Keras; Keras's own files in trainctl).
"""

from __future__ import annotations

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

from trainctl.config import load_config  # noqa: E402
from trainctl.model.sequential import Sequential, build_model  # noqa: E402
from trainctl.reporting.summary import summary_text  # noqa: E402
from trainctl.serialization import (  # noqa: E402
    load_weights_h5,
    model_spec_from_json,
    save_keras_artifacts,
)
from trainctl.serialization.keras_json import spec_to_dict  # noqa: E402

pytestmark = pytest.mark.keras

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"
RNG = np.random.default_rng(0)
SEQ = RNG.normal(size=(5, 6, 3)).astype(np.float32)  # (batch, timesteps, features): nothing square
IDS = np.array(
    [
        [0, 0, 0, 3, 1, 4, 2],  # padded before (Keras pad_sequences' default)
        [5, 2, 7, 1, 0, 0, 0],  # padded after
        [3, 1, 4, 1, 5, 9, 2],  # no padding
        [0, 0, 0, 0, 0, 0, 0],  # nothing but padding
        [2, 0, 3, 0, 0, 4, 0],  # holes: Keras skips every masked step
        [0, 6, 0, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)

# name -> (our layers in YAML, the same model with Keras's classes, input)
Case = tuple[str, Callable[[], list[Any]], np.ndarray]
CASES: dict[str, Case] = {
    "embedding": (
        "- {type: InputLayer, shape: [7]}\n- {type: Embedding, input_dim: 10, output_dim: 4}",
        lambda: [keras.Input((7,)), L.Embedding(10, 4)],
        IDS,
    ),
    "simple_rnn": (
        "- {type: InputLayer, shape: [6, 3]}\n- {type: SimpleRNN, units: 4, return_sequences: true}\n"
        "- {type: SimpleRNN, units: 5, activation: relu, go_backwards: true}",
        lambda: [
            keras.Input((6, 3)),
            L.SimpleRNN(4, return_sequences=True),
            L.SimpleRNN(5, activation="relu", go_backwards=True),
        ],
        SEQ,
    ),
    "simple_rnn_stepwise": (  # selu has no torch kernel: the step loop
        "- {type: InputLayer, shape: [6, 3]}\n"
        "- {type: SimpleRNN, units: 4, activation: selu, use_bias: false, return_sequences: true}",
        lambda: [keras.Input((6, 3)), L.SimpleRNN(4, activation="selu", use_bias=False, return_sequences=True)],
        SEQ,
    ),
    "lstm": (
        "- {type: InputLayer, shape: [6, 3]}\n- {type: LSTM, units: 5, return_sequences: true}\n"
        "- {type: LSTM, units: 4, go_backwards: true}",
        lambda: [keras.Input((6, 3)), L.LSTM(5, return_sequences=True), L.LSTM(4, go_backwards=True)],
        SEQ,
    ),
    "lstm_stepwise": (
        "- {type: InputLayer, shape: [6, 3]}\n- {type: LSTM, units: 4, activation: relu, "
        "recurrent_activation: hard_sigmoid, use_bias: false, return_sequences: true, go_backwards: true}",
        lambda: [
            keras.Input((6, 3)),
            L.LSTM(
                4,
                activation="relu",
                recurrent_activation="hard_sigmoid",
                use_bias=False,
                return_sequences=True,
                go_backwards=True,
            ),
        ],
        SEQ,
    ),
    "gru": (
        "- {type: InputLayer, shape: [6, 3]}\n- {type: GRU, units: 5, return_sequences: true, go_backwards: true}\n"
        "- {type: GRU, units: 4, unroll: true}",
        lambda: [keras.Input((6, 3)), L.GRU(5, return_sequences=True, go_backwards=True), L.GRU(4, unroll=True)],
        SEQ,
    ),
    "gru_stepwise": (
        "- {type: InputLayer, shape: [6, 3]}\n- {type: GRU, units: 4, recurrent_activation: hard_sigmoid}\n"
        "- {type: Dense, units: 2}",
        lambda: [keras.Input((6, 3)), L.GRU(4, recurrent_activation="hard_sigmoid"), L.Dense(2)],
        SEQ,
    ),
    "bidirectional": (
        "- {type: InputLayer, shape: [6, 3]}\n"
        "- {type: Bidirectional, layer: {type: LSTM, units: 4, return_sequences: true}}\n"
        "- {type: Bidirectional, merge_mode: sum, layer: {type: GRU, units: 3}}",
        lambda: [
            keras.Input((6, 3)),
            L.Bidirectional(L.LSTM(4, return_sequences=True)),
            L.Bidirectional(L.GRU(3), merge_mode="sum"),
        ],
        SEQ,
    ),
    "bidirectional_mul_ave": (
        "- {type: InputLayer, shape: [6, 3]}\n"
        "- {type: Bidirectional, merge_mode: mul, layer: {type: SimpleRNN, units: 5, return_sequences: true}}\n"
        "- {type: Bidirectional, merge_mode: ave, layer: {type: GRU, units: 2, use_bias: false}}",
        lambda: [
            keras.Input((6, 3)),
            L.Bidirectional(L.SimpleRNN(5, return_sequences=True), merge_mode="mul"),
            L.Bidirectional(L.GRU(2, use_bias=False), merge_mode="ave"),
        ],
        SEQ,
    ),
    "time_distributed": (
        "- {type: InputLayer, shape: [6, 3]}\n"
        "- {type: TimeDistributed, layer: {type: Dense, units: 5, activation: relu}}\n"
        "- {type: LSTM, units: 4, return_sequences: true}\n"
        "- {type: TimeDistributed, layer: {type: Dense, units: 2, activation: softmax}}",
        lambda: [
            keras.Input((6, 3)),
            L.TimeDistributed(L.Dense(5, activation="relu")),
            L.LSTM(4, return_sequences=True),
            L.TimeDistributed(L.Dense(2, activation="softmax")),
        ],
        SEQ,
    ),
    "frozen": (
        "- {type: InputLayer, shape: [6, 3]}\n"
        "- {type: Bidirectional, layer: {type: GRU, units: 3, return_sequences: true, trainable: false}}\n"
        "- {type: TimeDistributed, trainable: false, layer: {type: Dense, units: 2}}",
        lambda: [
            keras.Input((6, 3)),
            L.Bidirectional(L.GRU(3, return_sequences=True, trainable=False)),
            L.TimeDistributed(L.Dense(2), trainable=False),
        ],
        SEQ,
    ),
    "masked_lstm_gru": (
        "- {type: InputLayer, shape: [7]}\n- {type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true}\n"
        "- {type: LSTM, units: 4, return_sequences: true}\n- {type: Dropout, rate: 0.3}\n"
        "- {type: GRU, units: 5, go_backwards: true}\n- {type: Dense, units: 2}",
        lambda: [
            keras.Input((7,)),
            L.Embedding(10, 3, mask_zero=True),
            L.LSTM(4, return_sequences=True),
            L.Dropout(0.3),
            L.GRU(5, go_backwards=True),
            L.Dense(2),
        ],
        IDS,
    ),
    "masked_bidirectional": (
        "- {type: InputLayer, shape: [7]}\n- {type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true}\n"
        "- {type: Bidirectional, layer: {type: GRU, units: 4, return_sequences: true}}\n"
        "- {type: TimeDistributed, layer: {type: Dense, units: 3, activation: tanh}}\n"
        "- {type: Bidirectional, merge_mode: sum, layer: {type: LSTM, units: 2}}",
        lambda: [
            keras.Input((7,)),
            L.Embedding(10, 3, mask_zero=True),
            L.Bidirectional(L.GRU(4, return_sequences=True)),
            L.TimeDistributed(L.Dense(3, activation="tanh")),
            L.Bidirectional(L.LSTM(2), merge_mode="sum"),
        ],
        IDS,
    ),
    "masked_simple_rnn_stepwise": (
        "- {type: InputLayer, shape: [7]}\n- {type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true}\n"
        "- {type: SimpleRNN, units: 4, activation: sigmoid, return_sequences: true, go_backwards: true}\n"
        "- {type: LSTM, units: 3, recurrent_activation: tanh}",
        lambda: [
            keras.Input((7,)),
            L.Embedding(10, 3, mask_zero=True),
            L.SimpleRNN(4, activation="sigmoid", return_sequences=True, go_backwards=True),
            L.LSTM(3, recurrent_activation="tanh"),
        ],
        IDS,
    ),
}


# the artifact round trips, on a subset that still covers every layer, wrapper and mask path
ARTIFACT_CASES = [
    "embedding",
    "simple_rnn",
    "lstm_stepwise",
    "gru",
    "bidirectional",
    "time_distributed",
    "frozen",
    "masked_lstm_gru",
]


def ours(name: str) -> Sequential:
    layers = "".join(f"    {line}\n" for line in CASES[name][0].splitlines())
    torch.manual_seed(0)
    model = build_model(load_config(None, text=HEAD + layers).config.model).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # large random weights everywhere, biases included, so every weight matters
        for p in model.parameters():
            p.copy_(torch.empty(p.shape).uniform_(-0.7, 0.7, generator=gen))
    return model


def theirs(name: str) -> Any:
    return keras.Sequential(CASES[name][1]())


def weights_of(model: Sequential) -> list[np.ndarray]:
    return [t.detach().numpy().copy() for _, ws in model.keras_weights() for _, t in ws]


def predict(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def counts(layer: Any) -> tuple[int, int]:
    return (
        sum(int(np.prod(w.shape)) for w in layer.trainable_weights),
        sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights),
    )


@pytest.mark.parametrize("name", list(CASES))
def test_params_shapes_and_outputs_equal_keras(name: str) -> None:
    model, kmodel = ours(name), theirs(name)
    assert [(r.trainable_params, r.non_trainable_params) for r in model.info] == [counts(la) for la in kmodel.layers]
    assert [(None, *r.output_shape) for r in model.info] == [tuple(la.output.shape) for la in kmodel.layers]
    kmodel.set_weights(weights_of(model))  # raises on any shape mismatch: same layout, same order
    x = CASES[name][2]
    np.testing.assert_allclose(predict(model, x), kmodel.predict(x, verbose=0), atol=1e-5)


def _same_config(ours_cfg: dict[str, Any], keras_cfg: dict[str, Any], where: str) -> None:
    assert list(ours_cfg) == list(keras_cfg), where
    for key, value in keras_cfg.items():
        if key in ("layer", "backward_layer"):
            assert ours_cfg[key]["class_name"] == value["class_name"]
            _same_config(ours_cfg[key]["config"], value["config"], f"{where}.{key}")
        elif key.endswith("_initializer"):
            assert ours_cfg[key]["class_name"] == value["class_name"], f"{where}.{key}"
        elif key != "name" and key != "dtype":
            assert ours_cfg[key] == value, f"{where}.{key}"


@pytest.mark.parametrize(
    "name", ["simple_rnn", "lstm", "gru", "bidirectional", "time_distributed", "masked_bidirectional"]
)
def test_json_config_keys_and_values_equal_keras(name: str) -> None:
    mine = spec_to_dict(ours(name).spec)["config"]["layers"][1:]
    keras_layers = json.loads(theirs(name).to_json())["config"]["layers"][1:]
    assert [e["class_name"] for e in mine] == [e["class_name"] for e in keras_layers]
    for i, (a, b) in enumerate(zip(mine, keras_layers, strict=True)):
        assert a["build_config"] == b["build_config"]
        _same_config(a["config"], b["config"], f"layers[{i}]")


@pytest.mark.parametrize("name", ARTIFACT_CASES)
def test_our_artifacts_load_in_keras(name: str, tmp_path: Path) -> None:
    model = ours(name)
    x = CASES[name][2]
    expected = predict(model, x)
    save_keras_artifacts(model, tmp_path)
    kmodel = keras.models.model_from_json((tmp_path / "model.json").read_text())
    kmodel.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(kmodel.predict(x, verbose=0), expected, atol=1e-5)
    whole = keras.models.load_model(tmp_path / "model.h5")
    np.testing.assert_allclose(whole.predict(x, verbose=0), expected, atol=1e-5)


@pytest.mark.parametrize("name", ARTIFACT_CASES)
def test_keras_artifacts_import_into_ours(name: str, tmp_path: Path) -> None:
    kmodel = theirs(name)  # Keras's own initial weights
    kmodel.save_weights(tmp_path / "k.weights.h5")
    kmodel.save(tmp_path / "k.h5")
    x = CASES[name][2]
    expected = kmodel.predict(x, verbose=0)
    model = build_model(model_spec_from_json(kmodel.to_json())).eval()
    load_weights_h5(model, tmp_path / "k.weights.h5")
    np.testing.assert_allclose(predict(model, x), expected, atol=1e-5)
    legacy = build_model(model_spec_from_json(kmodel.to_json())).eval()
    load_weights_h5(legacy, tmp_path / "k.h5")  # the legacy layout, matched by position
    np.testing.assert_allclose(predict(legacy, x), expected, atol=1e-5)


def test_native_weight_paths_equal_keras(tmp_path: Path) -> None:
    """Every dataset Keras writes (nested wrapper groups included) is where we write it, same shape."""
    import h5py

    model, kmodel = ours("masked_bidirectional"), theirs("masked_bidirectional")
    save_keras_artifacts(model, tmp_path)
    kmodel.save_weights(tmp_path / "k.weights.h5")

    def datasets(path: Path) -> dict[str, tuple[int, ...]]:
        found: dict[str, tuple[int, ...]] = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda n, o: found.update({n: o.shape}) if isinstance(o, h5py.Dataset) else None)
        return found

    assert datasets(tmp_path / "model.weights.h5") == datasets(tmp_path / "k.weights.h5")
    assert "layers/bidirectional/backward_layer/cell/vars/2" in datasets(tmp_path / "k.weights.h5")


def test_summary_equals_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    layers = (
        "    - {type: InputLayer, shape: [7]}\n"
        "    - {type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true}\n"
        "    - {type: Bidirectional, layer: {type: LSTM, units: 4, return_sequences: true}}\n"
        "    - {type: TimeDistributed, layer: {type: Dense, units: 2}}\n"
        "    - {type: GRU, units: 3, return_sequences: true, trainable: false}\n"
        "    - {type: SimpleRNN, units: 6, name: head}\n"
    )
    spec = load_config(None, text=HEAD.replace("layers:\n", "name: seq\n  layers:\n") + layers).config.model
    model = build_model(spec)
    keras.backend.clear_session()  # Keras numbers names per process: start again at embedding, lstm...
    gru = L.GRU(3, return_sequences=True)
    gru.trainable = False
    kmodel = keras.Sequential(
        [
            keras.Input((7,)),
            L.Embedding(10, 3, mask_zero=True),
            L.Bidirectional(L.LSTM(4, return_sequences=True)),
            L.TimeDistributed(L.Dense(2)),
            gru,
            L.SimpleRNN(6, name="head"),
        ],
        name="seq",
    )
    lines: list[str] = []
    kmodel.summary(line_length=76, print_fn=lambda text, **_: lines.append(text))
    assert summary_text("seq", model.info).rstrip("\n") == "\n".join(lines).rstrip("\n")


def test_wrong_input_rank_is_a_config_error_at_validation(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + "    - {type: InputLayer, shape: [784]}\n    - {type: LSTM, units: 4}\n")
    res = cli("config", "validate", str(path))
    assert res.exit_code == 2
    message = res.output + res.stderr
    assert "model.layers[1]" in message
    assert "(None, timesteps, features)" in message and "received (None, 784)" in message


def test_mask_propagation_tables_follow_keras() -> None:
    """Which layers pass a padding mask on untouched and which drop it, as Keras 3.15 decides."""
    import inspect

    from trainctl.model.recurrent import MASK_PASSES, MASK_STOPS

    args: dict[str, tuple[Any, ...]] = {
        "Dense": (2,),
        "Activation": ("relu",),
        "Reshape": ((2,),),
        "RepeatVector": (2,),
        "Permute": ((2, 1),),
        "Embedding": (3, 2),
        "DepthwiseConv2D": (3,),
    }
    for name in sorted(MASK_PASSES | MASK_STOPS):
        cls = getattr(L, name)
        if name.startswith(("Conv", "SeparableConv")):
            layer = cls(2, 3)
        elif "Dropout" in name or "Noise" in name:
            layer = cls(0.1)
        elif name.startswith("AveragePooling"):
            layer = cls(2)
        else:
            layer = cls(*args.get(name, ()))
        uses_mask = "mask" in inspect.signature(layer.call).parameters
        if name in MASK_PASSES:  # mask kept, values computed without it
            assert layer.supports_masking and not uses_mask, name
            assert type(layer).compute_mask is L.Layer.compute_mask, name
        else:  # Embedding(mask_zero=False) drops it too; with mask_zero=True it starts its own
            assert not layer.supports_masking, name
