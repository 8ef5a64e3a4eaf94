"""A tiny class-folder of random PNGs, for tests that run a shipped ``image_directory`` config
without the 70k-file Fashion-MNIST folder its comment tells a user to make."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def png_folder(root: Path, *, classes: int = 3, per_class: int = 12, size: int = 28, seed: int = 0) -> Path:
    """``root/{train,test}/<class>/<i>.png``, grayscale ``size``x``size``; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", max(2, per_class // 3))):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")
    return root


def folder_overrides(root: Path) -> list[str]:
    """The ``key=value`` overrides that point an image_directory config at :func:`png_folder`."""
    return [f"data.directory={root / 'train'}", f"data.test_directory={root / 'test'}"]


def npy_shards(root: Path, *, rows: int = 60, features: int = 784, shards: int = 2, seed: int = 0) -> list[str]:
    """Random float32 pixel shards laid out as ``benchmarks/make_npy_table.py`` writes them
    (``x_train_<k>.npy``/``y_train_<k>.npy`` plus one test pair); returns the overrides of
    ``configs/fashion_mnist_mlp_npy.yaml``'s paths."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        np.save(root / f"x_train_{k:02d}.npy", rng.integers(0, 256, (rows, features)).astype(np.float32))
        np.save(root / f"y_train_{k:02d}.npy", rng.integers(0, 10, rows).astype(np.uint8))
    np.save(root / "x_test.npy", rng.integers(0, 256, (rows // 2, features)).astype(np.float32))
    np.save(root / "y_test.npy", rng.integers(0, 10, rows // 2).astype(np.uint8))
    return [
        f"data.x={root}/x_train_*.npy",
        f"data.y={root}/y_train_*.npy",
        f"data.x_test={root}/x_test.npy",
        f"data.y_test={root}/y_test.npy",
    ]


def shipped_overrides(cfg: Path, tmp: Path) -> list[str]:
    """Overrides pointing a shipped config whose data a documented command makes (an image folder,
    .npy shards) at a tiny stand-in in ``tmp``; none for the other configs."""
    import yaml

    data = yaml.safe_load(cfg.read_text())["data"]
    if data.get("source") == "image_directory":
        return folder_overrides(png_folder(tmp / "images"))
    if data.get("source") == "npy" and "*" in str(data.get("x", "")):
        return npy_shards(tmp / "shards")
    return []
