"""Comparison (c) for the predict workload: Keras 3 (torch backend) loads the run's model.json and
model.weights.h5 and runs ``model.predict`` over the same .npy input, then saves with numpy."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")


def main() -> None:
    run, source, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    import numpy as np
    import torch

    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    import keras

    model = keras.models.model_from_json((run / "model.json").read_text())
    model.load_weights(run / "model.weights.h5")
    x = np.load(source, mmap_mode="r")
    out = model.predict(np.asarray(x, dtype=np.float32) / 255.0, batch_size=1024, verbose=0)
    np.save(target, out)
    print(time.time())


if __name__ == "__main__":
    main()
