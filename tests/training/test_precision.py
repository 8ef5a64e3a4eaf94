"""``fit.precision`` and ``fit.compile``: refused where they cannot work, sound where they run.

The CPU tests check the refusals (exit 2, key ``fit.precision`` / ``fit.compile``). The CUDA tests
check mixed precision against float32 maths done by hand in numpy; they skip without a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.clihelp import Cli, read_json, write
from trainctl import api
from trainctl.config import load_config
from trainctl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

IRIS = """
name: prec
seed: 3
device: cpu
data: {source: sklearn, name: iris, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
fit: {epochs: 1, batch_size: 16}
"""


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_is_refused_on_cpu_before_a_run_folder_exists(cli: Cli, tmp_path: Path, precision: str) -> None:
    res = cli("train", write(tmp_path, IRIS), f"fit.precision={precision}", "--device", "cpu")
    assert res.exit_code == 2
    assert "fit.precision" in res.stderr
    assert f"expected a CUDA device for {precision}, received cpu" in res.stderr
    assert not cli.runs.exists() or not any(cli.runs.iterdir())


def test_precision_values_follow_lightning_names() -> None:
    def precision(value: str) -> str:
        text = IRIS.replace("fit: {epochs: 1, batch_size: 16}", f"fit:\n  epochs: 1\n  precision: {value}")
        return str(load_config(None, text=text).config.fit.precision)

    assert load_config(None, text=IRIS).config.fit.precision == "32"
    assert precision("32") == "32"  # YAML reads a bare 32 as an int; it means the same as "32"
    assert precision("'32'") == "32"
    assert precision("bf16-mixed") == "bf16-mixed"
    assert precision("16-mixed") == "16-mixed"
    for wrong in ("16", "fp16", "true"):
        with pytest.raises(ConfigError) as err:
            precision(wrong)
        assert err.value.exit_code == 2
        assert [p.key for p in err.value.problems] == ["fit.precision"]


# ---------------------------------------------------------------------------------------------
# fit.compile (slow: torch.compile generates and compiles C++ on CPU)

XOR = """
name: comp
seed: 11
device: cpu
threads: 1
data: {source: synthetic, kind: xor, n: 32}
model:
  layers:
    - {type: Dense, units: 8, activation: tanh, input_shape: [2]}
    - {type: Dense, units: 1, activation: sigmoid}
compile: {optimizer: {type: adam, learning_rate: 0.05}, loss: binary_crossentropy}
fit: {epochs: 3, batch_size: 8, shuffle: false}
"""

# trains the same config eager and compiled in a fresh interpreter; prints both loss histories
COMPILE_PROBE = """
import json, sys, tempfile
from trainctl import api
from trainctl.config import load_config
text = sys.stdin.read()
out = {}
with tempfile.TemporaryDirectory() as tmp:
    for flag in ("false", "true"):
        result = api.train(load_config(None, [f"fit.compile={flag}"], text=text), runs_dir=tmp)
        out[flag] = result.history["loss"]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_compiled_run_matches_eager_run() -> None:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", COMPILE_PROBE],
            input=XOR,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("torch.compile takes more than 60 s on this machine")
    if proc.returncode != 0 and "fit.compile" in proc.stderr:
        pytest.skip(f"torch.compile is unavailable here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    losses = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(losses["true"]) == len(losses["false"]) == 3
    np.testing.assert_allclose(losses["true"], losses["false"], rtol=0, atol=1e-5)
    assert losses["false"][-1] < losses["false"][0]  # it trained: the comparison is not of two constants


@pytest.mark.slow
def test_compile_failure_is_a_config_error_on_fit_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose C++ compiler is missing: inductor fails at the first step, and the run
    fails with exit 2 naming fit.compile and the reason, not with a traceback."""
    import torch._dynamo
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", (None, str(tmp_path / "no-such-g++")))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    try:
        with pytest.raises(ConfigError) as err:
            api.train(load_config(None, ["fit.compile=true"], text=XOR), runs_dir=tmp_path / "runs")
    finally:
        torch._dynamo.reset()
    assert err.value.exit_code == 2
    assert err.value.key == "fit.compile"
    assert "C++ compiler" in str(err.value)
    (run,) = (tmp_path / "runs").iterdir()
    assert read_json(run / "run.json")["status"] == "failed"


# ---------------------------------------------------------------------------------------------
# CUDA: mixed precision against float32 maths done by hand

LINEAR = """
data: {source: synthetic, kind: random, n: 8, features: 3}
model:
  layers:
    - {type: Dense, units: 1, use_bias: false, input_shape: [3]}
compile: {optimizer: {type: SGD, learning_rate: 0.1, clipnorm: 0.01}, loss: mse}
"""


def _linear_trainer(precision: str) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
    """A 3->1 linear model on CUDA with known weights, one full batch of known data."""
    from trainctl.model.sequential import build_model
    from trainctl.training.loop import Split, Trainer
    from trainctl.training.losses import build_loss
    from trainctl.training.optimizers import build_optimizer

    cfg = load_config(None, text=LINEAR).config
    model = build_model(cfg.model).to("cuda")
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(3, 1)).astype(np.float32)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    dense: Any = model.layers[0]
    with torch.no_grad():
        dense.kernel.copy_(torch.from_numpy(w0))
    trainer = Trainer(
        model=model,
        optimizer=build_optimizer(cfg.compile.optimizer, model.parameters()),
        loss=build_loss(cfg.compile.loss, model.final_activation),
        metrics=[],
        batch_size=8,
        shuffle=False,
        precision=precision,
    )
    return trainer, Split(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()), w0, x, y


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_step_unscales_before_clipping(precision: str) -> None:
    if precision == "bf16-mixed" and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 needs compute capability 8.0+")
    trainer, split, w0, x, y = _linear_trainer(precision)
    trainer.train_epoch(split, None)
    # Keras SGD with clipnorm, in float64 numpy: g = 2/n X^T (X w - y); w -= lr * g * c / max(|g|, c)
    g = 2.0 / len(x) * x.T.astype(np.float64) @ (x @ w0 - y)
    step = 0.1 * g * 0.01 / max(np.linalg.norm(g), 0.01)
    got = trainer.model.layers[0].kernel.detach().cpu().numpy()
    # the update is lr * clipnorm = 1e-3 long: a scaled (65536x) or unclipped gradient misses by far
    np.testing.assert_allclose(w0 - got, step, rtol=3e-2, atol=5e-5)
    assert trainer.optimizer.iterations == 1
    assert (trainer.scaler is not None) == (precision == "16-mixed")


@cuda
@pytest.mark.cuda
def test_16_mixed_skips_a_step_whose_scaled_gradients_overflow() -> None:
    trainer, split, w0, _, _ = _linear_trainer("16-mixed")
    trainer.scaler = torch.amp.GradScaler("cuda", init_scale=2.0**100)  # float16 gradients overflow
    logs = trainer.train_epoch(split, None)
    assert np.isfinite(logs["loss"])  # the loss itself is unscaled float32
    np.testing.assert_array_equal(trainer.model.layers[0].kernel.detach().cpu().numpy(), w0)
    assert trainer.optimizer.iterations == 0  # a skipped step does not advance the schedule
    assert trainer.scaler.get_scale() == 2.0**99  # backoff_factor 0.5


@cuda
@pytest.mark.cuda
def test_predict_copies_host_batches_to_cuda() -> None:
    trainer, _, w0, _, _ = _linear_trainer("32")
    trainer.batch_size = 3  # several batches, the last one short
    x = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    out = trainer.predict(torch.from_numpy(x))
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), x @ w0, rtol=1e-5, atol=1e-5)


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_run_on_cuda_tracks_float32(tmp_path: Path, precision: str) -> None:
    if precision == "bf16-mixed" and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 needs compute capability 8.0+")
    text = IRIS.replace("device: cpu", "device: cuda").replace("epochs: 1", "epochs: 5")
    runs = tmp_path / "runs"
    ref = api.train(load_config(None, text=text), runs_dir=runs, name="f32")
    mixed = api.train(load_config(None, [f"fit.precision={precision}"], text=text), runs_dir=runs, name="amp")
    assert mixed.status == "completed"
    np.testing.assert_allclose(mixed.history["loss"], ref.history["loss"], rtol=5e-2)
    assert mixed.history["loss"][-1] < mixed.history["loss"][0]
