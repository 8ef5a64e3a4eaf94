"""A run with augmentation layers, killed between epochs and resumed, ends bit-identical to one that
was never stopped: the layers' generators travel in the resume state."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.clihelp import Cli, assert_same_run, read_json, run_history, train_until_then_signal, write

CONFIG = """
name: augmented
seed: 5
data: {source: synthetic, kind: blobs, n: 3000, features: 16, classes: 3, test_split: 0.2}
model:
  layers:
    - {type: Reshape, target_shape: [4, 4, 1], input_shape: [16]}
    - {type: Normalization}
    - {type: RandomFlip}
    - {type: RandomRotation, factor: 0.1}
    - {type: RandomTranslation, height_factor: 0.2, width_factor: 0.2, fill_mode: constant}
    - {type: RandomZoom, height_factor: 0.2}
    - {type: RandomContrast, factor: 0.3, value_range: [-50, 50]}
    - {type: RandomBrightness, factor: 0.05, value_range: [-50, 50]}
    - {type: Flatten}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 6, batch_size: 16, validation_split: 0.2}
threads: 1
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ref")
    out = Cli(tmp / "runs").train_json(write(tmp, CONFIG))
    return Path(out["run_dir"])


def test_resume_after_kill_is_bit_identical(tmp_path: Path, reference: Path) -> None:
    from trainctl.api import STATE_FILE
    from trainctl.serialization.state import load_state

    returncode, _ = train_until_then_signal(write(tmp_path, CONFIG), tmp_path / "runs", "Epoch 3/", signal.SIGKILL)
    assert returncode == -9
    run = next((tmp_path / "runs").iterdir())
    done = len(read_json(run / "history.json")["loss"])
    assert 1 <= done < 6
    augment = load_state(run / STATE_FILE)["rng"]["augment"]
    assert set(augment) == {"random_flip", "random_rotation", "random_translation", "random_zoom",
                            "random_contrast", "random_brightness"}  # fmt: skip

    res = Cli(tmp_path / "runs")("train", "--resume", str(run))
    assert res.exit_code == 0, res.output
    assert_same_run(run, reference)


def test_the_seed_drives_the_augmentation(tmp_path: Path, reference: Path) -> None:
    """Same seed: the same run; the augmentation really acts (without it the weights differ)."""
    again = Path(Cli(tmp_path / "a").train_json(write(tmp_path, CONFIG))["run_dir"])
    assert run_history(again) == run_history(reference)
    plain = CONFIG.replace("    - {type: RandomFlip}\n", "")
    other = Path(Cli(tmp_path / "b").train_json(write(tmp_path, plain, "plain.yaml"))["run_dir"])
    assert run_history(other)["loss"] != run_history(reference)["loss"]
