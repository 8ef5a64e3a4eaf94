"""image_directory pixels and paths: the numpy resize against torch's non-antialiased bilinear
(which the notes show equals TensorFlow's, hence Keras's), and the streaming path against the
decode-once in-memory path on the same folder and seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.clihelp import Cli, read_json, write
from trainctl.data.images import decode, resize_bilinear


@pytest.mark.parametrize("size", [(5, 7), (16, 9), (12, 12), (3, 30)])
def test_bilinear_resize_matches_torch_interpolate(size: tuple[int, int]) -> None:
    img = np.random.default_rng(0).integers(0, 256, (11, 13, 3)).astype(np.uint8)
    want = torch.nn.functional.interpolate(
        torch.from_numpy(img).float().permute(2, 0, 1)[None], size=size, mode="bilinear", align_corners=False
    )[0].permute(1, 2, 0)
    got = resize_bilinear(img, size)
    assert got.shape == (*size, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, want.numpy(), atol=2e-4)


def test_crop_and_pad_to_aspect_ratio(tmp_path: Path) -> None:
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, 5:15] = 200  # the centred 10x10 window
    Image.fromarray(img).save(tmp_path / "a.png")
    cropped = decode(str(tmp_path / "a.png"), image_size=(10, 10), crop_to_aspect_ratio=True)
    assert cropped.shape == (10, 10, 3) and np.all(cropped == 200)
    padded = decode(str(tmp_path / "a.png"), image_size=(20, 20), pad_to_aspect_ratio=True, color_mode="grayscale")
    assert padded.shape == (20, 20, 1)
    assert np.all(padded[:5] == 0) and np.all(padded[-5:] == 0)  # 5 rows of zeros above and below


def _folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 25), ("test", 6)):
        for c in ("cat", "dog"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
                if c == "dog":
                    a[:, :5] = 255
                Image.fromarray(a).save(d / f"{i}.png")


CFG = """
seed: 3
threads: 1
data: {source: image_directory, directory: d/train, test_directory: d/test, image_size: [8, 8],
       color_mode: grayscale, validation_split: 0.2, x: [{scale: 255}]CACHE}
model:
  layers:
    - {type: Flatten, input_shape: [8, 8, 1]}
    - {type: Dense, units: 2, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 2, batch_size: 8}
"""


def test_streaming_image_run_equals_the_in_memory_run(tmp_path: Path) -> None:
    _folder(tmp_path / "d")
    runs = {}
    for name, cache in (("mem", ""), ("stream", ", cache: none, workers: 1")):
        out = Cli(tmp_path / "runs").train_json(write(tmp_path, CFG.replace("CACHE", cache), f"{name}.yaml"))
        runs[name] = Path(out["run_dir"])
    mem, stream = (read_json(runs[k] / "history.json") for k in ("mem", "stream"))
    for h in (mem, stream):
        h.pop("epoch_time")
    assert mem == stream
    assert read_json(runs["mem"] / "metrics.json") == read_json(runs["stream"] / "metrics.json")
    info = read_json(runs["stream"] / "run.json")["data"]
    assert info["cache"] == "none" and info["workers"] == 1
    assert info["files"] == {"train": 40, "validation": 10, "test": 12}  # int(0.2 * 50) files validate
    assert read_json(runs["mem"] / "run.json")["data"]["cache"] == "memory"
    pre = read_json(runs["mem"] / "preprocess.json")
    assert pre["class_names"] == ["cat", "dog"] and pre["image_size"] == [8, 8] and pre["color_mode"] == "grayscale"


def test_fit_validation_split_is_refused_for_image_folders(tmp_path: Path) -> None:
    _folder(tmp_path / "d")
    text = (
        CFG.replace("CACHE", "")
        .replace(", validation_split: 0.2", "")
        .replace("batch_size: 8}", "batch_size: 8, validation_split: 0.1}")
    )
    res = Cli(tmp_path / "runs")("train", write(tmp_path, text))
    assert res.exit_code == 2, res.output
    assert "fit.validation_split" in res.stderr and "data.validation_split: 0.1" in res.stderr


def test_predict_takes_image_folders_and_files_resized_as_in_training(tmp_path: Path) -> None:
    """12x10 RGB files go in; the run resizes them to 8x8 grayscale as training did. A folder gives
    one row per file in Keras's order, the same rows as naming the files one by one."""
    _folder(tmp_path / "d")
    out = Cli(tmp_path / "runs").train_json(write(tmp_path, CFG.replace("CACHE", "")))
    run = out["run_dir"]
    cli = Cli(tmp_path / "runs")
    folder = cli("predict", run, tmp_path / "d/test/dog", "-o", tmp_path / "a.npy")
    assert folder.exit_code == 0, folder.output
    files = [tmp_path / "d/test/dog" / f"{i}.png" for i in range(6)]  # sorted by name: 0..5
    one_by_one = cli("predict", run, *files, "-o", tmp_path / "b.npy")
    assert one_by_one.exit_code == 0, one_by_one.output
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (6, 2) and np.array_equal(a, b)
    missing = cli("predict", run, tmp_path / "d/nothing")
    assert missing.exit_code == 3 and "d/nothing" in missing.stderr
