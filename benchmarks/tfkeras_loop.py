"""Optional comparison: the same workloads in TF-Keras 2 (tf_keras on TensorFlow's CPU kernels).

Run by ``run.py`` only when ``TRAINCTL_BENCH_TF_PYTHON`` names a Python that has ``tf_keras``
(TensorFlow is far too big to be a test dependency). Needs numpy only besides TensorFlow.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def idx(path: Path):
    import numpy as np

    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mlp", "cnn"])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    root = Path(os.environ["TRAINCTL_DATA_DIR"]) / "mnist"
    images, labels = idx(root / "train-images-idx3-ubyte.gz"), idx(root / "train-labels-idx1-ubyte.gz")
    if args.workload == "cnn":
        x = images[:12000].astype(np.float32)[..., None] / 255.0
        y = labels[:12000].astype(np.int64)
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(32, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Conv2D(64, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    else:
        x = images.reshape(-1, 784).astype(np.float32) / 255.0
        y = np.eye(10, dtype=np.float32)[labels]
        model = keras.Sequential(
            [
                keras.Input((784,)),
                keras.layers.Dense(256, activation="sigmoid"),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])

    class Clock(keras.callbacks.Callback):
        times: list[float] = []
        first: float | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.first is None:
                self.first = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    clock = Clock()
    model.fit(x, y, epochs=args.epochs, batch_size=128, validation_split=0.2, verbose=0, callbacks=[clock])
    steps = -(-int(len(x) * 0.8) // 128)
    print(json.dumps({"epoch_times": clock.times, "first_step_at": clock.first, "steps_per_epoch": steps}))


if __name__ == "__main__":
    main()
