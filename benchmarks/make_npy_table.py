"""Write (Fashion-)MNIST from the shared IDX files as an out-of-core table: ``.npy`` shards or Parquet.

    python benchmarks/make_npy_table.py [OUT] [--dataset fashion_mnist] [--data-dir DIR]
                                        [--shards K] [--repeat R] [--limit N] [--parquet]

Writes ``OUT/x_train_000.npy ...`` (float32 rows of 784 raw pixel values 0..255, in ``K`` shards),
``OUT/y_train_000.npy ...`` (int64 labels, the same rows per shard) and ``OUT/x_test.npy``,
``OUT/y_test.npy``; with ``--parquet``, ``OUT/train.parquet`` and ``OUT/test.parquet`` instead
(columns ``label``, ``p000`` ... ``p783``; one row group per 8,192 rows). ``--repeat R`` writes the
training rows R times over (60k x 784 x 4 bytes = 188 MB per copy: ``--repeat 17`` makes 3.2 GB)
to measure memory on a table bigger than the budget; ``--limit N`` keeps the first N rows of each
split (tests). Shards are written through memory maps one block at a time, so this script's own
memory stays at a few blocks whatever the size. ``OUT`` defaults to ``configs/data/<dataset>_npy``
(git-ignored), where ``configs/fashion_mnist_mlp_npy.yaml`` reads it. numpy only (pyarrow for
``--parquet``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_image_folder import FILES, NAMES, read_idx

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "configs" / "data"
BLOCK = 8192


def write_npy(out: Path, x: np.ndarray, y: np.ndarray, shards: int, repeat: int) -> int:
    rows = len(x) * repeat
    bounds = np.linspace(0, rows, shards + 1).astype(np.int64)
    for k in range(shards):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        xs = np.lib.format.open_memmap(out / f"x_train_{k:03d}.npy", mode="w+", dtype=np.float32, shape=(hi - lo, 784))
        ys = np.empty(hi - lo, dtype=np.int64)
        for start in range(lo, hi, BLOCK):
            stop = min(start + BLOCK, hi)
            src = np.arange(start, stop) % len(x)
            xs[start - lo : stop - lo] = x[src].reshape(-1, 784)
            ys[start - lo : stop - lo] = y[src]
        xs.flush()
        del xs
        np.save(out / f"y_train_{k:03d}.npy", ys)
    return rows


def write_parquet(path: Path, x: np.ndarray, y: np.ndarray, repeat: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["label", *(f"p{j:03d}" for j in range(784))]
    schema = pa.schema([pa.field("label", pa.int64()), *(pa.field(n, pa.float32()) for n in names[1:])])
    rows = len(x) * repeat
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, BLOCK):
            src = np.arange(start, min(start + BLOCK, rows)) % len(x)
            block = x[src].reshape(-1, 784).astype(np.float32)
            cols = [pa.array(y[src].astype(np.int64)), *(pa.array(block[:, j]) for j in range(784))]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=None)
    parser.add_argument("--dataset", choices=sorted(NAMES), default="fashion_mnist")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding <dataset>/ (default $TRAINCTL_DATA_DIR)"
    )
    parser.add_argument("--shards", type=int, default=4, help="training shards (.npy)")
    parser.add_argument("--repeat", type=int, default=1, help="write the training rows this many times over")
    parser.add_argument("--limit", type=int, default=None, help="first N rows of each split (tests)")
    parser.add_argument("--parquet", action="store_true", help="write train.parquet and test.parquet instead")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(os.environ.get("TRAINCTL_DATA_DIR", "."))
    out = args.out or DEFAULT_ROOT / f"{args.dataset}_{'parquet' if args.parquet else 'npy'}"
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    src = data_dir / args.dataset
    split = {}
    for name, (img_file, lab_file) in FILES.items():
        split[name] = read_idx(src / img_file)[: args.limit], read_idx(src / lab_file)[: args.limit]
    (x, y), (xt, yt) = split["train"], split["test"]
    if args.parquet:
        rows = write_parquet(tmp / "train.parquet", x, y, args.repeat)
        write_parquet(tmp / "test.parquet", xt, yt, 1)
    else:
        rows = write_npy(tmp, x, y, args.shards, args.repeat)
        np.save(tmp / "x_test.npy", xt.reshape(-1, 784).astype(np.float32))
        np.save(tmp / "y_test.npy", yt.astype(np.int64))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    size = sum(p.stat().st_size for p in out.iterdir())
    sys.stdout.write(f"{out}: {rows} training and {len(xt)} test rows, {size / 1e9:.2f} GB\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
