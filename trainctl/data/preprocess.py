"""Preprocessing steps (``data.x`` / ``data.y``): fitted on the training split, replayed later.

A :class:`Preprocessor` is the fitted list of steps. It round-trips through JSON (never pickle) so
``evaluate`` and ``predict`` apply exactly what ``fit`` applied, with the statistics of the
training split. Each step keeps its dotted config key so errors point at the YAML line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainctl.config.data import Step
from trainctl.errors import ArtifactError, DataError

FORMAT = 1
_CHUNK = 8192  # rows per chunk when computing statistics, to bound float64 temporaries


@dataclass
class FittedStep:
    """One step plus what was learned from the training split (mean/std, min/max)."""

    op: str
    arg: Any = None
    key: str = ""
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "key": self.key}
        if self.arg is not None:
            out["arg"] = list(self.arg) if isinstance(self.arg, tuple) else self.arg
        for name, value in self.stats.items():
            out[name] = {"shape": list(value.shape), "values": value.ravel().tolist()}
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FittedStep:
        stats: dict[str, np.ndarray] = {
            name: np.asarray(d[name]["values"], dtype=np.float64).reshape(d[name]["shape"])
            for name in ("mean", "std", "min", "range")
            if name in d
        }
        return cls(op=d["op"], arg=d.get("arg"), key=d.get("key", ""), stats=stats)


def _float(a: np.ndarray) -> np.ndarray:
    """Arithmetic keeps a float dtype as is and turns anything else into float32 (Keras's floatx)."""
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def _column_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population std (ddof=0, like Keras ``Normalization``), two-pass in chunks."""
    n = len(x)
    mean = np.zeros(x.shape[1:], dtype=np.float64)
    for i in range(0, n, _CHUNK):
        mean += x[i : i + _CHUNK].sum(axis=0, dtype=np.float64)
    mean /= n
    sq = np.zeros_like(mean)
    for i in range(0, n, _CHUNK):
        d = x[i : i + _CHUNK].astype(np.float64) - mean
        sq += np.einsum("i...,i...->...", d, d)
    return mean, np.sqrt(sq / n)


def _bfloat16(x: np.ndarray) -> np.ndarray:
    """Round to bfloat16 precision but keep float32 storage: numpy has no bfloat16 and torch reads this."""
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    bits = x32.view(np.uint32)
    rounded = ((bits + (((bits >> 16) & 1) + 0x7FFF)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x32), x32, rounded)


def _reshape(x: np.ndarray, target: Sequence[int], key: str) -> np.ndarray:
    if list(target).count(-1) > 1:
        raise DataError(f"expected at most one -1 in reshape, received {list(target)}", key=key)
    per_sample = math.prod(x.shape[1:])
    known = math.prod(d for d in target if d != -1)
    ok = per_sample % known == 0 if -1 in target else per_sample == known
    if not ok:
        want = f"a multiple of {known}" if -1 in target else str(known)
        raise DataError(
            f"expected {want} values per sample for reshape {list(target)}, received {per_sample}",
            key=key,
            hint=f"the data's samples have shape {tuple(x.shape[1:])}",
        )
    return x.reshape(len(x), *target)


def _is_one_hot(y: np.ndarray) -> bool:
    return y.ndim >= 2 and y.shape[-1] > 1


def _one_hot(y: np.ndarray, k: int, key: str) -> np.ndarray:
    if _is_one_hot(y):
        raise DataError(
            f"expected sparse integer labels for one_hot, received labels that are already one-hot, "
            f"shape {tuple(y.shape)}",
            key=key,
            hint="remove the one_hot step, or give sparse labels of shape (N,)",
        )
    if y.ndim == 0 or y.size != len(y):
        raise DataError(
            f"expected sparse labels of shape (N,) or (N, 1) for one_hot, received shape {tuple(y.shape)}",
            key=key,
        )
    flat = y.reshape(len(y))
    if not np.issubdtype(flat.dtype, np.integer):
        if not np.issubdtype(flat.dtype, np.number) or not np.all(np.mod(flat, 1) == 0):
            raise DataError(
                f"expected integer class labels for one_hot, received dtype {flat.dtype} with "
                f"non-integer values such as {flat[np.mod(flat, 1) != 0][:1].tolist()}",
                key=key,
            )
        flat = flat.astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= k):
        bad = flat[(flat < 0) | (flat >= k)][0]
        raise DataError(
            f"expected labels in 0..{k - 1} for {{one_hot: {k}}}, received label {int(bad)}",
            key=key,
            hint=f"the labels range from {int(flat.min())} to {int(flat.max())}",
        )
    out = np.zeros((len(flat), k), dtype=np.float32)
    out[np.arange(len(flat)), flat] = 1.0
    return out


def _apply(step: FittedStep, a: np.ndarray) -> np.ndarray:
    """Apply one fitted step to a batch (axis 0 is always the batch axis)."""
    op, arg = step.op, step.arg
    if op == "scale":
        if np.issubdtype(a.dtype, np.floating):
            return a / a.dtype.type(arg)
        out = a.astype(np.float32)  # our own copy: divide in place, one 4-byte array not two
        out /= np.float32(arg)
        return out
    if op == "standardize":
        a = _float(a)
        st = step.stats
        _check_feature_shape(a, st["mean"], step)
        return (a - st["mean"].astype(a.dtype)) / st["std"].astype(a.dtype)
    if op == "normalize":
        a = _float(a)
        st = step.stats
        _check_feature_shape(a, st["min"], step)
        return (a - st["min"].astype(a.dtype)) / st["range"].astype(a.dtype)
    if op == "flatten":
        return a.reshape(len(a), -1)
    if op == "reshape":
        return _reshape(a, arg, step.key)
    if op == "cast":
        return _bfloat16(a) if arg == "bfloat16" else a.astype(np.dtype(arg))
    if op == "one_hot":
        return _one_hot(a, int(arg), step.key)
    if op == "clip":
        a = _float(a)
        return np.clip(a, a.dtype.type(arg[0]), a.dtype.type(arg[1]))
    raise DataError(f"expected a known preprocessing step, received {op!r}", key=step.key)


def _check_feature_shape(a: np.ndarray, stat: np.ndarray, step: FittedStep) -> None:
    if a.shape[1:] != stat.shape:
        raise DataError(
            f"expected samples of shape {tuple(stat.shape)} for {step.op} (as fitted on the "
            f"training data), received {tuple(a.shape[1:])}",
            key=step.key,
        )


def _fit(step: FittedStep, a: np.ndarray) -> None:
    """Learn a stateful step's statistics from the (already partly transformed) training data."""
    if len(a) == 0:
        raise DataError(f"expected at least one training sample to fit {step.op}, received 0", key=step.key)
    if step.op == "standardize":
        mean, std = _column_stats(a)
        step.stats = {"mean": mean, "std": np.where(std == 0, 1.0, std)}
    elif step.op == "normalize":
        lo = np.min([a[i : i + _CHUNK].min(axis=0) for i in range(0, len(a), _CHUNK)], axis=0).astype(np.float64)
        hi = np.max([a[i : i + _CHUNK].max(axis=0) for i in range(0, len(a), _CHUNK)], axis=0).astype(np.float64)
        rng = hi - lo
        step.stats = {"min": lo, "range": np.where(rng == 0, 1.0, rng)}


def _finish_x(a: np.ndarray, steps: list[FittedStep]) -> np.ndarray:
    """x is float32 (Keras's floatx) unless a ``cast`` step chose another dtype."""
    if any(s.op == "cast" for s in steps):
        return a
    return a.astype(np.float32, copy=False)


def _finish_y(a: np.ndarray, steps: list[FittedStep]) -> np.ndarray:
    """Integer labels -> int64 (N,); float targets -> float32, (N,) -> (N, 1) like Dense(1)'s output."""
    if not any(s.op == "cast" for s in steps):
        if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
            a = a.astype(np.int64, copy=False)
        else:
            a = a.astype(np.float32, copy=False)
    if a.ndim == 1 and np.issubdtype(a.dtype, np.floating):
        a = a.reshape(-1, 1)
    return a


class _Through:
    """Rows of ``x`` seen through some fitted steps, materialised one slice at a time."""

    def __init__(self, x: np.ndarray, steps: list[FittedStep]) -> None:
        self.x, self.steps = x, steps
        self.shape = (len(x), *self[0:1].shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows: slice) -> np.ndarray:
        from trainctl.data.mapped import release_pages

        a = np.array(self.x[rows])  # a copy, so the mapped pages can go
        release_pages(self.x)
        for s in self.steps:
            a = _apply(s, a)
        return a


class Preprocessor:
    """Fitted ``data.x`` and ``data.y`` steps; JSON round-trips so predict replays fit exactly."""

    def __init__(self, x_steps: list[FittedStep], y_steps: list[FittedStep]) -> None:
        self.x_steps = x_steps
        self.y_steps = y_steps

    @classmethod
    def fit(
        cls,
        x_steps: Sequence[Step],
        y_steps: Sequence[Step],
        x: np.ndarray,
        y: np.ndarray,
        *,
        x_key: str = "data.x",
        y_key: str = "data.y",
    ) -> tuple[Preprocessor, np.ndarray, np.ndarray]:
        """Fit on the training split; returns the preprocessor and the transformed training arrays."""
        fitted: list[list[FittedStep]] = []
        outs: list[np.ndarray] = []
        for steps, a, key in ((x_steps, x, x_key), (y_steps, y, y_key)):
            done: list[FittedStep] = []
            for i, s in enumerate(steps):
                f = FittedStep(op=s.op, arg=s.arg, key=f"{key}[{i}]")
                _fit(f, a)
                a = _apply(f, a)
                done.append(f)
            fitted.append(done)
            outs.append(a)
        pre = cls(fitted[0], fitted[1])
        return pre, _finish_x(outs[0], pre.x_steps), _finish_y(outs[1], pre.y_steps)

    @classmethod
    def fit_streaming(
        cls,
        x_steps: Sequence[Step],
        y_steps: Sequence[Step],
        x: np.ndarray,
        y: np.ndarray,
        *,
        x_key: str = "data.x",
        y_key: str = "data.y",
    ) -> Preprocessor:
        """Fit on rows that stay on disk (a memory map): each statistic is gathered chunk by chunk
        through the steps before it, with the same chunked arithmetic as :meth:`fit`, so the fitted
        values are the in-memory ones. Labels are small and are fitted in memory."""
        done: list[FittedStep] = []
        for i, s in enumerate(x_steps):
            f = FittedStep(op=s.op, arg=s.arg, key=f"{x_key}[{i}]")
            if f.op in ("standardize", "normalize"):
                _fit(f, _Through(x, list(done)))  # type: ignore[arg-type]
            done.append(f)
        y_pre, _, _ = cls.fit([], y_steps, np.zeros((len(y), 0), np.float32), np.asarray(y), y_key=y_key)
        return cls(done, y_pre.y_steps)

    def transform_x(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x)
        for s in self.x_steps:
            a = _apply(s, a)
        return _finish_x(a, self.x_steps)

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        a = np.asarray(y)
        for s in self.y_steps:
            a = _apply(s, a)
        return _finish_y(a, self.y_steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "x": [s.to_json() for s in self.x_steps],
            "y": [s.to_json() for s in self.y_steps],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Preprocessor:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ArtifactError(f"expected a preprocessor of format {FORMAT}, received {got!r}")
        return cls(
            [FittedStep.from_json(s) for s in d.get("x", [])],
            [FittedStep.from_json(s) for s in d.get("y", [])],
        )

    def __repr__(self) -> str:
        ops = lambda steps: [s.op for s in steps]  # noqa: E731
        return f"Preprocessor(x={ops(self.x_steps)}, y={ops(self.y_steps)})"
