"""Interrupts and failures of a 2-process run: SIGTERM saves and resumes (with 2 processes,
bit-identical; with 1, to float rounding), a worker killed with SIGKILL ends the job quickly
with a message naming its rank, and ``--max-restarts`` continues from the last saved state."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.clihelp import Cli, run_history, write
from tests.distributed.disthelp import max_weight_diff, only_run, start, trainctl, worker_of_rank

CONFIG = """
name: long
seed: 11
device: cpu
threads: 1
data: {source: synthetic, kind: blobs, n: 4000, features: 8, classes: 4, test_split: 0.2}
model:
  layers:
    - {type: Dense, units: 32, activation: relu, input_shape: [8]}
    - {type: Dropout, rate: 0.2}
    - {type: Dense, units: 4, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.003}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 5, batch_size: 16, validation_split: 0.2, verbose: 2}
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted 2-process run."""
    tmp = tmp_path_factory.mktemp("ref")
    done = trainctl("train", write(tmp, CONFIG), "--runs-dir", tmp / "runs", "--nproc-per-node", "2")
    assert done.returncode == 0, done.stderr
    return only_run(tmp / "runs")


def _start_and_wait(cfg: Path, runs: Path, *extra: str) -> object:
    proc = start("train", cfg, "--runs-dir", runs, "--nproc-per-node", "2", *extra)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Epoch 2/"):
            break
    return proc


def test_sigterm_then_resume_with_two_and_with_one(tmp_path: Path, reference: Path) -> None:
    proc = _start_and_wait(write(tmp_path, CONFIG), tmp_path / "runs")
    proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    _, err = proc.communicate(timeout=120)  # type: ignore[attr-defined]
    assert proc.returncode == 143, err  # type: ignore[attr-defined]
    run = only_run(tmp_path / "runs")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)

    done = trainctl("train", "--resume", run, "--nproc-per-node", "2")
    assert done.returncode == 0, done.stderr
    assert max_weight_diff(run, reference) == 0.0  # bit-identical to the uninterrupted run
    assert run_history(run) == run_history(reference)

    res = Cli(tmp_path / "unused")("train", "--resume", copy)  # the same global state, one process
    assert res.exit_code == 0, res.output
    assert max_weight_diff(copy, reference) <= 1e-4


def test_sigkill_of_one_worker_ends_the_job(tmp_path: Path) -> None:
    proc = _start_and_wait(write(tmp_path, CONFIG.replace("epochs: 5", "epochs: 30")), tmp_path / "runs")
    victim = worker_of_rank(proc.pid, 1)  # type: ignore[attr-defined]
    assert victim is not None
    killed = time.monotonic()
    import os

    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=90)  # type: ignore[attr-defined]
    took = time.monotonic() - killed
    assert proc.returncode == 9, err  # type: ignore[attr-defined]
    assert took < 60
    assert "rank 1" in err and "SIGKILL" in err
    assert "Traceback" not in err


def test_max_restarts_continues_from_the_last_saved_state(tmp_path: Path, reference: Path) -> None:
    proc = _start_and_wait(write(tmp_path, CONFIG), tmp_path / "runs", "--max-restarts", "1")
    victim = worker_of_rank(proc.pid, 1)  # type: ignore[attr-defined]
    assert victim is not None
    import os

    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)  # type: ignore[attr-defined]
    assert proc.returncode == 0, err  # type: ignore[attr-defined]
    run = only_run(tmp_path / "runs")
    assert max_weight_diff(run, reference) == 0.0
    assert run_history(run) == run_history(reference)


def test_a_hung_rank_ends_the_job_within_the_collective_timeout(tmp_path: Path) -> None:
    cfg = write(tmp_path, CONFIG.replace("epochs: 5", "epochs: 30"))
    proc = _start_and_wait(cfg, tmp_path / "runs", "--dist-timeout", "10")
    victim = worker_of_rank(proc.pid, 1)  # type: ignore[attr-defined]
    assert victim is not None
    import os

    os.kill(victim, signal.SIGSTOP)  # hangs: alive, but never reaches the next collective
    stopped = time.monotonic()
    try:
        _, err = proc.communicate(timeout=90)  # type: ignore[attr-defined]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    assert time.monotonic() - stopped < 60
    assert proc.returncode == 9, err  # type: ignore[attr-defined]
    assert "rank 0" in err and "collective" in err
