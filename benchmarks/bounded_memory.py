"""Bounded memory (issue 10, "Done means"): peak RSS of training does not grow with the data.

    python benchmarks/bounded_memory.py images [--small 10000] [--large 60000] [--epochs 1]
    python benchmarks/bounded_memory.py npy [--repeat 17] [--skip-memory]

``images``: the same CNN config (``data.cache: none``: PNGs decoded per batch) trained on a
Fashion-MNIST PNG folder of ``--small`` and of ``--large`` training files (written by
``make_image_folder.py --limit``); prints both peaks and their ratio (goal: within 1.2x).

``npy``: an MLP on a float32 ``.npy`` table of ``--repeat`` copies of the 60k Fashion-MNIST rows
(17 copies: 1.02M rows, 3.2 GB; written by ``make_npy_table.py --shards 1``), one epoch streamed
(``data.cache: none``; goal: peak RSS under 1.5 GB), then the same rows with ``data.cache: memory``
unless ``--skip-memory``; prints both peaks and the difference of the first-epoch losses (goal:
within 1e-5).

Each run is a fresh ``trainctl train`` child with ``workers: 0`` (the main process reads every
row, so its ``ru_maxrss``, which run.json records as ``peak_rss_mb``, covers the data) and
``threads: 1``. The data is written by a separate child first, since ``ru_maxrss`` survives
fork+exec. Prints a Markdown table. Needs $TRAINCTL_DATA_DIR (the shared IDX files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CNN = """# python benchmarks/bounded_memory.py images
seed: 1
threads: 1
data: {{source: image_directory, directory: {folder}, color_mode: grayscale, image_size: [28, 28],
        x: [{{scale: 255}}], cache: none, workers: 0}}
model:
  layers:
    - {{type: InputLayer, shape: [28, 28, 1]}}
    - {{type: RandomFlip, mode: horizontal}}
    - {{type: Conv2D, filters: 16, kernel_size: 3, activation: relu}}
    - {{type: MaxPooling2D}}
    - {{type: Flatten}}
    - {{type: Dense, units: 10, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
fit: {{epochs: {epochs}, batch_size: 128}}
"""

MLP = """# python benchmarks/bounded_memory.py npy
seed: 1
threads: 1
data: {{source: npy, x: {folder}/x_train_000.npy, y: {folder}/y_train_000.npy, x_steps: [{{scale: 255}}],
        cache: {cache}, workers: 0}}
model:
  layers:
    - {{type: Dense, units: 128, activation: relu, input_shape: [784]}}
    - {{type: Dense, units: 10, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
fit: {{epochs: 1, batch_size: 256}}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _make(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], check=True, env=_env())


def _train(config: str, work: Path, name: str) -> dict:
    cfg = work / f"{name}.yaml"
    cfg.write_text(config)
    runs = work / f"runs-{name}"
    proc = subprocess.run(
        [sys.executable, "-m", "trainctl", "train", str(cfg), "--runs-dir", str(runs), "--json"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    run = next(runs.iterdir())
    info = json.loads((run / "run.json").read_text())
    history = json.loads((run / "history.json").read_text())
    return {"peak_rss_mb": info["peak_rss_mb"], "cache": info["data"]["cache"], "loss": history["loss"][0]}


def images(args: argparse.Namespace, work: Path) -> None:
    out = {}
    for n in (args.small, args.large):
        folder = work / f"png{n}"
        _make("make_image_folder.py", str(folder), "--limit", str(n))
        out[n] = _train(CNN.format(folder=folder / "train", epochs=args.epochs), work, f"cnn{n}")
    small, large = out[args.small], out[args.large]
    sys.stdout.write("| training files | data.cache | peak RSS (MB) |\n|---|---|---|\n")
    for n, r in out.items():
        sys.stdout.write(f"| {n:,} | {r['cache']} | {r['peak_rss_mb']:.0f} |\n")
    sys.stdout.write(f"\nratio large/small: {large['peak_rss_mb'] / small['peak_rss_mb']:.3f} (goal <= 1.2)\n")


def npy(args: argparse.Namespace, work: Path) -> None:
    folder = work / "table"
    _make("make_npy_table.py", str(folder), "--shards", "1", "--repeat", str(args.repeat))
    size = (folder / "x_train_000.npy").stat().st_size
    rows = {"none": _train(MLP.format(folder=folder, cache="none"), work, "stream")}
    if not args.skip_memory:
        rows["memory"] = _train(MLP.format(folder=folder, cache="memory"), work, "memory")
    sys.stdout.write(f"x_train: {size / 1e9:.2f} GB float32\n\n")
    sys.stdout.write("| data.cache | peak RSS (MB) | first-epoch loss |\n|---|---|---|\n")
    for cache, r in rows.items():
        sys.stdout.write(f"| {cache} ({r['cache']}) | {r['peak_rss_mb']:.0f} | {r['loss']!r} |\n")
    if "memory" in rows:
        diff = abs(rows["none"]["loss"] - rows["memory"]["loss"])
        sys.stdout.write(f"\n|loss(none) - loss(memory)| = {diff:.3g} (goal <= 1e-5)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p_img = sub.add_parser("images")
    p_img.add_argument("--small", type=int, default=10000)
    p_img.add_argument("--large", type=int, default=60000)
    p_img.add_argument("--epochs", type=int, default=1)
    p_npy = sub.add_parser("npy")
    p_npy.add_argument("--repeat", type=int, default=17)
    p_npy.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trainctl-bounded-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (images if args.what == "images" else npy)(args, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
