"""Sequence-layer behaviour checked without Keras: masking against running only the valid tokens,
dropout masks fixed over time (Keras's RNN dropout), initializers, regularizers, Embedding's cast,
and the masking rules that refuse what trainctl does not compute."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from trainctl.config import load_config
from trainctl.errors import ConfigError
from trainctl.model.sequential import Sequential, build_model

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"
IDS = np.array([[0, 0, 0, 3, 1, 4, 2], [5, 2, 7, 1, 0, 0, 0], [2, 0, 3, 0, 0, 4, 0], [0, 0, 0, 0, 0, 0, 0]])


def model_of(*layers: str, seed: int = 0) -> Sequential:
    text = HEAD + "".join(f"    - {layer}\n" for layer in layers)
    torch.manual_seed(seed)
    return build_model(load_config(None, text=text).config.model)


def run(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()


@pytest.mark.parametrize("rnn", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_output_equals_running_the_valid_tokens_alone(rnn: str, go_backwards: bool) -> None:
    """Keras skips masked steps: a padded row gives what its unpadded tokens give, wherever the padding is."""
    emb = "{type: Embedding, input_dim: 8, output_dim: 3, mask_zero: %s}"
    cell = f"{{type: {rnn}, units: 4, go_backwards: {str(go_backwards).lower()}, return_sequences: %s}}"
    for return_sequences in (False, True):
        # a masked sequence may not be the model's output (Keras would mask the loss): an RNN ends it,
        # and the first two layers are run by hand, in order, as the model runs them
        masked = model_of(
            "{type: InputLayer, shape: [7]}",
            emb % "true",
            cell % str(return_sequences).lower(),
            "{type: SimpleRNN, units: 1}" if return_sequences else "{type: Dense, units: 1}",
        ).eval()
        plain = model_of("{type: InputLayer, shape: [null]}", emb % "false", cell % "true").eval()
        assert not plain.load_state_dict(masked.state_dict(), strict=False).missing_keys
        with torch.no_grad():
            out = masked.layers[1](masked.layers[0](torch.as_tensor(IDS, dtype=torch.float32))).numpy()
        for row, ids in zip(out, IDS, strict=True):
            valid = ids[ids != 0]
            alone = run(plain, valid[None].astype(np.float32))[0] if valid.size else np.zeros((0, 4))
            if not return_sequences:  # the last valid step's output, zeros when there is none
                np.testing.assert_allclose(row, alone[-1] if valid.size else np.zeros(4), atol=1e-6)
                continue
            # every step repeats the output of the last valid step read so far (zeros before any)
            order = ids[::-1] if go_backwards else ids
            expected, seen, last = [], 0, np.zeros(4)
            for token in order:
                if token != 0:
                    last, seen = alone[seen], seen + 1
                expected.append(last)
            np.testing.assert_allclose(row, np.array(expected), atol=1e-6)


def _simple_rnn(x_size: int, **options: Any) -> Sequential:
    args = ", ".join(f"{k}: {v}" for k, v in options.items())
    return model_of(
        f"{{type: InputLayer, shape: [6, {x_size}]}}",
        f"{{type: SimpleRNN, units: {x_size}, return_sequences: true, {args}}}",
    )


def test_input_dropout_mask_is_fixed_over_time_per_sequence() -> None:
    """kernel = I, recurrent = 0, relu: the outputs ARE the dropout mask, step by step."""
    model = _simple_rnn(10, dropout=0.5, activation="relu")
    with torch.no_grad():
        rnn = model.layers[0]
        rnn.kernel.copy_(torch.eye(10))
        rnn.recurrent_kernel.zero_()
        rnn.bias.zero_()
    torch.manual_seed(3)
    out = model.train()(torch.ones(40, 6, 10)).detach().numpy()
    assert set(np.unique(out)) == {0.0, 2.0}  # kept units scaled by 1/(1-rate)
    np.testing.assert_array_equal(out, np.repeat(out[:, :1], 6, axis=1))  # the same mask at every step
    assert 0.35 < (out[:, 0] == 0).mean() < 0.65
    np.testing.assert_array_equal(run(model.eval(), np.ones((2, 6, 10), np.float32)), np.ones((2, 6, 10)))


def test_recurrent_dropout_mask_is_fixed_over_time_per_sequence() -> None:
    """kernel = 0, bias = 1, recurrent = I, linear: h_t = 1 + m*h_(t-1); m in {0, 2} gives 1,1,1.. or 1,3,7.."""
    model = _simple_rnn(5, recurrent_dropout=0.5, activation="linear")
    with torch.no_grad():
        rnn = model.layers[0]
        rnn.kernel.zero_()
        rnn.recurrent_kernel.copy_(torch.eye(5))
        rnn.bias.fill_(1.0)
    torch.manual_seed(4)
    out = model.train()(torch.zeros(30, 6, 5)).detach().numpy()
    ones, doubling = np.ones(6), np.array([1.0, 3.0, 7.0, 15.0, 31.0, 63.0])
    per_unit = out.transpose(0, 2, 1).reshape(-1, 6)
    assert all(np.array_equal(seq, ones) or np.array_equal(seq, doubling) for seq in per_unit)
    assert 0.3 < np.mean([np.array_equal(seq, ones) for seq in per_unit]) < 0.7
    counting = np.repeat(np.arange(1.0, 7.0)[:, None], 5, axis=1)  # no dropout in inference: h_t = 1 + h_(t-1)
    np.testing.assert_allclose(run(model.eval(), np.zeros((1, 6, 5), np.float32))[0], counting)


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_dropout_only_acts_in_training(rnn: str) -> None:
    dropped = model_of(
        "{type: InputLayer, shape: [5, 3]}", f"{{type: {rnn}, units: 4, dropout: 0.4, recurrent_dropout: 0.3}}"
    )
    plain = model_of("{type: InputLayer, shape: [5, 3]}", f"{{type: {rnn}, units: 4}}")
    plain.load_state_dict(dropped.state_dict())
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(run(dropped.eval(), x), run(plain.eval(), x), atol=1e-6)
    torch.manual_seed(0)
    trained = dropped.train()(torch.from_numpy(x))
    trained.sum().backward()
    assert torch.isfinite(trained).all() and not np.allclose(trained.detach().numpy(), run(plain.eval(), x))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in dropped.parameters())


def test_keras_initializers() -> None:
    model = model_of(
        "{type: InputLayer, shape: [9]}",
        "{type: Embedding, input_dim: 50, output_dim: 6}",
        "{type: LSTM, units: 3, return_sequences: true}",
        "{type: GRU, units: 2}",
    )
    emb, lstm, gru = model.layers
    assert emb.embeddings.abs().max() <= 0.05  # RandomUniform(-0.05, 0.05)
    np.testing.assert_array_equal(lstm.bias.detach().numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])  # unit_forget_bias
    for layer in (lstm, gru):  # Orthogonal over the whole (units, gates*units) matrix: orthonormal rows
        r = layer.recurrent_kernel.detach().double()
        np.testing.assert_allclose((r @ r.T).numpy(), np.eye(r.shape[0]), atol=1e-5)
    assert tuple(gru.bias.shape) == (2, 6) and not gru.bias.detach().any()  # reset_after: input and recurrent rows


def test_regularizers_add_keras_penalties() -> None:
    model = model_of(
        "{type: InputLayer, shape: [4]}",
        "{type: Embedding, input_dim: 6, output_dim: 3, embeddings_regularizer: {type: L2, l2: 0.1}}",
        "{type: Bidirectional, layer: {type: LSTM, units: 2, return_sequences: true,"
        " recurrent_regularizer: {type: L1, l1: 0.2}}}",
        "{type: TimeDistributed, layer: {type: Dense, units: 2, kernel_regularizer: {type: L2, l2: 0.3}}}",
        "{type: GRU, units: 2, bias_regularizer: {type: L1L2, l1: 0.01, l2: 0.02}, bias_initializer: ones}",
    )
    emb, bi, td, _ = (m for m in model.layers)
    np_ = lambda t: t.detach().numpy().astype(np.float64)  # noqa: E731
    expected = (
        0.1 * np.square(np_(emb.embeddings)).sum()
        + 0.2 * np.abs(np_(bi.forward_layer.recurrent_kernel)).sum()
        + 0.2 * np.abs(np_(bi.backward_layer.recurrent_kernel)).sum()
        + 0.3 * np.square(np_(td.layer.kernel)).sum()
        + 0.01 * 12
        + 0.02 * 12  # GRU bias of ones, shape (2, 6)
    )
    assert float(model.regularization_loss().detach()) == pytest.approx(expected, rel=1e-5)


def test_embedding_truncates_float_ids_and_takes_ints() -> None:
    model = model_of("{type: InputLayer, shape: [3]}", "{type: Embedding, input_dim: 5, output_dim: 2}")
    table = model.layers[0].embeddings.detach().numpy()
    out = run(model, np.array([[0.0, 2.7, 4.2]], np.float32))  # Keras casts to int: truncation
    np.testing.assert_array_equal(out[0], table[[0, 2, 4]])
    np.testing.assert_array_equal(run(model, np.array([[4, 1, 1]], np.int64))[0], table[[4, 1, 1]])


def test_masked_gradients_are_finite_for_all_padding_rows() -> None:
    model = model_of(
        "{type: InputLayer, shape: [7]}",
        "{type: Embedding, input_dim: 8, output_dim: 3, mask_zero: true}",
        "{type: Bidirectional, layer: {type: GRU, units: 3}}",
    )
    out = model.train()(torch.as_tensor(IDS, dtype=torch.float32))
    np.testing.assert_array_equal(out[3].detach().numpy(), np.zeros(6))  # nothing valid: the zero state
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("after", "bad_index"),
    [
        (["{type: BatchNormalization}", "{type: LSTM, units: 2}"], 2),  # Keras uses the mask in BN moments
        (["{type: LSTM, units: 2, return_sequences: true}", "{type: GlobalAveragePooling1D}"], 3),
        (
            [
                "{type: LSTM, units: 2, return_sequences: true}",
                "{type: TimeDistributed, layer: {type: Dense, units: 1}}",
            ],
            1,
        ),
    ],
)
def test_masks_that_keras_would_use_elsewhere_are_refused(after: list[str], bad_index: int) -> None:
    layers = [
        "{type: InputLayer, shape: [7]}",
        "{type: Embedding, input_dim: 8, output_dim: 3, mask_zero: true}",
        *after,
    ]
    with pytest.raises(ConfigError) as exc:
        model_of(*layers)
    assert exc.value.key == f"model.layers[{bad_index}]"  # index 1 (the Embedding): the mask reaches the output
    assert "expected" in str(exc.value) and "received" in str(exc.value)


def test_masks_that_keras_drops_or_ends_build() -> None:
    emb = "{type: Embedding, input_dim: 8, output_dim: 3, mask_zero: true}"
    flat = model_of("{type: InputLayer, shape: [7]}", emb, "{type: Flatten}", "{type: Dense, units: 1}")
    assert not flat.layers[0].has_consumers  # Flatten drops the mask (Keras warns): nothing reads it
    ended = model_of(
        "{type: InputLayer, shape: [7]}",
        emb,
        "{type: Dropout, rate: 0.1}",
        "{type: SimpleRNN, units: 2}",
        "{type: Dense, units: 1}",
    )
    assert ended.layers[0].has_consumers
    unmasked = model_of(
        "{type: InputLayer, shape: [7]}",
        "{type: Embedding, input_dim: 8, output_dim: 3}",
        "{type: LSTM, units: 2, return_sequences: true}",
    )
    assert not unmasked.layers[0].has_consumers


@pytest.mark.parametrize(
    ("layer", "says"),
    [
        ("{type: LSTM, units: 2, return_state: true}", "return_state=true is not supported"),
        ("{type: GRU, units: 2, stateful: true}", "stateful=true is not supported"),
        ("{type: GRU, units: 2, reset_after: false}", "reset_after=false is not supported"),
        ("{type: Bidirectional, merge_mode: null, layer: {type: LSTM, units: 2}}", "merge_mode=null"),
        ("{type: Bidirectional, layer: {type: LSTM, units: 2, go_backwards: true}}", "go_backwards=false"),
        ("{type: Bidirectional, layer: {type: Dense, units: 2}}", "received Dense"),
        ("{type: TimeDistributed, layer: {type: BatchNormalization}}", "TimeDistributed(BatchNormalization)"),
        ("{type: TimeDistributed, layer: {type: Dense, units: 2, input_shape: [3]}}", "input_shape on the"),
    ],
)
def test_options_a_sequential_model_cannot_use_are_refused_clearly(layer: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, text=HEAD + "    - {type: InputLayer, shape: [5, 3]}\n" + f"    - {layer}\n")
    assert says in exc.value.render()
    assert "model.layers[1]" in exc.value.render()
