"""The synthetic ``sequences`` task and ``configs/sequence_lstm.yaml`` trained end to end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from trainctl.config.data import Data
from trainctl.data import load_data
from trainctl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def load(seed: int = 0, **fields: Any) -> Any:
    spec = TypeAdapter(Data).validate_python({"source": "synthetic", "kind": "sequences", **fields})
    return load_data(spec, base_dir=Path("."), seed=seed)


def test_sequences_are_pre_padded_token_ids_labelled_by_counting() -> None:
    ds = load(n=300, features=12, classes=6)
    x, y = ds.x_train, ds.y_train
    assert x.shape == (300, 12) and x.dtype == np.float32  # float32 ids unless cast, as any x
    assert y.shape == (300, 1) and ds.task_hint == "classification" and ds.class_names == ["0", "1"]
    lengths = []
    for row, label in zip(x.astype(int), y[:, 0], strict=True):
        tokens = [int(t) for t in row]
        start = next((i for i, t in enumerate(tokens) if t != 0), len(tokens))
        assert all(t == 0 for t in tokens[:start]) and all(1 <= t <= 5 for t in tokens[start:])  # pre-padding
        lengths.append(len(tokens) - start)
        counts = Counter(tokens[start:])
        assert label == float(counts[1] > counts[2])
    assert min(lengths) >= 6 and max(lengths) == 12  # from half the length to all of it
    assert 0.25 < y.mean() < 0.6  # both labels well represented


def test_sequences_defaults_seed_and_cast() -> None:
    ds = load(n=50)
    assert ds.x_train.shape == (50, 30) and ds.x_train.max() <= 9  # length 30, vocabulary 10 by default
    np.testing.assert_array_equal(load(n=50).x_train, ds.x_train)  # deterministic from the seed
    assert not np.array_equal(load(seed=1, n=50).x_train, ds.x_train)
    ints = load(n=50, x=[{"cast": "int64"}])
    assert ints.x_train.dtype == np.int64
    np.testing.assert_array_equal(ints.x_train, ds.x_train)


def test_sequences_need_tokens_one_and_two() -> None:
    with pytest.raises(ConfigError) as exc:
        load(n=10, classes=2)
    assert exc.value.key == "data.classes"


def test_sequence_lstm_config_learns_the_task(cli: Any) -> None:
    """A small slice of the shipped config beats always answering the majority class by far."""
    out = cli.train_json(ROOT / "configs" / "sequence_lstm.yaml", "data.n=800", "fit.epochs=6")
    assert out["status"] == "completed"
    test = load(n=800, test_split=0.2, x=[{"cast": "int64"}]).y_test  # the config's own data and split
    majority = max(test.mean(), 1 - test.mean())
    assert out["metrics"]["test"]["accuracy"] > majority + 0.15
