"""Comparison (c): the same workloads in Keras 3 on the torch backend (optional: needs keras)."""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mlp", "tiny", "cnn", "lstm"])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import keras
    from keras_models import timed_fit

    keras.utils.set_random_seed(0)
    print(json.dumps(timed_fit(keras, args.workload, args.epochs)))


if __name__ == "__main__":
    main()
