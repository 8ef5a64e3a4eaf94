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
