"""Comparison (c): the same workloads in Keras 3 on the torch backend (optional: needs keras)."""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mlp", "tiny", "cnn", "lstm"])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import keras
    from hand_loop import cnn_data, mlp_data

    keras.utils.set_random_seed(0)
    if args.workload == "mlp":
        xt, yt, xv, yv = (t.numpy() for t in mlp_data())
        x, y = np.concatenate([xt, xv]), np.concatenate([yt, yv])
        model = keras.Sequential(
            [
                keras.Input((784,)),
                keras.layers.Dense(256, activation="sigmoid"),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
        fit_args = {"batch_size": 128, "validation_split": 0.2}
    elif args.workload == "cnn":
        xt, yt, xv, yv = (t.numpy() for t in cnn_data())
        x = np.concatenate([xt, xv]).transpose(0, 2, 3, 1)  # Keras is channels_last
        y = np.concatenate([yt, yv])
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
        fit_args = {"batch_size": 128, "validation_split": 0.2}
    elif args.workload == "lstm":
        rng = np.random.default_rng(0)
        x = rng.integers(0, 1000, (8000, 50))
        y = (rng.random((8000, 1)) > 0.5).astype(np.float32)
        model = keras.Sequential(
            [
                keras.Input((50,)),
                keras.layers.Embedding(1000, 32),
                keras.layers.LSTM(64),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
        fit_args = {"batch_size": 128, "validation_split": 0.2}
    else:
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
        y = np.array([[0], [1], [1], [0]], dtype=np.float32)
        model = keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["binary_accuracy"])
        fit_args = {"batch_size": 4}

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.first: float | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.first is None:
                self.first = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    clock = Clock()
    model.fit(x, y, epochs=args.epochs, verbose=0, callbacks=[clock], **fit_args)
    steps = -(-int(len(x) * (1.0 if args.workload == "tiny" else 0.8)) // fit_args["batch_size"])
    print(json.dumps({"epoch_times": clock.times, "first_step_at": clock.first, "steps_per_epoch": steps}))


if __name__ == "__main__":
    main()
