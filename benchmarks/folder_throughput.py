"""An epoch over a PNG folder: trainctl against tf-keras's ``image_dataset_from_directory`` + ``fit``,
with the same model, on the same folder and with the same core budget, as ratios in one run.

    TRAINCTL_BENCH_TF_PYTHON=/work/tfvenv/bin/python \\
        python benchmarks/folder_throughput.py [FOLDER] [--epochs 2] [--threads 2]

``FOLDER`` (default ``configs/data/fashion_mnist_png/train``; ``make_image_folder.py`` writes it)
holds class sub-folders of grayscale 28x28 PNGs. Both sides train the augmented folder CNN
(RandomFlip, RandomTranslation, two Conv2D/MaxPooling2D, Dense 128, Dropout, Dense 10), batch 128,
for ``--epochs`` epochs, with ``--threads`` intra-op threads (tf-keras: also the inter-op and
tf.data thread pools). Reported: wall time from start to the end of fit (trainctl: the whole
``trainctl train`` process, decoding included; tf-keras: the dataset, the model and fit), and the
last epoch alone. trainctl decodes the folder once into memory (``data.cache: auto``); tf-keras
decodes every epoch, as ``image_dataset_from_directory`` does without ``.cache()``.
``TRAINCTL_BENCH_TF_PYTHON`` names a Python with ``tensorflow`` and ``tf_keras`` (a separate venv:
TensorFlow is far too big to be a dependency). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = [sys.executable, "-m", "trainctl", "train"]

CONFIG = """# python benchmarks/folder_throughput.py
seed: 1
data: {{source: image_directory, directory: {folder}, color_mode: grayscale, image_size: [28, 28],
        x: [{{scale: 255}}]}}
model:
  layers:
    - {{type: InputLayer, shape: [28, 28, 1]}}
    - {{type: RandomFlip, mode: horizontal}}
    - {{type: RandomTranslation, height_factor: 0.05, width_factor: 0.05, fill_mode: constant}}
    - {{type: Conv2D, filters: 32, kernel_size: 3, activation: relu}}
    - {{type: MaxPooling2D}}
    - {{type: Conv2D, filters: 64, kernel_size: 3, activation: relu}}
    - {{type: MaxPooling2D}}
    - {{type: Flatten}}
    - {{type: Dense, units: 128, activation: relu}}
    - {{type: Dropout, rate: 0.3}}
    - {{type: Dense, units: 10, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
fit: {{epochs: {epochs}, batch_size: 128}}
"""

TF = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
t0 = time.perf_counter()
folder, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
import tf_keras as keras
keras.utils.set_random_seed(1)
ds = keras.utils.image_dataset_from_directory(
    folder, color_mode="grayscale", image_size=(28, 28), batch_size=128, seed=1)
options = tf.data.Options()
options.threading.private_threadpool_size = threads
ds = ds.map(lambda x, y: (x / 255.0, y)).prefetch(2).with_options(options)
L = keras.layers
model = keras.Sequential([
    keras.Input((28, 28, 1)),
    L.RandomFlip("horizontal"),
    L.RandomTranslation(0.05, 0.05, fill_mode="constant"),
    L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
    L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(),
    L.Flatten(), L.Dense(128, activation="relu"), L.Dropout(0.3), L.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.t)
model.fit(ds, epochs=epochs, verbose=0, callbacks=[T()])
print(json.dumps({"total": time.perf_counter() - t0, "epochs": times}))
"""


def trainctl(folder: Path, epochs: int, threads: int, work: Path) -> dict:
    cfg = work / "cfg.yaml"
    cfg.write_text(CONFIG.format(folder=folder, epochs=epochs))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*TRAIN, str(cfg), "--runs-dir", str(work / "runs"), "--json", "--threads", str(threads)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"trainctl: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    run = Path(json.loads(proc.stdout)["run_dir"])
    history = json.loads((run / "history.json").read_text())
    return {"total": total, "epochs": history["epoch_time"]}


def tfkeras(python: str, folder: Path, epochs: int, threads: int) -> dict:
    proc = subprocess.run([python, "-c", TF, str(folder), str(epochs), str(threads)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tf-keras: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT / "configs/data/fashion_mnist_png/train")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    python = os.environ.get("TRAINCTL_BENCH_TF_PYTHON")
    if not python:
        raise SystemExit("set TRAINCTL_BENCH_TF_PYTHON to a Python with tensorflow and tf_keras")
    files = sum(1 for _ in args.folder.rglob("*.png"))
    with tempfile.TemporaryDirectory(prefix="trainctl-folder-") as tmp:
        ours = trainctl(args.folder.resolve(), args.epochs, args.threads, Path(tmp))
    theirs = tfkeras(python, args.folder.resolve(), args.epochs, args.threads)
    sys.stdout.write(f"{files:,} PNGs, {args.epochs} epochs, {args.threads} threads\n\n")
    sys.stdout.write("| | trainctl (s) | tf-keras (s) | ratio trainctl / tf-keras |\n|---|---|---|---|\n")
    rows = [(f"start to end of {args.epochs} epochs", ours["total"], theirs["total"])]
    rows += [(f"epoch {i + 1}", a, b) for i, (a, b) in enumerate(zip(ours["epochs"], theirs["epochs"], strict=True))]
    for label, a, b in rows:
        sys.stdout.write(f"| {label} | {a:.1f} | {b:.1f} | {a / b:.2f} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
