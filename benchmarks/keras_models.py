"""The workloads as Keras code, for both Keras sides: ``keras_loop.py`` passes Keras 3 (torch
backend), ``tfkeras_loop.py`` passes tf_keras. The two APIs agree on everything used here."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import mnist
import numpy as np


def workload(keras: ModuleType, name: str) -> tuple[np.ndarray, np.ndarray, Any, dict[str, Any]]:
    """(x, y, compiled model, fit arguments) for one workload, the same job as its trainctl config."""
    layers = keras.layers
    if name == "mlp":
        x, y = mnist.mlp_arrays()
        stack = [keras.Input((784,)), layers.Dense(256, activation="sigmoid"), layers.Dense(128, activation="relu")]
        stack.append(layers.Dense(10, activation="softmax"))
        compiled = {"optimizer": keras.optimizers.RMSprop(1e-3), "loss": "categorical_crossentropy"}
        fit_args = {"batch_size": 128, "validation_split": 0.2}
    elif name == "cnn":
        images, y = mnist.cnn_arrays()
        x = images[..., None]  # Keras is channels_last
        stack = [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
        compiled = {"optimizer": keras.optimizers.Adam(1e-3), "loss": "sparse_categorical_crossentropy"}
        fit_args = {"batch_size": 128, "validation_split": 0.2}
    elif name == "lstm":
        rng = np.random.default_rng(0)
        x = rng.integers(0, 1000, (8000, 50))
        y = (rng.random((8000, 1)) > 0.5).astype(np.float32)
        stack = [keras.Input((50,)), layers.Embedding(1000, 32), layers.LSTM(64), layers.Dense(1, activation="sigmoid")]
        compiled = {"optimizer": keras.optimizers.Adam(1e-3), "loss": "binary_crossentropy"}
        fit_args = {"batch_size": 128, "validation_split": 0.2}
    elif name == "tiny":
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
        y = np.array([[0], [1], [1], [0]], dtype=np.float32)
        stack = [keras.Input((2,)), layers.Dense(16, activation="relu"), layers.Dense(1, activation="sigmoid")]
        compiled = {"optimizer": keras.optimizers.Adam(0.05), "loss": "mse"}
        fit_args = {"batch_size": 4}
    else:
        raise ValueError(f"expected mlp, cnn, lstm or tiny, received {name!r}")
    model = keras.Sequential(stack)
    metric = "binary_accuracy" if name == "tiny" else "accuracy"
    model.compile(**compiled, metrics=[metric])  # keywords: compile's positional order differs
    return x, y, model, fit_args


def timed_fit(keras: ModuleType, name: str, epochs: int) -> dict[str, Any]:
    """Runs ``model.fit`` with a callback timing each epoch (validation included) and the first step."""
    x, y, model, fit_args = workload(keras, name)

    class Clock(keras.callbacks.Callback):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.first: float | None = None
            self.start = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.first is None:
                self.first = time.time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.times.append(time.perf_counter() - self.start)

    clock = Clock()
    model.fit(x, y, epochs=epochs, verbose=0, callbacks=[clock], **fit_args)
    train_rows = int(len(x) * (1 - fit_args.get("validation_split", 0.0)))
    steps = -(-train_rows // fit_args["batch_size"])
    return {"epoch_times": clock.times, "first_step_at": clock.first, "steps_per_epoch": steps}
