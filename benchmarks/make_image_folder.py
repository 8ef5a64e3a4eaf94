"""Build a Fashion-MNIST (or MNIST) PNG folder from the shared IDX files, for ``source: image_directory``.

    python benchmarks/make_image_folder.py [OUT] [--dataset fashion_mnist] [--data-dir DIR] [--limit N]

Writes ``OUT/train/<class>/<index>.png`` (60,000 files) and ``OUT/test/<class>/<index>.png`` (10,000):
grayscale 28x28 PNGs, one sub-folder per class, as ``keras.utils.image_dataset_from_directory``
expects. Folder names start with the label (``0_T-shirt_top`` ... ``9_Ankle_boot``), so Keras's
alphanumeric order of the folders is the label order of the IDX files. ``OUT`` defaults to
``configs/data/<dataset>_png`` (git-ignored), where ``configs/fashion_mnist_folder.yaml`` reads it.
The folder is built beside ``OUT`` and renamed into place at the end, so an interrupted run never
leaves a half-written folder behind. numpy and Pillow only.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "configs" / "data" / "fashion_mnist_png"

NAMES = {
    "fashion_mnist": [
        "T-shirt_top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle_boot",
    ],
    "mnist": [str(i) for i in range(10)],
}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (uint8 data), gzipped or not."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise SystemExit(f"{path}: expected an IDX file of uint8 data, received another header")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    body = 4 + 4 * dims
    if len(raw) - body != int(np.prod(shape)):
        want = int(np.prod(shape))
        raise SystemExit(f"{path}: expected {want} bytes of data for shape {shape}, received {len(raw) - body}")
    return np.frombuffer(raw, np.uint8, offset=body).reshape(shape)


def class_folders(dataset: str) -> list[str]:
    return [f"{label}_{name}" for label, name in enumerate(NAMES[dataset])]


def write_split(images: np.ndarray, labels: np.ndarray, folder: Path, names: list[str]) -> None:
    from PIL import Image

    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(img, mode="L").save(folder / names[int(label)] / f"{i:05d}.png", optimize=False)


def build(out: Path, dataset: str, data_dir: Path, limit: int | None = None) -> dict[str, int]:
    """Write the folder; returns the number of files per split."""
    src = data_dir / dataset
    names = class_folders(dataset)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for split, (img_file, lab_file) in FILES.items():
        x, y = read_idx(src / img_file), read_idx(src / lab_file)
        if len(x) != len(y):
            raise SystemExit(f"{src}: expected as many labels as images, received {len(x)} and {len(y)}")
        x, y = x[:limit], y[:limit]
        write_split(x, y, tmp / split, names)
        counts[split] = len(x)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=None)
    parser.add_argument("--dataset", choices=sorted(NAMES), default="fashion_mnist")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding <dataset>/ IDX files (default $TRAINCTL_DATA_DIR)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images of each split (tests)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(os.environ.get("TRAINCTL_DATA_DIR", "."))
    out = args.out or DEFAULT_OUT.with_name(f"{args.dataset}_png")
    counts = build(out, args.dataset, data_dir, args.limit)
    classes = len(NAMES[args.dataset])
    sys.stdout.write(f"{out}: {counts['train']} training and {counts['test']} test PNGs in {classes} classes\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
