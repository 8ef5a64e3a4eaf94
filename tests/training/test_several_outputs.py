"""Several outputs in compile/fit against real Keras 3: the same total and per-output losses and
metrics on the same weights and data, and the same history keys; and the config rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.model.graphhelp import build_keras, build_ours, copy_weights, inputs_for
from tests.model.test_graph import TWO_IN_TWO_OUT
from trainctl.config.schema import CompileSpec
from trainctl.errors import ConfigError
from trainctl.training.compiled import compile_model
from trainctl.training.loop import Split, Trainer
from trainctl.training.optimizers import build_optimizer
from trainctl.training.outputs import TensorTuple

COMPILE = {
    "optimizer": {"type": "SGD", "learning_rate": 0.05},
    "loss": {"cls": "sparse_categorical_crossentropy", "reg": "mean_squared_error"},
    "loss_weights": {"cls": 1.0, "reg": 0.5},
    "metrics": {"cls": ["accuracy"], "reg": ["mae"]},
}
N = 40


def data() -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs = inputs_for(TWO_IN_TWO_OUT, n=N, seed=5)
    rng = np.random.default_rng(6)
    ys = [rng.integers(0, 3, size=(N,)).astype("int64"), rng.normal(size=(N, 1)).astype("float32")]
    return xs, ys


def trainer(model: Any, spec: CompileSpec, ys: list[np.ndarray]) -> Trainer:
    loss, metrics = compile_model(spec, model, [y.shape for y in ys])
    opt = build_optimizer(spec.optimizer, model.parameters())
    return Trainer(model=model, optimizer=opt, loss=loss, metrics=metrics, batch_size=16, shuffle=False)


def split(xs: list[np.ndarray], ys: list[np.ndarray]) -> Split:
    return Split(TensorTuple(torch.from_numpy(x) for x in xs), TensorTuple(torch.from_numpy(y) for y in ys))


@pytest.mark.keras
def test_evaluate_and_one_epoch_equal_keras(keras: Any) -> None:
    xs, ys = data()
    ours = build_ours(TWO_IN_TWO_OUT)
    theirs = build_keras(keras, TWO_IN_TWO_OUT)
    copy_weights(ours, theirs)
    theirs.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=dict(COMPILE["loss"]),
        loss_weights=dict(COMPILE["loss_weights"]),
        metrics={"cls": ["accuracy"], "reg": ["mae"]},
    )
    spec = CompileSpec.model_validate(COMPILE)
    t = trainer(ours, spec, ys)
    want = theirs.evaluate(xs, ys, batch_size=16, return_dict=True, verbose=0)
    got = t.evaluate(split(xs, ys))
    assert set(got) == set(want) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-5), key
    assert got["loss"] == pytest.approx(got["cls_loss"] + 0.5 * got["reg_loss"], abs=1e-6)
    # one epoch of plain SGD, no shuffling, validation on the last quarter: same keys, same numbers
    hist_k = theirs.fit(xs, ys, batch_size=16, epochs=1, shuffle=False, validation_split=0.25, verbose=0).history
    cut = int(N * 0.75)
    train = split([x[:cut] for x in xs], [y[:cut] for y in ys])
    val = split([x[cut:] for x in xs], [y[cut:] for y in ys])
    hist = trainer(ours, spec, ys).fit(train, val, epochs=1)  # fresh metric state (evaluate made it in inference mode)
    assert set(hist) - {"lr", "epoch_time"} == set(hist_k)
    for key in ("val_loss", "val_cls_loss", "val_reg_loss", "val_cls_accuracy", "val_reg_mae"):
        assert hist[key][0] == pytest.approx(hist_k[key][0], abs=1e-4), key


def test_per_output_rules() -> None:
    model = build_ours(TWO_IN_TWO_OUT)
    shapes = [(8,), (8, 1)]
    with pytest.raises(ConfigError) as err:
        compile_model(CompileSpec.model_validate({"loss": {"cls": "mse"}}), model, shapes)
    assert err.value.key == "compile.loss" and err.value.hint == "missing: reg"
    with pytest.raises(ConfigError, match="flat list of 1"):
        compile_model(CompileSpec.model_validate({"loss": "mse", "metrics": ["mae"]}), model, [(8, 3), (8, 1)])
    loss, metrics = compile_model(
        CompileSpec.model_validate({"loss": "mse", "metrics": ["mse", "mae"]}), model, [(8, 3), (8, 1)]
    )
    assert [m.name for m in metrics] == ["cls_loss", "reg_loss", "cls_mse", "reg_mae"]
    assert loss.weights == [1.0, 1.0]
