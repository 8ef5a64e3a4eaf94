"""``source: image_directory`` against real Keras 3.15.1 (KERAS_BACKEND=torch).

``keras.utils.image_dataset_from_directory`` itself needs TensorFlow or grain (neither is in the
venv), so the reference is the Keras code it calls: ``dataset_utils.index_directory`` (listing,
labels, class names, seeded shuffle), ``dataset_utils.get_training_or_validation_split`` (the seeded
file split) and ``image_dataset_utils._load_image_grain`` (Pillow decode + ``ops.image.resize``, the
torch-backend pixel path)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.clihelp import Cli, read_json, write

PIL = pytest.importorskip("PIL.Image")
ALLOWLIST = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # keras image_dataset_utils.ALLOWLIST_FORMATS
RESIZED_ATOL = 1e-3  # notes: torch bilinear vs TF-style resize, 2e-4 when downsampling (0..255 scale)


def _img(path: Path, size: tuple[int, int], mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = size
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode if mode != "P" else "RGB"]
    a = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    img = PIL.fromarray(a[..., 0] if channels == 1 else a, mode if mode != "P" else "RGB")
    if mode == "P":
        img = img.convert("P")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Classes in code-point order A_cls < b_cls < class10 < class2, nested files, mixed sizes,
    modes and extensions, and files Keras skips (.txt, .webp, top-level files)."""
    root = tmp_path / "imgs"
    files = [
        ("A_cls/1.png", (28, 28), "L"),
        ("A_cls/10.png", (30, 20), "RGB"),
        ("A_cls/2.PNG", (28, 28), "RGBA"),
        ("b_cls/z.png", (16, 40), "P"),
        ("b_cls/a.bmp", (28, 28), "L"),
        ("b_cls/sub/deep.png", (50, 50), "RGB"),
        ("class10/x.gif", (28, 28), "P"),
        ("class10/y.png", (9, 9), "L"),
        ("class2/q.png", (28, 28), "RGB"),
        ("class2/r.png", (28, 33), "L"),
        ("class2/s.png", (28, 28), "L"),
        ("class2/t.png", (60, 12), "RGBA"),
    ]
    for i, (name, size, mode) in enumerate(files):
        _img(root / name, size, mode, i)
    (root / "A_cls" / "notes.txt").write_text("not an image")
    _img(root / "top.png", (28, 28), "L", 99)  # top-level file: ignored when labels are inferred
    (root / "b_cls" / "w.webp").write_bytes(b"RIFF")  # not an allowed extension
    return root


def _keras_files(keras: ModuleType, root: Path, split: float | None, seed: int, **kw: object):
    from keras.src.utils import dataset_utils

    paths, labels, names = dataset_utils.index_directory(
        str(root), "inferred", formats=ALLOWLIST, shuffle=True, seed=seed, verbose=False, **kw
    )
    if split:
        paths, labels = dataset_utils.get_training_or_validation_split(paths, labels, split, "training")
    return list(paths), np.asarray(labels), list(names)


def _keras_pixels(path: str, size: tuple[int, int], channels: int, **kw: object) -> np.ndarray:
    from keras.src.utils import image_dataset_utils

    img = image_dataset_utils._load_image_grain(path, size, channels, "bilinear", "channels_last", **kw)
    return np.asarray(img.cpu() if hasattr(img, "cpu") else img, dtype=np.float32)


def _load(tmp_path: Path, data: str, seed: int = 7):
    from trainctl.config import load_config
    from trainctl.data import load_data

    model = "model: {layers: [{type: Flatten, input_shape: [8, 8, 1]}]}\ncompile: {optimizer: adam, loss: mse}\n"
    cfg = write(tmp_path, f"seed: {seed}\ndata: {data}\n{model}", "c.yaml")
    loaded = load_config(cfg)
    return load_data(loaded.config.data, base_dir=tmp_path, seed=seed)


@pytest.mark.parametrize(
    ("color_mode", "channels", "extra"),
    [
        ("grayscale", 1, {}),
        ("rgb", 3, {"crop_to_aspect_ratio": True}),
        ("rgba", 4, {"pad_to_aspect_ratio": True}),
    ],
)
def test_listing_split_labels_and_pixels_match_keras(
    keras: ModuleType, folder: Path, tmp_path: Path, color_mode: str, channels: int, extra: dict
) -> None:
    opts = "".join(f", {k}: true" for k in extra)
    ds = _load(
        tmp_path,
        f"{{source: image_directory, directory: {folder}, image_size: [28, 24], color_mode: {color_mode}, "
        f"validation_split: 0.25, cache: memory{opts}}}",
    )
    paths, labels, names = _keras_files(keras, folder, 0.25, seed=7)
    assert ds.class_names == names == ["A_cls", "b_cls", "class10", "class2"]
    assert len(paths) == 12 - int(0.25 * 12) == len(ds.y_train)
    np.testing.assert_array_equal(np.asarray(ds.y_train).reshape(-1), labels)  # same files, same order
    x = np.asarray(ds.x_train[0 : len(paths)], dtype=np.float32)
    assert x.shape == (9, 28, 24, channels)
    for i, p in enumerate(paths):
        want = _keras_pixels(p, (28, 24), channels, **extra)
        np.testing.assert_allclose(x[i], want, atol=RESIZED_ATOL, err_msg=p)


def test_class_names_subset_in_the_given_order(keras: ModuleType, folder: Path, tmp_path: Path) -> None:
    ds = _load(
        tmp_path,
        f"{{source: image_directory, directory: {folder}, class_names: [class2, A_cls], image_size: [8, 8]}}",
    )
    _, labels, names = _keras_files(keras, folder, None, seed=7, class_names=["class2", "A_cls"])
    assert ds.class_names == names == ["class2", "A_cls"]
    np.testing.assert_array_equal(np.asarray(ds.y_train).reshape(-1), labels)
    assert len(ds.y_train) == 7


@pytest.mark.parametrize(
    ("label_mode", "shape", "dtype"),
    [("int", (12,), np.integer), ("categorical", (12, 4), np.floating)],
)
def test_label_modes(folder: Path, tmp_path: Path, label_mode: str, shape: tuple, dtype: type) -> None:
    spec = f"{{source: image_directory, directory: {folder}, label_mode: {label_mode}, image_size: [8, 8]}}"
    ds = _load(tmp_path, spec)
    y = np.asarray(ds.y_train)
    assert y.shape == shape and np.issubdtype(y.dtype, dtype)
    counts = np.bincount(y.argmax(-1) if y.ndim == 2 else y, minlength=4)
    assert counts.tolist() == [3, 3, 2, 4]  # A_cls, b_cls (with sub/), class10, class2


def test_default_image_size_is_256(folder: Path, tmp_path: Path) -> None:
    ds = _load(tmp_path, f"{{source: image_directory, directory: {folder}, color_mode: grayscale, cache: none}}")
    assert tuple(np.asarray(ds.x_train[0:1]).shape) == (1, 256, 256, 1)


# --- bad input: exit 3 naming the path ---------------------------------------------------------

CNN = """
seed: 1
data: {{source: image_directory, directory: {d}, image_size: [8, 8], color_mode: grayscale{more}}}
model:
  layers:
    - {{type: Flatten, input_shape: [8, 8, 1]}}
    - {{type: Dense, units: {classes}, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
fit: {{epochs: 1, batch_size: 4{fit}}}
"""


def _train(tmp_path: Path, d: Path, classes: int = 4, more: str = "", fit: str = ""):
    cfg = write(tmp_path, CNN.format(d=d, classes=classes, more=more, fit=fit))
    return Cli(tmp_path / "runs")("train", cfg)


def test_corrupt_image_exits_3_naming_the_file(folder: Path, tmp_path: Path) -> None:
    bad = folder / "class2" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = _train(tmp_path, folder)
    assert res.exit_code == 3, res.output
    assert str(bad) in res.stderr


def test_skipping_corrupt_images_counts_them_in_run_json(folder: Path, tmp_path: Path) -> None:
    (folder / "class2" / "broken.png").write_bytes(b"garbage")
    res = _train(tmp_path, folder, more=", bad_images: skip")
    assert res.exit_code == 0, res.output + res.stderr
    run = next((tmp_path / "runs").iterdir())
    assert read_json(run / "run.json")["data"]["skipped_images"]["count"] == 1


def test_empty_class_folder_exits_3(folder: Path, tmp_path: Path) -> None:
    (folder / "empty_cls").mkdir()
    res = _train(tmp_path, folder, classes=5)
    assert res.exit_code == 3, res.output
    assert "empty_cls" in res.stderr


def test_folder_without_images_exits_3(tmp_path: Path) -> None:
    d = tmp_path / "none"
    (d / "a").mkdir(parents=True)
    (d / "a" / "readme.txt").write_text("x")
    res = _train(tmp_path, d)
    assert res.exit_code == 3, res.output
    assert str(d) in res.stderr


def test_fit_validation_split_is_refused_with_a_hint(folder: Path, tmp_path: Path) -> None:
    res = _train(tmp_path, folder, fit=", validation_split: 0.2")
    assert res.exit_code == 2, res.output
    assert "data.validation_split" in res.stderr
