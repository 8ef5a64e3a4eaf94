"""The cost of streaming: the same MLP epoch from ``data.cache: memory`` (index slices on the
device) and from ``data.cache: none`` (whole batches from worker processes, a memory-mapped .npy),
as ratios measured in one run. Also the peak RSS of each run.

    python benchmarks/streaming.py [--rows 60000] [--features 784] [--epochs 2] [--workers 0 1]

Each side is a fresh ``trainctl train`` process (``threads: 1``); the epoch time is the median of
the epochs after the first (history.json ``epoch_time``). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """# python benchmarks/streaming.py
seed: 1
threads: 1
data: {{source: npy, x: x.npy, y: y.npy, cache: {cache}, workers: {workers}}}
model:
  layers:
    - {{type: Dense, units: 128, activation: relu, input_shape: [{features}]}}
    - {{type: Dense, units: 10, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
fit: {{epochs: {epochs}, batch_size: 128}}
"""


def _write_data(folder: Path, rows: int, features: int) -> None:
    code = (
        "import numpy as np, sys; r, f = int(sys.argv[1]), int(sys.argv[2]);"
        "x = np.lib.format.open_memmap('x.npy', mode='w+', dtype=np.float32, shape=(r, f))\n"
        "for i in range(0, r, 8192): x[i:i+8192] = np.random.default_rng(i).random((min(8192, r-i), f), np.float32)\n"
        "x.flush(); np.save('y.npy', np.random.default_rng(0).integers(0, 10, r))"
    )
    subprocess.run([sys.executable, "-c", code, str(rows), str(features)], cwd=folder, check=True)


def _run(folder: Path, name: str, cache: str, workers: int, features: int, epochs: int) -> dict[str, float]:
    (folder / f"{name}.yaml").write_text(CONFIG.format(cache=cache, workers=workers, features=features, epochs=epochs))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "trainctl", "train", f"{name}.yaml", "--runs-dir", "runs", "--name", name]
    subprocess.run(cmd, cwd=folder, env=env, check=True, capture_output=True)
    run = sorted((folder / "runs").glob(f"{name}-*"))[-1]
    times = json.loads((run / "history.json").read_text())["epoch_time"]
    info = json.loads((run / "run.json").read_text())
    return {"epoch_s": statistics.median(times[1:] or times), "rss_mb": info["peak_rss_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_data(folder, args.rows, args.features)
        base = _run(folder, "memory", "memory", 0, args.features, args.epochs)
        rows = [("memory", base)]
        for w in args.workers:
            rows.append((f"streaming, workers {w}", _run(folder, f"stream{w}", "none", w, args.features, args.epochs)))
    print(f"{args.rows} rows x {args.features} float32 ({args.rows * args.features * 4 / 2**20:.0f} MiB), batch 128")
    print("| path | s/epoch | x memory | peak RSS MiB |")
    print("|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['epoch_s']:.3f} | {r['epoch_s'] / base['epoch_s']:.2f} | {r['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
