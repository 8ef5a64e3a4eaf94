"""Several nodes: two launchers on 127.0.0.1 (``--nnodes 2 --node-rank 0/1 --rdzv-endpoint``), one
process each, train together and end where ``--nproc-per-node 2`` on one node ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.clihelp import write
from tests.distributed.disthelp import assert_same_numbers, free_port, max_weight_diff, only_run, start, trainctl

CONFIG = """
name: nodes
seed: 4
device: cpu
threads: 1
data: {source: sklearn, name: digits, test_split: 0.2, x: [{scale: 16}]}
model:
  layers:
    - {type: Dense, units: 32, activation: relu, input_shape: [64]}
    - {type: Dropout, rate: 0.2}
    - {type: BatchNormalization}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: {type: SGD, learning_rate: 0.05}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 2, batch_size: 50, validation_split: 0.1, verbose: 2}
"""


def test_two_launchers_equal_one_node_with_two_processes(tmp_path: Path) -> None:
    cfg = write(tmp_path, CONFIG)
    done = trainctl("train", cfg, "--runs-dir", tmp_path / "single", "--nproc-per-node", "2")
    assert done.returncode == 0, done.stderr

    endpoint = f"127.0.0.1:{free_port()}"
    common = ["--nproc-per-node", "1", "--nnodes", "2", "--rdzv-endpoint", endpoint]
    node0 = start("train", cfg, "--runs-dir", tmp_path / "node0", *common, "--node-rank", "0")
    node1 = start("train", cfg, "--runs-dir", tmp_path / "node1", *common, "--node-rank", "1")
    _, err0 = node0.communicate(timeout=240)
    out1, err1 = node1.communicate(timeout=240)
    assert node0.returncode == 0, err0
    assert node1.returncode == 0, err1
    assert not (tmp_path / "node1").exists() or not any((tmp_path / "node1").iterdir())  # node 1 writes nothing
    assert out1.strip() == ""  # and prints nothing: its rank is not 0
    run = only_run(tmp_path / "node0")
    assert max_weight_diff(run, only_run(tmp_path / "single")) == 0.0  # the same ranks, the same collectives
    assert_same_numbers(run, only_run(tmp_path / "single"), 0.0)


def test_torchrun_runs_trainctl_as_its_module(tmp_path: Path) -> None:
    """``torchrun -m trainctl train``: trainctl finds torchrun's environment; one run folder."""
    import subprocess
    import sys

    from tests.distributed.disthelp import ROOT, env

    cfg = write(tmp_path, CONFIG)
    ref = trainctl("train", cfg, "--runs-dir", tmp_path / "launcher", "--nproc-per-node", "2")
    assert ref.returncode == 0, ref.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "trainctl", "train", str(cfg), "--runs-dir", str(tmp_path / "torchrun")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Epoch 1/2") == 1
    assert max_weight_diff(only_run(tmp_path / "torchrun"), only_run(tmp_path / "launcher")) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (nccl)")
def test_nccl_two_gpus_match_one(tmp_path: Path) -> None:
    cfg = write(tmp_path, CONFIG.replace("device: cpu", "device: cuda"))
    one = trainctl("train", cfg, "--runs-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = trainctl("train", cfg, "--runs-dir", tmp_path / "two", "--nproc-per-node", "auto")
    assert two.returncode == 0, two.stderr
    assert '"backend": "nccl"' in (only_run(tmp_path / "two") / "run.json").read_text()
    assert max_weight_diff(only_run(tmp_path / "two"), only_run(tmp_path / "one")) <= 1e-4
