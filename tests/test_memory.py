"""The training-memory estimate (trainctl/memory.py), by hand, and the CLI around it: `config
validate` and `summary` state it, `train` refuses a model that cannot fit before any run folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clihelp import Cli, write
from trainctl.config import load_config
from trainctl.memory import config_estimate, optimizer_slots

SMALL = """
name: small
data: {source: synthetic, kind: linear}
model:
  layers:
    - {type: Dense, units: 4, input_shape: [3]}
    - {type: Dense, units: 1}
compile: {optimizer: adam, loss: mse}
fit: {batch_size: 8}
"""

HUGE = SMALL.replace("units: 4,", "units: 1000000000000,")


def test_estimate_by_hand() -> None:
    need = config_estimate(load_config(None, text=SMALL).config)
    params = (3 * 4 + 4) + (4 * 1 + 1)  # 21
    assert need.params == params
    assert need.weights_bytes == 4 * params * (1 + 1 + 2)  # weights, gradients, Adam's m and v
    assert need.activation_bytes == 4 * 8 * (3 + 4 + 1)  # batch 8 x (input + each output)
    assert need.total == 336 + 256


@pytest.mark.parametrize(
    ("override", "slots"),
    [
        ("sgd", 0),
        ("{type: SGD, momentum: 0.9}", 1),
        ("rmsprop", 1),
        ("{type: RMSprop, centered: true}", 2),
        ("adam", 2),
    ],
)
def test_optimizer_slots(override: str, slots: int) -> None:
    cfg = load_config(None, [f"compile.optimizer={override}"], text=SMALL).config
    assert optimizer_slots(cfg.compile.optimizer) == slots


def test_validate_and_summary_state_the_need_and_train_refuses_before_a_run_folder(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "runs")
    path = write(tmp_path, HUGE)
    res = cli("config", "validate", path)
    assert res.exit_code == 0
    # (5e12 + 1) parameters x 4 bytes x (weight, gradient, 2 Adam slots) = 80 TB; activations
    # 8 rows x 4 bytes x (3 + 1e12 + 1) = 32 TB
    assert "training needs about 112.0 TB" in res.stdout
    res = cli("summary", path)
    assert res.exit_code == 0 and "Memory: training needs about 112.0 TB" in res.stdout
    res = cli("train", path)
    assert res.exit_code == 2
    assert "the model cannot fit on cpu" in res.stderr and f"{path}:" in res.stderr
    assert not (tmp_path / "runs").exists()
    small = cli("config", "validate", write(tmp_path, SMALL, "small.yaml"))
    assert small.stdout.strip().endswith(": ok")  # under 1 GiB: the plain line
