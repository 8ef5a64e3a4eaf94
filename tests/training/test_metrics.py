"""Streaming metrics against scikit-learn, real Keras (torch backend) and hand-computed values."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from sklearn import metrics as skm

from trainctl.config.compile import Metric as MetricField
from trainctl.errors import ConfigError, DataError
from trainctl.training.metrics import Metric, build_metrics, resolve_accuracy

os.environ.setdefault("KERAS_BACKEND", "torch")

RNG = np.random.default_rng(7)
N, C = 301, 6
BATCHES = [7, 64, 1, 100, 129]  # uneven, summing to N


def make(value: Any, y_true_shape: tuple, y_pred_shape: tuple) -> Metric:
    specs = [TypeAdapter(MetricField).validate_python(value)]
    (metric,) = build_metrics(
        specs, None, y_true_shape=y_true_shape, y_pred_shape=y_pred_shape, final_activation="linear"
    )
    return metric


def stream(metric: Metric, y_pred: np.ndarray, y_true: np.ndarray, weight: np.ndarray | None = None) -> float:
    start = 0
    for size in BATCHES:
        part = slice(start, start + size)
        w = None if weight is None else torch.from_numpy(weight[part])
        metric.update(torch.from_numpy(y_pred[part]), torch.from_numpy(y_true[part]), w)
        start += size
    assert start == len(y_pred)
    return metric.result()


def batch_means(fn: Any, y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """The wrong answer (a mean of per-batch values), to show a test can tell them apart."""
    edges = np.cumsum([0, *BATCHES])
    return float(np.mean([fn(y_true[a:b], y_pred[a:b]) for a, b in itertools.pairwise(edges)]))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def classification_data() -> tuple[np.ndarray, np.ndarray]:
    labels = RNG.integers(0, C, N)
    z = RNG.normal(size=(N, C)) + 1.2 * np.eye(C)[labels]
    return labels, softmax(z)


# --- accuracies -----------------------------------------------------------------------------


def test_sparse_categorical_accuracy_is_exact_over_the_epoch() -> None:
    labels, p = classification_data()
    got = stream(make("sparse_categorical_accuracy", (N,), (N, C)), p, labels)
    want = skm.accuracy_score(labels, p.argmax(1))
    assert got == pytest.approx(want, abs=1e-12)
    # streaming must not be a mean of batch means, which differs on uneven batches
    assert abs(batch_means(lambda t, q: skm.accuracy_score(t, q.argmax(1)), p, labels) - want) > 1e-3


def test_categorical_accuracy_with_sample_weights() -> None:
    labels, p = classification_data()
    onehot = np.eye(C, dtype=np.float32)[labels]
    w = RNG.uniform(0, 2, N).astype(np.float32)
    got = stream(make("categorical_accuracy", (N, C), (N, C)), p, onehot, w)
    assert got == pytest.approx(skm.accuracy_score(labels, p.argmax(1), sample_weight=w), rel=1e-6)


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_accuracy(threshold: float) -> None:
    y = RNG.integers(0, 2, (N, 1)).astype(np.float32)
    p = RNG.uniform(size=(N, 1)).astype(np.float32) * 0.7 + 0.3 * y
    metric = make({"type": "binary_accuracy", "threshold": threshold}, (N, 1), (N, 1))
    assert metric.name == "binary_accuracy"
    got = stream(metric, p, y)
    assert got == pytest.approx(skm.accuracy_score(y[:, 0], p[:, 0] > threshold), abs=1e-12)


@pytest.mark.parametrize(
    ("y_true_shape", "y_pred_shape", "sklearn_truth"),
    [
        ((N, 1), (N, 1), "binary"),
        ((N,), (N, C), "sparse"),
        ((N, 1), (N, C), "sparse"),
        ((N, C), (N, C), "onehot"),
    ],
)
def test_accuracy_resolves_from_shapes(y_true_shape: tuple, y_pred_shape: tuple, sklearn_truth: str) -> None:
    labels, p = classification_data()
    if sklearn_truth == "binary":
        y, p = (labels % 2).reshape(N, 1).astype(np.float32), p[:, :1] * 2
        want = skm.accuracy_score(y[:, 0], p[:, 0] > 0.5)
    else:
        y = np.eye(C, dtype=np.float32)[labels] if sklearn_truth == "onehot" else labels.reshape(y_true_shape)
        want = skm.accuracy_score(labels, p.argmax(1))
    metric = make("acc", y_true_shape, y_pred_shape)
    assert metric.name == "acc"  # a bare string keeps the user's spelling, as in Keras
    assert stream(metric, p, y) == pytest.approx(want, abs=1e-12)


def test_resolve_accuracy_rules() -> None:
    # keras-format.md section 4: last dim 1 -> binary; rank lower or last dim 1 -> sparse; else categorical
    assert resolve_accuracy((None, 1), (None, 1)) == "binary_accuracy"
    assert resolve_accuracy((None,), (None, 1)) == "binary_accuracy"
    assert resolve_accuracy((None, 5), (None, 1)) == "binary_accuracy"
    assert resolve_accuracy((None,), (None, 10)) == "sparse_categorical_accuracy"
    assert resolve_accuracy((None, 1), (None, 10)) == "sparse_categorical_accuracy"
    assert resolve_accuracy((None, 7), (None, 7, 10)) == "sparse_categorical_accuracy"
    assert resolve_accuracy((None, 10), (None, 10)) == "categorical_accuracy"
    # multi-label sigmoid with binary_crossentropy still gets categorical accuracy (verified in Keras)
    assert resolve_accuracy((None, 3), (None, 3)) == "categorical_accuracy"


def test_multilabel_binary_accuracy_with_weights_matches_keras() -> None:
    keras = pytest.importorskip("keras")
    y = RNG.integers(0, 2, (N, 4)).astype(np.float32)
    p = RNG.uniform(size=(N, 4)).astype(np.float32)
    w = RNG.uniform(0, 2, N).astype(np.float32)
    ref = keras.metrics.BinaryAccuracy()
    start = 0
    for size in BATCHES:
        ref.update_state(y[start : start + size], p[start : start + size], sample_weight=w[start : start + size])
        start += size
    got = stream(make("binary_accuracy", (N, 4), (N, 4)), p, y, w)
    assert got == pytest.approx(float(ref.result()), rel=1e-6)


def test_top_k_by_hand() -> None:
    p = np.array(
        [
            [0.1, 0.5, 0.4, 0.0],  # label 2: rank 2 -> hit for k=2
            [0.3, 0.3, 0.4, 0.0],  # label 1: ties with the 2nd largest -> hit (Keras counts ties)
            [0.1, 0.2, 0.3, 0.4],  # label 0: rank 4 -> miss
            [0.7, 0.1, 0.1, 0.1],  # label 0: rank 1 -> hit
            [0.2, 0.2, 0.5, 0.1],  # label 3: rank 4 -> miss
        ],
        dtype=np.float32,
    )
    labels = np.array([2, 1, 0, 0, 3])
    sparse = make({"type": "sparse_top_k_categorical_accuracy", "k": 2}, (5,), (5, 4))
    dense = make({"type": "top_k_categorical_accuracy", "k": 2}, (5, 4), (5, 4))
    for metric, y in ((sparse, labels), (dense, np.eye(4, dtype=np.float32)[labels])):
        metric.update(torch.from_numpy(p[:2]), torch.from_numpy(y[:2]))
        metric.update(torch.from_numpy(p[2:]), torch.from_numpy(y[2:]))
        assert metric.result() == pytest.approx(3 / 5)
    # k at least the number of classes: always a hit
    wide = make({"type": "sparse_top_k_categorical_accuracy", "k": 9}, (5,), (5, 4))
    wide.update(torch.from_numpy(p), torch.from_numpy(labels))
    assert wide.result() == 1.0


def test_top_k_default_name_and_random_ranks() -> None:
    labels, p = classification_data()
    metric = make({"type": "top_k_categorical_accuracy", "k": 3}, (N, C), (N, C))
    assert metric.name == "top_k_categorical_accuracy"
    # hit iff fewer than k classes score strictly higher than the true class
    higher = (p > p[np.arange(N), labels][:, None]).sum(1)
    assert stream(metric, p, np.eye(C, dtype=np.float32)[labels]) == pytest.approx(np.mean(higher < 3))


# --- regression metrics ---------------------------------------------------------------------


def test_rmse_mse_mae_match_sklearn() -> None:
    y = RNG.normal(size=(N, 3)).astype(np.float32)
    p = (y + RNG.normal(scale=0.5, size=(N, 3))).astype(np.float32)
    rmse = make("root_mean_squared_error", (N, 3), (N, 3))
    assert rmse.name == "root_mean_squared_error"
    assert stream(rmse, p, y) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), rel=1e-6)
    assert stream(make("mse", (N, 3), (N, 3)), p, y) == pytest.approx(skm.mean_squared_error(y, p), rel=1e-6)
    mae = make({"type": "mean_absolute_error"}, (N, 3), (N, 3))
    assert mae.name == "mean_absolute_error"
    assert stream(mae, p, y) == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-6)


def test_weighted_rmse_with_rank_one_targets() -> None:
    y = RNG.normal(size=N).astype(np.float32)
    p = RNG.normal(size=(N, 1)).astype(np.float32)
    w = RNG.uniform(0, 2, N).astype(np.float32)
    got = stream(make("rmse", (N,), (N, 1)), p, y, w)
    assert got == pytest.approx(np.sqrt(skm.mean_squared_error(y, p[:, 0], sample_weight=w)), rel=1e-6)


# --- precision / recall ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["precision", "recall"])
def test_binary_precision_recall_match_sklearn(kind: str) -> None:
    score = skm.precision_score if kind == "precision" else skm.recall_score
    y = RNG.integers(0, 2, (N, 1)).astype(np.float32)
    p = RNG.uniform(size=(N, 1)).astype(np.float32) * 0.8 + 0.2 * y
    w = RNG.uniform(0, 2, N).astype(np.float32)
    metric = make(kind, (N, 1), (N, 1))
    assert metric.name == kind
    assert stream(metric, p, y) == pytest.approx(score(y[:, 0], p[:, 0] > 0.5), rel=1e-9)
    metric.reset()
    assert metric.result() == 0.0
    assert stream(metric, p, y, w) == pytest.approx(score(y[:, 0], p[:, 0] > 0.5, sample_weight=w), rel=1e-6)
    at = make({"type": kind, "thresholds": 0.7}, (N,), (N, 1))  # rank-1 targets are aligned
    assert stream(at, p, y[:, 0]) == pytest.approx(score(y[:, 0], p[:, 0] > 0.7), rel=1e-9)


@pytest.mark.parametrize("kind", ["precision", "recall"])
def test_precision_recall_with_class_id_and_top_k(kind: str) -> None:
    score = skm.precision_score if kind == "precision" else skm.recall_score
    labels, p = classification_data()
    onehot = np.eye(C, dtype=np.float32)[labels]
    got = stream(make({"type": kind, "class_id": 2}, (N, C), (N, C)), p, onehot)
    assert got == pytest.approx(score(labels == 2, p[:, 2] > 0.5), rel=1e-9)
    # top_k=1 and no threshold: each sample predicts exactly its arg-max class
    top1 = np.eye(C)[p.argmax(1)]
    got = stream(make({"type": kind, "top_k": 1}, (N, C), (N, C)), p, onehot)
    assert got == pytest.approx(score(onehot, top1, average="micro"), rel=1e-9)
    # integer labels against a softmax output are scored as their one-hot encoding
    got = stream(make({"type": kind, "name": "p"}, (N,), (N, C)), p, labels)
    assert got == pytest.approx(score(onehot, p > 0.5, average="micro"), rel=1e-9)


# --- AUC ------------------------------------------------------------------------------------


def _scores(y: np.ndarray) -> np.ndarray:
    p = np.clip(0.35 * y + RNG.uniform(0, 0.65, y.shape), 0, 1).astype(np.float32)
    p[:5], p[5:10], p[10:15] = 0.0, 1.0, 0.5  # the edges and an exact threshold
    return p


def _keras_stream(metric: Any, y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> float:
    start = 0
    for size in BATCHES:
        part = slice(start, start + size)
        metric.update_state(y[part], p[part], sample_weight=None if w is None else w[part])
        start += size
    return float(metric.result())


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"curve": "PR"},
        {"summation_method": "minoring"},
        {"summation_method": "majoring", "curve": "PR"},
        {"num_thresholds": 7},
    ],
    ids=str,
)
def test_auc_matches_keras_and_sklearn(kw: dict) -> None:
    keras = pytest.importorskip("keras")
    y = RNG.integers(0, 2, (N, 1)).astype(np.float32)
    p = _scores(y)
    w = RNG.uniform(0, 2, N).astype(np.float32)
    for weight in (None, w):
        got = stream(make({"type": "auc", **kw}, (N, 1), (N, 1)), p, y, weight)
        assert got == pytest.approx(_keras_stream(keras.metrics.AUC(**kw), y, p, weight), rel=1e-4)
    if not kw:
        ours = stream(make("auc", (N, 1), (N, 1)), p, y)
        assert ours == pytest.approx(skm.roc_auc_score(y[:, 0], p[:, 0]), abs=1e-2)


@pytest.mark.parametrize("multi_label", [False, True])
def test_multi_column_auc_matches_keras(multi_label: bool) -> None:
    keras = pytest.importorskip("keras")
    y = RNG.integers(0, 2, (N, 3)).astype(np.float32)
    z = (2.0 * y - 1.0 + RNG.normal(scale=1.5, size=(N, 3))).astype(np.float32)
    spec = {"type": "auc", "multi_label": multi_label, "from_logits": True}
    got = stream(make(spec, (N, 3), (N, 3)), z, y)
    want = _keras_stream(keras.metrics.AUC(multi_label=multi_label, from_logits=True), y, z, None)
    assert got == pytest.approx(want, rel=1e-4)
    probs = 1 / (1 + np.exp(-z))
    if multi_label:
        sk = skm.roc_auc_score(y, probs, average="macro")
    else:
        sk = skm.roc_auc_score(y.ravel(), probs.ravel())
    assert got == pytest.approx(sk, abs=1e-2)


# --- state, names and errors ----------------------------------------------------------------


def test_state_dict_resumes_mid_epoch() -> None:
    labels, p = classification_data()
    whole = make("auc", (N,), (N, C))
    whole.update(torch.from_numpy(p), torch.from_numpy(labels))
    first = make("auc", (N,), (N, C))
    first.update(torch.from_numpy(p[:100]), torch.from_numpy(labels[:100]))
    second = make("auc", (N,), (N, C))
    second.load_state_dict(first.state_dict())
    second.update(torch.from_numpy(p[100:]), torch.from_numpy(labels[100:]))
    assert second.result() == pytest.approx(whole.result(), rel=1e-12)
    assert 0.5 < whole.result() < 1.0
    whole.reset()
    assert whole.result() == 0.0


def test_build_metrics_names_and_errors() -> None:
    # without `name`, Keras's default name for the class; a bare string keeps its spelling (Keras)
    given = (
        {"type": "accuracy"},
        {"type": "AUC"},
        {"type": "Precision"},
        "AUC",
        {"type": "rmse", "name": "r"},
    )
    specs = [TypeAdapter(MetricField).validate_python(v) for v in given]
    built = build_metrics(specs, None, y_true_shape=(N,), y_pred_shape=(N, C), final_activation="softmax")
    assert [m.name for m in built] == ["accuracy", "auc", "precision", "AUC", "r"]
    twice = [TypeAdapter(MetricField).validate_python(v) for v in ("mae", "mae")]
    with pytest.raises(ConfigError, match="'mae'") as err:
        build_metrics(twice, None, y_true_shape=(N, 1), y_pred_shape=(N, 1), final_activation="linear")
    assert err.value.key == "compile.metrics[1]"
    with pytest.raises(DataError, match="expected one-hot targets") as derr:
        make("categorical_accuracy", (N,), (N, C))
    assert "sparse_categorical_accuracy" in (derr.value.hint or "")
    with pytest.raises(DataError, match="expected integer class labels"):
        make("sparse_categorical_accuracy", (N, C), (N, C))
    with pytest.raises(ConfigError, match="class_id"):
        make({"type": "recall", "class_id": C}, (N, C), (N, C))
