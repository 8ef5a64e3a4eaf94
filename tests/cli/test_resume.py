"""A run killed between epochs and resumed ends bit-identical to one that was never stopped."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.clihelp import Cli, assert_same_run, read_json, train_until_then_signal, write

CONFIG = """
name: resumable
seed: 11
data: {source: synthetic, kind: blobs, n: 6000, features: 8, classes: 4, test_split: 0.2}
model:
  layers:
    - {type: Dense, units: 32, activation: relu, input_shape: [8]}
    - {type: Dropout, rate: 0.2}
    - {type: Dense, units: 4, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.003}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit:
  epochs: 7
  batch_size: 16
  validation_split: 0.2
  callbacks:
    - {type: EarlyStopping, monitor: val_loss, patience: 50, restore_best_weights: true}
    - {type: ReduceLROnPlateau, monitor: loss, patience: 1, factor: 0.5}
    - {type: CSVLogger}
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ref")
    out = Cli(tmp / "runs").train_json(write(tmp, CONFIG))
    return Path(out["run_dir"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["int", "term", "kill"])
def test_resume_after_signal_is_bit_identical(tmp_path: Path, reference: Path, sig: int) -> None:
    cfg = write(tmp_path, CONFIG)
    returncode, _ = train_until_then_signal(cfg, tmp_path / "runs", "Epoch 3/", sig)
    assert returncode == {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[sig]
    run = next((tmp_path / "runs").iterdir())
    assert read_json(run / "run.json")["status"] in ("interrupted", "running")
    done = len(read_json(run / "history.json")["loss"])
    assert 1 <= done < 7  # kill -9 keeps what was persisted: the first epoch, then at most once a second

    res = Cli(tmp_path / "runs")("train", "--resume", str(run))
    assert res.exit_code == 0, res.output
    assert read_json(run / "run.json")["status"] == "completed"
    assert_same_run(run, reference)
    csv_rows = (run / "training.log").read_text().splitlines()
    assert csv_rows == (reference / "training.log").read_text().splitlines()


def test_resume_refuses_a_finished_run(reference: Path, tmp_path: Path) -> None:
    res = Cli(tmp_path)("train", "--resume", str(reference))
    assert res.exit_code == 4 and "already finished" in res.stderr and "--init-from" in res.stderr


def test_resume_with_a_config_is_a_usage_error(reference: Path, tmp_path: Path) -> None:
    res = Cli(tmp_path)("train", str(write(tmp_path, CONFIG)), "--resume", str(reference))
    assert res.exit_code == 2


def test_init_from_starts_a_new_run_from_those_weights(reference: Path, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "runs")
    out = cli.train_json(write(tmp_path, CONFIG), "fit.epochs=1", "--init-from", str(reference))
    run = Path(out["run_dir"])
    assert run != reference and read_json(run / "run.json")["init_from"] == str(reference)
    # starting from trained weights, the first epoch's loss is already near the reference's last
    first = read_json(run / "history.json")["loss"][0]
    ref = read_json(reference / "history.json")["loss"]
    assert first < ref[0]


def test_corrupt_state_is_an_artifact_error(reference: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(reference, run)
    info = read_json(run / "run.json")
    info["status"] = "interrupted"
    (run / "run.json").write_text(__import__("json").dumps(info))
    state = run / "state" / "train_state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    res = Cli(tmp_path)("train", "--resume", str(run))
    assert res.exit_code == 4 and "train_state.safetensors" in res.stderr


def test_streaming_run_resumes_bit_identical_to_the_in_memory_run(tmp_path: Path, reference: Path) -> None:
    """data.cache: none streams whole batches from 2 worker processes: the same rows in the same seeded
    order as the in-memory path, so after a kill and --resume it ends where the in-memory run did."""
    cfg = write(tmp_path, CONFIG.replace("test_split: 0.2}", "test_split: 0.2, cache: none, workers: 2}"))
    returncode, _ = train_until_then_signal(cfg, tmp_path / "runs", "Epoch 3/", signal.SIGINT)
    assert returncode == 130
    run = next((tmp_path / "runs").iterdir())
    assert read_json(run / "run.json")["data"] == {"cache": "none", "cache_requested": "none", "workers": 2}
    res = Cli(tmp_path / "runs")("train", "--resume", str(run))
    assert res.exit_code == 0, res.output
    assert_same_run(run, reference)
    assert read_json(reference / "run.json")["data"]["cache"] == "memory"  # auto: 6000 rows fit the budget
