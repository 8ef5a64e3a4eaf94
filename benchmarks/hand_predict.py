"""Baseline (b) for the predict workload: load the run's Keras weights with h5py into a plain torch
MLP, read the .npy input, run it in batches under inference_mode and save the outputs with numpy."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn


def main() -> None:
    run, source, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    layers: list[nn.Module] = []
    with h5py.File(run / "model.weights.h5", "r") as f:
        for i, act in enumerate([nn.Sigmoid(), nn.ReLU(), nn.Softmax(dim=1)]):
            group = f["layers/dense" + (f"_{i}" if i else "") + "/vars"]
            kernel, bias = torch.from_numpy(group["0"][()]), torch.from_numpy(group["1"][()])
            linear = nn.Linear(*kernel.shape)
            linear.weight.data, linear.bias.data = kernel.T.contiguous(), bias
            layers += [linear, act]
    model = nn.Sequential(*layers).eval()
    x = np.load(source, mmap_mode="r")
    first = None
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), 1024):
            batch = torch.from_numpy(np.asarray(x[i : i + 1024], dtype=np.float32).reshape(-1, 784) / 255.0)
            out.append(model(batch).numpy())
            if first is None:
                first = time.time()
    np.save(target, np.concatenate(out))
    print(first)


if __name__ == "__main__":
    main()
