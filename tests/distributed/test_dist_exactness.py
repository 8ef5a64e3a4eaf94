"""Exactness: a 2-process CPU (gloo) run ends with the weights, history and metrics.json of the
same config trained in one process, the independent reference (issue 11, "Done means")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clihelp import Cli, write
from tests.distributed.disthelp import assert_same_numbers, only_run, trainctl

# digits: 1437 training rows, 1293 after validation_split, so batch 50 leaves an uneven last
# batch of 43 rows (22 + 21 across the two ranks)
BASE = """
name: {name}
seed: 5
device: cpu
threads: 1
data: {{source: sklearn, name: digits, test_split: 0.2, x: [{{scale: 16}}]}}
model:
  layers:
{layers}
    - {{type: Dense, units: 10, activation: softmax}}
compile: {{optimizer: {optimizer}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
fit: {{epochs: 2, batch_size: 50, validation_split: 0.1, verbose: 2{extra}}}
"""
DENSE = "    - {type: Dense, units: 32, activation: relu, input_shape: [64]}"
DROPOUT_BN = DENSE + "\n    - {type: Dropout, rate: 0.3}\n    - {type: BatchNormalization}"
SGD = "{type: SGD, learning_rate: 0.05, momentum: 0.9}"
ADAM = "{type: Adam, learning_rate: 0.003}"

CASES = {
    # the uneven last batch, with sample weights (class_weight) in the loss and the metrics
    "sgd_uneven_weighted": (DENSE, SGD, ", class_weight: {0: 2.0, 3: 0.5}", 1e-5),
    "sgd_dropout_batchnorm": (DROPOUT_BN, SGD, "", 1e-5),
    "adam_dropout_batchnorm": (DROPOUT_BN, ADAM, "", 1e-4),
}


def config(tmp: Path, case: str) -> Path:
    layers, optimizer, extra, _ = CASES[case]
    return write(tmp, BASE.format(name=case, layers=layers, optimizer=optimizer, extra=extra), f"{case}.yaml")


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one(tmp_path: Path, case: str) -> None:
    cfg = config(tmp_path, case)
    Cli(tmp_path / "one").train_json(cfg)
    done = trainctl("train", cfg, "--runs-dir", tmp_path / "two", "--nproc-per-node", "2")
    assert done.returncode == 0, done.stderr
    assert_same_numbers(only_run(tmp_path / "two"), only_run(tmp_path / "one"), CASES[case][3])


BAD = {
    "batch_not_divisible": (["fit.batch_size=51"], "multiple of the 2 processes"),
    "device_mps": (["device=mps"], "expected device cpu, cuda or auto for a distributed run"),
    "nnodes_without_endpoint": (["--nnodes", "2"], "needs --rdzv-endpoint"),
    "nproc_not_a_count": (["--nproc-per-node", "two"], "positive count or auto"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_before_any_worker(tmp_path: Path, case: str) -> None:
    args, message = BAD[case]
    cfg = config(tmp_path, "sgd_uneven_weighted")
    nproc = [] if "--nproc-per-node" in args else ["--nproc-per-node", "2"]
    done = trainctl("train", cfg, *args, "--runs-dir", tmp_path / "runs", *nproc)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("error:") == 1
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # refused before any run folder or worker
