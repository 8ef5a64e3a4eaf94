"""Writes the two .npz files of configs/wine_wide_deep.yaml and configs/wine_two_heads.yaml from
scikit-learn's bundled wine table (178 rows, 13 features, 3 cultivars; no download).

    python configs/data/make_wine_npz.py

Rows are shuffled with seed 1 (seed 0 happens to leave a hard 36-row test set); the last 36 are
the test split. Features are standardized with the training rows' mean and std (the arrays are
stored ready to use: several-input models take no preprocessing steps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine

HERE = Path(__file__).resolve().parent


def main() -> None:
    bunch = load_wine()
    order = np.random.default_rng(1).permutation(len(bunch.target))
    x = bunch.data[order].astype(np.float32)
    y = bunch.target[order].astype(np.int64)
    n_train = len(y) - 36
    mean, std = x[:n_train].mean(0), x[:n_train].std(0)
    z = ((x - mean) / std).astype(np.float32)
    tr, te = slice(0, n_train), slice(n_train, None)
    # two inputs: a "wide" linear view of 6 columns and a "deep" view of the other 7
    np.savez(
        HERE / "wine_wide_deep.npz",
        x_train_wide=z[tr, :6], x_train_deep=z[tr, 6:], y_train=y[tr],
        x_test_wide=z[te, :6], x_test_deep=z[te, 6:], y_test=y[te],
    )  # fmt: skip
    # two outputs: the cultivar (class) and the alcohol content (column 0, standardized) from the other 12
    np.savez(
        HERE / "wine_two_heads.npz",
        x_train=z[tr, 1:], y_train_cultivar=y[tr], y_train_alcohol=z[tr, :1],
        x_test=z[te, 1:], y_test_cultivar=y[te], y_test_alcohol=z[te, :1],
    )  # fmt: skip


if __name__ == "__main__":
    main()
