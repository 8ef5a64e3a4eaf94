"""An image-folder run with augmentation layers, killed with SIGKILL after an epoch and resumed,
ends bit-identical (weights and history) to a run that was never stopped, on CPU: with the
decoded images in memory, and streamed (decoded per batch by worker processes)."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import Cli, assert_same_run, read_json, train_until_then_signal, write

CONFIG = """
name: folder_augmented
seed: 11
threads: 1
data:
  source: image_directory
  directory: {folder}
  color_mode: grayscale
  image_size: [12, 12]
  validation_split: 0.25
  x: [{{scale: 255}}]
  cache: {cache}
  workers: {workers}
model:
  layers:
    - {{type: InputLayer, shape: [12, 12, 1]}}
    - {{type: RandomFlip, mode: horizontal}}
    - {{type: RandomTranslation, height_factor: 0.1, width_factor: 0.1, fill_mode: constant}}
    - {{type: Conv2D, filters: 4, kernel_size: 3, activation: relu}}
    - {{type: Flatten}}
    - {{type: Dropout, rate: 0.2}}
    - {{type: Dense, units: 3, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
fit: {{epochs: 5, batch_size: 16}}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"class_{c}").mkdir()
        for i in range(40):
            img = rng.integers(0, 80, (14, 10)) + 60 * c  # sizes differ from image_size: resized
            img[:, : 3 + 2 * c] = 255
            Image.fromarray(img.astype(np.uint8), mode="L").save(root / f"class_{c}" / f"{i:03d}.png")
    return root


@pytest.mark.parametrize(("cache", "workers"), [("memory", 0), ("none", 2)])
def test_folder_resume_after_kill_is_bit_identical(tmp_path: Path, folder: Path, cache: str, workers: int) -> None:
    config = CONFIG.format(folder=folder, cache=cache, workers=workers)
    reference = Path(Cli(tmp_path / "ref").train_json(write(tmp_path, config, "ref.yaml"))["run_dir"])
    assert read_json(reference / "run.json")["data"]["cache"] == cache

    code, _ = train_until_then_signal(write(tmp_path, config), tmp_path / "runs", "Epoch 3/", signal.SIGKILL)
    assert code == -9
    run = next((tmp_path / "runs").iterdir())
    done = len(read_json(run / "history.json")["loss"])
    assert 1 <= done < 5  # killed mid-training, after at least one epoch

    res = Cli(tmp_path / "runs")("train", "--resume", str(run))
    assert res.exit_code == 0, res.output
    assert_same_run(run, reference)
