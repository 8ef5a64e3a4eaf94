"""Baseline (b): the minimal hand-written PyTorch loop doing the same work as a trainctl config.

Same data, model, Keras initialisation (glorot_uniform kernels, zero biases), optimizer, batch size,
per-epoch shuffle, metric and end-of-epoch validation. It reads MNIST through ``mnist.py``, the
numpy reader every benchmark side shares, and shares no code with trainctl. Prints one JSON line:
epoch times, first-step time.
"""

from __future__ import annotations

import argparse
import json
import time

import mnist
import torch
from torch import nn


def keras_dense(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    limit = (6.0 / (n_in + n_out)) ** 0.5
    nn.init.uniform_(layer.weight, -limit, limit)
    nn.init.zeros_(layer.bias)
    return layer


def mlp_data() -> tuple[torch.Tensor, ...]:
    x, y = (torch.from_numpy(a) for a in mnist.mlp_arrays())
    split = int(len(x) * 0.8)  # Keras validation_split: the last 20 % before shuffling
    return x[:split], y[:split], x[split:], y[split:]


def run_mlp(epochs: int) -> dict:
    xt, yt, xv, yv = mlp_data()
    model = nn.Sequential(keras_dense(784, 256), nn.Sigmoid(), keras_dense(256, 128), nn.ReLU(), keras_dense(128, 10))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7, foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    return fit(
        model,
        opt,
        lambda out, y: loss_fn(out, y),
        lambda out, y: (out.argmax(1) == y.argmax(1)).sum(),
        xt,
        yt,
        xv,
        yv,
        epochs,
        128,
    )


def cnn_data() -> tuple[torch.Tensor, ...]:
    images, labels = mnist.cnn_arrays()
    x = torch.from_numpy(images).unsqueeze(1)  # NCHW, as torch code is written
    y = torch.from_numpy(labels)
    split = int(len(x) * 0.8)
    return x[:split], y[:split], x[split:], y[split:]


def run_cnn(epochs: int) -> dict:
    xt, yt, xv, yv = cnn_data()

    def conv(c_in: int, c_out: int) -> nn.Conv2d:
        layer = nn.Conv2d(c_in, c_out, 3)
        limit = (6.0 / (9 * c_in + 9 * c_out)) ** 0.5
        nn.init.uniform_(layer.weight, -limit, limit)
        nn.init.zeros_(layer.bias)
        return layer

    model = nn.Sequential(
        conv(1, 32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        conv(32, 64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        keras_dense(1600, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    return fit(model, opt, loss_fn, lambda out, y: (out.argmax(1) == y).sum(), xt, yt, xv, yv, epochs, 128)


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 32)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)
        self.lstm = nn.LSTM(32, 64, batch_first=True)
        self.out = keras_dense(64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.emb(x))
        return self.out(h[-1])


def run_lstm(epochs: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 1000, (8000, 50), generator=gen)
    y = (torch.rand(8000, 1, generator=gen) > 0.5).float()
    split = int(len(x) * 0.8)
    model = LSTMNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, foreach=True)
    loss_fn = nn.BCEWithLogitsLoss()
    return fit(
        model,
        opt,
        loss_fn,
        lambda out, t: ((out > 0).float() == t).sum(),
        x[:split],
        y[:split],
        x[split:],
        y[split:],
        epochs,
        128,
    )


def run_tiny(epochs: int) -> dict:
    x = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float32)
    y = torch.tensor([[0], [1], [1], [0]], dtype=torch.float32)
    model = nn.Sequential(keras_dense(2, 16), nn.ReLU(), keras_dense(16, 1), nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=0.05, eps=1e-7, foreach=True)
    return fit(
        model,
        opt,
        lambda out, t: ((out - t) ** 2).mean(),
        lambda out, t: ((out > 0.5).float() == t).sum(),
        x,
        y,
        None,
        None,
        epochs,
        4,
    )


def fit(model, opt, loss_fn, correct_fn, xt, yt, xv, yv, epochs: int, bs: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    times, first = [], None
    n = len(xt)
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        total = torch.zeros(())
        hits = torch.zeros(())
        for idx_b in torch.randperm(n, generator=gen).split(bs):
            xb, yb = xt.index_select(0, idx_b), yt.index_select(0, idx_b)
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if first is None:
                first = time.time()
            with torch.no_grad():
                total += loss.detach() * len(xb)
                hits += correct_fn(out, yb)
        logs = {"loss": float(total) / n, "acc": float(hits) / n}
        if xv is not None:
            model.eval()
            with torch.inference_mode():
                vl, vh = torch.zeros(()), torch.zeros(())
                for i in range(0, len(xv), bs):
                    out = model(xv[i : i + bs])
                    vl += loss_fn(out, yv[i : i + bs]) * len(out)
                    vh += correct_fn(out, yv[i : i + bs])
            logs |= {"val_loss": float(vl) / len(xv), "val_acc": float(vh) / len(xv)}
        times.append(time.perf_counter() - start)
    return {"epoch_times": times, "first_step_at": first, "steps_per_epoch": -(-n // bs), "logs": logs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mlp", "tiny", "cnn", "lstm"])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"mlp": run_mlp, "tiny": run_tiny, "cnn": run_cnn, "lstm": run_lstm}[args.workload](args.epochs)
    print(json.dumps(result))
